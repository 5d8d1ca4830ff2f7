// /proc/loadavg per container (with -l; the host's file otherwise, as LXCFS does). The averages come
// from the daemon's sampler in the kernel's fixed point; this file only formats them like
// fs/proc/loadavg.c: "%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d".

import type { LoadAverage, RenderOptions, Sources, VirtualFile } from '../contract.js';
import { FIXED_1 } from '../kernel.js';
import { u64 } from './format.js';

export interface LoadavgSnapshot {
  host: string;
  load?: LoadAverage;
}

export function collectLoadavg(sources: Sources): LoadavgSnapshot {
  // A host process's "container" is its own cgroup, often the root: the kernel's own file is exactly the
  // host's load, and sampling every thread of the machine every 5 s would be all cost.
  const load = sources.container.host ? undefined : sources.loadavg();
  return load ? { host: '', load } : { host: sources.hostFile('/proc/loadavg') ?? '' };
}

function fixedToText(fixed: number): string {
  // The kernel rounds to 2 decimals by adding FIXED_1/200, an integer division in C (10, not 10.24: 256
  // prints "0.12"); garbage counts as 0.
  const x = (Number.isFinite(fixed) && fixed > 0 ? Math.min(Math.floor(fixed), 2 ** 52) : 0) + Math.floor(FIXED_1 / 200);
  const int = Math.floor(x / FIXED_1);
  const frac = Math.floor(((x % FIXED_1) * 100) / FIXED_1);
  return `${int}.${String(frac).padStart(2, '0')}`;
}

export function renderLoadavg(snapshot: LoadavgSnapshot, _options: RenderOptions): string {
  const load = snapshot.load;
  if (!load) return snapshot.host;
  return `${load.fixed.map(fixedToText).join(' ')} ${u64(load.running)}/${u64(load.total)} ${u64(load.lastPid)}\n`;
}

export const loadavg: VirtualFile<LoadavgSnapshot> = {
  path: 'proc/loadavg',
  hostPath: '/proc/loadavg',
  collect: collectLoadavg,
  render: renderLoadavg,
};
