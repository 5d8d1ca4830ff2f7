// Getting the mountpoint ready: create it, recover a stale mount left by a killed daemon ("Transport
// endpoint is not connected"), and refuse to stack a second FUSE daemon on a live one.

import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseMountinfo } from 'node-cgroups-parser';
import { ensureDir } from './ensure-dir.js';

export type MountState = { kind: 'none' } | { kind: 'stale'; fsType: string } | { kind: 'live'; fsType: string };

export function mountStateOf(mountpoint: string, mountinfo: string = readMountinfo()): MountState {
  const path = resolve(mountpoint);
  const mounts = parseMountinfo(mountinfo).filter((m) => m.mountPoint === path);
  const top = mounts[mounts.length - 1];
  if (!top) return { kind: 'none' };
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

export type Prepared = { ok: true; recoveredStale: boolean } | { ok: false; message: string };

export async function prepareMountpoint(mountpoint: string, detach: (path: string) => Promise<void>): Promise<Prepared> {
  let recoveredStale = false;
  let state = mountStateOf(mountpoint);
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
  if (state.kind !== 'none' && state.fsType.startsWith('fuse')) {
    return { ok: false, message: `${mountpoint} is already a live ${state.fsType} mount; is another lxcfs-ts serving it?` };
  }
  try {
    ensureDir(resolve(mountpoint));
    if (!statSync(mountpoint).isDirectory()) return { ok: false, message: `${mountpoint} is not a directory` };
  } catch (err) {
    return { ok: false, message: `cannot create mountpoint ${mountpoint}: ${(err as Error).message}` };
  }
  return { ok: true, recoveredStale };
}
