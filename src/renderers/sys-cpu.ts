// /sys/devices/system/cpu/{online,present,possible}: the visible CPUs by host id (cpu-view.ts explains
// the choice), and the cpuN directories of every other CPU hidden from the mirrored directory. LXCFS
// computes only `online` and lists every host cpuN directory, so `getconf _NPROCESSORS_CONF`, sysstat's
// "(N CPU)" and htop's meters count every host CPU in a one-CPU container (lxc/lxcfs#731). The rest of the
// directory mirrors the host's (see index.ts).

import { parseCpuList } from 'node-cgroups-parser';
import type { Mirror, RenderOptions, Sources, VirtualFile } from '../contract.js';
import { collectCpuView, cpuListText, visibleCpus, type CpuView } from './cpu-view.js';

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
      const cpus = visibleCpus(snapshot.view, options);
      return cpus.length === 0 ? snapshot.host : `${cpuListText(cpus)}\n`;
    },
  };
}

export const cpuOnline = cpuList('online');
export const cpuPresent = cpuList('present');
export const cpuPossible = cpuList('possible');

export interface CpuDirsSnapshot {
  view: CpuView;
  /** the host's cpuN directory names */
  entries: string[];
}

/** The cpuN entries of the host's /sys/devices/system/cpu that are not visible CPUs. */
export function hiddenCpuDirs(snapshot: CpuDirsSnapshot, options: RenderOptions): string[] {
  const visible = new Set(visibleCpus(snapshot.view, options));
  if (visible.size === 0) return [];
  return snapshot.entries.filter((name) => {
    const m = /^cpu(\d+)$/.exec(name);
    return m !== null && !visible.has(Number(m[1]));
  });
}

/** /sys/devices/system/cpu mirrors the host's directory, without the cpuN directories of hidden CPUs. */
export const cpuDirectory: Mirror<CpuDirsSnapshot> = {
  path: 'sys/devices/system/cpu',
  hostPath: '/sys/devices/system/cpu',
  hide: {
    collect: (sources: Sources, options: RenderOptions) => {
      const view = collectCpuView(sources, options);
      // Which cpuN exist: the host's possible list names them (reading the directory is the daemon's job).
      const possible = sources.hostFile('/sys/devices/system/cpu/possible') ?? '';
      return { view, entries: parseCpuList(possible).map((cpu) => `cpu${cpu}`) };
    },
    render: hiddenCpuDirs,
  },
};
