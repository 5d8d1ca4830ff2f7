// /proc/meminfo for the caller's container.
//
// The host file is the template: its lines keep their order, and each line is either recomputed from the
// container's memory cgroup, zeroed, or passed through. Formulas follow LXCFS 6.0 (src/proc_fuse.c:
// proc_meminfo_read) with its known bugs fixed: nothing can wrap below zero, memory.stat keys are matched
// exactly (LXCFS's prefix matching loses v2 file_mapped and v1 total_rss_huge), and every host-wide line
// that would describe other containers' memory is replaced by a deliberate value (see LINES below).

import type { MemoryReading } from 'node-cgroups-parser';
import { u64 } from './format.js';
import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface ContainerMemory {
  version: 1 | 2;
  /** min over the cgroup and its ancestors, bytes; Infinity = unlimited */
  limit: number;
  usage?: number;
  /** min over the chain: v1 RAM+swap (memsw), v2 swap only; Infinity = unlimited */
  swapLimit: number;
  /** v1 RAM+swap usage (memsw), v2 swap usage; undefined = no swap accounting */
  swapUsage?: number;
  swappiness?: number;
  stat: ReadonlyMap<string, number>;
}

export interface MeminfoSnapshot {
  /** the host's /proc/meminfo */
  host: string;
  /** undefined when no memory cgroup serves the caller: the host file is served as is */
  memory?: ContainerMemory;
}

export function collectMeminfo(sources: Sources): MeminfoSnapshot {
  const host = sources.hostFile('/proc/meminfo') ?? '';
  const view = sources.memory();
  if (!view) return { host };
  return { host, memory: containerMemory(view.own, view.chain) };
}

function containerMemory(own: MemoryReading, chain: { limit?: number; swapLimit?: number }[]): ContainerMemory {
  return {
    version: own.version,
    limit: minOf(chain.map((c) => c.limit)),
    usage: own.usage,
    swapLimit: minOf(chain.map((c) => c.swapLimit)),
    swapUsage: own.swapUsage,
    swappiness: own.swappiness,
    stat: own.stat ?? new Map(),
  };
}

function minOf(values: (number | undefined)[]): number {
  let min = Infinity;
  for (const v of values) if (v !== undefined && v < min) min = v;
  return min;
}

interface HostLine {
  key: string;
  kb?: number; // undefined for lines that are not "<key>: <n> kB"
  text: string;
}

function parseHost(text: string): HostLine[] {
  const lines: HostLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([^:]+):\s+(\d+) kB$/.exec(line);
    if (m) lines.push({ key: m[1]!, kb: Number(m[2]), text: line });
    // A malformed line of a key we recompute is recomputed all the same (its host value counts as 0).
    else if (Object.hasOwn(LINES, line.split(':')[0]!)) lines.push({ key: line.split(':')[0]!, kb: Number.NaN, text: line });
    else lines.push({ key: line.split(':')[0]!, text: line });
  }
  return lines;
}

/** Everything a line formula can use, in kB. */
interface Figures {
  host: ReadonlyMap<string, number>;
  total: number;
  used: number;
  swapTotal: number;
  swapUsed: number;
  /** a memory.stat value in kB by its v1 (`total_*`) or v2 key; 0 when absent */
  stat(v1: string | null, v2: string | null): number;
  /** a v2-only memory.stat value; 0 on v1, where the kernel keeps no per-cgroup figure */
  v2(key: string): number;
  version: 1 | 2;
  /** false with -z: no zswap shown */
  zswap: boolean;
}

type Formula = (f: Figures) => number;

const ZERO: Formula = () => 0;
const anonPages: Formula = (f) =>
  f.version === 2 && f.stat(null, 'anon') > 0
    ? f.stat(null, 'anon')
    : Math.max(0, f.stat('total_active_anon', 'active_anon') + f.stat('total_inactive_anon', 'inactive_anon') - f.stat('total_shmem', 'shmem'));

/**
 * Recomputed lines. A key missing here is passed through from the host: those are constants of the machine
 * (VmallocTotal, Hugepagesize, HugePages_*, DirectMap*, CmaTotal) or keys of a newer kernel we cannot
 * interpret. ZERO marks host-wide usage with no per-cgroup counter: the host's figure would be the sum over
 * every container, which is wrong for this one.
 */
