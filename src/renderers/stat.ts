// /proc/stat for the caller's container: one cpuN line per visible CPU (renumbered like cpuinfo), with the
// container's user and system time, and idle = that CPU's host idle + the host's busy time the container
// did not use (LXCFS src/proc_fuse.c: proc_stat_read). Usage sources, best first:
//   v1 cpuacct.usage_all   per CPU, user and system (ns)
//   v1 cpuacct.usage_percpu per CPU, total only: counted as user (LXCFS counts it as both: double)
//   v2 cpu.stat            user_usec/system_usec for the whole cgroup, spread evenly over the visible CPUs
//                          (LXCFS shows host times on v2: lxc/lxcfs#593)
// procs_running and procs_blocked count the container's threads; intr, ctxt, btime, processes and softirq
// stay the host's (no per-cgroup counter exists).

import { parseFlatKeyed, parseProcStat } from 'node-cgroups-parser';
import { collectCpuView, visibleCpus, type CpuView } from './cpu-view.js';
import { counter, u64 } from './format.js';
import type { RenderOptions, Sources, VirtualFile } from './types.js';

/** USER_HZ: /proc/stat's unit on every Linux architecture lxcfs-ts runs on. */
export const USER_HZ = 100;
/** Counting thread states costs one read per thread: bounded so a huge container cannot stall the daemon. */
export const MAX_COUNTED_TASKS = 4096; // the same bound as the daemon's census (src/context/thread-census.ts)

export interface CpuUsage {
  /** ticks per host CPU id */
  user: number;
  system: number;
}

export interface StatSnapshot {
  host: string;
  view: CpuView;
  /** per host CPU id, or undefined when the cgroup's CPU usage is unknown (host lines are shown) */
  usage?: Map<number, CpuUsage>;
  /** whole-cgroup usage to spread over the visible CPUs (cgroup v2) */
  spread?: CpuUsage;
  /** thread states of the container, undefined when not countable */
  states?: { running: number; blocked: number };
}

// One division: (ns / 1e9) * USER_HZ rounds 290000000 ns to 28.999999999999996, i.e. 28 ticks instead of 29.
const nsToTicks = (ns: number) => Math.floor(ns / (1e9 / USER_HZ));

function perCpuUsage(sources: Sources): Map<number, CpuUsage> | undefined {
  if (sources.cgroupVersion('cpuacct') !== 1) return undefined;
  const all = sources.cgroupFile('cpuacct', 'cpuacct.usage_all');
  if (all !== undefined) {
    const usage = new Map<number, CpuUsage>();
    for (const line of all.split('\n').slice(1)) {
      const [cpu, user, system] = line.trim().split(/\s+/).map(Number);
      if ([cpu, user, system].every((n) => Number.isFinite(n) && n! >= 0)) usage.set(cpu!, { user: nsToTicks(user!), system: nsToTicks(system!) });
    }
    if (usage.size > 0) return usage;
  }
  const percpu = sources.cgroupFile('cpuacct', 'cpuacct.usage_percpu');
  if (percpu === undefined) return undefined;
  const usage = new Map<number, CpuUsage>();
  percpu
    .trim()
    .split(/\s+/)
    .forEach((ns, cpu) => {
      const n = Number(ns);
      if (Number.isFinite(n) && n >= 0) usage.set(cpu, { user: nsToTicks(n), system: 0 });
    });
  return usage.size > 0 ? usage : undefined;
}

function wholeUsage(sources: Sources): CpuUsage | undefined {
  const text = sources.cgroupFile('unified', 'cpu.stat');
  if (text === undefined) return undefined;
  const stat = parseFlatKeyed(text);
  const user = stat.get('user_usec');
  const system = stat.get('system_usec');
  if (user === undefined || system === undefined) return undefined;
  return { user: nsToTicks(user * 1000), system: nsToTicks(system * 1000) };
}

