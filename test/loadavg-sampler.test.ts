// The loadavg sampler (src/context/loadavg-sampler.ts) with an injected clock, scheduler and defer, on a
// scratch tree of cgroups and /proc/<tid>/stat files: every watched container is sampled exactly once per
// tick, identical containers get identical averages on the kernel's curve, a tick is cut into bounded
// slices, a container nobody reads stops costing anything, and the ticks it missed are caught up from its
// CPU time when it is read again.

import t, { type Test } from 'tap';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { LoadavgSampler, type ContainerCounter } from '../src/context/loadavg-sampler.js';
import { ThreadCountWorker } from '../src/context/thread-count-worker.js';
import { calcLoad, EXP_1, EXP_15, EXP_5 } from '../src/kernel.js';

interface Harness {
  sampler: LoadavgSampler;
  /** containers: cgroup dir -> thread ids */
  dirs: string[];
  setState: (tid: number, state: string) => void;
  advance: (ms: number) => void;
  /** run every pending timer and deferred slice whose time has come, in order */
  runDue: () => void;
  armed: () => number;
  slices: () => number;
  root: string;
}

/** `containers` containers of `threads` threads each (tids from 1000), all in state `state`. */
function harness(
  t: Test,
  containers: number,
  threads: number,
  state = 'R',
  opts: { threadsPerSlice?: number; idleAfterMs?: number; counter?: (root: string) => ContainerCounter; onCounterError?: (err: Error) => void } = {},
): Harness {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-loadavg-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  // Each thread is a process of its own here (cgroup.procs lists it; /proc/<pid>/task/<pid>/stat).
  const setState = (tid: number, s: string) => {
    mkdirSync(join(root, 'proc', String(tid), 'task', String(tid)), { recursive: true });
    writeFileSync(join(root, 'proc', String(tid), 'task', String(tid), 'stat'), `${tid} (busy) ${s} 1 ${'0 '.repeat(17)}100 0\n`);
  };
  const dirs: string[] = [];
  let tid = 1000;
  for (let c = 0; c < containers; c++) {
    const dir = join(root, 'cg', `c${c}`);
    mkdirSync(dir, { recursive: true });
    const tids = Array.from({ length: threads }, () => tid++);
    writeFileSync(join(dir, 'cgroup.procs'), tids.map((x) => `${x}\n`).join(''));
    for (const x of tids) setState(x, state);
    dirs.push(dir);
  }
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  const deferred: (() => void)[] = [];
  let slices = 0;
  const sampler = new LoadavgSampler(new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root, mountinfo: '' }), {
    intervalMs: 5000,
    now: () => now,
    schedule: (fn, ms) => {
      const timer = { at: now + ms, fn };
      timers.push(timer);
      return () => void timers.splice(timers.indexOf(timer) >>> 0, timers.includes(timer) ? 1 : 0);
    },
    defer: (fn) => void deferred.push(() => (slices++, fn())),
    ...(opts.threadsPerSlice !== undefined ? { threadsPerSlice: opts.threadsPerSlice } : {}),
    ...(opts.idleAfterMs !== undefined ? { idleAfterMs: opts.idleAfterMs } : {}),
    ...(opts.counter ? { counter: opts.counter(root) } : {}),
    ...(opts.onCounterError ? { onCounterError: opts.onCounterError } : {}),
  });
  const runDue = () => {
    for (;;) {
      const next = deferred.shift();
      if (next) {
        next();
        continue;
      }
      const due = timers.filter((x) => x.at <= now).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      timers.splice(timers.indexOf(due), 1);
      due.fn();
    }
  };
  return { sampler, dirs, setState, advance: (ms) => (now += ms), runDue, armed: () => timers.length, slices: () => slices, root };
}

/** The kernel's averages after `ticks` steps with `active` tasks, from 0. */
function kernelCurve(ticks: number, active: number): [number, number, number] {
  let load: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < ticks; i++) load = [calcLoad(load[0], EXP_1, active), calcLoad(load[1], EXP_5, active), calcLoad(load[2], EXP_15, active)];
  return load;
}

