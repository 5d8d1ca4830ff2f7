// Synthetic containers for the smoke render a renderer reload must pass (src/daemon/renderer-loader.ts).
// Rendering only for the daemon itself exercises the host-caller paths; a bundle that throws only for
// containers would pass. These Sources describe one cgroup v1 and one cgroup v2 container with every
// input a renderer may ask for, over the machine's real host files (so the parsers meet real formats),
// and nothing of them touches the machine: cgroup files and thread lists come from memory.

import type { LoadAverage, MemoryView, Sources } from '../contract.js';

const MiB = 1024 * 1024;

/** cgroup files of the synthetic container, by controller, as the kernel prints them. */
function cgroupFiles(version: 1 | 2, cpu: number): Record<string, Record<string, string>> {
  if (version === 1) {
    return {
      cpuset: { 'cpuset.cpus': `${cpu}\n`, 'cpuset.effective_cpus': `${cpu}\n`, 'cpuset.mems': '0\n' },
      cpu: { 'cpu.cfs_quota_us': '50000\n', 'cpu.cfs_period_us': '100000\n' },
      cpuacct: {
        'cpuacct.usage': '1500000000\n',
        'cpuacct.usage_all': `cpu user system\n${cpu} 1000000000 500000000\n`,
        'cpuacct.usage_percpu': `${'0 '.repeat(cpu)}1500000000 \n`,
      },
      blkio: {
        'blkio.throttle.io_service_bytes_recursive': '254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n',
        'blkio.throttle.io_serviced_recursive': '254:0 Read 1\n254:0 Write 2\n254:0 Total 3\nTotal 3\n',
      },
      memory: { 'memory.kmem.slabinfo': '' },
    };
  }
  const files = {
    'cpuset.cpus': '\n',
    'cpuset.cpus.effective': `${cpu}\n`,
    'cpu.max': '50000 100000\n',
    'cpu.stat': 'usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
    'io.stat': '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n',
    'cpu.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=50\n',
    'io.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n',
    'memory.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
  };
  return { cpuset: files, cpu: files, io: files, memory: files, unified: files };
}

function memoryView(version: 1 | 2): MemoryView {
  const stat =
    version === 1
      ? new Map([['total_cache', 10 * MiB], ['total_rss', 80 * MiB], ['total_shmem', MiB], ['total_active_anon', 60 * MiB], ['total_inactive_anon', 20 * MiB], ['total_active_file', 6 * MiB], ['total_inactive_file', 4 * MiB], ['total_mapped_file', 2 * MiB]])
      : new Map([['anon', 80 * MiB], ['file', 10 * MiB], ['shmem', MiB], ['active_anon', 60 * MiB], ['inactive_anon', 20 * MiB], ['active_file', 6 * MiB], ['inactive_file', 4 * MiB], ['slab', 3 * MiB], ['slab_reclaimable', 2 * MiB], ['slab_unreclaimable', MiB], ['file_mapped', 2 * MiB]]);
  const swapLimit = version === 1 ? 384 * MiB : 128 * MiB;
  return {
    own: { version, limit: 256 * MiB, usage: 100 * MiB, swapLimit, swapUsage: version === 1 ? 104 * MiB : 4 * MiB, swappiness: 60, stat },
    chain: [{ limit: 256 * MiB, swapLimit }, { limit: Infinity, swapLimit: Infinity }],
  };
}

/**
 * Sources for a synthetic container on cgroup `version`, whose init is `initPid` (the daemon's own pid:
 * its /proc/<pid>/stat is real), over the host files `hostFile` reads. `previous` is handed back as
 * Sources.lastState (the state a first render returned, for a second one).
 */
export function smokeSources(version: 1 | 2, initPid: number, hostFile: (path: string) => string | undefined, previous?: unknown): Sources {
  const online = /^(\d+)/.exec(hostFile('/sys/devices/system/cpu/online') ?? '0')?.[1] ?? '0';
  const files = cgroupFiles(version, Number(online));
  const load: LoadAverage = { fixed: [1024, 512, 256], running: 1, total: 3, lastPid: 42 };
  return {
    container: { initPid, host: false },
    hostFile,
    memory: () => memoryView(version),
    cgroupFile: (controller, name, level = 0) => (level === 0 ? files[controller]?.[name] : undefined),
    cgroupVersion: (controller) => (files[controller] ? version : undefined),
    cgroupDepth: () => 0,
    loadavg: () => load,
    tasks: (controller) => (files[controller] ? [initPid] : undefined),
    processes: (controller) => (files[controller] ? [initPid] : undefined),
    threadStates: (controller) => (files[controller] ? { running: 1, blocked: 0 } : undefined),
    lastState: () => previous,
  };
}
