// The per-CPU lines of a container's /proc/stat, kept true over time (pure: inputs and the previous state
// in, lines and the next state out).
//
// Tools such as top, vmstat, mpstat and psutil show *differences* between two samples of /proc/stat, so
// every counter must grow by what the container did in between and never decrease. Computing each sample
// from scratch (LXCFS proc_stat_read: user/system from cpuacct, idle = host idle + host busy - container
// busy) fails that: the container's precise usage runs ahead of the host's tick-sampled busy time, so idle
// goes backwards; a cpuset change maps a line to another host CPU and its user time drops; on cgroup v2
// there is no per-CPU usage at all. So the first sample is computed from scratch, and every later one adds
// what happened since the previous one (the state), in USER_HZ ticks:
//
//   For each visible CPU c (its line is keyed by c, the id it is printed with):
//     Δtotal_c  = Δ(host c's user+nice+system+idle+iowait+irq+softirq+steal) × scale
//     cap_i     = Δ(host c's busy: user+nice+system+irq+softirq+steal)    (never more than c was busy)
//                 with --enable-cfs: Δtotal_i                               (folded usage came from other CPUs)
//     own_i     = the container's Δusage on c (cgroup v1 cpuacct.usage_all) + what did not fit before
//   placed_c = min(own_c, cap_c); the rest is carried to the next sample, at most CARRY_MAX_TICKS: usage
//   that ran ahead of the host's tick-sampled busy time is placed once the ticks catch up. With
//   --enable-cfs also at most one interval's worth of the line (Δtotal_c): there the carry is usage beyond
//   the scaled clock, which never catches up, and must not show a busy CPU for more than an interval after
//   the container stopped.
//   Usage with no line of its own (v1: on CPUs outside the visible set, e.g. beyond ceil(quota) or left
//   from before a cpuset change; v2: all of it, since cpu.stat has no per-CPU split) is spread over the
//   lines in proportion to the capacity they have left, the rest carried likewise.
//   busy_i += placed; split into user and system as the container's own usage splits them.
//   idle_i += Δtotal_i - placed  (so a line's total follows its host CPU's total, scaled).
//
// scale is 1, or with --enable-cfs quota / visible CPUs (a 0.5-CPU quota shown as one CPU runs that CPU's
// clock at half speed, so a container using its whole quota reads ~100 % busy, as LXCFS's cpuview does).
// A cpuset change is a CPU hotplug as the container sees it, and is treated as the kernel treats hotplug
// (fs/proc/stat.c: cpuN lines for online CPUs, the "cpu" line summed over possible CPUs): a CPU that leaves
// the visible set keeps its line's counters, frozen, counted in the aggregate but not printed; a CPU that
// comes back resumes its frozen counters; a CPU shown for the first time after the first sample starts
// from zero, as a newly onlined CPU does. So no line and no aggregate ever decreases, a line is never
// busier than its host CPU over any interval, and a change of the visible set adds to the aggregate only
// what happened in that interval (no one-frame jump of a whole CPU's history in top's summary line).

export interface HostCpuTimes {
  /** user+nice+system+irq+softirq+steal, ticks (guest time is already inside user and nice) */
  busy: number;
  /** busy + idle + iowait, ticks */
  total: number;
}

/** A container's CPU usage, ticks (fractional). */
export interface Usage {
  user: number;
  system: number;
}

export type ContainerUsage =
  | { kind: 'per-cpu'; cpus: ReadonlyMap<number, Usage> }
  | { kind: 'whole'; whole: Usage };

export interface CpuLine {
  /** host CPU id */
  cpu: number;
  user: number;
  system: number;
  idle: number;
}

export interface AccountingInput {
  host: ReadonlyMap<number, HostCpuTimes>;
  /** host CPU ids shown, in order */
  visible: readonly number[];
  usage: ContainerUsage;
  /** line clock per host clock: 1, or quota / visible CPUs with --enable-cfs */
  scale: number;
  /** --enable-cfs: a line may be busy up to its whole (scaled) total, not only as much as its host CPU */
  fold: boolean;
}