const LINES: Record<string, Formula> = {
  MemTotal: (f) => f.total,
  MemFree: (f) => Math.max(0, f.total - f.used),
  // LXCFS 6.0+: free + file LRU + reclaimable slab, never above MemTotal.
  MemAvailable: (f) =>
    clamp(
      f.total - f.used + f.stat('total_active_file', 'active_file') + f.stat('total_inactive_file', 'inactive_file') + f.v2('slab_reclaimable'),
      0,
      f.total,
    ),
  Buffers: ZERO, // the kernel accounts block-device buffers to no cgroup
  Cached: (f) => f.stat('total_cache', 'file'),
  SwapCached: (f) => f.stat('total_swapcached', 'swapcached'),
  Active: (f) => f.stat('total_active_anon', 'active_anon') + f.stat('total_active_file', 'active_file'),
  Inactive: (f) => f.stat('total_inactive_anon', 'inactive_anon') + f.stat('total_inactive_file', 'inactive_file'),
  'Active(anon)': (f) => f.stat('total_active_anon', 'active_anon'),
  'Inactive(anon)': (f) => f.stat('total_inactive_anon', 'inactive_anon'),
  'Active(file)': (f) => f.stat('total_active_file', 'active_file'),
  'Inactive(file)': (f) => f.stat('total_inactive_file', 'inactive_file'),
  Unevictable: (f) => f.stat('total_unevictable', 'unevictable'),
  // No per-cgroup mlock counter; mlocked pages sit on the unevictable list, so the container's Unevictable
  // bounds its share of the host's Mlocked.
  Mlocked: (f) => Math.min(f.host.get('Mlocked') ?? 0, f.stat('total_unevictable', 'unevictable')),
  SwapTotal: (f) => f.swapTotal,
  SwapFree: (f) => Math.max(0, f.swapTotal - f.swapUsed),
  Zswap: (f) => (f.zswap ? f.v2('zswap') : 0),
  Zswapped: (f) => (f.zswap ? f.v2('zswapped') : 0),
  Dirty: (f) => f.stat('total_dirty', 'file_dirty'),
  Writeback: (f) => f.stat('total_writeback', 'file_writeback'),
  AnonPages: anonPages,
  Mapped: (f) => f.stat('total_mapped_file', 'file_mapped'),
  Shmem: (f) => f.stat('total_shmem', 'shmem'),
  KReclaimable: (f) => f.v2('slab_reclaimable'),
  Slab: (f) => f.v2('slab') || f.v2('slab_reclaimable') + f.v2('slab_unreclaimable'),
  SReclaimable: (f) => f.v2('slab_reclaimable'),
  SUnreclaim: (f) => f.v2('slab_unreclaimable'),
  KernelStack: (f) => f.v2('kernel_stack'),
  PageTables: (f) => f.v2('pagetables'),
  SecPageTables: (f) => f.v2('sec_pagetables'),
  NFS_Unstable: ZERO,
  Bounce: ZERO,
  WritebackTmp: ZERO,
  // The kernel's CommitLimit is swap + RAM * overcommit_ratio; keep the host's ratio, apply it to the
  // container's RAM and swap.
  CommitLimit: (f) => {
    const hostTotal = f.host.get('MemTotal') ?? 0;
    const hostRam = (f.host.get('CommitLimit') ?? 0) - (f.host.get('SwapTotal') ?? 0);
    const ratio = hostTotal > 0 ? Math.max(0, hostRam) / hostTotal : 0.5;
    return Math.floor(f.total * ratio) + f.swapTotal;
  },
  // No per-cgroup commit counter: what the container has touched (anon, shmem, swapped out) is the part of
  // its commitments that can be measured, a lower bound.
  Committed_AS: (f) => anonPages(f) + f.stat('total_shmem', 'shmem') + f.swapUsed,
  VmallocUsed: (f) => f.v2('vmalloc'),
  Percpu: (f) => f.v2('percpu'),
  AnonHugePages: (f) => f.stat('total_rss_huge', 'anon_thp'),
  ShmemHugePages: (f) => f.v2('shmem_thp'),
  ShmemPmdMapped: ZERO,
  FileHugePages: (f) => f.v2('file_thp'),
  FilePmdMapped: ZERO,
  Balloon: ZERO, // memory the hypervisor took from the host, not from this container
};

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

