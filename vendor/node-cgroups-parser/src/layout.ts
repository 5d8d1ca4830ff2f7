// Which cgroup hierarchies are mounted where, from mountinfo.

import type { MountInfo } from './parse.js';

export interface Hierarchy {
  mountPoint: string;
  /** mountinfo's root field: the cgroup shown as the mount's top directory ('/' unless bind-mounted from a sub-cgroup) */
  root: string;
  /** v1: the controllers bound to it, plus "name=..." for a named hierarchy; v2: [] */
  controllers: string[];
  version: 1 | 2;
}

export interface CgroupLayout {
  kind: 'v1' | 'hybrid' | 'v2' | 'none';
  /** keyed by every controller of a hierarchy and by "name=..." */
  v1: Map<string, Hierarchy>;
  unified: Hierarchy | null;
}

/** Super options of a v1 cgroup mount that are not controllers. Anything "key=value" other than name= is also
 * an option (release_agent=..., and whatever future kernels add). */
const V1_MOUNT_OPTIONS = new Set([
  'rw',
  'ro',
  'relatime',
  'noatime',
  'nodiratime',
  'strictatime',
  'nosuid',
  'nodev',
  'noexec',
  'sync',
  'async',
  'xattr',
  'noprefix',
  'clone_children',
  'cpuset_v2_mode',
  'favordynmods',
  'none',
  'all',
]);

function v1Controllers(superOptions: string[]): string[] {
  return superOptions.filter((option) => {
    if (option.startsWith('name=')) return option.length > 'name='.length;
    return !option.includes('=') && !V1_MOUNT_OPTIONS.has(option);
  });
}

export function detectLayout(mounts: MountInfo[]): CgroupLayout {
  const v1 = new Map<string, Hierarchy>();
  let unified: Hierarchy | null = null;
  for (const mount of mounts) {
    if (mount.fsType === 'cgroup2') {
      // The first mount wins: later ones are typically bind mounts of the same hierarchy into containers.
      unified ??= { mountPoint: mount.mountPoint, root: mount.root, controllers: [], version: 2 };
    } else if (mount.fsType === 'cgroup') {
      const controllers = v1Controllers(mount.superOptions);
      if (controllers.length === 0) continue;
      const hierarchy: Hierarchy = { mountPoint: mount.mountPoint, root: mount.root, controllers, version: 1 };
      for (const controller of controllers) if (!v1.has(controller)) v1.set(controller, hierarchy);
    }
  }
  const kind = v1.size > 0 ? (unified ? 'hybrid' : 'v1') : unified ? 'v2' : 'none';
  return { kind, v1, unified };
}
