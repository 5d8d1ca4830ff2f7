// procs_running / procs_blocked for a container's /proc/stat: its threads in state R and D. Counting reads
// one /proc/<pid>/task/<tid>/stat per thread (a few µs each here; not /proc/<tid>/stat, which for a thread
// that is not its process's leader sums the whole thread group: O(threads) per read), on the one thread that serves every container,
// so a container of 4000 threads would cost 40 ms per read of /proc/stat and readers in a loop would
// stall everyone. A census is therefore reused for a while: at least MIN_AGE_MS, and longer when it was
// expensive (COST_FACTOR times what it took), which keeps the counting below 1/COST_FACTOR of one core
// whatever the container's size or its readers do. The kernel's own figures are instantaneous, but the
// tools that show them (vmstat, top, sar) sample every second or more: a census half a second old is
// what they would have seen a moment before.
//
// Censuses are kept in the daemon's ContainerStates, keyed by cgroup directory, so they go when the
// cgroup goes.

import type { CgroupReader } from 'node-cgroups-parser';
import type { ThreadStates } from '../contract.js';
import { threadStateKind } from '../kernel.js';
import { ContainerStates } from './container-state.js';
import { parseProcStat } from 'node-cgroups-parser';
import { threadsUnder, type ThreadRef } from './tasks.js';

export interface CensusOptions {
  /** a census younger than this is reused (0: never reuse, for tests) */
  minAgeMs?: number;
  now?: () => number;
  /** where censuses are kept (the daemon's store); a private one by default */
  states?: ContainerStates;
}

/** Bound on the threads read per census: a huge container cannot make one read arbitrarily slow. */
export const MAX_COUNTED_TASKS = 4096;
export const MIN_AGE_MS = 500;
const COST_FACTOR = 50;
const NAME = 'thread-census';

interface Census extends ThreadStates {
  at: number;
  validMs: number;
}

/** R and D threads among `threads`, reading each one's own stat (a thread that exited counts as neither). */
export function countThreadStates(reader: CgroupReader, threads: readonly ThreadRef[]): ThreadStates {
  const counts: ThreadStates = { running: 0, blocked: 0 };
  for (const thread of threads) {
    const kind = threadStateKind(parseProcStat(reader.readFile(thread.stat) ?? '')?.state);
    if (kind !== 'other') counts[kind]++;
  }
  return counts;
}

export class ThreadCensus {
  private readonly minAgeMs: number;
  private readonly now: () => number;
  readonly states: ContainerStates;

  constructor(private readonly reader: CgroupReader, options: CensusOptions = {}) {
    this.minAgeMs = options.minAgeMs ?? MIN_AGE_MS;
    this.now = options.now ?? (() => performance.now());
    this.states = options.states ?? new ContainerStates({ now: this.now });
  }

  /** R and D threads of the cgroup `dir` and its descendants. */
  statesOf(dir: string, version: 1 | 2): ThreadStates {
    const start = this.now();
    const kept = this.states.get(dir, NAME) as Census | undefined;
    if (kept && start - kept.at < kept.validMs) return { running: kept.running, blocked: kept.blocked };
    const counts = countThreadStates(this.reader, threadsUnder(dir, version, MAX_COUNTED_TASKS, this.reader.procRoot));
    const end = this.now();
    if (this.minAgeMs > 0) this.states.set(dir, dir, NAME, { ...counts, at: end, validMs: Math.max(this.minAgeMs, COST_FACTOR * (end - start)) } satisfies Census);
    return counts;
  }
}
