// Thread and process ids of a cgroup subtree: v1 `tasks` / v2 `cgroup.threads` (threads) and
// `cgroup.procs` (processes) list only a cgroup's own members, so the subtree is walked. Bounded in depth
// and count: a container cannot make one request arbitrarily slow.

import { closeSync, constants, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { threadStateKind } from '../kernel.js';
import { throwIfOutOfDescriptors } from './kept-files.js';

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

// The walks below are written once, as generators that yield each file-system step they need, and run by
// one of two drivers: `runNow` does the steps on this thread (a reader waits for the answer), `runInPool`
// on libuv's thread pool (background work: listing a container of thousands of threads, one readdir of
// /proc/<pid>/task, takes ~10-16 ms here and must not hold the thread that serves every container).

/** A file-system step of a walk and what the driver answers. */
type Step =
  /** a file's text, undefined when it cannot be read (a cgroup removed under us: what we have is the answer) */
  | { op: 'read'; path: string }
  /** names of the subdirectories of a cgroup directory ([] when it has none or cannot be listed) */
  | { op: 'subdirs'; path: string }
  /** names in a directory, undefined when it cannot be listed */
  | { op: 'list'; path: string };

type Walk<T> = Generator<Step, T, unknown>;

function* walkTasks(dir: string, version: 1 | 2, limit: number, what: 'threads' | 'processes'): Walk<number[]> {
  const file = listFile(version, what);
  const ids: number[] = [];
  function* walk(path: string, depth: number): Walk<void> {
    if (ids.length >= limit) return;
    const text = (yield { op: 'read', path: `${path}/${file}` }) as string | undefined;
    if (text === undefined) return;
    for (const line of text.split('\n')) {
      if (ids.length >= limit) return;
      const id = Number(line);
      if (line !== '' && Number.isInteger(id) && id > 0) ids.push(id);
    }
    if (depth >= MAX_TASK_DEPTH) return;
    for (const name of (yield { op: 'subdirs', path }) as string[]) yield* walk(`${path}/${name}`, depth + 1);
  }
  yield* walk(dir, 0);
  return ids;
}

function* walkThreads(dir: string, version: 1 | 2, limit: number, procRoot: string): Walk<ThreadRef[]> {
  const threads: ThreadRef[] = [];
  for (const pid of yield* walkTasks(dir, version, limit, 'processes')) {
    if (threads.length >= limit) break;
    const tids = (yield { op: 'list', path: `${procRoot}/${pid}/task` }) as string[] | undefined;
    if (tids === undefined) {
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

// A step that fails answers "nothing there" (the cgroup or process went away: what was found is the
// answer), except running out of descriptors, which throws: counting nothing would look like an idle
// container (a load average decaying to 0, procs_running 0).
function stepNow(step: Step): unknown {
  try {
    if (step.op === 'read') return readFileSync(step.path, 'utf8');
    if (step.op === 'list') return readdirSync(step.path);
    if (!mayHaveSubdirs(step.path)) return [];
    return readdirSync(step.path, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    throwIfOutOfDescriptors(err, step.path);
    return step.op === 'subdirs' ? [] : undefined;
  }
}

async function stepInPool(step: Step): Promise<unknown> {
  try {
    if (step.op === 'read') return await readFile(step.path, 'utf8');
    if (step.op === 'list') return await readdir(step.path);
    const links = await stat(step.path).then((st) => st.nlink, () => undefined);
    if (links !== undefined && isLeafByLinks(links)) return [];
    return (await readdir(step.path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    throwIfOutOfDescriptors(err, step.path);
    return step.op === 'subdirs' ? [] : undefined;
  }
}

function runNow<T>(walk: Walk<T>): T {
  let next = walk.next();
  while (!next.done) next = walk.next(stepNow(next.value));
  return next.value;
}

async function runInPool<T>(walk: Walk<T>): Promise<T> {
  let next = walk.next();
  while (!next.done) next = walk.next(await stepInPool(next.value));
  return next.value;
}

/** Thread ids (or with `what: 'processes'`, process ids) of `dir` and its descendants, at most `limit`. */
export function tasksUnder(dir: string, version: 1 | 2, limit: number, what: 'threads' | 'processes' = 'threads'): number[] {
  return runNow(walkTasks(dir, version, limit, what));
}

/**
 * True when a directory with `links` links certainly has no subdirectory: a directory's link count is 2
 * plus its subdirectories on cgroupfs (kernfs sets it from the node's subdir count) as on ext4 and tmpfs,
 * so 2 means none, and a stat costs a fraction of listing a cgroup directory's few dozen control files.
 * Any other count (btrfs directories report 1), or a failed stat, means: list it.
 */
function isLeafByLinks(links: number): boolean {
  return links === 2;
}

function mayHaveSubdirs(dir: string): boolean {
  try {
    return !isLeafByLinks(statSync(dir).nlink);
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
  return runNow(walkThreads(dir, version, limit, procRoot));
}

/** threadsUnder with every step on libuv's thread pool: for background counts (see the top of the walks). */
export function threadsUnderInPool(dir: string, version: 1 | 2, limit: number, procRoot = '/proc'): Promise<ThreadRef[]> {
  return runInPool(walkThreads(dir, version, limit, procRoot));
}

export interface ThreadCounts {
  /** threads in state R */
  running: number;
  /** threads in state D */
  blocked: number;
  /** the highest thread id seen (0 for none) */
  newest: number;
}

/** One thread's stat is a few hundred bytes (comm is at most 64 bytes, for kernel workers; the rest are numbers). */
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
    throwIfOutOfDescriptors(err, path);
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
 * kernel.ts threadStateKind decides); a thread that exited meanwhile counts as neither. Opened and closed
 * each time, not kept: a kept /proc file holds its seq_file buffer (~4.4 KB of kernel memory per
 * descriptor, measured), which for every thread of a node's containers costs more memory than the open
 * saves time. Throws when out of descriptors.
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
