// /proc/pressure/{cpu,io,memory}: the container's cgroup2 *.pressure files (on a hybrid host, in the
// unified mount, which has them per cgroup even without controllers), the host's /proc/pressure files
// when the cgroup has none. LXCFS 7.0 asks for a "blkio" controller on v2 and so always serves the host's
// io pressure.

import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface PressureSnapshot {
  text: string;
}

function pressureFile(resource: 'cpu' | 'io' | 'memory'): VirtualFile<PressureSnapshot> {
  return {
    path: `proc/pressure/${resource}`,
    hostPath: `/proc/pressure/${resource}`,
    collect: (sources: Sources) => {
      const own = sources.cgroupFile('unified', `${resource}.pressure`);
      return { text: own !== undefined && own.trim() !== '' ? own : (sources.hostFile(`/proc/pressure/${resource}`) ?? '') };
    },
    render: (snapshot: PressureSnapshot, _options: RenderOptions) => snapshot.text,
  };
}

export const pressureCpu = pressureFile('cpu');
export const pressureIo = pressureFile('io');
export const pressureMemory = pressureFile('memory');
