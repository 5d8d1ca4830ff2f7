// Per-container load averages (-l). Every LOAD_FREQ (5 s) the sampler counts the threads of each container
// being watched, R (runnable) and D (uninterruptible), and folds R+D into the 1/5/15-minute averages with
// the kernel's fixed-point arithmetic (src/kernel.ts: calcLoad). Every watched container is sampled exactly
// once per tick, so identical containers get identical averages.
//
// A tick's thread reads run on a worker thread when the daemon gives the sampler one
// (thread-count-worker.ts): the serving thread then only folds the counts. Without one (render, tests),
// or when the worker fails, a tick is cut into slices of at most SLICE_THREADS thread reads, each run
// from setImmediate, so reads of every other container are answered between slices. The longest time a
// tick held the serving thread at once is reported (status, bench).
//
// Cost when nothing reads: a container is watched from its first read of /proc/loadavg and stops being
// sampled IDLE_AFTER_MS after its last read; with nothing watched there is no timer at all. Its averages
// are kept (in the daemon's ContainerStates, dropped when its cgroup goes), and when it is read again the
// missed ticks are caught up from the CPU time its cgroup used meanwhile: CPU-bound load is what that
// estimate sees (threads waiting for a CPU or for I/O in the gap are not), and every later tick is exact.
//
// This state lives on the daemon side so that it survives a renderer reload.

import { existsSync } from 'node:fs';
import type { CgroupReader } from 'node-cgroups-parser';
import type { LoadAverage } from '../contract.js';
import { calcLoad, EXP_1, EXP_15, EXP_5, LOAD_FREQ_MS } from '../kernel.js';
import { ContainerStates } from './container-state.js';
import { countThreads, MAX_COUNTED_THREADS, SLICE_THREADS, SYNC_THREADS, threadsUnder, type ThreadRef } from './tasks.js';
import { lastPidOf, type ContainerCount, type CountJob } from './thread-count-worker.js';

// Bounds on thread reads (per slice of a tick, per container and tick, while a first reader waits) are
// tasks.ts's, shared with the thread census.
/** A container nobody has read /proc/loadavg of for this long is no longer sampled (its state is kept). */
export const IDLE_AFTER_MS = 120_000;
/** At most this many missed ticks are caught up (~2.8 h: by then every average has converged). */
const MAX_CATCH_UP_TICKS = 2000;
const NAME = 'loadavg';

interface Tracked {
  dir: string;
  version: 1 | 2;
  fixed: [number, number, number];
  running: number;
  total: number;
  lastPid: number;
  /** when the averages were last folded (ms, sampler clock) */
  sampledAt: number;
  /** the cgroup's CPU usage at the last read, ns (undefined when unknown), and when it was read */
  usageNs: number | undefined;
  usageAt: number;
  readAt: number;
}

export interface SamplerOptions {
  intervalMs?: number;
  idleAfterMs?: number;
  threadsPerSlice?: number;
  now?: () => number;
  /** run fn after ms (default: an unref'd setTimeout); returns a cancel function */
  schedule?: (fn: () => void, ms: number) => () => void;
  /** run fn soon, after pending I/O (default: setImmediate) */
  defer?: (fn: () => void) => void;
  /** where the averages are kept (the daemon's store); a private one by default */
  states?: ContainerStates;
  /** whether a cgroup directory still exists */
  exists?: (dir: string) => boolean;
  /**
   * counts whole containers off the serving thread (the daemon's ThreadCountWorker); without one, ticks
   * count in slices on this thread
   */
  counter?: ContainerCounter;
  /** told once when the counter fails; the sampler then counts in slices on this thread */
  onCounterError?: (err: Error) => void;
}

/** What the sampler needs of an off-thread counter (ThreadCountWorker; tests give fakes). */
export interface ContainerCounter {
  /** whether it can take a tick now (until then ticks count on this thread) */
  readonly ready: boolean;
  /** get ready for the next tick (a container is watched) */
  warm(): void;
  count(jobs: CountJob[]): Promise<ContainerCount[]>;
  close(): void;
}

interface TickWork {
  queue: Tracked[];
  current?: { entry: Tracked; threads: ThreadRef[]; index: number; running: number; active: number; newest: number };
  startedAt: number;
}

export class LoadavgSampler {
  private readonly watched = new Set<string>();
  private cancelTimer: (() => void) | undefined;
  private work: TickWork | undefined;
  private readonly intervalMs: number;
  private readonly idleAfterMs: number;
  private readonly threadsPerSlice: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;
  private readonly defer: (fn: () => void) => void;
  private readonly exists: (dir: string) => boolean;
  private counter: ContainerCounter | undefined;
  private readonly onCounterError: ((err: Error) => void) | undefined;
  readonly states: ContainerStates;
  /** the longest a slice of a tick held the event loop, ms (for status and the bench) */
  maxSliceMs = 0;
  /** ticks completed */
  ticks = 0;

