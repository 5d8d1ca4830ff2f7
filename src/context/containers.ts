// Caller -> container. As in LXCFS, a container is identified by the init process of the caller's pid
// namespace: its cgroups are the container's, whatever cgroup the calling process itself sits in (so a
// process moved into a tighter child cgroup still sees the container's figures). A caller in the daemon's
// own pid namespace is not in a container: its own cgroups are used.
//
// LXCFS finds a namespace's init by forking into the namespace and passing SCM_CREDENTIALS (1.5-2 ms per
// new namespace). Here it is found from /proc alone: walk the caller's ancestors while they share its pid
// namespace (init is usually an ancestor), else scan /proc for the process of that namespace whose NSpid
// ends in 1 (processes that setns() in from outside have no ancestor there).

import { parseProcStat, type CgroupReader, type PidCgroups } from 'node-cgroups-parser';
import { leaderStatPath, withinTick } from '../kernel.js';

export interface Container {
  /** host pid whose cgroups define the container: the init of the caller's pid namespace, or the caller */
  initPid: number;
  pidNamespace: number;
  /** true when the caller shares the daemon's pid namespace (a host process) */
  host: boolean;
  cgroups: PidCgroups;
  /** text of /proc/<initPid>/task/<initPid>/stat (kernel.ts leaderStatPath) when resolving read it (a cache
   * hit revalidates with it): renderers that need the init's start time reuse it instead of reading it again */
  initStat?: string;
}

export type Resolution = { ok: true; container: Container } | { ok: false; reason: string };

interface KnownInit {
  pid: number;
  /** field 22 of its leader's stat (kernel.ts leaderStatPath): a recycled pid has another start time, so it
   * is never trusted */
  startTime: number;
  /** its cgroups (init.scope pruned) as last read, and when (ms): shared for one USER_HZ tick (see resolve) */
  cgroups?: { value: PidCgroups; at: number };
}

/** Bound on the ancestor walk; pid namespaces nest at most 32 deep and process trees are shallow. */
const MAX_ANCESTRY = 128;

/**
 * Dead namespaces are looked for (one stat read per cached init) after a miss at most this often: when a
 * node starts hundreds of containers, or the daemon restarts among them, every first read is a miss, and a
 * pass after each would read N inits N times on the thread that serves everyone.
 */
export const FORGET_EVERY_MS = 1000;

export interface ResolverOptions {
  /** ms clock (default performance.now) */
  now?: () => number;
  /** run fn once after ms (default: an unref'd setTimeout, which never keeps the process alive) */
  later?: (fn: () => void, ms: number) => void;
}

export class ContainerResolver {
  private readonly inits = new Map<number, KnownInit>();
  /** inits found since the last bookkeeping pass: their start time is read after the reply (see initOf) */
  private readonly found = new Map<number, number>();
  private bookkeepingScheduled = false;
  private lastForget = -Infinity;
  private trailingPass = false;
  private readonly ownNamespace: number | undefined;
  private readonly now: () => number;
  private readonly later: (fn: () => void, ms: number) => void;

  constructor(private readonly reader: CgroupReader, ownPid: number = process.pid, options: ResolverOptions = {}) {
    this.ownNamespace = reader.pidNamespaceOf(ownPid);
    this.now = options.now ?? (() => performance.now());
    this.later = options.later ?? ((fn, ms) => setTimeout(fn, ms).unref());
  }

  /** Number of pid namespaces whose init is cached (for tests and leak checks; see `prune`). */
  get cachedNamespaces(): number {
    return this.inits.size;
  }

  /**
   * The container of the thread `callerTid`. `pidNs`, when known (the FUSE binding looks it up for its fair
   * queue; a thread's pid namespace never changes), spares the readlink of /proc/<tid>/ns/pid.
   */
  resolve(callerTid: number, pidNs?: number): Resolution {
    const ns = pidNs || this.reader.pidNamespaceOf(callerTid);
    if (ns === undefined) return { ok: false, reason: `caller ${callerTid} has exited` };

    const host = ns === this.ownNamespace;
    let init: { pid: number; stat?: string | undefined; known?: KnownInit | undefined } = { pid: callerTid };
    if (!host) {
      const found = this.initOf(ns, callerTid);
      if (found === undefined) return { ok: false, reason: `no init found for pid namespace ${ns} of caller ${callerTid}` };
      init = found;
    }
    // A container's reader opens several files in a row (top: stat, meminfo, uptime, loadavg); an init just
    // proven alive (its start time, above) keeps the cgroups read less than a tick ago: a process that
    // moved meanwhile is seen as a read a moment earlier would have.
    const known = init.known;
    const now = known ? this.now() : 0;
    const shared = known?.cgroups;
    let cgroups = shared && withinTick(shared.at, now) ? shared.value : undefined;
    if (!cgroups) {
      const read = this.reader.cgroupsOf(init.pid, !host);
      if (!read) return { ok: false, reason: `cgroups of pid ${init.pid} are unreadable (exited)` };
      cgroups = pruneInitScope(read);
      if (known) known.cgroups = { value: cgroups, at: now };
    }
    const container: Container = { initPid: init.pid, pidNamespace: ns, host, cgroups };
    if (init.stat !== undefined) container.initStat = init.stat;
    return { ok: true, container };
  }

