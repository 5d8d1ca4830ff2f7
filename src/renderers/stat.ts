// /proc/stat for the caller's container: one cpuN line per visible CPU (host ids, see cpu-view.ts) with the
// container's user and system time and the rest of that CPU's time as idle, kept growing and never
// decreasing across samples (cpu-accounting.ts has the formulas), and the aggregate "cpu" line as their
// sum plus the frozen lines of CPUs the cpuset no longer shows (as the kernel sums offline CPUs; LXCFS
// src/proc_fuse.c: proc_stat_read for the first sample). Usage sources, best first:
//   v1 cpuacct.usage_all    per CPU, user and system (ns)
//   v1 cpuacct.usage_percpu per CPU, total only: counted as user (LXCFS counts it as both: double)
//   v2 cpu.stat             user_usec/system_usec for the whole cgroup, spread over the visible CPUs
//                           (LXCFS shows host times on v2: lxc/lxcfs#593)
// procs_running and procs_blocked count the container's threads; intr, ctxt, btime, processes and softirq
// stay the host's (no per-cgroup counter exists).

import { parseFlatKeyed } from 'node-cgroups-parser';
import type { RenderOptions, RenderOutput, Sources, ThreadStates, VirtualFile } from '../contract.js';
import { NS_PER_TICK } from '../kernel.js';
import { accountCpus, type ContainerUsage, type HostCpuTimes, type Usage } from './cpu-accounting.js';
import { collectCpuView, visibleCpus, type CpuView } from './cpu-view.js';
import { counter, u64 } from './format.js';

export interface StatSnapshot {
  host: string;
  view: CpuView;
  /** the cgroup's CPU usage (ticks), undefined when unknown (the host's lines are shown) */
  usage?: ContainerUsage;
  /** thread states of the container, undefined when not countable */
  states?: ThreadStates;
  /** the state the previous render returned for this container */
  previous?: unknown;
}

const ticks = (ns: number) => ns / NS_PER_TICK;

function perCpuUsage(sources: Sources): ContainerUsage | undefined {
  if (sources.cgroupVersion('cpuacct') !== 1) return undefined;
  const all = sources.cgroupFile('cpuacct', 'cpuacct.usage_all');
  const cpus = new Map<number, Usage>();
  if (all !== undefined) {
    for (const line of all.split('\n').slice(1)) {
      const [cpu, user, system] = line.trim().split(/\s+/).map(Number);
      if ([cpu, user, system].every((n) => Number.isFinite(n) && n! >= 0)) cpus.set(cpu!, { user: ticks(user!), system: ticks(system!) });
    }
    if (cpus.size > 0) return { kind: 'per-cpu', cpus };
  }
  const percpu = sources.cgroupFile('cpuacct', 'cpuacct.usage_percpu');
  if (percpu === undefined) return undefined;
  percpu
    .trim()
    .split(/\s+/)
    .forEach((ns, cpu) => {
      const n = Number(ns);
      if (Number.isFinite(n) && n >= 0) cpus.set(cpu, { user: ticks(n), system: 0 });
    });
  return cpus.size > 0 ? { kind: 'per-cpu', cpus } : undefined;
}

function wholeUsage(sources: Sources): ContainerUsage | undefined {
  const text = sources.cgroupFile('unified', 'cpu.stat');
  if (text === undefined) return undefined;
  const stat = parseFlatKeyed(text);
  const user = stat.get('user_usec');
  const system = stat.get('system_usec');
  if (user === undefined || system === undefined) return undefined;
  return { kind: 'whole', whole: { user: ticks(user * 1000), system: ticks(system * 1000) } };
}

export function collectStat(sources: Sources, options: RenderOptions): StatSnapshot {
  const snapshot: StatSnapshot = { host: sources.hostFile('/proc/stat') ?? '', view: collectCpuView(sources, options) };
  const usage = perCpuUsage(sources) ?? wholeUsage(sources);
  if (usage) {
    snapshot.usage = usage;
    snapshot.previous = sources.lastState();
  }
  // A host process's "container" is its own cgroup, often the root: counting every thread of the machine
  // would cost a read per thread and tell less than the kernel's own figures, which stay.
  if (!sources.container.host) {
    const states = sources.threadStates('cpu') ?? sources.threadStates('unified');
    if (states) snapshot.states = states;
  }
  return snapshot;
}

