// /proc/uptime: the age of the container's init and the container's idle time (LXCFS src/proc_fuse.c:
// proc_uptime_read). age = host uptime (CLOCK_BOOTTIME) - init's start time (field 22 of its stat).
// idle follows the kernel's meaning, summed over CPUs: age × visible CPUs - CPU time the container used
// (LXCFS reports age - busy, wall-clock, which no tool expects). Host callers get the host's file.
// What a virtual uptime cannot fix: process start times in `ps` stay relative to host boot
// (lxc/lxcfs#164, #444), and sysinfo(2) still reports the host's uptime.

import { parseFlatKeyed, parseProcStat } from 'node-cgroups-parser';
import { collectCpuView, visibleCpus, type CpuView } from './cpu-view.js';
import { USER_HZ } from './stat.js';
import type { RenderOptions, Sources, VirtualFile } from './types.js';

export interface UptimeSnapshot {
  host: string;
  /** seconds since boot when the container's init started; undefined for host callers */
  initStart?: number;
  /** CPU seconds used by the container, undefined when unknown */
  busy?: number;
  view: CpuView;
}

function busySeconds(sources: Sources): number | undefined {
  if (sources.cgroupVersion('cpuacct') === 1) {
    const ns = Number(sources.cgroupFile('cpuacct', 'cpuacct.usage')?.trim());
    if (Number.isFinite(ns) && ns >= 0) return ns / 1e9;
  }
  const usec = parseFlatKeyed(sources.cgroupFile('unified', 'cpu.stat') ?? '').get('usage_usec');
  return usec === undefined ? undefined : usec / 1e6;
}

export function collectUptime(sources: Sources, options: RenderOptions): UptimeSnapshot {
  const snapshot: UptimeSnapshot = { host: sources.hostFile('/proc/uptime') ?? '', view: collectCpuView(sources, options) };
  if (sources.container.host) return snapshot;
  const start = parseProcStat(sources.hostFile(`/proc/${sources.container.initPid}/stat`) ?? '')?.startTime;
  if (start !== undefined) snapshot.initStart = start / USER_HZ;
  const busy = busySeconds(sources);
  if (busy !== undefined) snapshot.busy = busy;
  return snapshot;
}

export function renderUptime(snapshot: UptimeSnapshot, options: RenderOptions): string {
  const hostUptime = Number(snapshot.host.trim().split(/\s+/)[0]);
  if (snapshot.initStart === undefined || !Number.isFinite(hostUptime)) return snapshot.host;
  const age = Math.max(0, hostUptime - snapshot.initStart);
  const cpus = Math.max(1, visibleCpus(snapshot.view, options).length);
  const idle = snapshot.busy === undefined ? age * cpus : Math.max(0, age * cpus - snapshot.busy);
  // toFixed switches to exponent notation at 1e21: clamp garbage to something a kernel could print.
  const seconds = (x: number) => (Number.isFinite(x) ? Math.min(Math.max(0, x), 1e15) : 0).toFixed(2);
  return `${seconds(age)} ${seconds(idle)}\n`;
}

export const uptime: VirtualFile<UptimeSnapshot> = {
  path: 'proc/uptime',
  hostPath: '/proc/uptime',
  collect: collectUptime,
  render: renderUptime,
};
