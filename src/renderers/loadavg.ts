// /proc/loadavg per container (with -l; the host's file otherwise, as LXCFS does). The averages come
// from the daemon's sampler in the kernel's fixed point; this file only formats them like
// fs/proc/loadavg.c: "%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d".

import type { LoadAverage, RenderOptions, Sources, VirtualFile } from './types.js';

export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;

export interface LoadavgSnapshot {
  host: string;
  load?: LoadAverage;
}

export function collectLoadavg(sources: Sources): LoadavgSnapshot {
  const load = sources.loadavg();
  return load ? { host: '', load } : { host: sources.hostFile('/proc/loadavg') ?? '' };
}

function fixedToText(fixed: number): string {
  const x = Math.max(0, Math.floor(fixed)) + FIXED_1 / 200; // the kernel rounds to 2 decimals this way
  const int = Math.floor(x / FIXED_1);
  const frac = Math.floor(((x % FIXED_1) * 100) / FIXED_1);
  return `${int}.${String(frac).padStart(2, '0')}`;
}

export function renderLoadavg(snapshot: LoadavgSnapshot, _options: RenderOptions): string {
  const load = snapshot.load;
  if (!load) return snapshot.host;
  return `${load.fixed.map(fixedToText).join(' ')} ${load.running}/${load.total} ${load.lastPid}\n`;
}

export const loadavg: VirtualFile<LoadavgSnapshot> = {
  path: 'proc/loadavg',
  hostPath: '/proc/loadavg',
  collect: collectLoadavg,
  render: renderLoadavg,
};
