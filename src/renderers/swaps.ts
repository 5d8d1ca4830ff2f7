// /proc/swaps: the header, and one virtual entry when the container has swap, with the same numbers as
// meminfo's SwapTotal and SwapFree (LXCFS src/proc_fuse.c: proc_swaps_read).

import { u64 } from './format.js';
import { collectMeminfo, hostSwapTotalKb, swapOf, type MeminfoSnapshot } from './meminfo.js';
import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface SwapsSnapshot {
  meminfo: MeminfoSnapshot;
  /** the host's /proc/swaps, served when no memory cgroup serves the caller (as meminfo is then) */
  host: string;
}

export function collectSwaps(sources: Sources): SwapsSnapshot {
  return { meminfo: collectMeminfo(sources), host: sources.hostFile('/proc/swaps') ?? '' };
}

export const SWAPS_HEADER = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority';

export function renderSwaps(snapshot: SwapsSnapshot, options: RenderOptions): string {
  const header = `${SWAPS_HEADER}\n`;
  const { memory, host } = snapshot.meminfo;
  if (!memory) return options.swap ? snapshot.host || header : header;
  const swap = swapOf(memory, hostSwapTotalKb(host) * 1024, options);
  const size = Math.floor(swap.total / 1024);
  // meminfo's SwapFree is max(0, SwapTotal - used): Used is capped the same way so it is SwapTotal - SwapFree.
  const used = Math.min(size, Math.floor(swap.used / 1024));
  if (size <= 0) return header;
  // The kernel's layout (mm/swapfile.c: swap_show): name padded to 40, then tab-separated columns.
  return `${header}${'none'.padEnd(40)}virtual\t\t${u64(size)}\t${size < 10000000 ? '\t' : ''}${u64(used)}\t${used < 10000000 ? '\t' : ''}0\n`;
}

export const swaps: VirtualFile<SwapsSnapshot> = {
  path: 'proc/swaps',
  hostPath: '/proc/swaps',
  collect: collectSwaps,
  render: renderSwaps,
};
