// procs_running / procs_blocked for a container's /proc/stat: its threads in state R and D. Counting reads
// one /proc/<pid>/task/<tid>/stat per thread (a few µs each here; not /proc/<tid>/stat, which for a thread
// that is not its process's leader sums the whole thread group: O(threads) per read), on the one thread
// that serves every container. So the count never holds that thread for long:
//
// - a census is reused for a while: at least MIN_AGE_MS, and longer when it was expensive (COST_FACTOR
//   times what it took), which keeps counting below 1/COST_FACTOR of one core whatever the container's
//   size or its readers do;
// - a container of at most SYNC_THREADS threads is counted while its reader waits (a few ms at most), so
//   its figures are never older than the reuse period;
// - a bigger one's old census is answered at once and counted again in the background: its threads listed
//   on libuv's thread pool (one readdir of a process's thousands of task entries would hold the serving
//   thread for 10-16 ms), then read in slices of at
//   most SLICE_THREADS thread reads run from setImmediate (stale-while-revalidate): a read of a container
//   with thousands of threads never waits for its count, nor does anyone else's. Its figures are then
//   those of the census before, however long ago that was: one read behind. Its first census counts
//   SYNC_THREADS threads while the reader waits; the rest is counted in the background and replaces it.
//
// The kernel's own figures are instantaneous, but the tools that show them (vmstat, top, sar) sample every
// second or more: a census up to half a second old is what they would have seen a moment before.
//
// Censuses are kept in the daemon's ContainerStates, keyed by cgroup directory, so they go when the
// cgroup goes.

import type { CgroupReader } from 'node-cgroups-parser';
import type { ThreadStates } from '../contract.js';
import { ContainerStates } from './container-state.js';
import { countThreads, MAX_COUNTED_THREADS, SLICE_THREADS, SYNC_THREADS, threadsUnder, threadsUnderInPool, type ThreadRef } from './tasks.js';

export { SLICE_THREADS, SYNC_THREADS };

export interface CensusOptions {
  /** a census younger than this is reused (0: never reuse and count everything at once, for tests) */
  minAgeMs?: number;
  now?: () => number;
  /** where censuses are kept (the daemon's store); a private one by default */
  states?: ContainerStates;
  /** run fn soon, after pending I/O (default: setImmediate) */
  defer?: (fn: () => void) => void;
  /** a thread's state letter from its stat path (default tasks.ts threadStateOf; tests count reads) */
  stateOf?: (statPath: string) => string | undefined;
  /** a big container's threads listed for a background count (default tasks.ts threadsUnderInPool) */
  listInPool?: (dir: string, version: 1 | 2) => Promise<ThreadRef[]>;
}

export const MIN_AGE_MS = 500;
/** A census is reused for this many times what it cost (so counting stays under 2 % of a core). */
export const COST_FACTOR = 50;
const NAME = 'thread-census';

interface Census extends ThreadStates {
  /** threads listed at the last count: small containers are recounted while the reader waits */
  threads: number;
  at: number;
  validMs: number;
  /** a background count is under way */
  refreshing: boolean;
}

/** R and D threads among `threads` (tasks.ts countThreads). */
export function countThreadStates(threads: readonly ThreadRef[], stateOf?: (statPath: string) => string | undefined): ThreadStates {
  const { running, blocked } = countThreads(threads, stateOf);
  return { running, blocked };
}

export class ThreadCensus {
  private readonly minAgeMs: number;
  private readonly now: () => number;
  private readonly defer: (fn: () => void) => void;
  private readonly stateOf: ((statPath: string) => string | undefined) | undefined;
  private readonly listInPool: (dir: string, version: 1 | 2) => Promise<ThreadRef[]>;
  readonly states: ContainerStates;

  constructor(private readonly reader: CgroupReader, options: CensusOptions = {}) {
    this.minAgeMs = options.minAgeMs ?? MIN_AGE_MS;
    this.now = options.now ?? (() => performance.now());
    this.defer = options.defer ?? ((fn) => void setImmediate(fn));
    this.stateOf = options.stateOf;
    this.listInPool = options.listInPool ?? ((dir, version) => threadsUnderInPool(dir, version, MAX_COUNTED_THREADS, reader.procRoot));
    this.states = options.states ?? new ContainerStates({ now: this.now });
  }

  /** R and D threads of the cgroup `dir` and its descendants, as last counted (see the top of this file). */
  statesOf(dir: string, version: 1 | 2): ThreadStates {
    if (this.minAgeMs <= 0) return countThreadStates(threadsUnder(dir, version, MAX_COUNTED_THREADS, this.reader.procRoot), this.stateOf);
    const now = this.now();
    const kept = this.states.get(dir, NAME) as Census | undefined;
    const stale = kept !== undefined && now - kept.at >= kept.validMs;
    if (kept && (!stale || kept.refreshing || kept.threads > SYNC_THREADS)) {
      if (stale && !kept.refreshing) this.refresh(dir, version, kept);
      return { running: kept.running, blocked: kept.blocked };
    }
    const threads = threadsUnder(dir, version, MAX_COUNTED_THREADS, this.reader.procRoot);
    const counts = countThreadStates(threads.slice(0, SYNC_THREADS), this.stateOf);
    const end = this.now();
    const census: Census = { ...counts, threads: threads.length, at: end, validMs: Math.max(this.minAgeMs, COST_FACTOR * (end - now)), refreshing: false };
    this.states.set(dir, dir, NAME, census);
    if (threads.length > SYNC_THREADS) this.refresh(dir, version, census, threads); // the rest, in the background
    return counts;
  }

  /**
   * Count `dir` again in slices; the kept census answers meanwhile and is replaced at the end. Its threads
   * are listed on libuv's thread pool unless `listed` (a first census listed them while its reader waited).
   */
  private refresh(dir: string, version: 1 | 2, census: Census, listed?: ThreadRef[]): void {
    census.refreshing = true;
    if (listed) return this.countInSlices(dir, census, listed);
    this.listInPool(dir, version).then(
      (threads) => this.countInSlices(dir, census, threads),
      () => {
        census.refreshing = false; // out of descriptors (the listing's only throw): a later read tries again
      },
    );
  }

  private countInSlices(dir: string, census: Census, threads: readonly ThreadRef[]): void {
    let spent = 0; // ms the slices held the thread, for the reuse period
    const counts: ThreadStates = { running: 0, blocked: 0 };
    let index = 0;
    const slice = () => {
      const sliceStart = this.now();
      const end = Math.min(threads.length, index + SLICE_THREADS);
      let part: ThreadStates;
      try {
        part = countThreadStates(threads.slice(index, end), this.stateOf);
      } catch {
        // Out of descriptors: a throw here would end the daemon (no reader waits for this work). The kept
        // census answers until a later read tries again.
        census.refreshing = false;
        return;
      }
      counts.running += part.running;
      counts.blocked += part.blocked;
      index = end;
      spent += this.now() - sliceStart;
      if (index < threads.length) return this.defer(slice);
      // Replace the census only if it is still the kept one (the cgroup may have gone meanwhile).
      if (this.states.get(dir, NAME) === census) {
        Object.assign(census, counts, { threads: threads.length, at: this.now(), validMs: Math.max(this.minAgeMs, COST_FACTOR * spent), refreshing: false });
      }
    };
    this.defer(slice);
  }
}
