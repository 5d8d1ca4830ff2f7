// Scratch cgroups for tests, created under the test process's own cgroup in a v1 hierarchy (the machine
// limits us through our memory cgroup: never move out of it or raise its limits).

import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const V1_ROOT = '/sys/fs/cgroup';

/** controller "unified" is the cgroup2 hierarchy (the 0:: line; /sys/fs/cgroup/unified on this host). */
export function ownCgroup(controller: string): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [id, controllers, path] = line.split(':');
    if (controller === 'unified' ? id === '0' && controllers === '' : controllers?.split(',').includes(controller)) return path!;
  }
  throw new Error(`not in a ${controller} cgroup`);
}

export interface ScratchCgroup {
  controller: string;
  /** the cgroup path as /proc/<pid>/cgroup shows it */
  path: string;
  dir: string;
  set: (file: string, value: string) => void;
  remove: () => void;
}

export function createCgroup(controller: string, name: string): ScratchCgroup {
  const parent = ownCgroup(controller);
  const path = join(parent, `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const dir = join(V1_ROOT, controller, path);
  mkdirSync(dir);
  return {
    controller,
    path,
    dir,
    set: (file, value) => writeFileSync(join(dir, file), value),
    remove: () => removeCgroup(dir),
  };
}

/** rmdir fails with EBUSY while the last task is still exiting: retry briefly. */
export function removeCgroup(dir: string): void {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}
