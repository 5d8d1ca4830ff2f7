// The per-CPU lines of /proc/stat over time (src/renderers/cpu-accounting.ts), on hand-built inputs: every
// counter only grows, a line's busy time never passes its host CPU's, its total follows its host CPU's
// total, and usage the lines cannot show yet is carried, not lost. Property-based where the rule is
// general (FUZZ_RUNS cases), exact where the arithmetic is simple enough to do by hand.

import t from 'tap';
import fc from 'fast-check';
import { accountCpus, CARRY_MAX_TICKS, type AccountingState, type ContainerUsage, type CpuLine, type HostCpuTimes } from '../src/renderers/cpu-accounting.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

const host = (entries: [number, number, number][]): Map<number, HostCpuTimes> => new Map(entries.map(([cpu, busy, total]) => [cpu, { busy, total }]));
const perCpu = (entries: [number, number, number][]): ContainerUsage => ({ kind: 'per-cpu', cpus: new Map(entries.map(([cpu, user, system]) => [cpu, { user, system }])) });
const whole = (user: number, system: number): ContainerUsage => ({ kind: 'whole', whole: { user, system } });
const floor = (l: CpuLine) => [l.cpu, Math.floor(l.user), Math.floor(l.system), Math.floor(l.idle)];

t.test('first sample: own usage up to the host CPU\'s busy time, the rest of its time idle', async (t) => {
  // cpu0: host busy 100 of 1000; the container used 60 user + 20 system there: all placed, idle 920.
  // cpu1: host busy 50 of 1000; the container used 80 there: 50 placed (user 50 x 70/80 = 43.75,
  // system 6.25), 30 carried to later samples; idle 950.
  const r = accountCpus({ host: host([[0, 100, 1000], [1, 50, 1000]]), visible: [0, 1], usage: perCpu([[0, 60, 20], [1, 70, 10]]), scale: 1, fold: false }, undefined);
  t.same(r.lines.map(floor), [[0, 60, 20, 920], [1, 43, 6, 950]]);
  t.same(r.state.lines.map((l) => l.carry), [0, 30], 'what did not fit is carried');
});

t.test('later samples add what happened since; carried usage is placed when there is room', async (t) => {
  const first = accountCpus({ host: host([[0, 50, 1000]]), visible: [0], usage: perCpu([[0, 80, 0]]), scale: 1, fold: false }, undefined);
  t.same(first.lines.map(floor), [[0, 50, 0, 950]], '50 of 80 placed, 30 carried');
  // +100 host ticks of which 60 busy; the container used 20 more: 20 + 30 carried = 50 <= 60 placed.
  const second = accountCpus({ host: host([[0, 110, 1100]]), visible: [0], usage: perCpu([[0, 100, 0]]), scale: 1, fold: false }, first.state);
  t.same(second.lines.map(floor), [[0, 100, 0, 1000]], 'user 50 + 50, idle 950 + (100 - 50)');
  t.equal(second.state.lines[0]!.carry, 0);
  t.equal(Math.floor(second.lines[0]!.user + second.lines[0]!.system + second.lines[0]!.idle), 1100, 'the line\'s total is the host CPU\'s total');
});

t.test('cgroup v2: the whole usage spread over the visible CPUs by the busy time they have', async (t) => {
  // 90 ticks (60 user, 30 system) over cpu0 (busy 100) and cpu1 (busy 50): room 150, share 0.6:
  // cpu0 60 (user 40, system 20), cpu1 30 (user 20, system 10).
  const r = accountCpus({ host: host([[0, 100, 1000], [1, 50, 1000]]), visible: [0, 1], usage: whole(60, 30), scale: 1, fold: false }, undefined);
  t.same(r.lines.map(floor), [[0, 40, 20, 940], [1, 20, 10, 970]]);
  // More than the CPUs were busy: each full, the rest carried (at most CARRY_MAX_TICKS per line).
  const over = accountCpus({ host: host([[0, 100, 1000]]), visible: [0], usage: whole(1000, 0), scale: 1, fold: false }, undefined);
  t.same(over.lines.map(floor), [[0, 100, 0, 900]]);
  t.equal(over.state.carry, CARRY_MAX_TICKS, 'carry bounded: an old cgroup\'s history does not pour into later samples');
});

