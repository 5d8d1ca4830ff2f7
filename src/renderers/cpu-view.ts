// Which CPUs a container sees, shared by cpuinfo, stat, sys/devices/system/cpu/{online,present,possible}
// and the cpuN directories of that mirror, so they always agree.
//
// The decision: every file names the visible CPUs by their host ids, as the kernel does for a machine
// whose other CPUs are not present. A container whose cpuset is {1} sees "processor : 1", "cpu1", online
// "1" and one directory cpu1: pinning to a CPU a file lists (taskset -c 1, sched_setaffinity) is pinning
// to that very CPU, which the kernel accepts, and every counting tool (nproc, getconf, lscpu, os.cpu_count,
// psutil, sysstat, htop, top, Node's os.cpus) counts the same one CPU. Renumbering from 0 (LXCFS 5.0's
// cpuinfo; lxcfs-ts before 0.2) made "taskset -c 0" fail with EINVAL inside such a container, and LXCFS
// mixes both schemes (cpuinfo "processor 0", stat "cpu1", online "1").

import { parseCpuList } from 'node-cgroups-parser';
import type { RenderOptions, Sources } from '../contract.js';

export interface CpuView {
  /** host CPU ids the container may run on, ascending */
  cpus: number[];
  /** min over the cgroup and its ancestors of quota/period, in CPUs; Infinity without a quota, or when
   * --enable-cfs is off (the quota files are then not read at all) */
  quota: number;
}

/** The cgroup's cpuset: cpuset.cpus, else the effective list (v2 cpuset.cpus.effective, v1
 * cpuset.effective_cpus), walking up while all are empty. */
function cpusetOf(sources: Sources): number[] | undefined {
  if (sources.cgroupVersion('cpuset') === undefined) return undefined;
  for (let level = 0; level <= sources.cgroupDepth('cpuset'); level++) {
    for (const file of ['cpuset.cpus', 'cpuset.cpus.effective', 'cpuset.effective_cpus']) {
      const cpus = parseCpuList(sources.cgroupFile('cpuset', file, level) ?? '');
      if (cpus.length > 0) return cpus;
    }
  }
  return undefined;
}

/** The tightest CFS quota on the path to the root, in CPUs (v1 cfs_quota_us/cfs_period_us, v2 cpu.max). */
function quotaOf(sources: Sources): number {
  const version = sources.cgroupVersion('cpu');
  let quota = Infinity;
  if (version === undefined) return quota;
  for (let level = 0; level <= sources.cgroupDepth('cpu'); level++) {
    let q: number;
    let p: number;
    if (version === 1) {
      q = Number(sources.cgroupFile('cpu', 'cpu.cfs_quota_us', level)?.trim());
      p = Number(sources.cgroupFile('cpu', 'cpu.cfs_period_us', level)?.trim());
    } else {
      const [qs, ps] = (sources.cgroupFile('cpu', 'cpu.max', level) ?? '').trim().split(/\s+/);
      q = qs === 'max' ? -1 : Number(qs);
      p = Number(ps);
    }
    if (Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0) quota = Math.min(quota, q / p);
  }
  return quota;
}

export function collectCpuView(sources: Sources, options: RenderOptions | undefined): CpuView {
  const online = parseCpuList(sources.hostFile('/sys/devices/system/cpu/online') ?? '');
  const cpuset = cpusetOf(sources);
  // A cpuset can name CPUs that are offline now; only online ones are usable.
  let cpus = cpuset ?? online;
  if (cpuset && online.length > 0) {
    const up = new Set(online);
    const usable = cpuset.filter((c) => up.has(c));
    if (usable.length > 0) cpus = usable;
  }
  // A daemon older than this bundle (a SIGUSR1 upgrade) passes no options: read the quota as it expects.
  return { cpus, quota: options?.cfs === false ? Infinity : quotaOf(sources) };
}

/** The CPUs to show: the cpuset, cut to ceil(quota) of them with --enable-cfs (at least one). */
export function visibleCpus(view: CpuView, options: RenderOptions): number[] {
  if (!options.cfs || view.quota === Infinity) return view.cpus;
  return view.cpus.slice(0, Math.max(1, Math.ceil(view.quota)));
}

/** A CPU list in the kernel's format (lib/bitmap.c: bitmap_print_to_pagebuf "%*pbl"): "0-3", "1", "0-1,3". */
export function cpuListText(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
