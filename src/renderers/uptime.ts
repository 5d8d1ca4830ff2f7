// /proc/uptime: the age of the container's init and the container's idle time (LXCFS src/proc_fuse.c:
// proc_uptime_read). age = host uptime (CLOCK_BOOTTIME) - init's start time (field 22 of its stat).
// idle follows the kernel's meaning, summed over CPUs: age × visible CPUs - CPU time the container used
// since its init started (LXCFS reports age - busy, wall-clock, which no tool expects).
//
// "Since its init started": the cgroup's counter (v1 cpuacct.usage, v2 cpu.stat usage_usec) also holds
// what ran in the cgroup before, e.g. a previous container restarted into the same cgroup, or the runtime's
// setup. The first render for an init therefore measures the CPU time of the container's processes
// themselves (utime+stime of each, plus cutime+cstime: what their reaped children used, which is where
// the init's exited descendants end up) and keeps the difference as an offset, so later renders need only
// the cgroup counter. Children nobody waited for (SIGCHLD ignored) are not counted: idle errs high.
// Later renders add to idle what each interval adds (Δage × visible CPUs - Δbusy, never below 0), so
// idle never decreases, even when the cpuset shrinks (fewer CPUs from then on, not retroactively).
// Host callers get the host's file.
// What a virtual uptime cannot fix: process start times in `ps` stay relative to host boot
// (lxc/lxcfs#164, #444), and sysinfo(2) still reports the host's uptime.

import { parseFlatKeyed, parseProcStat } from 'node-cgroups-parser';
import type { RenderOptions, RenderOutput, Sources, VirtualFile } from '../contract.js';
import { leaderStatPath, USER_HZ } from '../kernel.js';
import { collectCpuView, visibleCpus, type CpuView } from './cpu-view.js';

/** Processes summed on a container's first render (bounded: a huge container costs one read each). */
export const MAX_COUNTED_PROCESSES = 1024;

export interface UptimeState {
  v: 1 | 2;
  /** the init's start time, ticks since boot: the state belongs to that init only */
  initStart: number;
  /** CPU seconds in the cgroup's counter that were used before the init started */
  offset: number;
  /** v2: at the previous render, the age and idle printed and the cgroup's counter (seconds) */
  age?: number;
  idle?: number;
  busy?: number;
}

export interface UptimeSnapshot {
  host: string;
  /** ticks since boot when the container's init started; undefined for host callers */
  initStart?: number;
  /** CPU seconds in the cgroup's counter, undefined when unknown */
  busy?: number;
  /** CPU seconds of the container's processes and their reaped children (first render of an init only) */
  processes?: number;
  previous?: UptimeState;
  view: CpuView;
}

function usageSource(sources: Sources): { controller: string; seconds: number } | undefined {
  if (sources.cgroupVersion('cpuacct') === 1) {
    const ns = Number(sources.cgroupFile('cpuacct', 'cpuacct.usage')?.trim());
    if (Number.isFinite(ns) && ns >= 0) return { controller: 'cpuacct', seconds: ns / 1e9 };
  }
  const usec = parseFlatKeyed(sources.cgroupFile('unified', 'cpu.stat') ?? '').get('usage_usec');
  return usec === undefined ? undefined : { controller: 'unified', seconds: usec / 1e6 };
}

function validState(state: unknown): UptimeState | undefined {
  const s = state as Partial<UptimeState> | null;
  if (s === null || typeof s !== 'object' || (s.v !== 1 && s.v !== 2) || !Number.isFinite(s.initStart) || !Number.isFinite(s.offset) || s.offset! < 0) return undefined;
  // A v1 state (from the previous renderers) has no idle yet: its offset is kept, idle is computed anew.
  const last = s.v === 2 && [s.age, s.idle, s.busy].every((n) => Number.isFinite(n) && n! >= 0) ? { age: s.age, idle: s.idle, busy: s.busy } : {};
  return { v: 2, initStart: s.initStart!, offset: s.offset!, ...last };
}

/** CPU seconds used by the processes of the container's cgroup and their reaped children. */
function processSeconds(sources: Sources, controller: string): number | undefined {
  const pids = sources.processes(controller, MAX_COUNTED_PROCESSES);
  if (pids === undefined) return undefined;
  let ticks = 0;
  for (const pid of pids) {
    const stat = parseProcStat(sources.hostFile(`/proc/${pid}/stat`) ?? '');
    if (stat) ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
  }
  return ticks / USER_HZ;
}

export function collectUptime(sources: Sources, options: RenderOptions): UptimeSnapshot {
  const snapshot: UptimeSnapshot = { host: sources.hostFile('/proc/uptime') ?? '', view: collectCpuView(sources, options) };
  if (sources.container.host) return snapshot;
  const start = parseProcStat(sources.hostFile(leaderStatPath(sources.container.initPid)) ?? '')?.startTime;
  if (start === undefined) return snapshot;
  snapshot.initStart = start;
  const usage = usageSource(sources);
  if (usage === undefined) return snapshot;
  snapshot.busy = usage.seconds;
  const previous = validState(sources.lastState());
  if (previous && previous.initStart === start) snapshot.previous = previous;
  else {
    const processes = processSeconds(sources, usage.controller);
    if (processes !== undefined) snapshot.processes = processes;
  }
  return snapshot;
}

export function renderUptime(snapshot: UptimeSnapshot, options: RenderOptions): RenderOutput {
  const hostUptime = Number(snapshot.host.trim().split(/\s+/)[0]);
  if (snapshot.initStart === undefined || !Number.isFinite(hostUptime)) return snapshot.host;
  const age = Math.max(0, hostUptime - snapshot.initStart / USER_HZ);
  const cpus = Math.max(1, visibleCpus(snapshot.view, options).length);
  // toFixed switches to exponent notation at 1e21: clamp garbage to something a kernel could print.
  const seconds = (x: number) => (Number.isFinite(x) ? Math.min(Math.max(0, x), 1e15) : 0).toFixed(2);
  if (snapshot.busy === undefined) return `${seconds(age)} ${seconds(age * cpus)}\n`;
  const offset = snapshot.previous?.offset ?? Math.max(0, Math.min(snapshot.busy, snapshot.busy - (snapshot.processes ?? snapshot.busy)));
  const busy = Math.max(0, snapshot.busy - offset);
  const p = snapshot.previous;
  const idle =
    p?.age !== undefined && p.idle !== undefined && p.busy !== undefined
      ? p.idle + Math.max(0, Math.max(0, age - p.age) * cpus - Math.max(0, snapshot.busy - p.busy))
      : Math.max(0, age * cpus - busy);
  const state: UptimeState = { v: 2, initStart: snapshot.initStart, offset, age, idle, busy: snapshot.busy };
  return { text: `${seconds(age)} ${seconds(idle)}\n`, state };
}

export const uptime: VirtualFile<UptimeSnapshot> = {
  path: 'proc/uptime',
  hostPath: '/proc/uptime',
  collect: collectUptime,
  render: renderUptime,
};