t.test('--enable-cfs: a 0.5-CPU quota on one shown CPU reads 100 % busy when the quota is used', async (t) => {
  // cpuset {0,1}, quota 0.5: cpu0 shown, its clock at half speed (scale 0.5). The container runs on cpu1
  // (hidden): 50 ticks per 100 of wall time, folded into cpu0, whose (scaled) total grows by 50.
  const a = accountCpus({ host: host([[0, 0, 1000], [1, 500, 1000]]), visible: [0], usage: perCpu([[0, 0, 0], [1, 500, 0]]), scale: 0.5, fold: true }, undefined);
  t.same(a.lines.map(floor), [[0, 500, 0, 0]], 'everything the quota allowed, on the one shown CPU');
  const b = accountCpus({ host: host([[0, 0, 1100], [1, 600, 1100]]), visible: [0], usage: perCpu([[0, 0, 0], [1, 550, 0]]), scale: 0.5, fold: true }, a.state);
  const d = (i: number) => b.lines[0]![(['user', 'system', 'idle'] as const)[i]!] - a.lines[0]![(['user', 'system', 'idle'] as const)[i]!];
  t.same([d(0), d(1), d(2)], [50, 0, 0], 'one second later: +50 user of +50 total = 100 %');
  // Without folding (the old behaviour) cpu0's own busy time, 0, would have capped it: time lost.
  const lost = accountCpus({ host: host([[0, 0, 1100], [1, 600, 1100]]), visible: [0], usage: perCpu([[0, 0, 0], [1, 550, 0]]), scale: 0.5, fold: false }, a.state);
  t.equal(lost.lines[0]!.user, a.lines[0]!.user, 'capped by host busy, hidden usage cannot show');
});

t.test('a cpuset change is a CPU hotplug: lines keyed by CPU id, frozen while hidden, new ones from zero', async (t) => {
  const a = accountCpus({ host: host([[0, 300, 1000], [1, 10, 1000]]), visible: [0], usage: perCpu([[0, 250, 0], [1, 0, 0]]), scale: 1, fold: false }, undefined);
  t.same(a.lines.map(floor), [[0, 250, 0, 750]]);
  t.same(a.frozen, []);
  // {0} -> {1}: the container ran 40 ticks on cpu1 since (host cpu1 busy +50 of +100). cpu1 is shown for
  // the first time: it starts from zero with this interval only; cpu0's line is frozen, still counted.
  const b = accountCpus({ host: host([[0, 300, 1100], [1, 60, 1100]]), visible: [1], usage: perCpu([[0, 250, 0], [1, 40, 0]]), scale: 1, fold: false }, a.state);
  t.same(b.lines.map(floor), [[1, 40, 0, 60]], 'cpu1: 40 user, 60 idle: one interval');
  t.same(b.frozen.map(floor), [[0, 250, 0, 750]], 'cpu0 frozen as it was');
  // {1} -> {0,1}: cpu0 resumes its frozen counters (+100 idle this interval), cpu1 goes on.
  const c = accountCpus({ host: host([[0, 300, 1200], [1, 60, 1200]]), visible: [0, 1], usage: perCpu([[0, 250, 0], [1, 40, 0]]), scale: 1, fold: false }, b.state);
  t.same(c.lines.map(floor), [[0, 250, 0, 850], [1, 40, 0, 160]]);
  t.same(c.frozen, []);
  // {0,1} -> {1}: cpu0 frozen again.
  const d = accountCpus({ host: host([[0, 300, 1300], [1, 60, 1300]]), visible: [1], usage: perCpu([[0, 250, 0], [1, 40, 0]]), scale: 1, fold: false }, c.state);
  t.same(d.lines.map(floor), [[1, 40, 0, 260]]);
  t.same(d.frozen.map(floor), [[0, 250, 0, 850]]);
  // The aggregate (shown + frozen) grew by exactly the shown CPUs' time in each interval: 100, 200, 100.
  const aggregate = (r: { lines: CpuLine[]; frozen: CpuLine[] }) => [...r.lines, ...r.frozen].reduce((n, l) => n + l.user + l.system + l.idle, 0);
  t.same([aggregate(b) - aggregate(a), aggregate(c) - aggregate(b), aggregate(d) - aggregate(c)], [100, 200, 100], 'no jump of a whole CPU history in any interval');
});

t.test('a state written by the previous version (positional lines with their CPU ids) is read, not discarded', async (t) => {
  const input = { host: host([[0, 100, 1000]]), visible: [0], usage: perCpu([[0, 60, 20]]), scale: 1, fold: false };
  const v1 = { v: 1, kind: 'per-cpu', host: [[0, 90, 900]], usage: [[0, 50, 20]], lines: [{ cpu: 0, user: 50, system: 20, idle: 830, carry: 0 }], carry: 0 };
  // +100 total, +10 busy on the host; +10 user in the container: user 60, idle 830 + 90.
  t.same(accountCpus(input, v1).lines.map(floor), [[0, 60, 20, 920]]);
});

