// Re-attach running containers after a restart. A container bind-mounts files of the daemon's FUSE mount;
// when the daemon goes (stop, crash, SIGKILL, OOM kill, upgrade by restart) those binds point at a dead
// connection and read "Transport endpoint is not connected" until the container restarts
// (lxc/lxcfs#73, #193, #583). Once a new daemon serves, this pass finds every mount namespace that holds
// such dead binds and replaces each one, in place, by a bind of the same file or directory of the live
// mount, without touching the container otherwise.
//
// Discovery is here: one process's mountinfo per mount namespace, lxcfs-ts mounts (fstype fuse.lxcfs-ts)
// whose device is not the live mount's. The mount work is done by a small native program of the FUSE
// binding (vendor/fuse-native/reattach.c: open_tree(OPEN_TREE_CLONE) of the live file in our namespace,
// setns into the container's, detach the dead mount, move_mount the clone onto the same path; Linux 5.2+),
// one process per namespace, never on the daemon's thread: setns into a mount namespace needs a
// single-threaded process. One pass at start (and `lxcfs-ts reattach` on demand): no polling, no watches.
//
// Left alone, and logged: binds of the mountpoint's underlying directory that a container runtime made
// while no daemon was serving (its files are then empty placeholders, not lxcfs-ts mounts).

import { spawn } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { parseMountinfo, type MountInfo } from 'node-cgroups-parser';

/** The filesystem type lxcfs-ts mounts show (fuse-host.ts mounts with subtype lxcfs-ts). */
export const FS_TYPE = 'fuse.lxcfs-ts';

export interface DeadBind {
  /** the path inside the FUSE filesystem the dead mount shows (mountinfo's root field) */
  root: string;
  /** where it is mounted in the container's mount namespace */
  target: string;
}

export interface ContainerMounts {
  /** the mount namespace, "mnt:[4026532xxx]" */
  namespace: string;
  /** a process of that namespace: the oldest one (a container's init, usually) */
  pid: number;
  /** processes of that namespace to enter it through, oldest first (a short-lived one may be gone) */
  candidates: number[];
  dead: DeadBind[];
  /** binds of the mountpoint's underlying directory, made while no daemon served: left alone */
  placeholders: string[];
}

export interface ScanOptions {
  procRoot?: string;
}

/** The device ("major:minor") of the live lxcfs-ts mount on `mountpoint`, from our own mountinfo. */
export async function liveDevice(mountpoint: string, procRoot = '/proc'): Promise<string | undefined> {
  const path = resolvePath(mountpoint);
  const mounts = parseMountinfo(await readFile(`${procRoot}/self/mountinfo`, 'utf8').catch(() => ''));
  return mounts.filter((m) => m.mountPoint === path && m.fsType === FS_TYPE).pop()?.device;
}

/**
 * What a namespace's mountinfo says: the dead binds of lxcfs-ts mounts that were on `mountpoint` (their
 * source names it: fuse-host.ts mounts with fsname lxcfs-ts:<mountpoint>; another daemon's are not ours to
 * touch), and the placeholders of `mountpoint`.
 */
export function classify(mounts: MountInfo[], live: string, mountpoint: string): { dead: DeadBind[]; placeholders: string[] } {
  const base = resolvePath(mountpoint);
  const source = `lxcfs-ts:${base}`;
  const dead: DeadBind[] = [];
  const placeholders: string[] = [];
  for (const m of mounts) {
    if (m.fsType === FS_TYPE && m.source === source && m.device !== live) dead.push({ root: m.root, target: m.mountPoint });
    else if (m.fsType !== FS_TYPE && (m.root === base || m.root.startsWith(`${base}/`)) && m.mountPoint !== base) placeholders.push(m.mountPoint);
  }
  return { dead, placeholders };
}

/** At most this many processes of one namespace are tried to enter it. */
const MAX_CANDIDATES = 8;

/**
 * Every mount namespace but ours with dead lxcfs-ts binds or placeholders, with the processes to enter it
 * through, oldest first: the lowest pid may be a short-lived process (pids wrap), the oldest is the
 * container's init or close to it.
 */
