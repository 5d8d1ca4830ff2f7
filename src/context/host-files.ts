// Host files shared between renders for one USER_HZ tick. Every container's /proc/stat, /proc/cpuinfo and
// /proc/uptime render reads the host's /proc/stat, /proc/cpuinfo, /proc/uptime and
// /sys/devices/system/cpu/online; with hundreds of containers that is hundreds of regenerations of the
// same host file per second, each a seq_file show on the thread that serves every container. A host file
// read less than one tick (1/USER_HZ s) ago is served again instead: the kernel counts /proc/stat's times
// and /proc/uptime's seconds in that unit (10 ms), so a reader sees what it would have seen had it read a
// moment earlier. Host files only: per-process files (/proc/<pid>/...) and cgroup files are never shared,
// so the set of keys is the renderers' fixed list of host paths and nothing here is per container.

import { MS_PER_TICK } from '../kernel.js';

/** How long a host file is served again: one USER_HZ tick, in ms. */
export const SHARE_MS = MS_PER_TICK;

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
   * from `read` unless the same file was read less than SHARE_MS ago. A failed read (undefined) is not kept:
   * the next render tries again. Per-process paths always go to `read`.
   */
  get(path: string, read: () => string | undefined): string | undefined {
    if (PER_PROCESS.test(path)) return read();
    const now = this.now();
    const kept = this.shared.get(path);
    if (kept && now - kept.at < SHARE_MS && now >= kept.at) return kept.text;
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