/** R (running) and D (uninterruptible, "blocked") threads, as the kernel counts them for /proc/stat. */
export function countStates(sources: Sources, controller: string): { running: number; blocked: number } | undefined {
  if (sources.threadStates) return sources.threadStates(controller);
  // A daemon that predates threadStates: count here, one read per thread.
  const tids = sources.tasks(controller, MAX_COUNTED_TASKS);
  if (tids === undefined) return undefined;
  let running = 0;
  let blocked = 0;
  for (const tid of tids) {
    const state = parseProcStat(sources.hostFile(`/proc/${tid}/stat`) ?? '')?.state;
    if (state === 'R') running++;
    else if (state === 'D') blocked++;
  }
  return { running, blocked };
}

export function collectStat(sources: Sources, options: RenderOptions): StatSnapshot {
  const snapshot: StatSnapshot = { host: sources.hostFile('/proc/stat') ?? '', view: collectCpuView(sources, options) };
  const usage = perCpuUsage(sources);
  if (usage) snapshot.usage = usage;
  else {
    const spread = wholeUsage(sources);
    if (spread) snapshot.spread = spread;
  }
  // A host process's "container" is its own cgroup, often the root: counting every thread of the machine
  // would cost a read per thread and tell less than the kernel's own figures, which stay.
  if (!sources.container.host) {
    const states = countStates(sources, 'cpu') ?? countStates(sources, 'unified');
    if (states) snapshot.states = states;
  }
  return snapshot;
}

const FIELDS = 10; // user nice system idle iowait irq softirq steal guest guest_nice

export function renderStat(snapshot: StatSnapshot, options: RenderOptions): string {
  const cpus = visibleCpus(snapshot.view, options);
  const hostCpu = new Map<number, number[]>();
  const rest: string[] = [];
  for (const line of snapshot.host.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m) {
      const fields = m[2]!.trim().split(/\s+/).map(counter);
      while (fields.length < FIELDS) fields.push(0);
      hostCpu.set(Number(m[1]), fields.slice(0, FIELDS));
    } else if (line !== '' && !/^cpu\s/.test(line)) rest.push(line);
  }
  if (cpus.length === 0 || hostCpu.size === 0) return snapshot.host;

  const spread = snapshot.spread && {
    user: Math.floor(snapshot.spread.user / cpus.length),
    system: Math.floor(snapshot.spread.system / cpus.length),
  };
  const lines: number[][] = [];
  for (const cpu of cpus) {
    const host = hostCpu.get(cpu) ?? new Array<number>(FIELDS).fill(0);
    const used = snapshot.usage ? (snapshot.usage.get(cpu) ?? { user: 0, system: 0 }) : spread;
    if (!used) {
      lines.push(host);
      continue;
    }
    // guest and guest_nice are already inside user and nice: not added again.
    const hostBusy = host[0]! + host[1]! + host[2]! + host[4]! + host[5]! + host[6]! + host[7]!;
    const idle = host[3]! + Math.max(0, hostBusy - used.user - used.system);
    lines.push([used.user, 0, used.system, idle, 0, 0, 0, 0, 0, 0]);
  }
  const total = new Array<number>(FIELDS).fill(0);
  for (const l of lines) l.forEach((v, i) => (total[i]! += v));

  let out = `cpu  ${total.map(u64).join(' ')}\n`;
  lines.forEach((l, i) => (out += `cpu${i} ${l.map(u64).join(' ')}\n`));
  for (const line of rest) {
    if (snapshot.states && line.startsWith('procs_running ')) out += `procs_running ${snapshot.states.running}\n`;
    else if (snapshot.states && line.startsWith('procs_blocked ')) out += `procs_blocked ${snapshot.states.blocked}\n`;
    else out += line + '\n';
  }
  return out;
}

export const stat: VirtualFile<StatSnapshot> = {
  path: 'proc/stat',
  hostPath: '/proc/stat',
  collect: collectStat,
  render: renderStat,
};