  constructor(private readonly reader: CgroupReader, options: SamplerOptions = {}) {
    this.intervalMs = options.intervalMs ?? LOAD_FREQ_MS;
    this.idleAfterMs = options.idleAfterMs ?? IDLE_AFTER_MS;
    this.threadsPerSlice = options.threadsPerSlice ?? SLICE_THREADS;
    this.now = options.now ?? (() => performance.now());
    this.schedule =
      options.schedule ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref();
        return () => clearTimeout(timer);
      });
    this.defer = options.defer ?? ((fn) => void setImmediate(fn));
    this.exists = options.exists ?? existsSync;
    this.counter = options.counter;
    this.onCounterError = options.onCounterError;
    this.states = options.states ?? new ContainerStates({ now: this.now, exists: this.exists });
  }

  /** Containers being sampled now (read within IDLE_AFTER_MS). */
  get size(): number {
    return this.watched.size;
  }

  /** Whether a tick is scheduled or under way. */
  get running(): boolean {
    return this.cancelTimer !== undefined || this.work !== undefined;
  }

  /**
   * The averages of the container whose cpu cgroup directory is `dir`, watching it from now on.
   * `usageNs` is the cgroup's CPU usage (ns) now, used to catch up ticks missed while nobody read it.
   */
  view(dir: string, version: 1 | 2, usageNs?: number): LoadAverage {
    const now = this.now();
    let entry = this.states.get(dir, NAME) as Tracked | undefined;
    if (!entry) {
      entry = { dir, version, fixed: [0, 0, 0], running: 0, total: 0, lastPid: 0, sampledAt: now, usageNs, usageAt: now, readAt: now };
      this.states.set(dir, dir, NAME, entry);
      this.countNow(entry);
    } else if (!this.watched.has(dir)) {
      this.catchUp(entry, now, usageNs);
      this.countNow(entry);
    }
    entry.readAt = now;
    entry.usageNs = usageNs;
    entry.usageAt = now;
    if (!this.watched.has(dir)) {
      this.watched.add(dir);
      this.counter?.warm();
      if (!this.running) this.arm(this.intervalMs);
    }
    return { fixed: [...entry.fixed], running: entry.running, total: entry.total, lastPid: entry.lastPid };
  }

  /** Stop watching containers whose state the store has dropped (their cgroup is gone). */
  prune(): void {
    for (const dir of this.watched) if (this.states.get(dir, NAME) === undefined) this.watched.delete(dir);
    if (this.watched.size === 0) {
      // Nothing left to sample: a tick under way has nothing to fold either. No timer, no worker thread.
      this.cancelTimer?.();
      this.cancelTimer = undefined;
      this.work = undefined;
      this.counter?.close();
    }
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.work = undefined;
    this.watched.clear();
    this.counter?.close();
  }

  /** Start a tick now (tests; the timer calls it every intervalMs). Its slices run through `defer`. */
  tick(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.work) return; // the previous tick is still under way: it is this tick
    const startedAt = this.now();
    const queue: Tracked[] = [];
    for (const dir of this.watched) {
      const entry = this.states.get(dir, NAME) as Tracked | undefined;
      if (!entry) this.watched.delete(dir); // swept: its cgroup is gone
      else if (startedAt - entry.readAt > this.idleAfterMs) this.watched.delete(dir);
      else queue.push(entry);
    }
    const work: TickWork = { queue, startedAt };
    this.work = work;
    if (this.counter?.ready && queue.length > 0) this.countOffThread(work, this.counter);
    else this.slice();
  }

  /** The tick's counting on the counter's thread; this thread folds the results when they arrive. */
  private countOffThread(work: TickWork, counter: ContainerCounter): void {
    counter.count(work.queue.map((entry) => ({ dir: entry.dir, version: entry.version }))).then(
      (counts) => {
        if (this.work !== work) return; // stopped meanwhile
        const start = this.now();
        work.queue.forEach((entry, i) => {
          const c = counts[i];
          if (!c || this.states.get(entry.dir, NAME) !== entry) return; // swept meanwhile
          if (c.gone) {
            this.watched.delete(entry.dir);
            this.states.delete(entry.dir);
            return;
          }
          this.fold(entry, c.active, start);
          record(entry, c.running, c.total, c.lastPid);
        });
        work.queue = [];
        this.maxSliceMs = Math.max(this.maxSliceMs, this.now() - start);
        this.finish(work);
      },
      (err: Error) => {
        if (this.work !== work) return;
        // Count this tick and every later one here: the averages keep moving whatever broke.
        if (this.counter === counter) {
          this.counter = undefined;
          counter.close();
          this.onCounterError?.(err);
        }
        this.slice();
      },
    );
  }

  private arm(delayMs: number): void {
    this.cancelTimer = this.schedule(() => this.tick(), Math.max(0, delayMs));
  }

  /**
   * One slice of the current tick: at most threadsPerSlice thread reads, then yield to other work. A slice
   * that throws (out of descriptors) ends the tick where it is, so the next one tries again: nothing waits
   * for this work, and a throw from setImmediate would end the daemon.
   */
  private slice(): void {
    const work = this.work;
    if (!work) return;
    try {
      this.sliceOf(work);
    } catch {
      this.finish(work);
    }
  }

  private sliceOf(work: TickWork): void {
    const start = this.now();
    let budget = this.threadsPerSlice;
    while (budget > 0) {
      if (!work.current) {
        const entry = work.queue.shift();
        if (!entry) break;
        if (!(this.states.get(entry.dir, NAME) === entry)) continue; // swept meanwhile
        const threads = threadsUnder(entry.dir, entry.version, MAX_COUNTED_THREADS, this.reader.procRoot);
        if (threads.length === 0 && !this.exists(entry.dir)) {
          this.watched.delete(entry.dir);
          this.states.delete(entry.dir);
          continue;
        }
        work.current = { entry, threads, index: 0, running: 0, active: 0, newest: 0 };
      }
      const c = work.current;
      const end = Math.min(c.threads.length, c.index + budget);
      budget -= end - c.index;
      this.count(c, c.threads.slice(c.index, end));
      c.index = end;
      if (c.index >= c.threads.length) {
        this.fold(c.entry, c.active, this.now());
        record(c.entry, c.running, c.threads.length, lastPidOf(this.reader, c.newest));
        work.current = undefined;
      }
    }
    this.maxSliceMs = Math.max(this.maxSliceMs, this.now() - start);
    if (work.current || work.queue.length > 0) {
      this.defer(() => this.slice());
      return;
    }
    this.finish(work);
  }

  /** The tick is done: arm the next one, or with nothing left to watch, end the counter's thread too. */
  private finish(work: TickWork): void {
    this.work = undefined;
    this.ticks++;
    if (this.watched.size > 0) this.arm(work.startedAt + this.intervalMs - this.now());
    else this.counter?.close();
  }

  private count(c: NonNullable<TickWork['current']>, threads: readonly ThreadRef[]): void {
    const counts = countThreads(threads);
    c.running += counts.running;
    c.active += counts.running + counts.blocked;
    if (counts.newest > c.newest) c.newest = counts.newest;
  }

  /**
   * Count the entry's threads now without folding (a first read, or a read after a gap), while its
   * reader waits: at most SYNC_THREADS of them (the next tick counts them all, in slices).
   */
  private countNow(entry: Tracked): void {
    const threads = threadsUnder(entry.dir, entry.version, MAX_COUNTED_THREADS, this.reader.procRoot);
    const c = { entry, threads, index: 0, running: 0, active: 0, newest: 0 };
    this.count(c, threads.slice(0, SYNC_THREADS));
    record(entry, c.running, threads.length, lastPidOf(this.reader, c.newest));
  }


  /** One LOAD_FREQ step of the averages with `active` (R + D) tasks (kernel/sched/loadavg.c). */
  private fold(entry: Tracked, active: number, now: number): void {
    entry.fixed = [calcLoad(entry.fixed[0], EXP_1, active), calcLoad(entry.fixed[1], EXP_5, active), calcLoad(entry.fixed[2], EXP_15, active)];
    entry.sampledAt = now;
  }

  /** Fold the ticks missed since the entry was last sampled, with the CPU-time estimate of its activity. */
  private catchUp(entry: Tracked, now: number, usageNs: number | undefined): void {
    const missed = Math.min(MAX_CATCH_UP_TICKS, Math.floor((now - entry.sampledAt) / this.intervalMs));
    if (missed <= 0) return;
    const used = usageNs !== undefined && entry.usageNs !== undefined ? usageNs - entry.usageNs : undefined;
    const span = now - entry.usageAt;
    // CPU-seconds per second over the gap = how many threads were running on average.
    const active = used !== undefined && used >= 0 && span > 0 ? used / 1e6 / span : 0;
    for (let i = 0; i < missed; i++) {
      entry.fixed = [calcLoad(entry.fixed[0], EXP_1, active), calcLoad(entry.fixed[1], EXP_5, active), calcLoad(entry.fixed[2], EXP_15, active)];
    }
    entry.sampledAt += missed * this.intervalMs;
  }
}

/** What a count says of a container now; lastPid is its newest thread in its own pid numbering (LXCFS shows the host's). */
function record(entry: Tracked, running: number, total: number, lastPid: number): void {
  entry.running = running;
  entry.total = total;
  entry.lastPid = lastPid;
}