const kb = (bytes: number | undefined): number => (bytes === undefined || !Number.isFinite(bytes) ? 0 : Math.max(0, Math.floor(bytes / 1024)));

/** SwapTotal and swap used, bytes. */
export function swapOf(mem: ContainerMemory, hostSwapTotalBytes: number, options: RenderOptions): { total: number; used: number } {
  if (!options.swap || mem.swapUsage === undefined) return { total: 0, used: 0 };
  let total: number;
  let used: number;
  if (mem.version === 2) {
    total = Math.min(mem.swapLimit, hostSwapTotalBytes);
    used = mem.swapUsage;
  } else {
    // v1 memsw counts RAM+swap: the swap a container may use is memsw minus the RAM limit, as Docker's
    // --memory-swap means it (LXCFS reports the whole memsw limit as SwapTotal, which double counts RAM).
    const allowance = mem.swapLimit === Infinity ? Infinity : mem.limit === Infinity ? mem.swapLimit : Math.max(0, mem.swapLimit - mem.limit);
    total = Math.min(allowance, hostSwapTotalBytes);
    used = Math.max(0, mem.swapUsage - (mem.usage ?? 0));
  }
  // swappiness 0 means "never swap": show no swap unless some is already in use (LXCFS does the same).
  if (mem.swappiness === 0) total = Math.min(total, used);
  // Garbage in a cgroup file (NaN) shows as no swap rather than as "NaN".
  if (!Number.isFinite(total) || !Number.isFinite(used)) return { total: Number.isFinite(total) ? Math.max(0, total) : 0, used: 0 };
  return { total: Math.max(0, total), used: Math.max(0, Math.min(used, total)) };
}

/** The host's SwapTotal in kB (0 when absent). */
export function hostSwapTotalKb(host: string): number {
  const m = /^SwapTotal:\s+(\d+) kB$/m.exec(host);
  return m ? Number(m[1]) : 0;
}

export function renderMeminfo(snapshot: MeminfoSnapshot, options: RenderOptions): string {
  const lines = parseHost(snapshot.host);
  const mem = snapshot.memory;
  if (!mem) return snapshot.host;

  const host = new Map<string, number>();
  for (const l of lines) if (l.kb !== undefined && Number.isFinite(l.kb)) host.set(l.key, l.kb);
  const hostTotal = host.get('MemTotal') ?? 0;
  // A zero limit is treated as no limit, as LXCFS does: a cgroup that may hold nothing is never a
  // container anyone reads meminfo from, and MemTotal 0 makes tools divide by zero (lxc/lxcfs#389).
  const limitKb = mem.limit > 0 ? kb(mem.limit) : hostTotal;
  const total = mem.limit === Infinity ? hostTotal : Math.min(hostTotal, limitKb);
  const swap = swapOf(mem, (host.get('SwapTotal') ?? 0) * 1024, options);
  const stat = (key: string | null): number => (key === null ? 0 : kb(mem.stat.get(key)));

  const figures: Figures = {
    host,
    total,
    used: mem.usage === undefined ? Math.max(0, hostTotal - (host.get('MemFree') ?? hostTotal)) : kb(mem.usage),
    swapTotal: kb(swap.total),
    swapUsed: kb(swap.used),
    version: mem.version,
    stat: (v1, v2) => stat(mem.version === 1 ? v1 : v2),
    v2: (key) => (mem.version === 2 ? stat(key) : 0),
    zswap: options.zswap !== false,
  };

  let out = '';
  for (const line of lines) {
    // hasOwn: a host line named "constructor:" or "__proto__:" must not reach Object.prototype (found by fuzzing).
    const formula = Object.hasOwn(LINES, line.key) ? LINES[line.key] : undefined;
    if (line.kb === undefined || formula === undefined) {
      out += line.text + '\n';
      continue;
    }
    out += formatLine(line.key, formula(figures));
  }
  return out;
}

/** The kernel's layout (fs/proc/meminfo.c): name and colon padded to 16, value right-aligned to 8. */
function formatLine(key: string, valueKb: number): string {
  return `${(key + ':').padEnd(16)}${u64(valueKb).padStart(8)} kB\n`;
}

export const meminfo: VirtualFile<MeminfoSnapshot> = {
  path: 'proc/meminfo',
  hostPath: '/proc/meminfo',
  collect: collectMeminfo,
  render: renderMeminfo,
};