const FIELDS = 10; // user nice system idle iowait irq softirq steal guest guest_nice

/** A host cpuN line's times: busy = user+nice+system+irq+softirq+steal (guest is inside user and nice). */
function hostTimes(f: number[]): HostCpuTimes {
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  return { busy, total: busy + f[3]! + f[4]! };
}

export function renderStat(snapshot: StatSnapshot, options: RenderOptions): RenderOutput {
  const cpus = visibleCpus(snapshot.view, options);
  const hostFields = new Map<number, number[]>();
  const rest: string[] = [];
  for (const line of snapshot.host.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m) {
      const fields = m[2]!.trim().split(/\s+/).map(counter);
      while (fields.length < FIELDS) fields.push(0);
      hostFields.set(Number(m[1]), fields.slice(0, FIELDS));
    } else if (line !== '' && !/^cpu\s/.test(line)) rest.push(line);
  }
  if (cpus.length === 0 || hostFields.size === 0) return snapshot.host;

  let lines: number[][];
  let frozen: number[][] = [];
  let state: unknown;
  if (snapshot.usage) {
    const host = new Map([...hostFields].map(([cpu, f]) => [cpu, hostTimes(f)]));
    // With --enable-cfs, ceil(quota) CPUs are shown; their clocks run at quota/shown of the host's.
    const scale = options.cfs && Number.isFinite(snapshot.view.quota) ? Math.min(1, snapshot.view.quota / cpus.length) : 1;
    const accounted = accountCpus({ host, visible: cpus, usage: snapshot.usage, scale, fold: options.cfs && (scale < 1 || cpus.length < snapshot.view.cpus.length) }, snapshot.previous);
    const fields = (l: { user: number; system: number; idle: number }) => [l.user, 0, l.system, l.idle, 0, 0, 0, 0, 0, 0].map(Math.floor);
    lines = accounted.lines.map(fields);
    // The aggregate also counts the frozen lines of CPUs shown before (the kernel sums possible CPUs).
    frozen = accounted.frozen.map(fields);
    state = accounted.state;
  } else {
    lines = cpus.map((cpu) => hostFields.get(cpu) ?? new Array<number>(FIELDS).fill(0));
  }
  // The aggregate is the exact sum of the lines as printed. Doubles stop being exact past 2^53 (only hostile
  // input gets there: 2^53 ticks is 2.8 million years), so it is summed as BigInt, and each value is capped
  // so that the sum of every line still fits the kernel's u64 fields.
  const cap = (2n ** 64n - 1n) / BigInt(Math.max(1, lines.length + frozen.length));
  const printed = (l: number[]) => l.map((v) => {
    const n = BigInt(u64(v));
    return n > cap ? cap : n;
  });
  const shown = lines.map(printed);
  const total = new Array<bigint>(FIELDS).fill(0n);
  for (const l of [...shown, ...frozen.map(printed)]) l.forEach((v, i) => (total[i]! += v));

  let out = `cpu  ${total.join(' ')}\n`;
  shown.forEach((l, i) => (out += `cpu${cpus[i]} ${l.join(' ')}\n`));
  for (const line of rest) {
    if (snapshot.states && line.startsWith('procs_running ')) out += `procs_running ${snapshot.states.running}\n`;
    else if (snapshot.states && line.startsWith('procs_blocked ')) out += `procs_blocked ${snapshot.states.blocked}\n`;
    else out += line + '\n';
  }
  return state === undefined ? out : { text: out, state };
}

export const stat: VirtualFile<StatSnapshot> = {
  path: 'proc/stat',
  hostPath: '/proc/stat',
  collect: collectStat,
  render: renderStat,
};
