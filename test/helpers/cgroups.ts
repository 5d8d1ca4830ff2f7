// Scratch "container" cgroups for the live suites, on whatever layout the host has: pure v1, hybrid (v1
// controllers + cgroup2 without controllers, like the development machine) or pure v2. Every cgroup is
// created under the test process's own cgroup in its hierarchy (the machine limits us through our memory
// cgroup: never move out of it or raise its limits), uniquely named, and removed by a teardown that is
// registered before anything that can throw.
//
// On v2 the controllers are enabled in the own cgroup's cgroup.subtree_control. The kernel refuses that
// in a non-root cgroup that has processes of its own ("no internal processes"), so on a v2 host the
// suites need to run in the root cgroup (the QEMU guests of `npm run test:vm` do) or in a delegated,
// empty-but-for-us cgroup; `liveCgroupsMissing()` says why not, for a suite to skip with a reason.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupReader, type CgroupLayout } from 'node-cgroups-parser';

export type Layout = 'v1' | 'hybrid' | 'v2';

/** A test's way to run cleanup at its end (tap's `t.teardown`). */
export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

let cachedLayout: CgroupLayout | undefined;
function hostLayout(): CgroupLayout {
  cachedLayout ??= new CgroupReader().layout;
  return cachedLayout;
}

/** The host's cgroup layout (from /proc/self/mountinfo, by the project's own parser). */
export function layout(): Layout {
  const kind = hostLayout().kind;
  if (kind === 'none') throw new Error('no cgroup filesystem is mounted');
  return kind;
}

/** Our own cgroup path for a v1 controller, or for "unified" the cgroup2 path (the 0:: line). */
export function ownCgroup(controller: string): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controller === 'unified' ? line.startsWith('0::') : controllers.split(',').includes(controller)) return path;
  }
  throw new Error(`not in a ${controller} cgroup`);
}

const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'pids'];

function unifiedMount(): string | undefined {
  return hostLayout().unified?.mountPoint;
}

