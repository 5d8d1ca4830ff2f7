// procs_running / procs_blocked for a container's /proc/stat: its threads in state R and D. Counting reads
// one /proc/<tid>/stat per thread (about 10 µs each here), on the one thread that serves every container,
// so a container of 4000 threads would cost 40 ms per read of /proc/stat and readers in a loop would
// stall everyone. A census is therefore reused for a while: at least MIN_AGE_MS, and longer when it was
// expensive (COST_FACTOR times what it took), which keeps the counting below 1/COST_FACTOR of one core
// whatever the container's size or its readers do. The kernel's own figures are instantaneous, but the
// tools that show them (vmstat, top, sar) sample every second or more.
//
// Censuses are kept in the daemon's ContainerStates, keyed by cgroup directory, so they go when the
// cgroup goes.

import type { CgroupReader } from 'node-cgroups-parser';
import type { ThreadStates } from '../contract.js';
import { threadStateKind } from '../kernel.js';
import { ContainerStates } from './container-state.js';
import { tasksUnder } from './tasks.js';

export interface CensusOptions {
  /** a census younger than this is reused (0: never reuse, for tests) */
  minAgeMs?: number;
  now?: () => number;
  /** where censuses are kept (the daemon's store); a private one by default */
  states?: ContainerStates;
}

/** Bound on the threads read per census: a huge container cannot make one read arbitrarily slow. */
export const MAX_COUNTED_TASKS = 4096;
export const MIN_AGE_MS = 100;
const COST_FACTOR = 50;
const NAME = 'thread-census';

interface Census extends ThreadStates {
  at: number;
  validMs: number;
}

/** R and D threads among `tids`, reading each one's /proc/<tid>/stat (a thread that exited counts as neither). */
export function countThreadStates(reader: CgroupReader, tids: readonly number[]): ThreadStates {
  const counts: ThreadStates = { running: 0, blocked: 0 };
  for (const tid of tids) {
    const kind = threadStateKind(reader.readProcStat(tid)?.state);
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
    const counts = countThreadStates(this.reader, tasksUnder(dir, version, MAX_COUNTED_TASKS));
    const end = this.now();
    if (this.minAgeMs > 0) this.states.set(dir, dir, NAME, { ...counts, at: end, validMs: Math.max(this.minAgeMs, COST_FACTOR * (end - start)) } satisfies Census);
    return counts;
  }
}