export interface AccountingState {
  v: 2;
  kind: ContainerUsage['kind'];
  /** host CPU id -> [busy, total] at the previous sample */
  host: [number, number, number][];
  /** the container's usage at the previous sample: per host CPU [cpu, user, system], or the whole one */
  usage: [number, number, number][];
  /** every line shown so far, keyed by host CPU id: the visible ones and the frozen ones */
  lines: { cpu: number; user: number; system: number; idle: number; carry: number }[];
  /** usage not placed on any line yet, ticks */
  carry: number;
}

/** At most this much usage (ticks, per line) waits for capacity: bounded catch-up, never runaway. */
export const CARRY_MAX_TICKS = 100;

const sum = (u: Usage) => u.user + u.system;

export interface Accounted {
  /** the visible CPUs' lines, in `visible` order */
  lines: CpuLine[];
  /** lines of CPUs shown before and not now, frozen: part of the aggregate, not printed */
  frozen: CpuLine[];
  state: AccountingState;
}

/** The lines for this sample and the state for the next one. */
export function accountCpus(input: AccountingInput, previous: unknown): Accounted {
  const prev = validState(previous, input.usage.kind);
  const state: AccountingState = {
    v: 2,
    kind: input.usage.kind,
    host: [...input.host].map(([cpu, h]) => [cpu, h.busy, h.total]),
    usage: input.usage.kind === 'per-cpu' ? [...input.usage.cpus].map(([cpu, u]) => [cpu, u.user, u.system]) : [[-1, input.usage.whole.user, input.usage.whole.system]],
    lines: [],
    carry: 0,
  };

  // What happened since the previous sample (everything since boot without one).
  const prevHost = new Map(prev?.host.map(([cpu, busy, total]) => [cpu, { busy, total }]));
  const prevUsage = new Map(prev?.usage.map(([cpu, user, system]) => [cpu, { user, system }]));
  const hostDelta = (cpu: number): HostCpuTimes => {
    const now = input.host.get(cpu) ?? { busy: 0, total: 0 };
    const before = prev ? prevHost.get(cpu) : { busy: 0, total: 0 };
    if (!before) return { busy: 0, total: 0 }; // a CPU that just appeared: nothing measurable yet
    return { busy: Math.max(0, now.busy - before.busy), total: Math.max(0, now.total - before.total) };
  };
  const usageDelta = (cpu: number, now: Usage): Usage => {
    const before = prev ? prevUsage.get(cpu) : { user: 0, system: 0 };
    if (!before) return { user: 0, system: 0 };
    // A counter that went backwards was reset (the cgroup was recreated): count from zero.
    return { user: now.user >= before.user ? now.user - before.user : now.user, system: now.system >= before.system ? now.system - before.system : now.system };
  };

  const visible = input.visible;
  const previousLines = new Map((prev?.lines ?? []).map((l) => [l.cpu, l]));

  // The container's usage since the previous sample: on each visible CPU, and with no line of its own.
  const zero: Usage = { user: 0, system: 0 };
  const unplaced: Usage = { user: 0, system: 0 };
  let own: Usage[];
  if (input.usage.kind === 'per-cpu') {
    const cpus = input.usage.cpus;
    const shown = new Set(visible);
    for (const [cpu, now] of cpus) {
      if (shown.has(cpu)) continue;
      const d = usageDelta(cpu, now);
      unplaced.user += d.user;
      unplaced.system += d.system;
    }
    own = visible.map((cpu) => {
      const now = cpus.get(cpu);
      return now === undefined ? zero : usageDelta(cpu, now);
    });
  } else {
    const d = usageDelta(-1, input.usage.whole);
    unplaced.user += d.user;
    unplaced.system += d.system;
    own = visible.map(() => zero);
  }

  const lines = visible.map((cpu, i) => {
    const before = previousLines.get(cpu);
    // The first sample starts each line from its host CPU's whole history; later, a line shown again or
    // for the first time (zero counters, a newly onlined CPU) grows by what happened since the last sample.
    const h = prev ? hostDelta(cpu) : (input.host.get(cpu) ?? { busy: 0, total: 0 });
    const total = Math.max(0, h.total * input.scale);
    const cap = Math.max(0, input.fold ? total : Math.min(h.busy, total));
    const carry = before?.carry ?? 0;
    const want = sum(own[i]!) + carry;
    const placed = Math.min(want, cap);
    return {
      cpu,
      base: before ? { user: before.user, system: before.system, idle: before.idle } : { user: 0, system: 0, idle: 0 },
      total,
      cap,
      own: own[i]!,
      placed,
      extra: 0,
      carry: Math.min(CARRY_MAX_TICKS, input.fold ? total : Infinity, want - placed),
    };
  });

  // Spread what has no line of its own over the capacity the lines have left.
  let pool = sum(unplaced) + (prev?.carry ?? 0);
  const room = lines.map((l) => Math.max(0, l.cap - l.placed));
  const roomTotal = room.reduce((a, b) => a + b, 0);
  if (pool > 0 && roomTotal > 0) {
    const share = Math.min(1, pool / roomTotal);
    lines.forEach((l, i) => (l.extra = room[i]! * share));
    pool -= Math.min(pool, roomTotal);
  }
  state.carry = Math.min(CARRY_MAX_TICKS * Math.max(1, lines.length), input.fold ? lines.reduce((a, l) => a + l.total, 0) : Infinity, pool);

  // user/system of placed usage: the line's own split, the rest as the container's usage splits overall.
  const overall = { user: unplaced.user + own.reduce((a, u) => a + u.user, 0), system: unplaced.system + own.reduce((a, u) => a + u.system, 0) };
  const userShare = (u: Usage) => (sum(u) > 0 ? u.user / sum(u) : sum(overall) > 0 ? overall.user / sum(overall) : 1);
  const out: CpuLine[] = lines.map((l) => {
    const busy = l.placed + l.extra;
    const user = l.placed * userShare(l.own) + l.extra * userShare(overall);
    return { cpu: l.cpu, user: l.base.user + user, system: l.base.system + (busy - user), idle: l.base.idle + Math.max(0, l.total - busy) };
  });

  // Lines of CPUs no longer shown stay as they were (their carry is dropped: nothing can place it).
  const shown = new Set(visible);
  const frozen: CpuLine[] = [...previousLines.values()].filter((l) => !shown.has(l.cpu)).map(({ cpu, user, system, idle }) => ({ cpu, user, system, idle }));
  state.lines = [...out.map((l, i) => ({ ...l, carry: lines[i]!.carry })), ...frozen.map((l) => ({ ...l, carry: 0 }))];
  return { lines: out, frozen, state };
}

/** The previous state if it is one this code wrote for the same kind of usage, else undefined. */
function validState(previous: unknown, kind: ContainerUsage['kind']): AccountingState | undefined {
  if (typeof previous !== 'object' || previous === null) return undefined;
  const s = previous as Partial<AccountingState>;
  // Version 1 (positional lines) carried the host CPU id in each line too: read it as version 2, so a
  // reload from it keeps every counter.
  if (((s.v as number) !== 1 && s.v !== 2) || s.kind !== kind || !Array.isArray(s.host) || !Array.isArray(s.usage) || !Array.isArray(s.lines) || typeof s.carry !== 'number') return undefined;
  const finite = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= -1;
  if (!s.host.every((e) => Array.isArray(e) && e.length === 3 && e.every(finite))) return undefined;
  if (!s.usage.every((e) => Array.isArray(e) && e.length === 3 && e.every(finite))) return undefined;
  if (!s.lines.every((l) => l && [l.cpu, l.user, l.system, l.idle, l.carry].every(finite))) return undefined;
  if (new Set(s.lines.map((l) => l.cpu)).size !== s.lines.length) return undefined;
  return { ...(s as AccountingState), v: 2 };
}