t.test('a usage counter that went backwards (the cgroup was recreated) counts from zero', async (t) => {
  const a = accountCpus({ host: host([[0, 100, 1000]]), visible: [0], usage: perCpu([[0, 90, 0]]), scale: 1, fold: false }, undefined);
  // +100 host ticks, all busy; the usage counter now reads 30 (was 90): 30 new ticks, not -60, not 0.
  const b = accountCpus({ host: host([[0, 200, 1100]]), visible: [0], usage: perCpu([[0, 30, 0]]), scale: 1, fold: false }, a.state);
  t.equal(b.lines[0]!.user - a.lines[0]!.user, 30);
});

t.test('--enable-cfs: usage on the shown CPU beyond its scaled clock is carried one interval at most', async (t) => {
  // A 0.1-CPU quota shown as cpu0 (scale 0.1): 10 line ticks per 100 host ticks. The container runs on
  // cpu0 itself, 12 ticks per interval (its precise usage a little ahead of the quota), then stops.
  let state: AccountingState | undefined;
  let last: CpuLine | undefined;
  const busy: number[] = [];
  let used = 0;
  for (let i = 1; i <= 33; i++) {
    if (i <= 30) used += 12;
    const r = accountCpus({ host: host([[0, 100 * i, 100 * i]]), visible: [0], usage: perCpu([[0, used, 0]]), scale: 0.1, fold: true }, state);
    if (last) busy.push(r.lines[0]!.user - last.user);
    last = r.lines[0];
    state = r.state;
  }
  t.same(busy.slice(-3).map(Math.round), [10, 0, 0], 'after the stop: one interval of the carry, then idle');
});

t.test('carried usage never shows a CPU busy for more than an interval after the container stopped', async (t) => {
  // --enable-cfs, a 0.1-CPU quota shown as one CPU (scale 0.1: 10 line ticks per 100 host ticks). The
  // container's precise usage runs ahead of that (12 ticks per interval) for 30 intervals, then stops.
  let state: AccountingState | undefined;
  let last: CpuLine | undefined;
  const busyPerInterval: number[] = [];
  let used = 0;
  for (let i = 1; i <= 33; i++) {
    if (i <= 30) used += 12;
    const r = accountCpus({ host: host([[0, 0, 100 * i], [1, 100 * i, 100 * i]]), visible: [0], usage: perCpu([[0, 0, 0], [1, used, 0]]), scale: 0.1, fold: true }, state);
    const line = r.lines[0]!;
    if (last) busyPerInterval.push(line.user + line.system - (last.user + last.system));
    last = line;
    state = r.state;
  }
  t.same(busyPerInterval.slice(-3).map(Math.round), [10, 0, 0], 'one interval of catch-up at most, then idle');
});

t.test('a state of another kind or a garbage state is not used', async (t) => {
  const input = { host: host([[0, 100, 1000]]), visible: [0], usage: perCpu([[0, 60, 20]]), scale: 1, fold: false };
  const first = accountCpus(input, undefined);
  for (const bad of [null, 7, 'x', { v: 2 }, { ...first.state, kind: 'whole' }, { ...first.state, lines: [{ cpu: 'x' }] }, { ...first.state, host: [[0, NaN, 1]] }]) {
    t.same(accountCpus(input, bad).lines, first.lines, `ignored: ${JSON.stringify(bad)}`);
  }
});

/** A random history of one container on a 4-CPU host: every counter only grows. */
const history = fc.array(
  fc.record({
    hostBusy: fc.array(fc.nat(100), { minLength: 4, maxLength: 4 }),
    hostIdle: fc.array(fc.nat(100), { minLength: 4, maxLength: 4 }),
    // the container's precise usage may run ahead of the host's tick-sampled busy time
    used: fc.array(fc.tuple(fc.nat(120), fc.nat(40)), { minLength: 4, maxLength: 4 }),
    cpuset: fc.subarray([0, 1, 2, 3], { minLength: 1 }),
    // the kernel's per-CPU idle and iowait can step back a little (NO_HZ accounting; proc(5) on iowait)
    glitch: fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
  }),
  { minLength: 2, maxLength: 30 },
);