/** Controllers the v2 hierarchy can give our children (the own cgroup's cgroup.controllers). */
function v2Available(): Set<string> {
  const mount = unifiedMount();
  if (!mount) return new Set();
  try {
    return new Set(readFileSync(join(mount, ownCgroup('unified'), 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
  } catch {
    return new Set();
  }
}

/**
 * Why live cgroup tests cannot run here, or undefined when they can: every v1 controller the suites use
 * is mounted, or (pure v2) our own cgroup can hand cpuset, cpu, io and memory to its children.
 */
export function liveCgroupsMissing(): string | undefined {
  let kind: Layout;
  try {
    kind = layout();
  } catch (err) {
    return (err as Error).message;
  }
  if (kind !== 'v2') {
    const missing = ['memory', 'cpuset', 'cpu', 'cpuacct'].filter((c) => !hostLayout().v1.has(c));
    return missing.length === 0 ? undefined : `cgroup v1 controllers not mounted: ${missing.join(', ')}`;
  }
  const missing = ['cpuset', 'cpu', 'io', 'memory'].filter((c) => !v2Available().has(c));
  if (missing.length > 0) return `cgroup v2: controllers ${missing.join(', ')} are not available to our cgroup ${ownCgroup('unified')}`;
  try {
    enableV2Controllers();
  } catch (err) {
    return `cgroup v2: cannot enable controllers for children of our cgroup ${ownCgroup('unified')} (${(err as Error).message}); run the suite in the root cgroup or a delegated one`;
  }
  return undefined;
}

/** +cpuset +cpu +io +memory +pids in our own cgroup's subtree_control (idempotent). */
function enableV2Controllers(): void {
  const mount = unifiedMount()!;
  const own = join(mount, ownCgroup('unified'));
  const enabled = new Set(readFileSync(join(own, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean));
  const wanted = V2_CONTROLLERS.filter((c) => v2Available().has(c) && !enabled.has(c));
  if (wanted.length > 0) writeFileSync(join(own, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
}

/** rmdir fails with EBUSY while the last task is still exiting: retry briefly. */
export function removeCgroup(dir: string): void {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      // Busy: processes a test left behind (a child that outlived its teardown) go first.
      killMembers(dir);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

/** SIGKILL every process in the cgroup dir (never this one, which stays in its own cgroups). */
function killMembers(dir: string): void {
  let procs: string;
  try {
    procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return;
  }
  for (const pid of procs.split('\n').filter(Boolean).map(Number)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** the v1 controllers a scratch container has a directory in (below) */
const V1_CONTROLLERS = ['memory', 'cpuset', 'cpu', 'cpuacct', 'blkio'];
const TEST_CGROUP = /^lxcfs-ts-test-.+-(\d+)-[a-z0-9]+$/;
let swept = false;

/**
 * Removes the scratch cgroups of test processes that are gone (a run killed before its teardowns ran),
 * once per process: the name carries the creating process's pid; a live one is another test's, left alone.
 */
function sweepDeadRunsCgroups(parents: string[]): void {
  if (swept) return;
  swept = true;
  for (const parent of parents) {
    let entries: string[];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of entries) {
      const pid = Number(TEST_CGROUP.exec(name)?.[1] ?? 0);
      if (pid > 0 && !alive(pid)) removeCgroup(join(parent, name));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ContainerSpec {
  /** memory limit in bytes (v1 memory.limit_in_bytes, v2 memory.max) */
  memoryBytes?: number;
  /** swap the container may use on top of its memory, bytes (v1 memsw = memory + swap, v2 memory.swap.max) */
  swapBytes?: number;
  /** cpuset.cpus, e.g. "1" or "0-1"; default: our own cpuset */
  cpus?: string;
  /** CFS quota in CPUs (period 100 ms): v1 cpu.cfs_quota_us, v2 cpu.max */
  quotaCpus?: number;
}

/**
 * One scratch container. `dirs` are the directories a process joins (write its pid to each
 * cgroup.procs); the named ones are where each controller's files live for this container (on v2 they are
 * all the same directory). undefined = that controller does not exist on this host.
 */
export interface ScratchContainer {
  layout: Layout;
  name: string;
  dirs: string[];
  memory: string;
  cpuset: string;
  cpu: string;
  /** where CPU usage is accounted: v1 cpuacct, v2 the unified dir */
  cpuacct: string;
  /** v1 blkio, v2 the unified dir with io enabled */
  io: string;
  /** the cgroup2 directory (hybrid: in the controller-less unified mount), undefined on pure v1 */
  unified: string | undefined;
  /** the path /proc/<pid>/cgroup shows for the memory controller (v2: the 0:: path) */
  memoryPath: string;
  setMemoryLimit(bytes: number): void;
  setCpus(cpus: string): void;
  setQuota(cpus: number | undefined): void;
  /** CPU time used by the container so far, in ns (v1 cpuacct.usage, v2 cpu.stat usage_usec) */
  cpuUsageNs(): number;
  /** memory in use, bytes (v1 memory.usage_in_bytes, v2 memory.current) */
  memoryUsage(): number;
  /** pids in the container (the memory cgroup's cgroup.procs) */
  procs(): number[];
}

const write = (dir: string, file: string, value: string) => writeFileSync(join(dir, file), value);
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');

/**
 * Create a container's cgroups and register their removal with `t` first. Throws with a clear message
 * when the host cannot give us cgroups (see liveCgroupsMissing).
 */
export function createContainer(t: Teardown, name: string, spec: ContainerSpec = {}): ScratchContainer {
  const kind = layout();
  const mount = unifiedMount();
  const v1Parents = V1_CONTROLLERS.flatMap((c) => {
    const hierarchy = hostLayout().v1.get(c);
    return hierarchy ? [join(hierarchy.mountPoint, ownCgroup(c))] : [];
  });
  sweepDeadRunsCgroups([...new Set([...(mount ? [join(mount, ownCgroup('unified'))] : []), ...v1Parents])]);
  const unique = `lxcfs-ts-test-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const created: string[] = [];
  t.teardown(() => {
    for (const dir of created.reverse()) removeCgroup(dir);
  });
  const make = (parent: string): string => {
    const dir = join(parent, unique);
    created.push(dir); // before mkdir: a half-made container is still removed
    mkdirSync(dir); // not recursive: the parent is our own cgroup, which exists
    return dir;
  };

  let unified: string | undefined;
  if (mount) {
    if (kind === 'v2') enableV2Controllers();
    unified = make(join(mount, ownCgroup('unified')));
  }
  const v1 = (controller: string): string | undefined => {
    const hierarchy = hostLayout().v1.get(controller);
    return hierarchy ? make(join(hierarchy.mountPoint, ownCgroup(controller))) : undefined;
  };
  const need = (dir: string | undefined, what: string): string => {
    if (dir === undefined) throw new Error(`no ${what} cgroup on this ${kind} host`);
    return dir;
  };

  let memory: string, cpuset: string, cpu: string, cpuacct: string, io: string;
  if (kind === 'v2') {
    memory = cpuset = cpu = cpuacct = io = need(unified, 'cgroup2');
  } else {
    memory = need(v1('memory'), 'memory');
    cpuset = need(v1('cpuset'), 'cpuset');
    cpu = need(v1('cpu'), 'cpu');
    cpuacct = need(v1('cpuacct'), 'cpuacct');
    io = need(v1('blkio'), 'blkio');
    // v1 cpusets start empty and refuse tasks until cpus and mems are set.
    const parent = join(cpuset, '..');
    write(cpuset, 'cpuset.mems', read(parent, 'cpuset.mems').trim());
    write(cpuset, 'cpuset.cpus', read(parent, 'cpuset.cpus').trim());
  }
  const dirs = [...new Set([memory, cpuset, cpu, cpuacct, io, ...(unified ? [unified] : [])])];

  const container: ScratchContainer = {
    layout: kind,
    name: unique,
    dirs,
    memory,
    cpuset,
    cpu,
    cpuacct,
    io,
    unified,
    memoryPath: kind === 'v2' ? join(ownCgroup('unified'), unique) : join(ownCgroup('memory'), unique),
    setMemoryLimit: (bytes) => write(memory, kind === 'v2' ? 'memory.max' : 'memory.limit_in_bytes', String(bytes)),
    setCpus: (cpus) => write(cpuset, 'cpuset.cpus', cpus),
    setQuota: (cpus) => {
      if (kind === 'v2') write(cpu, 'cpu.max', cpus === undefined ? 'max 100000' : `${Math.round(cpus * 100_000)} 100000`);
      else {
        write(cpu, 'cpu.cfs_period_us', '100000');
        write(cpu, 'cpu.cfs_quota_us', cpus === undefined ? '-1' : String(Math.round(cpus * 100_000)));
      }
    },
    cpuUsageNs: () => {
      if (kind !== 'v2') return Number(read(cpuacct, 'cpuacct.usage').trim());
      return Number(/^usage_usec (\d+)$/m.exec(read(cpuacct, 'cpu.stat'))![1]) * 1000;
    },
    memoryUsage: () => Number(read(memory, kind === 'v2' ? 'memory.current' : 'memory.usage_in_bytes').trim()),
    procs: () => read(memory, 'cgroup.procs').split('\n').filter(Boolean).map(Number),
  };

  if (spec.memoryBytes !== undefined) container.setMemoryLimit(spec.memoryBytes);
  if (spec.swapBytes !== undefined) {
    if (spec.memoryBytes === undefined) throw new Error('swapBytes needs memoryBytes');
    if (kind === 'v2') write(memory, 'memory.swap.max', String(spec.swapBytes));
    else write(memory, 'memory.memsw.limit_in_bytes', String(spec.memoryBytes + spec.swapBytes));
  }
  if (spec.cpus !== undefined) container.setCpus(spec.cpus);
  if (spec.quotaCpus !== undefined) container.setQuota(spec.quotaCpus);
  return container;
}

/**
 * Why a container's swap cannot be limited and measured here, or undefined when it can: the host has swap,
 * and a scratch memory cgroup has memory.swap.max (v2) or memory.memsw.* (v1, swap accounting on).
 */
export function swapMissing(): string | undefined {
  const missing = liveCgroupsMissing();
  if (missing) return missing;
  const hostSwapKb = Number(/^SwapTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  if (hostSwapKb === 0) return 'no swap on this host';
  const cleanups: (() => void | Promise<void>)[] = [];
  try {
    const probe = createContainer({ teardown: (fn) => cleanups.push(fn) }, 'swap-probe');
    const file = probe.layout === 'v2' ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes';
    return existsSync(join(probe.memory, file)) ? undefined : `no swap accounting in memory cgroups (no ${file})`;
  } finally {
    for (const fn of cleanups) void fn(); // removeCgroup is synchronous
  }
}
