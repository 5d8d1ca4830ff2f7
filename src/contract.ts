// The contract between the daemon and the reloadable renderer bundle (dist/renderers.cjs, built from
// src/renderers): the types both sides compile against, the runtime schema the loader checks a bundle
// with, and the contract version.
//
// A virtual file is two functions: `collect` asks the daemon-provided `Sources` for the typed inputs it
// needs (the only way a renderer touches the machine), and `render` turns that snapshot into file text
// with no I/O at all, so it can be tested on fixtures and swapped at runtime.
//
// Versions. A bundle declares the contract it was built against (`contract`); the daemon accepts any
// version from MIN_CONTRACT_VERSION to CONTRACT_VERSION and gives it everything that version promises.
// A bundle built for a newer contract than the running daemon is refused with a message saying to restart
// the daemon (a SIGUSR1 after `npm ci` cannot teach an old daemon new Sources).
//   1  (no `contract` field) lxcfs-ts 0.1: render returns text; Sources without threadStates/lastState.
//      No longer accepted: its fallbacks for older daemons are gone.
//   2  render may return { text, state }; Sources.threadStates, Sources.lastState, Sources.processes;
//      mirrors may hide entries per caller.
//
// Renderers import only types from this module (erased at build time), so the bundle never contains zod.

import type { MemoryReading } from 'node-cgroups-parser';
import { z } from 'zod';

export const CONTRACT_VERSION = 2;
export const MIN_CONTRACT_VERSION = 2;

/** Daemon options that change what renderers produce. */
export interface RenderOptions {
  /** false with `-u/--disable-swap`: swap lines and /proc/swaps show no swap */
  swap: boolean;
  /** false with `-z/--disable-zswap`: meminfo's Zswap and Zswapped are 0 (absent = true) */
  zswap?: boolean;
  /** `--enable-cfs`: the CPU view is also limited by the CFS quota, not only the cpuset */
  cfs: boolean;
}

/** Per-container load averages kept by the daemon's sampler (only with `-l`). */
export interface LoadAverage {
  /** 1, 5 and 15 minute loads, in the kernel's fixed point (FIXED_1 = 2048) */
  fixed: [number, number, number];
  /** threads in state R (runnable) at the last sample: /proc/loadavg's 4th field */
  running: number;
  /** threads of the container */
  total: number;
  /** the newest pid of the container, in the container's own numbering */
  lastPid: number;
}

/** Limits of one cgroup on the path from the container to its hierarchy root. */
export interface MemoryLimits {
  /** v1 memory.limit_in_bytes, v2 memory.max, bytes; Infinity = unlimited, undefined = unreadable */
  limit?: number;
  /** v1 memory.memsw.limit_in_bytes (RAM+swap), v2 memory.swap.max (swap only), bytes */
  swapLimit?: number;
}

/** The container's memory cgroup: the full reading of its own directory, limits of every ancestor. */
export interface MemoryView {
  own: MemoryReading;
  /** the container's cgroup first, then each parent up to the hierarchy root */
  chain: MemoryLimits[];
}

/** Threads of a cgroup subtree by scheduler state, as /proc/stat's procs_running / procs_blocked count. */
export interface ThreadStates {
  /** state R */
  running: number;
  /** state D (uninterruptible sleep) */
  blocked: number;
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
   * Process ids (host numbering) of the container's cgroup and its descendants (`cgroup.procs`), at most
   * `limit`; undefined without that controller.
   */
  processes(controller: string, limit: number): number[] | undefined;
  /**
   * How many of the container's threads are running (R) and blocked (D), from a census the daemon may
   * reuse for a short while (src/context/thread-census.ts); undefined without that controller.
   */
  threadStates(controller: string): ThreadStates | undefined;
  /**
   * The `state` this file's previous render returned for this container (kept by the daemon across
   * renders and renderer reloads, dropped when the container's cgroup goes), undefined when there is
   * none. Renderers must validate its shape: it may come from an older bundle.
   */
  lastState(): unknown;
}