t.test('10 identical containers: every one sampled once per tick, all on the kernel\'s curve', async (t) => {
  const h = harness(t, 10, 1, 'R', { threadsPerSlice: 3 });
  for (const dir of h.dirs) t.same(h.sampler.view(dir, 2).fixed, [0, 0, 0], 'a new container starts at 0');
  t.equal(h.armed(), 1, 'one timer for all of them');
  for (let tick = 1; tick <= 12; tick++) {
    h.advance(5000);
    h.runDue();
    const loads = h.dirs.map((dir) => h.sampler.view(dir, 2).fixed);
    t.same(loads, h.dirs.map(() => kernelCurve(tick, 1)), `tick ${tick}: all 10 equal to the kernel's ${kernelCurve(tick, 1)}`);
  }
  t.equal(h.sampler.ticks, 12, 'one completed tick per 5 s');
  // One minute of one runnable thread: 1 - (1884/2048)^12 = 0.63 (the 0.63, within rounding).
  t.equal(kernelCurve(12, 1)[0], 1299);
  t.ok(h.slices() >= 12 * 3, `each tick was cut into slices of at most 3 thread reads (${h.slices()} slices)`);
});

t.test('running counts R, the average counts R and D; the newest thread is lastPid', async (t) => {
  const h = harness(t, 1, 4, 'S');
  h.setState(1000, 'R');
  h.setState(1001, 'D');
  h.setState(1002, 'D');
  const first = h.sampler.view(h.dirs[0]!, 2);
  t.same([first.running, first.total, first.lastPid], [1, 4, 1003], '1 running of 4 threads, newest 1003 (no pid namespace here)');
  h.advance(5000);
  h.runDue();
  t.same(h.sampler.view(h.dirs[0]!, 2).fixed, kernelCurve(1, 3), 'the average folded 3 active tasks (R + 2 D)');
});

t.test('a container nobody reads stops being sampled; the ticks it missed are caught up from its CPU time', async (t) => {
  const h = harness(t, 2, 1, 'R', { idleAfterMs: 60_000 });
  const [busy, quiet] = h.dirs as [string, string];
  h.setState(1001, 'S'); // quiet's one thread sleeps
  h.sampler.view(busy, 2, 0);
  h.sampler.view(quiet, 2, 0);
  // Both read every tick for a minute.
  for (let i = 0; i < 12; i++) {
    h.advance(5000);
    h.runDue();
    h.sampler.view(busy, 2, (i + 1) * 5e9);
    h.sampler.view(quiet, 2, 0);
  }
  t.same(h.sampler.view(busy, 2, 60e9).fixed, kernelCurve(12, 1));
  // Nobody reads for 5 minutes: after IDLE_AFTER (60 s) no tick samples them, and no timer is left.
  for (let i = 0; i < 60; i++) {
    h.advance(5000);
    h.runDue();
  }
  t.equal(h.sampler.size, 0, 'nothing watched');
  t.equal(h.armed(), 0, 'no timer: an idle daemon does nothing');
  // busy kept one CPU busy the whole time (its cgroup used 5 more minutes of CPU): read again, its
  // averages have followed one active task for the ticks nobody sampled.
  const back = h.sampler.view(busy, 2, 360e9);
  const caughtUp = kernelCurve(72, 1);
  t.ok(back.fixed.every((v, i) => Math.abs(v - caughtUp[i]!) <= 24), `busy: ${back.fixed} ~ the kernel's ${caughtUp} after 72 ticks of 1 task`);
  // quiet used no CPU: its averages decayed as the kernel's would with nothing running.
  t.ok(h.sampler.view(quiet, 2, 0).fixed.every((v) => v === 0), 'quiet stays 0');
  t.equal(h.armed(), 1, 'read again: watched again');
});

t.test('a removed cgroup is forgotten at the next tick', async (t) => {
  const h = harness(t, 2, 1, 'R');
  h.sampler.view(h.dirs[0]!, 2);
  h.sampler.view(h.dirs[1]!, 2);
  rmSync(h.dirs[0]!, { recursive: true });
  h.advance(5000);
  h.runDue();
  t.equal(h.sampler.size, 1);
  t.equal(h.sampler.states.size, 1, 'its averages are dropped, not only its timer slot');
});

