// Per-container load averages (-l). One sampler for all containers: every 5 s (LOAD_FREQ) it counts the
// R and D threads of each tracked container and folds them into 1/5/15-minute averages with the kernel's
// fixed-point arithmetic (kernel/sched/loadavg.c: calc_load; FSHIFT 11, EXP_1 1884, EXP_5 2014,
// EXP_15 2037). A container is tracked from its first read of /proc/loadavg and forgotten when its cgroup
// disappears; with nothing tracked the timer stops, so an idle daemon burns no CPU. Work per tick is
// bounded (MAX_TASKS_PER_TICK thread reads); containers past the budget wait for the next tick.
//
// This state lives on the daemon side so that it survives a renderer reload.

import type { CgroupReader } from 'node-cgroups-parser';
import { existsSync } from 'node:fs';
import type { LoadAverage } from '../renderers/types.js';
import { tasksUnder } from './tasks.js';

export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
export const EXP = [1884, 2014, 2037] as const;
export const LOAD_FREQ_MS = 5000;
export const MAX_TASKS_PER_TICK = 50_000;
const MAX_TASKS_PER_CONTAINER = 20_000;

/** One step of the kernel's exponential decay: `load` and the result in fixed point, `active` a count. */
export function calcLoad(load: number, exp: number, active: number): number {
  const activeFixed = active * FIXED_1;
  let next = load * exp + activeFixed * (FIXED_1 - exp);
  if (activeFixed >= load) next += FIXED_1 - 1;
  return Math.floor(next / FIXED_1);
}

interface Tracked {
  dir: string;
  version: 1 | 2;
  fixed: [number, number, number];
  running: number;
  total: number;
  lastPid: number;
}

export interface SamplerOptions {
  intervalMs?: number;
  tasksPerTick?: number;
}

export class LoadavgSampler {
  private readonly tracked = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private readonly intervalMs: number;
  private readonly tasksPerTick: number;

  constructor(private readonly reader: CgroupReader, options: SamplerOptions = {}) {
    this.intervalMs = options.intervalMs ?? LOAD_FREQ_MS;
    this.tasksPerTick = options.tasksPerTick ?? MAX_TASKS_PER_TICK;
  }

  /** Containers being tracked (for tests and leak checks). */
  get size(): number {
    return this.tracked.size;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** The container whose cpu cgroup directory is `dir`: its averages, tracking it from now on. */
  view(dir: string, version: 1 | 2): LoadAverage {
    let entry = this.tracked.get(dir);
    if (!entry) {
      entry = { dir, version, fixed: [0, 0, 0], running: 0, total: 0, lastPid: 0 };
      this.sample(entry, Infinity);
      this.tracked.set(dir, entry);
      this.timer ??= setInterval(() => this.tick(), this.intervalMs);
    }
    return { fixed: [...entry.fixed], running: entry.running, total: entry.total, lastPid: entry.lastPid };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  tick(): void {
    let budget = this.tasksPerTick;
    const entries = [...this.tracked.values()];
    for (let i = 0; i < entries.length && budget > 0; i++) {
      const entry = entries[(this.cursor + i) % entries.length]!;
      if (!existsSync(entry.dir)) {
        this.tracked.delete(entry.dir);
        continue;
      }
      budget -= this.sample(entry, budget);
      entry.fixed = [calcLoad(entry.fixed[0], EXP[0], entry.running), calcLoad(entry.fixed[1], EXP[1], entry.running), calcLoad(entry.fixed[2], EXP[2], entry.running)];
      this.cursor = (this.cursor + i + 1) % Math.max(1, entries.length);
    }
    if (this.tracked.size === 0) this.stop();
  }

  /** Count the entry's R/D threads; returns the number of threads read. */
  private sample(entry: Tracked, budget: number): number {
    const tids = tasksUnder(entry.dir, entry.version, Math.min(budget, MAX_TASKS_PER_CONTAINER));
    let running = 0;
    let newest = 0;
    for (const tid of tids) {
      const stat = this.reader.readProcStat(tid);
      if (stat?.state === 'R' || stat?.state === 'D') running++;
      if (stat) newest = Math.max(newest, tid);
    }
    entry.running = running;
    entry.total = tids.length;
    // The newest thread, in the container's own pid numbering (LXCFS shows the host's).
    const nspid = newest ? this.reader.readProcStatus(newest)?.nspid : undefined;
    entry.lastPid = nspid?.[nspid.length - 1] ?? newest;
    return tids.length;
  }
}
