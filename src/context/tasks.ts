// Thread and process ids of a cgroup subtree: v1 `tasks` / v2 `cgroup.threads` (threads) and
// `cgroup.procs` (processes) list only a cgroup's own members, so the subtree is walked. Bounded in depth
// and count: a container cannot make one request arbitrarily slow.

import { closeSync, constants, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { threadStateKind } from '../kernel.js';

export const MAX_TASK_DEPTH = 8;

// Bounds shared by everything that counts a container's threads one by one (the thread census behind
// procs_running, the loadavg sampler), so both see the same threads of a big container:
/** threads read per container at most */
export const MAX_COUNTED_THREADS = 20_000;
/** threads read while a reader waits, at most (the rest is counted in slices) */
export const SYNC_THREADS = 512;
/** threads read per slice of background work, before yielding the event loop */
export const SLICE_THREADS = 256;

/** The file listing a cgroup's own threads or processes. */
function listFile(version: 1 | 2, what: 'threads' | 'processes'): string {
  if (what === 'processes') return 'cgroup.procs';
  return version === 1 ? 'tasks' : 'cgroup.threads';
}

/** Thread ids (or with `what: 'processes'`, process ids) of `dir` and its descendants, at most `limit`. */
export function tasksUnder(dir: string, version: 1 | 2, limit: number, what: 'threads' | 'processes' = 'threads'): number[] {
  const file = listFile(version, what);
  const ids: number[] = [];
  const walk = (path: string, depth: number): void => {
    if (ids.length >= limit) return;
    let text: string;
    try {
      text = readFileSync(`${path}/${file}`, 'utf8');
    } catch {
      return; // removed under us: what we have is the answer
    }
    for (const line of text.split('\n')) {
      if (ids.length >= limit) return;
      const id = Number(line);
      if (line !== '' && Number.isInteger(id) && id > 0) ids.push(id);
    }
    if (depth >= MAX_TASK_DEPTH || !mayHaveSubdirs(path)) return;
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(`${path}/${e.name}`, depth + 1);
  };
  walk(dir, 0);
  return ids;
}

/**
 * False when `dir` certainly has no subdirectory: a directory's link count is 2 plus its subdirectories on
 * cgroupfs (kernfs sets it from the node's subdir count) as on ext4 and tmpfs, so 2 means none, and a
 * stat costs a fraction of listing a cgroup directory's few dozen control files. Any other count
 * (btrfs directories report 1) or a failed stat means: list it.
 */
function mayHaveSubdirs(dir: string): boolean {
  try {
    return statSync(dir).nlink !== 2;
  } catch {
    return true;
  }
}

/** A thread of a cgroup subtree and the file that has its own state. */
export interface ThreadRef {
  tid: number;
  /** /proc/<pid>/task/<tid>/stat: that thread alone (/proc/<tid>/stat of a non-leader thread makes the
   * kernel sum the whole thread group on every read: O(threads) each, O(threads²) for a census) */
  stat: string;
}

/**
 * Threads of `dir` and its descendants, at most `limit`, found through their processes (cgroup.procs)
 * and each process's task directory. A process whose task directory cannot be listed counts as its
 * main thread alone.
 */
export function threadsUnder(dir: string, version: 1 | 2, limit: number, procRoot = '/proc'): ThreadRef[] {
  const threads: ThreadRef[] = [];
  for (const pid of tasksUnder(dir, version, limit, 'processes')) {
    if (threads.length >= limit) break;
    let tids: string[];
    try {
      tids = readdirSync(`${procRoot}/${pid}/task`);
    } catch {
      threads.push({ tid: pid, stat: `${procRoot}/${pid}/stat` });
      continue;
    }
    for (const name of tids) {
      if (threads.length >= limit) break;
      const tid = Number(name);
      if (Number.isInteger(tid) && tid > 0) threads.push({ tid, stat: `${procRoot}/${pid}/task/${name}/stat` });
    }
  }
  return threads;
}

export interface ThreadCounts {
  /** threads in state R */
  running: number;
  /** threads in state D */
  blocked: number;
  /** the highest thread id seen (0 for none) */
  newest: number;
}

/** One thread's stat is a few hundred bytes (comm is at most 15 bytes; the rest are numbers). */
const STAT_BUFFER = Buffer.allocUnsafe(4096);
const CLOSE_PAREN = 0x29;

/**
 * The state letter of a thread's stat file (field 3, after the ")" that ends comm, which may itself hold
 * ")"), undefined when the thread exited meanwhile or the file is not a stat. One open, one read, one
 * close: a census reads thousands of these, and a short read of a /proc seq_file is its whole content,
 * so the read that would return end-of-file is skipped. Throws when out of descriptors (EMFILE, ENFILE),
 * like the daemon's other reads.
 */
export function threadStateOf(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EMFILE' || code === 'ENFILE') throw new Error(`out of file descriptors (${code}) opening ${path}: raise the daemon's RLIMIT_NOFILE (LimitNOFILE= in its unit)`, { cause: err });
    return undefined;
  }
  let length: number;
  try {
    length = readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0);
  } catch {
    return undefined; // ESRCH: exited between open and read
  } finally {
    closeSync(fd);
  }
  const paren = STAT_BUFFER.lastIndexOf(CLOSE_PAREN, length - 1);
  if (paren < 0 || paren + 2 >= length || STAT_BUFFER[paren + 1] !== 0x20) return undefined;
  return String.fromCharCode(STAT_BUFFER[paren + 2]!);
}

/**
 * R and D threads among `threads`, each read from its own stat (`stateOf`, threadStateOf by default;
 * kernel.ts threadStateKind decides); a thread that exited meanwhile counts as neither. Opened and closed each time, not kept: a kept
 * /proc file holds its seq_file buffer (~4.4 KB of kernel memory per descriptor, measured), which for every
 * thread of a node's containers costs more memory than the open saves time.
 */
export function countThreads(threads: readonly ThreadRef[], stateOf: (statPath: string) => string | undefined = threadStateOf): ThreadCounts {
  const counts: ThreadCounts = { running: 0, blocked: 0, newest: 0 };
  for (const thread of threads) {
    const state = stateOf(thread.stat);
    if (state === undefined) continue;
    const kind = threadStateKind(state);
    if (kind !== 'other') counts[kind]++;
    if (thread.tid > counts.newest) counts.newest = thread.tid;
  }
  return counts;
}