/** Until the sampler has completed `ticks` ticks (an off-thread count answers asynchronously). */
async function untilTicks(h: Harness, ticks: number): Promise<void> {
  // hang guard only: the worker answers in milliseconds
  for (let i = 0; i < 2000 && h.sampler.ticks < ticks; i++) {
    h.runDue();
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('with a worker thread counting: the same averages, no slice on this thread, the worker ends with the last container', async (t) => {
  let worker: ThreadCountWorker | undefined;
  const h = harness(t, 3, 2, 'R', {
    threadsPerSlice: 1,
    counter: (root) => (worker = new ThreadCountWorker({ procRoot: join(root, 'proc'), fsRoot: root })),
  });
  t.teardown(() => h.sampler.stop());
  h.setState(1001, 'D');
  h.setState(1002, 'S');
  for (const dir of h.dirs) h.sampler.view(dir, 2);
  t.ok(worker?.alive, 'watching a container starts the worker at once, ahead of the first tick');
  // hang guard only: the worker loads in milliseconds here
  for (let i = 0; i < 2000 && !worker?.ready; i++) await new Promise((r) => setTimeout(r, 5));
  t.ok(worker?.ready, 'and it says when it has loaded');
  for (let tick = 1; tick <= 3; tick++) {
    h.advance(5000);
    await untilTicks(h, tick);
    t.equal(h.sampler.ticks, tick, `tick ${tick} completed`);
  }
  t.equal(h.slices(), 0, 'no tick was cut into slices on this thread: the worker counted');
  t.ok(worker?.alive, 'the worker runs while containers are watched');
  const views = h.dirs.map((dir) => h.sampler.view(dir, 2));
  t.same(views[0]!.fixed, kernelCurve(3, 2), 'c0: R + D = 2 active');
  t.same([views[0]!.running, views[0]!.total, views[0]!.lastPid], [1, 2, 1001], 'c0: 1 running of 2, newest 1001');
  t.same(views[1]!.fixed, kernelCurve(3, 1), 'c1: one R, one S');
  t.same(views[2]!.fixed, kernelCurve(3, 2), 'c2: two R');

  for (const dir of h.dirs) rmSync(dir, { recursive: true });
  h.advance(5000);
  await untilTicks(h, 4);
  t.equal(h.sampler.size, 0, 'removed cgroups are forgotten at the next tick');
  t.equal(h.sampler.states.size, 0, 'with their averages');
  t.equal(h.armed(), 0, 'no timer is left');
  t.notOk(worker?.alive, 'and no thread: the worker ended with the last container');
});

t.test('a counter that fails: told once, that tick and the later ones counted in slices here, averages unchanged', async (t) => {
  const errors: Error[] = [];
  let calls = 0;
  let closed = 0;
  const failing: ContainerCounter = {
    ready: true,
    warm: () => {},
    count: () => (calls++, Promise.reject(new Error('worker died'))),
    close: () => void closed++,
  };
  const h = harness(t, 2, 1, 'R', { threadsPerSlice: 1, counter: () => failing, onCounterError: (err) => errors.push(err) });
  t.teardown(() => h.sampler.stop());
  for (const dir of h.dirs) h.sampler.view(dir, 2);
  for (let tick = 1; tick <= 3; tick++) {
    h.advance(5000);
    await untilTicks(h, tick);
  }
  t.equal(h.sampler.ticks, 3);
  t.equal(calls, 1, 'the failed counter is not asked again');
  t.equal(errors.length, 1, 'the failure is reported once');
  t.match(errors[0]?.message, /worker died/);
  t.ok(closed >= 1, 'and the failed counter is closed');
  t.ok(h.slices() >= 3, 'the ticks were counted in slices on this thread');
  for (const dir of h.dirs) t.same(h.sampler.view(dir, 2).fixed, kernelCurve(3, 1), 'the averages did not miss a tick');
});

t.test('a counter not ready yet (still loading): the tick is counted here, on time; the next one there', async (t) => {
  let ready = false;
  let warmed = 0;
  const asked: string[][] = [];
  const counter: ContainerCounter = {
    get ready() {
      return ready;
    },
    warm: () => void warmed++,
    count: (jobs) => (asked.push(jobs.map((j) => j.dir)), Promise.resolve(jobs.map(() => ({ gone: false as const, running: 1, active: 1, total: 1, lastPid: 7 })))),
    close: () => {},
  };
  const h = harness(t, 2, 1, 'R', { threadsPerSlice: 1, counter: () => counter });
  t.teardown(() => h.sampler.stop());
  for (const dir of h.dirs) h.sampler.view(dir, 2);
  t.equal(warmed, 2, 'each newly watched container warms the counter');
  h.advance(5000);
  h.runDue();
  t.equal(h.sampler.ticks, 1, 'the first tick completed without the counter');
  t.same(asked, [], 'which was not asked');
  t.ok(h.slices() >= 1, 'it was counted in slices here');
  ready = true;
  h.advance(5000);
  await untilTicks(h, 2);
  t.same(asked, [h.dirs], 'the next tick asked the counter, once, for every container');
  for (const dir of h.dirs) {
    const v = h.sampler.view(dir, 2);
    t.same([v.fixed, v.lastPid], [kernelCurve(2, 1), 7], 'both ticks folded, the second from the counter\'s figures');
  }
});

t.test('the last container gone while the counter counts: prune ends the tick and the counter, with no error', async (t) => {
  const errors: Error[] = [];
  let closed = 0;
  let rejectPending: ((err: Error) => void) | undefined;
  const counter: ContainerCounter = {
    ready: true,
    warm: () => {},
    count: () => new Promise((_, reject) => (rejectPending = reject)),
    close: () => {
      closed++;
      rejectPending?.(new Error('the thread-count worker was closed')); // as ThreadCountWorker does
    },
  };
  const h = harness(t, 1, 1, 'R', { counter: () => counter, onCounterError: (err) => errors.push(err) });
  h.sampler.view(h.dirs[0]!, 2);
  h.advance(5000);
  h.runDue();
  t.ok(h.sampler.running, 'a tick is under way, waiting for the counter');
  rmSync(h.dirs[0]!, { recursive: true });
  h.sampler.states.sweep();
  h.sampler.prune();
  await new Promise((r) => setImmediate(r)); // the rejection's handler runs
  t.equal(closed, 1, 'the counter is closed (its thread ends)');
  t.notOk(h.sampler.running, 'no tick under way, no timer');
  t.equal(h.armed(), 0);
  t.same(errors, [], 'and no counter failure is reported: nothing failed');
});

t.test('out of descriptors in a tick\'s slice: the tick ends there, nothing throws or folds, the next tick counts', async (t) => {
  const h = harness(t, 2, 1, 'R', { threadsPerSlice: 1 });
  for (const dir of h.dirs) h.sampler.view(dir, 2);
  h.advance(5000);
  h.runDue(); // one good tick: both at the kernel's curve after 1 step
  h.advance(5000);
  const held: number[] = [];
  t.teardown(() => held.forEach((fd) => closeSync(fd)));
  try {
    for (;;) held.push(openSync('/dev/null', 'r')); // until EMFILE
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'EMFILE', 'this process\'s descriptors are used up');
  }
  t.doesNotThrow(() => h.runDue(), 'the failing slice does not throw out of setImmediate (which would end the daemon)');
  for (const fd of held.splice(0)) closeSync(fd);
  t.equal(h.armed(), 1, 'the next tick is armed');
  h.advance(5000);
  h.runDue();
  // Had the failed tick counted nothing as "no thread active", a 0 would have been folded in between.
  t.same(h.dirs.map((dir) => h.sampler.view(dir, 2).fixed), [kernelCurve(2, 1), kernelCurve(2, 1)], 'two steps of 1 active task: the failed tick folded nothing');
});
