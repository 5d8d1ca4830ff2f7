// /sys/devices/system/cpu/{online,present,possible}: the visible CPU list, numbered like cpuinfo and stat.
// LXCFS computes only `online`, so `getconf _NPROCESSORS_CONF` (present/possible) reports every host CPU
// in a one-CPU container (lxc/lxcfs#731). The rest of the directory mirrors the host's (see index.ts).

import { collectCpuView, renumberedList, visibleCpus, type CpuView } from './cpu-view.js';
import type { RenderOptions, Sources, VirtualFile } from './types.js';

export interface CpuListSnapshot {
  view: CpuView;
  host: string;
}

function cpuList(name: 'online' | 'present' | 'possible'): VirtualFile<CpuListSnapshot> {
  const hostPath = `/sys/devices/system/cpu/${name}`;
  return {
    path: `sys/devices/system/cpu/${name}`,
    hostPath,
    collect: (sources: Sources, options: RenderOptions) => ({ view: collectCpuView(sources, options), host: sources.hostFile(hostPath) ?? '' }),
    render: (snapshot: CpuListSnapshot, options: RenderOptions) => {
      const count = visibleCpus(snapshot.view, options).length;
      return count === 0 ? snapshot.host : `${renumberedList(count)}\n`;
    },
  };
}

export const cpuOnline = cpuList('online');
export const cpuPresent = cpuList('present');
export const cpuPossible = cpuList('possible');
