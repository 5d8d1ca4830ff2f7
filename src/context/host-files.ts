// Host files shared between renders for one USER_HZ tick (kernel.ts MS_PER_TICK, 10 ms). Every container's
// render reads the host's file it starts from (/proc/stat, /proc/meminfo, /proc/cpuinfo, /proc/uptime, and
// the CPU lists under /sys/devices/system/cpu for stat, cpuinfo and uptime); with hundreds of containers
// that is hundreds of regenerations of the same host file per second, each a seq_file show on the thread
// that serves every container. Every host file a renderer reads through Sources.hostFile is served again
// when it was read less than one tick ago: /proc/stat's times and /proc/uptime's seconds count in that unit
// (a render sees what a read a moment earlier would have shown), and the others (meminfo, swaps,
// diskstats, loadavg, pressure, slabinfo, the CPU lists) are then at most 10 ms old, far below the second
// or more that any tool samples at. Per-process files (/proc/<pid>/..., self, thread-self) and cgroup
// files are never shared, so the keys are the renderers' fixed list of host paths and nothing here is per
// container.

import { withinTick } from '../kernel.js';

/** /proc/<pid>/... (and /proc/self, /proc/thread-self): a process's own file, never shared. */
const PER_PROCESS = /^\/proc\/(?:\d+|self|thread-self)(?:\/|$)/;

interface Shared {
  text: string;
  /** when it was read (ms, the cache's clock) */
  at: number;
}

export class HostFiles {
  private readonly shared = new Map<string, Shared>();
  private readonly now: () => number;

  /** `now`: ms clock (default performance.now). */
  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * The text of the host file `path` (as the renderers name it: /proc/stat, /sys/devices/system/cpu/online),
   * from `read` unless the same file was read less than one tick (MS_PER_TICK) ago. A failed read
   * (undefined) is not kept: the next render tries again. Per-process paths always go to `read`.
   */
  get(path: string, read: () => string | undefined): string | undefined {
    if (PER_PROCESS.test(path)) return read();
    const now = this.now();
    const kept = this.shared.get(path);
    if (kept && withinTick(kept.at, now)) return kept.text;
    const text = read();
    if (text === undefined) this.shared.delete(path);
    else this.shared.set(path, { text, at: now });
    return text;
  }

  /** Number of host files kept (for tests). */
  get size(): number {
    return this.shared.size;
  }
}