/** What `render` returns: the text, or the text and a state for the next render of this file. */
export type RenderOutput = string | { text: string; state: unknown };

export interface VirtualFile<Snapshot = unknown> {
  /** path inside the mount, e.g. "proc/meminfo" */
  path: string;
  /** the host file it virtualizes: served as is in passthrough mode (SIGUSR2) */
  hostPath: string;
  /** permission bits; default 0444. Files the kernel keeps root-only (slabinfo) stay root-only. */
  mode?: number;
  /** options are given so inputs only an option uses (the CFS quota) are not read without it */
  collect(sources: Sources, options: RenderOptions): Snapshot;
  render(snapshot: Snapshot, options: RenderOptions): RenderOutput;
}

/**
 * A host directory served as it is under the mount (e.g. the rest of /sys/devices/system/cpu), around the
 * virtual files inside it. `hide` names entries directly inside it that a caller must not see (listed by
 * readdir, found by lookup): the cpuN directories of CPUs outside the caller's view.
 */
export interface Mirror<Snapshot = unknown> {
  path: string;
  hostPath: string;
  hide?: {
    collect(sources: Sources, options: RenderOptions): Snapshot;
    render(snapshot: Snapshot, options: RenderOptions): string[];
  };
}

export interface RendererModule {
  /** the contract version the bundle was built against */
  contract: number;
  /** the bundle's own version, shown by `lxcfs-ts status` */
  version: string;
  files: readonly VirtualFile[];
  mirrors?: readonly Mirror[];
}

// zod 4's z.function() is no longer a schema; a function field is checked with z.custom.
const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', 'must be a function');

/** The runtime shape of a bundle's exports, checked by the loader before anything is called. */
export const rendererModuleSchema = z.object({
  contract: z
    .number({ message: 'no contract version: a bundle older than contract 2 (restart with renderers built from this version)' })
    .int()
    .min(MIN_CONTRACT_VERSION, `contract versions older than ${MIN_CONTRACT_VERSION} are no longer supported`)
    .max(CONTRACT_VERSION, `built for a newer contract than this daemon (${CONTRACT_VERSION}): restart lxcfs-ts to use it`),
  version: z.string(),
  files: z
    .array(
      z.object({
        path: z.string().regex(/^[a-z0-9_]+(\/[a-z0-9_.]+)+$/, 'a file path is relative, like proc/meminfo'),
        collect: fn,
        render: fn,
        hostPath: z.string().startsWith('/'),
        mode: z.number().int().min(0).max(0o777).optional(),
      }),
    )
    .min(1),
  mirrors: z
    .array(
      z.object({
        path: z.string().min(1),
        hostPath: z.string().startsWith('/'),
        hide: z.object({ collect: fn, render: fn }).optional(),
      }),
    )
    .optional(),
});

// The schema and the interfaces describe the same thing: a compile error here means one changed alone.
// Compared as the set of every field path in both (its optionality, primitive type, or "function";
// arrays by their elements; functions are not looked into: the schema only checks they are functions).
type Leaf<T> = T extends string ? 'string' : T extends number ? 'number' : T extends boolean ? 'boolean' : 'other';
type Paths<T, P extends string = ''> = T extends readonly (infer E)[]
  ? Paths<E, `${P}[]`>
  : T extends (...args: never[]) => unknown
    ? `${P}:function`
    : T extends object
      ? { [K in keyof T & string]-?: `${P}.${K}${object extends Pick<T, K> ? '?' : ''}` | Paths<Exclude<T[K], undefined>, `${P}.${K}`> }[keyof T & string]
      : `${P}:${Leaf<T>}`;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameShape: Same<Paths<z.infer<typeof rendererModuleSchema>>, Paths<RendererModule>> = true;
void _sameShape;

/** The text of a render's output. */
export function outputText(output: RenderOutput): string | undefined {
  if (typeof output === 'string') return output;
  return output !== null && typeof output === 'object' && typeof output.text === 'string' ? output.text : undefined;
}
