// The daemon's side of the renderer contract (src/contract.ts: Sources): typed reads of the caller's
// container and of the host, each file read at most once per render, and the per-container services the
// daemon keeps across renders (load averages, thread census, renderer state).

import { parseFlatKeyed, parseLimit, type CgroupDir, type CgroupReader } from 'node-cgroups-parser';
import type { MemoryLimits, MemoryView, Sources } from '../contract.js';
import type { Container } from './containers.js';
import type { LoadavgSampler } from './loadavg-sampler.js';
import { leaderStatPath } from '../kernel.js';
import type { HostFiles } from './host-files.js';
import { tasksUnder } from './tasks.js';
import { ThreadCensus } from './thread-census.js';

/** What the daemon keeps across renders; absent ones behave as for a one-off render. */
export interface Services {
  sampler?: LoadavgSampler;
  census?: ThreadCensus;
  /** host files shared between renders for one USER_HZ tick (host-files.ts); without it each render reads its own */
  hostFiles?: HostFiles;
  /** the state this file's previous render returned for this container */
  lastState?: () => unknown;
}

export function sourcesFor(reader: CgroupReader, container: Container, services: Services = {}): Sources {
  const files = new Map<string, string | undefined>();
  // Resolving the container may have read the init's stat already (uptime needs its start time).
  if (container.initStat !== undefined) files.set(hostPath(reader, leaderStatPath(container.initPid)), container.initStat);
  /** Each file read once per render: cgroup files through a kept fd (readOnce), host files as the reader
   * decides (the host's own /proc files are pinned open by the daemon, per-pid ones are not) and through
   * the shared copies when the daemon gives them (hostFile below). */
  const readOnce = (path: string): string | undefined => {
    if (!files.has(path)) files.set(path, reader.readKept(path));
    return files.get(path);
  };
  const chains = new Map<string, CgroupDir[]>();
  const chainOf = (controller: string): CgroupDir[] => {
    let chain = chains.get(controller);
    if (!chain) {
      const dir = controller === 'unified' ? reader.unifiedDirOf(container.cgroups) : reader.dirOf(container.cgroups, controller);
      chain = dir ? reader.ancestorsOf(dir) : [];
      chains.set(controller, chain);
    }
    return chain;
  };
  let memory: { view: MemoryView | undefined } | undefined;

  return {
    container: { initPid: container.initPid, host: container.host },
    hostFile: (path) => {
      const full = hostPath(reader, path);
      if (!files.has(full)) files.set(full, services.hostFiles ? services.hostFiles.get(path, () => reader.readFile(full)) : reader.readFile(full));
      return files.get(full);
    },
    memory() {
      memory ??= { view: memoryView(reader, container) };
      return memory.view;
    },
    cgroupFile(controller, name, level = 0) {
      const dir = chainOf(controller)[level];
      return dir && !name.includes('/') ? readOnce(`${dir.dir}/${name}`) : undefined;
    },
    cgroupVersion: (controller) => chainOf(controller)[0]?.version,
    cgroupDepth: (controller) => Math.max(0, chainOf(controller).length - 1),
    tasks(controller, limit) {
      const dir = chainOf(controller)[0];
      return dir ? tasksUnder(dir.dir, dir.version, limit) : undefined;
    },
    processes(controller, limit) {
      const dir = chainOf(controller)[0];
      return dir ? tasksUnder(dir.dir, dir.version, limit, 'processes') : undefined;
    },
    threadStates(controller) {
      const dir = chainOf(controller)[0];
      return dir ? (services.census ?? new ThreadCensus(reader, { minAgeMs: 0 })).statesOf(dir.dir, dir.version) : undefined;
    },
    loadavg() {
      if (!services.sampler) return undefined;
      const dir = chainOf('cpu')[0] ?? chainOf('unified')[0];
      if (!dir) return undefined;
      // The cgroup's CPU time lets the sampler catch up ticks missed while nobody read this container.
      const cpuacct = chainOf('cpuacct')[0];
      const usage = cpuacct?.version === 1 ? Number(readOnce(`${cpuacct.dir}/cpuacct.usage`)?.trim()) : undefined;
      const unified = chainOf('unified')[0];
      const usec = usage === undefined && unified ? parseFlatKeyed(readOnce(`${unified.dir}/cpu.stat`) ?? '').get('usage_usec') : undefined;
      const usageNs = usage !== undefined && Number.isFinite(usage) ? usage : usec !== undefined ? usec * 1000 : undefined;
      return services.sampler.view(dir.dir, dir.version, usageNs);
    },
    lastState: () => services.lastState?.(),
  };
}

/**
 * The key and cgroup directory under which the daemon keeps a container's state between renders: its
 * CPU-accounting cgroup (v1 cpuacct, else cpu, else the cgroup2 directory, else memory), plus its cpuset
 * (two containers that share one but not the other must not share counters). undefined when the
 * container has none of them.
 */
export function stateKeyOf(reader: CgroupReader, container: Container): { key: string; dir: string } | undefined {
  const dir = reader.dirOf(container.cgroups, 'cpuacct') ?? reader.dirOf(container.cgroups, 'cpu') ?? reader.unifiedDirOf(container.cgroups) ?? reader.dirOf(container.cgroups, 'memory');
  if (!dir) return undefined;
  const cpuset = reader.dirOf(container.cgroups, 'cpuset');
  return { key: cpuset && cpuset.dir !== dir.dir ? `${dir.dir}\n${cpuset.dir}` : dir.dir, dir: dir.dir };
}

/** Host paths follow the reader's roots (/proc/... the proc root, the rest the fs root), so fixture trees
 * stand in for the host in tests. */
export function hostPath(reader: CgroupReader, path: string): string {
  return path.startsWith('/proc/') ? reader.procRoot + path.slice('/proc'.length) : reader.fsRoot + path;
}

function memoryView(reader: CgroupReader, container: Container): MemoryView | undefined {
  const dir = reader.dirOf(container.cgroups, 'memory');
  if (!dir) return undefined;
  // cgroup v1 already folds the ancestors' limits into memory.stat (hierarchical_memory_limit and
  // hierarchical_memsw_limit, with use_hierarchy, which current kernels force on): no walk, and the two
  // limit files of the cgroup itself are not read either.
  const own = reader.readMemory(dir, { effectiveLimits: true });
  const chain: MemoryLimits[] = [{ limit: own.limit, swapLimit: own.swapLimit }];
  if (own.effectiveLimits) return { own, chain };
  for (const ancestor of reader.ancestorsOf(dir).slice(1)) chain.push(memoryLimits(reader, ancestor));
  return { own, chain };
}

/** Ancestors only matter for their limits: two small reads instead of a full memory reading. */
function memoryLimits(reader: CgroupReader, dir: CgroupDir): MemoryLimits {
  const [limitFile, swapFile] = dir.version === 1 ? ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes'] : ['memory.max', 'memory.swap.max'];
  const read = (name: string): number | undefined => {
    const text = reader.readKept(`${dir.dir}/${name}`);
    return text === undefined ? undefined : parseLimit(text);
  };
  return { limit: read(limitFile), swapLimit: read(swapFile) };
}
