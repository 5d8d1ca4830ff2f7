// A restart that no container notices: systemd's file descriptor store keeps the daemon's FUSE connection
// open while no daemon runs, and the next daemon serves the same connection again (docs/systemd.md,
// "Restart without a failed read").
//
// While serving, the daemon stores two descriptors under the name "fuse" (sd_notify FDSTORE=1): its
// /dev/fuse descriptor and the binding's state memfd (which node id the kernel was given for which path,
// the kernel's INIT request, the mount's device; vendor/fuse-native/PATCHES.md 19). systemd keeps both
// across `systemctl restart`, a crash or a kill, and passes them to the next start as fds 3.. with
// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)). That start resumes the connection when
// it is still the one mounted on its mountpoint; anything else is closed and dropped from the store
// (FDSTOREREMOVE=1), and the daemon mounts afresh (running containers are then re-attached).
//
// This module only reads what was passed and decides; the mount itself is the binding's.

import Fuse from 'fuse-native';
import { closeSync, readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseMountinfo } from 'node-cgroups-parser';
import { FS_TYPE } from './reattach.js';

/** The name both descriptors are stored under (FDNAME=). */
export const FD_STORE_NAME = 'fuse';
/** sd_listen_fds(3): passed descriptors start at 3. */
const SD_LISTEN_FDS_START = 3;

export interface PassedFd {
  fd: number;
  name: string;
}

/**
 * The descriptors the service manager passed to this process (LISTEN_PID is ours), with their names.
 * The variables are removed from `env` either way, so programs the daemon runs never see them, and the
 * descriptors are made close-on-exec.
 */
export function takePassedFds(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): PassedFd[] {
  const count = Number(env.LISTEN_FDS);
  const forUs = Number(env.LISTEN_PID) === pid;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!forUs || !Number.isInteger(count) || count <= 0 || count > 1024) return [];
  const passed: PassedFd[] = [];
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    if (Fuse.fdInfo(fd).kind === 'none') continue; // (marks the others close-on-exec)
    passed.push({ fd, name: names[i] || 'unknown' });
  }
  return passed;
}

export interface StoredConnection {
  fuseFd: number;
  stateFd: number;
  generation: number;
  nodes: number;
  device: string;
}

export type StoreDecision =
  /** resume this connection; `others` are passed descriptors to close */
  | { kind: 'resume'; connection: StoredConnection; others: number[] }
  /** nothing usable: close `close`, drop the store's copies (FDSTOREREMOVE) when `drop`, detach `detach` */
  | { kind: 'fresh'; reason: string | undefined; close: number[]; drop: boolean; detach: string | undefined };

/**
 * What to do with the descriptors passed under FD_STORE_NAME, given the mounts on `mountpoint`
 * (mountinfo text; read, never stat()ed: a mount whose daemon is gone would block a stat until a daemon
 * answers). Resume when there is exactly one live /dev/fuse descriptor and one state of this version that
 * names `mountpoint`, and the top lxcfs-ts mount there is the state's device. Otherwise everything stored
 * is closed and dropped; a mount of the stored connection still on `mountpoint` is to be detached first
 * (`detach`, its device), so that nothing waits on a connection no daemon will serve.
 */
export function decide(passed: PassedFd[], mountpoint: string, mountinfo: string): StoreDecision {
  const ours = passed.filter((p) => p.name === FD_STORE_NAME);
  const all = passed.map((p) => p.fd);
  if (ours.length === 0) return { kind: 'fresh', reason: undefined, close: all, drop: false, detach: undefined };
  const fuse = ours.filter((p) => Fuse.fdInfo(p.fd).kind === 'fuse');
  const states = ours.flatMap((p) => {
    const state = Fuse.inspectConnectionState(p.fd);
    return state.ok ? [{ fd: p.fd, state }] : [];
  });
  const fresh = (reason: string, detach?: string): StoreDecision => ({ kind: 'fresh', reason, close: all, drop: true, detach });
  if (fuse.length !== 1 || states.length !== 1) {
    return fresh(`the store holds ${fuse.length} FUSE descriptors and ${states.length} states (one of each needed)`);
  }
  const state = states[0]!.state;
  const path = resolvePath(mountpoint);
  const top = parseMountinfo(mountinfo).filter((m) => m.mountPoint === path).pop();
  const mounted = top !== undefined && top.fsType === FS_TYPE && state.device !== '' && top.device === state.device;
  if (state.mountpoint !== path) return fresh(`the stored connection was mounted on ${state.mountpoint}, not ${path}`, mounted ? state.device : undefined);
  if (!Fuse.fdInfo(fuse[0]!.fd).live) return fresh('the stored connection has ended (its mount was unmounted and released)');
  if (!mounted) {
    return fresh(`the stored connection is no longer the mount on ${path} (${top ? `${top.fsType} ${top.device} is` : 'nothing is'} mounted there; it was ${state.device || 'never recorded'})`);
  }
  return {
    kind: 'resume',
    connection: { fuseFd: fuse[0]!.fd, stateFd: states[0]!.fd, generation: state.generation, nodes: state.nodes, device: state.device },
    others: all.filter((fd) => fd !== fuse[0]!.fd && fd !== states[0]!.fd),
  };
}

/** The device ("major:minor") of the top lxcfs-ts mount on `mountpoint`, from our mountinfo. */
export function mountDevice(mountpoint: string, mountinfo: string = readMountinfo()): string | undefined {
  const path = resolvePath(mountpoint);
  const top = parseMountinfo(mountinfo).filter((m) => m.mountPoint === path).pop();
  return top?.fsType === FS_TYPE ? top.device : undefined;
}

/** Every mount on `mountpoint` (topmost first) whose device is `device`: how many to detach. */
export function mountsOfDevice(mountpoint: string, device: string, mountinfo: string = readMountinfo()): number {
  const path = resolvePath(mountpoint);
  return parseMountinfo(mountinfo).filter((m) => m.mountPoint === path && m.device === device).length;
}

export function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

export function closeFds(fds: number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/**
 * Whether the service manager will keep what is stored: a notify socket, and (systemd 254+, which says
 * so in $FDSTORE) room for both descriptors. Older systemd does not say; the unit must set
 * FileDescriptorStoreMax=2 or more (systemd/lxcfs-ts.service does).
 */
export function fdStoreUsable(env: NodeJS.ProcessEnv = process.env): { ok: true } | { ok: false; reason: string } {
  if (!env.NOTIFY_SOCKET) return { ok: false, reason: 'no NOTIFY_SOCKET' };
  if (env.FDSTORE !== undefined && !(Number(env.FDSTORE) >= 2)) return { ok: false, reason: `FDSTORE=${env.FDSTORE}: the unit's FileDescriptorStoreMax= must be 2 or more` };
  return { ok: true };
}