  private initOf(ns: number, callerTid: number): { pid: number; stat: string | undefined; known?: KnownInit } | undefined {
    const known = this.inits.get(ns);
    if (known) {
      const stat = this.statIfStill(known);
      if (stat !== undefined) return { pid: known.pid, stat, known };
    }
    this.inits.delete(ns);
    // A miss means a namespace appeared (or its init was replaced). What only serves later opens (the new
    // init's start time, to revalidate it; forgetting dead namespaces, so the cache follows the live
    // containers without a timer) is done after this open is answered: on this VM a process new to the
    // kernel costs 50-120 µs per /proc file, and a dead entry's failed read as much.
    const pid = this.initByAncestry(ns, callerTid) ?? this.initByScan(ns);
    if (pid === undefined) return undefined;
    this.found.set(ns, pid);
    this.scheduleBookkeeping();
    return { pid, stat: undefined };
  }

  private scheduleBookkeeping(): void {
    if (this.bookkeepingScheduled) return;
    this.bookkeepingScheduled = true;
    setImmediate(() => this.bookkeeping(false));
  }

  private bookkeeping(force: boolean): void {
    this.bookkeepingScheduled = false;
    const since = this.now() - this.lastForget;
    if (force || since >= FORGET_EVERY_MS) {
      this.forgetDead();
    } else if (!this.trailingPass) {
      // Skipped: one pass when the period is over, so a namespace that died meanwhile is not kept until
      // some later miss (one timer for the whole cache, gone once it ran).
      this.trailingPass = true;
      this.later(() => {
        this.trailingPass = false;
        this.forgetDead();
      }, FORGET_EVERY_MS - since);
    }
    for (const [ns, pid] of this.found) {
      const startTime = this.leaderStat(pid)?.startTime;
      // Still the init of that namespace (it could have died since: then the next open looks again).
      if (startTime !== undefined && this.reader.pidNamespaceOf(pid) === ns) this.inits.set(ns, { pid, startTime });
    }
    this.found.clear();
  }

  /**
   * The init's leader stat when it is still the process that was cached, else undefined. The start
   * time alone proves it: a pid is reused only by a process started later, and a process never changes
   * its own pid namespace (setns affects only its children), so the namespace needs no second look.
   */
  private statIfStill(known: KnownInit): string | undefined {
    const stat = this.reader.readKept(leaderStatPath(known.pid, this.reader.procRoot));
    return stat !== undefined && parseProcStat(stat)?.startTime === known.startTime ? stat : undefined;
  }

  private leaderStat(pid: number): ReturnType<typeof parseProcStat> {
    const text = this.reader.readFile(leaderStatPath(pid, this.reader.procRoot));
    return text === undefined ? undefined : parseProcStat(text);
  }

  /** Record inits found by recent misses and forget namespaces whose init is gone, now (also done after a
   * cache miss, once the open is answered: at most every FORGET_EVERY_MS). */
  prune(): void {
    this.bookkeeping(true);
  }

  private forgetDead(): void {
    this.lastForget = this.now();
    for (const [ns, known] of this.inits) if (this.statIfStill(known) === undefined) this.inits.delete(ns);
  }

  private isInitOf(pid: number, ns: number): boolean {
    const nspid = this.reader.readProcStatus(pid)?.nspid;
    return nspid !== undefined && nspid.length > 1 && nspid[nspid.length - 1] === 1 && this.reader.pidNamespaceOf(pid) === ns;
  }

  private initByAncestry(ns: number, callerTid: number): number | undefined {
    // The kernel reports the calling thread; its process (Tgid) is what has a parent. Each file read of a
    // process new to the kernel's /proc cache costs 50-100 µs here, so the caller's status is read once
    // when it is its own process (the usual single-threaded reader).
    const callerStatus = this.reader.readProcStatus(callerTid);
    let pid = callerStatus?.tgid ?? callerTid;
    for (let hops = 0; hops < MAX_ANCESTRY; hops++) {
      const status = hops === 0 && pid === callerTid ? callerStatus : this.reader.readProcStatus(pid);
      if (!status) return undefined;
      const nspid = status.nspid;
      if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === 1) {
        // The caller's own namespace was read a moment ago: an init caller needs no second look.
        return pid === callerTid || this.reader.pidNamespaceOf(pid) === ns ? pid : undefined;
      }
      const parent = status.ppid;
      if (!parent || this.reader.pidNamespaceOf(parent) !== ns) return undefined;
      pid = parent;
    }
    return undefined;
  }

  private initByScan(ns: number): number | undefined {
    for (const pid of this.reader.listPids()) {
      if (this.reader.pidNamespaceOf(pid) === ns && this.isInitOf(pid, ns)) return pid;
    }
    return undefined;
  }
}

/** systemd puts a container's init in <container>/init.scope; the container is the parent (as LXCFS does). */
export function pruneInitScope(cgroups: PidCgroups): PidCgroups {
  const prune = (path: string): string => {
    if (!path.endsWith('/init.scope')) return path;
    const parent = path.slice(0, -'/init.scope'.length);
    return parent === '' ? '/' : parent;
  };
  const v1 = new Map<string, string>();
  for (const [controller, path] of cgroups.v1) v1.set(controller, prune(path));
  return { v1, unified: cgroups.unified === null ? null : prune(cgroups.unified) };
}