t.test('property: no field of any line ever decreases; busy stays within the host CPU\'s (no cpuset change)', async (t) => {
  for (const kind of ['per-cpu', 'whole'] as const) {
    fc.assert(
      fc.property(history, fc.subarray([0, 1, 2, 3], { minLength: 1 }), (steps, cpuset) => {
        const hostBusy = [0, 0, 0, 0];
        const hostTotal = [0, 0, 0, 0];
        const used = [0, 0, 0, 0].map(() => ({ user: 0, system: 0 }));
        let state: AccountingState | undefined;
        let previous: CpuLine[] | undefined;
        for (const step of steps) {
          step.hostBusy.forEach((b, i) => {
            hostBusy[i]! += b;
            hostTotal[i]! += b + step.hostIdle[i]!;
          });
          step.used.forEach(([u, s], i) => {
            used[i]!.user += u;
            used[i]!.system += s;
          });
          const usage: ContainerUsage =
            kind === 'per-cpu' ? perCpu(used.map((u, i) => [i, u.user, u.system])) : whole(used.reduce((a, u) => a + u.user, 0), used.reduce((a, u) => a + u.system, 0));
          const r = accountCpus({ host: host(hostBusy.map((b, i) => [i, b, hostTotal[i]!])), visible: cpuset, usage, scale: 1, fold: false }, state);
          r.lines.forEach((l, i) => {
            const p = previous?.[i];
            for (const f of ['user', 'system', 'idle'] as const) if (p && l[f] < p[f] - 1e-9) throw new Error(`${kind} cpu${l.cpu} ${f} went ${p[f]} -> ${l[f]}`);
            const busy = l.user + l.system;
            if (busy > hostBusy[l.cpu]! + 1e-6) throw new Error(`${kind} cpu${l.cpu} busy ${busy} > host busy ${hostBusy[l.cpu]}`);
            if (Math.abs(busy + l.idle - hostTotal[l.cpu]!) > 1e-6) throw new Error(`${kind} cpu${l.cpu} total ${busy + l.idle} != host total ${hostTotal[l.cpu]}`);
          });
          state = r.state;
          previous = r.lines;
        }
      }),
      { numRuns: RUNS },
    );
    t.pass(`${kind}: ${RUNS} histories`);
  }
});

t.test('property: with cpuset changes, --enable-cfs and host idle stepping back, no line (by CPU id) and no aggregate ever decreases, and an interval adds at most the shown CPUs\' time', async (t) => {
  fc.assert(
    fc.property(history, fc.boolean(), fc.double({ min: 0.1, max: 4, noNaN: true }), (steps, cfs, quota) => {
      const hostBusy = [0, 0, 0, 0];
      const hostTotal = [0, 0, 0, 0];
      const used = [0, 0, 0, 0].map(() => ({ user: 0, system: 0 }));
      let state: AccountingState | undefined;
      let previous: Map<number, number[]> | undefined;
      let previousHost: number[] | undefined;
      for (const step of steps) {
        step.hostBusy.forEach((b, i) => {
          hostBusy[i]! += b;
          // (never below what the kernel could print: counters are unsigned)
          hostTotal[i]! = Math.max(hostBusy[i]!, hostTotal[i]! + b + step.hostIdle[i]! - step.glitch[i]!);
        });
        step.used.forEach(([u, s], i) => {
          used[i]!.user += u;
          used[i]!.system += s;
        });
        const shown = cfs ? step.cpuset.slice(0, Math.max(1, Math.ceil(quota))) : step.cpuset;
        const scale = cfs ? Math.min(1, quota / shown.length) : 1;
        const r = accountCpus(
          { host: host(hostBusy.map((b, i) => [i, b, hostTotal[i]!])), visible: shown, usage: perCpu(used.map((u, i) => [i, u.user, u.system])), scale, fold: cfs },
          state,
        );
        t.same(r.lines.map((l) => l.cpu), shown);
        const printed = new Map([...r.lines, ...r.frozen].map((l) => [l.cpu, [Math.floor(l.user), Math.floor(l.system), Math.floor(l.idle)]]));
        const sum = (lines: Map<number, number[]>) => [0, 1, 2].map((f) => [...lines.values()].reduce((a, l) => a + l[f]!, 0));
        if (previous && previousHost) {
          const [before, after] = [sum(previous), sum(printed)];
          if (after.some((v, f) => v < before[f]!)) throw new Error(`aggregate went ${before} -> ${after}`);
          for (const [cpu, l] of printed) {
            const p = previous.get(cpu);
            if (p && l.some((v, f) => v < p[f]!)) throw new Error(`cpu${cpu} went ${p} -> ${l}`);
          }
          // What the interval added: at most the shown CPUs' (scaled) host time, plus flooring.
          const grew = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
          const room = shown.reduce((a, cpu) => a + Math.max(0, hostTotal[cpu]! - previousHost![cpu]!) * scale, 0);
          if (grew > room + 3 * printed.size) throw new Error(`the aggregate grew ${grew} in an interval of ${room} ticks`);
        }
        state = r.state;
        previous = printed;
        previousHost = [...hostTotal];
      }
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} histories`);
});