export async function scan(mountpoint: string, live: string, options: ScanOptions = {}): Promise<ContainerMounts[]> {
  const procRoot = options.procRoot ?? '/proc';
  const own = await readlink(`${procRoot}/self/ns/mnt`).catch(() => undefined);
  const members = new Map<string, number[]>();
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  for (const pid of pids) {
    const namespace = await readlink(`${procRoot}/${pid}/ns/mnt`).catch(() => undefined);
    if (!namespace || namespace === own) continue; // kernel threads and exited processes have none
    const list = members.get(namespace);
    if (list) list.push(pid);
    else members.set(namespace, [pid]);
  }
  const found: ContainerMounts[] = [];
  for (const [namespace, list] of members) {
    let text: string | undefined;
    for (const pid of list) {
      text = await readFile(`${procRoot}/${pid}/mountinfo`, 'utf8').catch(() => undefined);
      if (text !== undefined) break; // exited meanwhile: the next process of its namespace will do
    }
    if (text === undefined) continue;
    const { dead, placeholders } = classify(parseMountinfo(text), live, mountpoint);
    if (dead.length === 0 && placeholders.length === 0) continue;
    const started = await Promise.all(list.slice(0, 256).map(async (pid) => ({ pid, start: startTimeOf(await readFile(`${procRoot}/${pid}/stat`, 'utf8').catch(() => '')) })));
    const candidates = started.filter((p) => p.start !== undefined).sort((a, b) => a.start! - b.start! || a.pid - b.pid).slice(0, MAX_CANDIDATES).map((p) => p.pid);
    if (candidates.length === 0) continue; // every process of it exited
    found.push({ namespace, pid: candidates[0]!, candidates, dead, placeholders });
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** Field 22 of /proc/<pid>/stat (start time, ticks since boot), after the comm's last ')'. */
function startTimeOf(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}

export interface ReattachResult {
  namespace: string;
  pid: number;
  /**
   * 'container': the namespace bound files or directories of the mount (a container's binds);
   * 'copy': it holds only copies of the whole mount, inherited when a process made a private mount
   * namespace while a daemon served (`unshare -m`, a service with PrivateTmp=): repaired all the same.
   */
  kind: 'container' | 'copy';
  reattached: string[];
  skipped: string[];
  failed: { target: string; error: string }[];
  placeholders: string[];
}

/**
 * Run the native helper for one namespace: ok/skip/error per dead bind. It enters the namespace through
 * the first candidate process still in it (the helper checks the namespace's inode: a pid reused by
 * another process is not followed).
 */
export async function reattachNamespace(helper: string, mountpoint: string, c: ContainerMounts): Promise<ReattachResult> {
  const base = resolvePath(mountpoint);
  // A copy inherited by a process that made a private mount namespace sits at the mountpoint's own path;
  // a container's binds (of files, of directories, or of the whole tree) sit elsewhere.
  const kind = c.placeholders.length > 0 || c.dead.some((d) => d.target !== base) ? 'container' : 'copy';
  let last: ReattachResult | undefined;
  for (const pid of c.candidates.length > 0 ? c.candidates : [c.pid]) {
    const attempt = await reattachThrough(helper, base, c, pid, kind);
    if (attempt.entered) return attempt.result;
    last = attempt.result;
  }
  return last!;
}

function reattachThrough(helper: string, mountpoint: string, c: ContainerMounts, pid: number, kind: ReattachResult['kind']): Promise<{ entered: boolean; result: ReattachResult }> {
  const result: ReattachResult = { namespace: c.namespace, pid, kind, reattached: [], skipped: [], failed: [], placeholders: c.placeholders };
  if (c.dead.length === 0) return Promise.resolve({ entered: true, result });
  const inode = /^mnt:\[(\d+)\]$/.exec(c.namespace)?.[1];
  return new Promise((done) => {
    const child = spawn(helper, [String(pid), mountpoint, ...(inode ? [inode] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      result.failed.push(...c.dead.map((d) => ({ target: d.target, error: `cannot run ${helper}: ${e.message}` })));
      done({ entered: true, result }); // no other process will do better
    });
    child.on('close', (code) => {
      for (const line of out.split('\n')) {
        const [kind, target, reason] = line.split('\t');
        if (!target) continue;
        if (kind === 'ok') result.reattached.push(target);
        else if (kind === 'skip') result.skipped.push(target);
        else if (kind === 'error') result.failed.push({ target, error: reason ?? 'unknown' });
      }
      if (code === 2) result.failed.push(...c.dead.filter((d) => !out.includes(`\t${d.target}`)).map((d) => ({ target: d.target, error: err.trim() || 'the helper could not enter the namespace' })));
      done({ entered: code !== 2, result });
    });
    child.stdin.end(c.dead.map((d) => `${d.root}\t${d.target}\n`).join(''));
  });
}

/** The whole pass: scan, then re-attach namespace by namespace (a few at a time). */
export async function reattachAll(helper: string, mountpoint: string, options: ScanOptions & { parallel?: number } = {}): Promise<{ live: string | undefined; results: ReattachResult[] }> {
  const live = await liveDevice(mountpoint, options.procRoot);
  if (!live) return { live, results: [] };
  const containers = await scan(mountpoint, live, options);
  const results: ReattachResult[] = [];
  const queue = [...containers];
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) results.push(await reattachNamespace(helper, mountpoint, c));
  };
  await Promise.all(Array.from({ length: Math.max(1, options.parallel ?? 4) }, worker));
  results.sort((a, b) => a.pid - b.pid);
  return { live, results };
}
