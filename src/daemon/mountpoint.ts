// Getting the mountpoint ready: create it, recover a stale mount left by a killed daemon ("Transport
// endpoint is not connected"), refuse to stack a second FUSE daemon on a live one, and accept the empty
// placeholders a container runtime leaves in it.
//
// Placeholders: Docker and others, asked to bind-mount /var/lib/lxcfs/proc/meminfo while no daemon serves,
// create the missing path themselves (empty directories, empty files). libfuse 2 then refuses to mount
// over the non-empty directory. When the whole subtree holds nothing but empty directories and empty
// regular files, lxcfs-ts mounts over it anyway (FUSE's nonempty option): the placeholders stay where they
// are, hidden under the mount, so a container that already bound one keeps its (empty) file. Anything else
// is somebody's data: refused with a message naming it.

import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseMountinfo } from 'node-cgroups-parser';
import { ensureDir } from './ensure-dir.js';

/**
 * What is mounted on a path: nothing, a dead FUSE connection ("stale": its daemon is gone), a FUSE
 * connection that is alive but that nobody serves ("unserved": kept open by systemd's descriptor store for
 * the next daemon, whose requests wait), or a live filesystem.
 */
export type MountState =
  | { kind: 'none' }
  | { kind: 'stale'; fsType: string }
  | { kind: 'unserved'; fsType: string; device: string }
  | { kind: 'live'; fsType: string };

/** How long a FUSE mount may take to answer one stat before it counts as unserved. */
export const PROBE_MS = 5000;

export function mountStateOf(mountpoint: string, mountinfo: string = readMountinfo()): MountState {
  const path = resolve(mountpoint);
  const mounts = parseMountinfo(mountinfo).filter((m) => m.mountPoint === path);
  const top = mounts[mounts.length - 1];
  if (!top) return { kind: 'none' };
  if (top.fsType.startsWith('fuse')) {
    // Never stat a FUSE mount in this process: one nobody serves would block it for good. A child does,
    // and is killed if it waits (a FUSE request waiting for its daemon yields to SIGKILL).
    const probe = spawnSync('stat', ['-c', '%i', '--', path], { timeout: PROBE_MS, killSignal: 'SIGKILL', encoding: 'utf8' });
    if (probe.signal === 'SIGKILL' || (probe.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') return { kind: 'unserved', fsType: top.fsType, device: top.device };
    if (probe.status === 0) return { kind: 'live', fsType: top.fsType };
    return /not connected|connection abort/i.test(probe.stderr ?? '') ? { kind: 'stale', fsType: top.fsType } : { kind: 'live', fsType: top.fsType };
  }
  try {
    statSync(path);
    return { kind: 'live', fsType: top.fsType };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ECONNABORTED' ? { kind: 'stale', fsType: top.fsType } : { kind: 'live', fsType: top.fsType };
  }
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

export type Prepared = { ok: true; recoveredStale: boolean; placeholders: string[] } | { ok: false; message: string };

/** Bounds of the placeholder check: a runtime leaves a handful; a large tree is not placeholders. */
const MAX_ENTRIES = 1000;
const MAX_DEPTH = 8;

/**
 * The entries under `dir` when every one is an empty directory or an empty regular file (placeholders),
 * or the first entry that is not one.
 */
export function placeholdersIn(dir: string): { ok: true; entries: string[] } | { ok: false; offender: string } {
  const entries: string[] = [];
  const walk = (path: string, depth: number): string | undefined => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const st = lstatSync(full);
      entries.push(full);
      if (entries.length > MAX_ENTRIES) return full;
      if (st.isDirectory()) {
        if (depth >= MAX_DEPTH) return full;
        const bad = walk(full, depth + 1);
        if (bad) return bad;
      } else if (!st.isFile() || st.size !== 0) return full;
    }
    return undefined;
  };
  const offender = walk(dir, 0);
  return offender === undefined ? { ok: true, entries } : { ok: false, offender };
}

/**
 * Abort a FUSE connection through fusectl (/sys/fs/fuse/connections/<minor>/abort; mounted there if it is
 * not): every request waiting on it fails, and its mount turns stale. Throws when that cannot be done.
 */
export function abortConnection(device: string): void {
  const minor = device.split(':')[1];
  const dir = '/sys/fs/fuse/connections';
  if (!existsSync(`${dir}/${minor}`)) spawnSync('mount', ['-t', 'fusectl', 'fusectl', dir], { stdio: 'ignore' });
  writeFileSync(`${dir}/${minor}/abort`, '1');
}

export async function prepareMountpoint(mountpoint: string, detach: (path: string) => Promise<void>, onAbort: (device: string) => void = () => undefined): Promise<Prepared> {
  let recoveredStale = false;
  let state = mountStateOf(mountpoint);
  // An lxcfs-ts connection nobody serves (systemd kept it for a restart, and this daemon was started
  // another way): its containers wait on it. Abort it so it turns stale: the fresh mount replaces it and
  // re-attach moves the containers over.
  if (state.kind === 'unserved' && state.fsType === 'fuse.lxcfs-ts') {
    try {
      abortConnection(state.device);
    } catch (err) {
      return { ok: false, message: `${mountpoint} is an lxcfs-ts mount nobody serves (kept for a restart by systemd?), and it could not be aborted: ${(err as Error).message}; start lxcfs-ts through systemd, or detach it (umount -l ${mountpoint})` };
    }
    onAbort(state.device);
    state = mountStateOf(mountpoint);
  }
  // A daemon killed repeatedly can leave several stale mounts stacked on one path.
  for (let layers = 0; state.kind === 'stale' && layers < 16; layers++) {
    try {
      await detach(resolve(mountpoint));
    } catch (err) {
      return { ok: false, message: `stale mount on ${mountpoint} could not be detached: ${(err as Error).message}` };
    }
    recoveredStale = true;
    state = mountStateOf(mountpoint);
  }
  if (state.kind === 'unserved') return { ok: false, message: `${mountpoint} is a ${state.fsType} mount whose daemon does not answer; not ours to replace` };
  if (state.kind !== 'none' && state.fsType.startsWith('fuse')) {
    return { ok: false, message: `${mountpoint} is already a live ${state.fsType} mount; is another lxcfs-ts serving it?` };
  }
  try {
    ensureDir(resolve(mountpoint));
    if (!statSync(mountpoint).isDirectory()) return { ok: false, message: `${mountpoint} is not a directory` };
  } catch (err) {
    return { ok: false, message: `cannot create mountpoint ${mountpoint}: ${(err as Error).message}` };
  }
  if (state.kind !== 'none') return { ok: true, recoveredStale, placeholders: [] }; // a mount of another kind: mounted over as it is
  let found;
  try {
    found = placeholdersIn(resolve(mountpoint));
  } catch (err) {
    return { ok: false, message: `cannot read mountpoint ${mountpoint}: ${(err as Error).message}` };
  }
  if (!found.ok) {
    return { ok: false, message: `${mountpoint} is not empty: ${found.offender} is not an empty directory or file (lxcfs-ts mounts only over an empty directory, or one holding the empty placeholders a container runtime leaves)` };
  }
  return { ok: true, recoveredStale, placeholders: found.entries };
}
