// The contract between the daemon and the reloadable renderer module.
//
// A virtual file is two functions: `collect` asks the daemon-provided `Sources` for the typed inputs it
// needs (the only way a renderer touches the machine), and `render` turns that snapshot into file text
// with no I/O at all, so it can be tested on fixtures and swapped at runtime.

import type { MemoryReading } from 'node-cgroups-parser';

/** Daemon options that change what renderers produce. */
export interface RenderOptions {
  /** false with `-u/--disable-swap`: swap lines and /proc/swaps show no swap */
  swap: boolean;
  /** `--enable-cfs`: the CPU view is also limited by the CFS quota, not only the cpuset */
  cfs: boolean;
}

/** Per-container load averages kept by the daemon's sampler (only with `-l`). */
export interface LoadAverage {
  /** 1, 5 and 15 minute loads, in the kernel's fixed point (FIXED_1 = 2048) */
  fixed: [number, number, number];
  running: number;
  total: number;
  /** the newest pid of the container, in the container's own numbering */
  lastPid: number;
}

/** Limits of one cgroup on the path from the container to its hierarchy root. */
export interface MemoryLimits {
  /** v1 memory.limit_in_bytes, v2 memory.max; Infinity = unlimited, undefined = unreadable */
  limit?: number;
  /** v1 memory.memsw.limit_in_bytes (RAM+swap), v2 memory.swap.max (swap only) */
  swapLimit?: number;
}

/** The container's memory cgroup: the full reading of its own directory, limits of every ancestor. */
export interface MemoryView {
  own: MemoryReading;
  /** the container's cgroup first, then each parent up to the hierarchy root */
  chain: MemoryLimits[];
}

/**
 * What renderers may ask about the caller's container and the host. Implemented by the daemon's context
 * layer, bound to one caller for one render; every method reads its files at most once per render.
 */
export interface Sources {
  /** Who the container is: the host pid of its init (or of the caller itself, for a host process). */
  readonly container: { initPid: number; host: boolean };
  /** Text of a host file such as /proc/meminfo, undefined when it cannot be read. */
  hostFile(path: string): string | undefined;
  /** The container's memory cgroup, undefined when no memory controller serves it. */
  memory(): MemoryView | undefined;
  /**
   * Text of a file in the container's cgroup for a controller ("cpuset", "cpuacct", "memory"…, or
   * "unified" for the cgroup2 directory whatever its controllers), `level` steps up from the container's
   * own cgroup (0). undefined when the controller, the level or the file does not exist.
   */
  cgroupFile(controller: string, name: string, level?: number): string | undefined;
  /** cgroup version serving a controller for this container, undefined when none does. */
  cgroupVersion(controller: string): 1 | 2 | undefined;
  /** How many levels exist above the container's cgroup for a controller (0 at the root). */
  cgroupDepth(controller: string): number;
  /**
   * The container's load averages from the daemon's sampler; undefined without `-l` (the host file is then
   * served, as LXCFS does). The first call for a container starts tracking it.
   */
  loadavg(): LoadAverage | undefined;
  /**
   * Thread ids (host numbering) of the container's cgroup and its descendants for a controller (v1
   * `tasks`, v2 `cgroup.threads`), at most `limit` of them; undefined without that controller.
   */
  tasks(controller: string, limit: number): number[] | undefined;
  /**
   * How many of those threads are running (R) and blocked (D), from a census the daemon may reuse for a
   * short while (src/context/thread-census.ts); undefined without that controller. Optional: a renderer
   * bundle loaded by SIGUSR1 may run on a daemon older than itself, which lacks it (use `tasks` then).
   */
  threadStates?(controller: string): { running: number; blocked: number } | undefined;
}

export interface VirtualFile<Snapshot = unknown> {
  /** path inside the mount, e.g. "proc/meminfo" */
  path: string;
  /** the host file it virtualizes: served as is in passthrough mode (SIGUSR2) */
  hostPath: string;
  /** permission bits; default 0444. Files the kernel keeps root-only (slabinfo) stay root-only. */
  mode?: number;
  /** options are given so inputs only an option uses (the CFS quota) are not read without it */
  collect(sources: Sources, options: RenderOptions): Snapshot;
  render(snapshot: Snapshot, options: RenderOptions): string;
}
