// procs_running / procs_blocked for a container's /proc/stat: its threads in state R and D. Counting reads
// one /proc/<tid>/stat per thread (about 10 µs each here), on the one thread that serves every container,
// so a container of 4000 threads would cost 40 ms per read of /proc/stat and readers in a loop would
// stall everyone. A census is therefore reused for a while: at least MIN_AGE_MS, and longer when it was
// expensive (COST_FACTOR times what it took), which keeps the counting below 1/COST_FACTOR of one core
// whatever the container's size or its readers do. The kernel's own figures are instantaneous, but the
// tools that show them (vmstat, top, sar) sample every second or more.

import type { CgroupReader } from 'node-cgroups-parser';
import { tasksUnder } from './tasks.js';

export interface ThreadStates {
  running: number;
  blocked: number;
}

export interface CensusOptions {
  /** a census younger than this is reused (0: never reuse, for tests) */
  minAgeMs?: number;
  now?: () => number;
}

/** Bound on the threads read per census: a huge container cannot make one read arbitrarily slow. */
export const MAX_COUNTED_TASKS = 4096;
export const MIN_AGE_MS = 100;
const COST_FACTOR = 50;
/** Entries unused this long are dropped (on the next census), so the map follows live containers. */
const FORGET_AFTER_MS = 60_000;

interface Census extends ThreadStates {
  at: number;
  validMs: number;
  usedAt: number;
}

export class ThreadCensus {
  private readonly byDir = new Map<string, Census>();
  private readonly minAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly reader: CgroupReader, options: CensusOptions = {}) {
    this.minAgeMs = options.minAgeMs ?? MIN_AGE_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** Cgroups with a census kept (for status and leak checks). */
  get size(): number {
    return this.byDir.size;
  }

  /** R and D threads of the cgroup `dir` and its descendants. */
  statesOf(dir: string, version: 1 | 2): ThreadStates {
    const now = this.now();
    const kept = this.byDir.get(dir);
    if (kept && now - kept.at < kept.validMs) {
      kept.usedAt = now;
      return { running: kept.running, blocked: kept.blocked };
    }
    this.forgetUnused(now);
    let running = 0;
    let blocked = 0;
    for (const tid of tasksUnder(dir, version, MAX_COUNTED_TASKS)) {
      const state = this.reader.readProcStat(tid)?.state;
      if (state === 'R') running++;
      else if (state === 'D') blocked++;
    }
    const end = this.now();
    if (this.minAgeMs > 0) this.byDir.set(dir, { running, blocked, at: end, usedAt: end, validMs: Math.max(this.minAgeMs, COST_FACTOR * (end - now)) });
    return { running, blocked };
  }

  private forgetUnused(now: number): void {
    for (const [dir, census] of this.byDir) if (now - census.usedAt > FORGET_AFTER_MS) this.byDir.delete(dir);
  }
}
