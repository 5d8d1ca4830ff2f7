// /proc/slabinfo: the container's memory.kmem.slabinfo where the kernel provides one (cgroup v1 with kmem
// accounting), the host's file otherwise (v2 has no per-cgroup slabinfo). Root-only, like the kernel's.

import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface SlabinfoSnapshot {
  text: string;
}

export function collectSlabinfo(sources: Sources): SlabinfoSnapshot {
  const own = sources.cgroupVersion('memory') === 1 ? sources.cgroupFile('memory', 'memory.kmem.slabinfo') : undefined;
  // Current kernels keep the file but leave it empty: then the host's is all there is.
  if (own !== undefined && own.trim() !== '') return { text: own };
  return { text: sources.hostFile('/proc/slabinfo') ?? '' };
}

export function renderSlabinfo(snapshot: SlabinfoSnapshot, _options: RenderOptions): string {
  return snapshot.text;
}

export const slabinfo: VirtualFile<SlabinfoSnapshot> = {
  path: 'proc/slabinfo',
  hostPath: '/proc/slabinfo',
  mode: 0o400,
  collect: collectSlabinfo,
  render: renderSlabinfo,
};
