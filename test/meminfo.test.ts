// The meminfo renderer on v1 and v2 snapshots, with exact expected values. Host template: a real
// /proc/meminfo of this machine (kernel 6.18), given 4 GiB of swap (fixtures/host/meminfo) or none
// (fixtures/host/meminfo-noswap).

import t from 'tap';
import { readFileSync } from 'node:fs';
import type { MemoryReading } from 'node-cgroups-parser';
import { collectMeminfo, renderMeminfo } from '../src/renderers/meminfo.js';
import type { MemoryLimits, RenderOptions, Sources } from '../src/contract.js';

const HOST = readFileSync(new URL('./fixtures/host/meminfo', import.meta.url), 'utf8');
const HOST_NOSWAP = readFileSync(new URL('./fixtures/host/meminfo-noswap', import.meta.url), 'utf8');
const SWAP_ON: RenderOptions = { swap: true, cfs: false };
const MiB = 1024 * 1024;

/** Sources with a host meminfo and a memory cgroup; meminfo asks for nothing else (anything else throws). */
function sources(host: string, own: MemoryReading | undefined, ancestors: MemoryLimits[] = []): Sources {
  const unused = (what: string) => () => {
    throw new Error(`meminfo asked for ${what}`);
  };
  return {
    container: { initPid: 1, host: false },
    hostFile: (path) => (path === '/proc/meminfo' ? host : undefined),
    memory: () => (own ? { own, chain: [{ limit: own.limit, swapLimit: own.swapLimit }, ...ancestors] } : undefined),
    cgroupFile: unused('cgroupFile'),
    cgroupVersion: unused('cgroupVersion'),
    cgroupDepth: unused('cgroupDepth'),
    loadavg: unused('loadavg'),
    tasks: unused('tasks'),
    processes: unused('processes'),
    threadStates: unused('threadStates'),
    lastState: unused('lastState'),
  };
}

function render(host: string, own: MemoryReading | undefined, options = SWAP_ON, ancestors: MemoryLimits[] = []): Map<string, string> {
  const text = renderMeminfo(collectMeminfo(sources(host, own, ancestors)), options);
  const lines = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) lines.set(line.split(':')[0]!, line);
  return lines;
}

function kbOf(lines: Map<string, string>, key: string): number {
  const m = /:\s+(\d+) kB$/.exec(lines.get(key) ?? '');
  if (!m) throw new Error(`no kB line for ${key}: ${lines.get(key)}`);
  return Number(m[1]);
}

const stat = (entries: Record<string, number>) => new Map(Object.entries(entries));

const V1: MemoryReading = {
  version: 1,
  limit: 256 * MiB,
  usage: 100 * MiB,
  swapLimit: 512 * MiB,
  swapUsage: 110 * MiB,
  swappiness: 60,
  stat: stat({
    cache: 1, // the non-hierarchical keys must not be used
    rss_huge: 999 * MiB,
    total_cache: 50 * MiB,
    total_rss: 40 * MiB,
    total_rss_huge: 4 * MiB, // LXCFS's prefix match reads total_rss here and shows AnonHugePages 0
    total_shmem: 1 * MiB,
    total_mapped_file: 2 * MiB,
    total_dirty: 8192,
    total_writeback: 0,
    total_active_anon: 20 * MiB,
    total_inactive_anon: 20 * MiB,
    total_active_file: 30 * MiB,
    total_inactive_file: 20 * MiB,
    total_unevictable: 0,
  }),
};

const V2: MemoryReading = {
  version: 2,
  limit: 512 * MiB,
  usage: 150 * MiB,
  swapLimit: 128 * MiB,
  swapUsage: 32 * MiB,
  stat: stat({
    anon: 90 * MiB,
    file: 60 * MiB,
    kernel_stack: 192 * 1024,
    pagetables: 400 * 1024,
    sec_pagetables: 0,
    percpu: 8192,
    vmalloc: 16384,
    shmem: 2 * MiB,
    zswap: 1 * MiB,
    zswapped: 3 * MiB,
    file_mapped: 10 * MiB, // LXCFS's prefix match reads "file" here and shows Mapped 0
    file_dirty: 12288,
    file_writeback: 4096,
    swapcached: 65536,
    anon_thp: 2 * MiB,
    file_thp: 0,
    shmem_thp: 0,
    inactive_anon: 70 * MiB,
    active_anon: 22 * MiB,
    inactive_file: 40 * MiB,
    active_file: 20 * MiB,
    unevictable: 4096,
    slab_reclaimable: 3 * MiB,
    slab_unreclaimable: 1 * MiB,
    slab: 4 * MiB,
  }),
};

t.test('v1 container: every recomputed line', async (t) => {
  const out = render(HOST, V1);
  const expected: Record<string, number> = {
    MemTotal: 262144,
    MemFree: 262144 - 102400,
    MemAvailable: 262144 - 102400 + 30720 + 20480,
    Buffers: 0,
    Cached: 51200,
    SwapCached: 0,
    Active: 20480 + 30720,
    Inactive: 20480 + 20480,
    'Active(anon)': 20480,
    'Inactive(anon)': 20480,
    'Active(file)': 30720,
    'Inactive(file)': 20480,
    Unevictable: 0,
    Mlocked: 0,
    SwapTotal: 262144, // memsw 512 MiB - RAM 256 MiB
    SwapFree: 262144 - 10240, // memsw usage 110 MiB - RAM usage 100 MiB
    Zswap: 0,
    Zswapped: 0,
    Dirty: 8,
    Writeback: 0,
    AnonPages: 20480 + 20480 - 1024,
    Mapped: 2048,
    Shmem: 1024,
    KReclaimable: 0,
    Slab: 0,
    SReclaimable: 0,
    SUnreclaim: 0,
    KernelStack: 0,
    PageTables: 0,
    NFS_Unstable: 0,
    Bounce: 0,
    WritebackTmp: 0,
    CommitLimit: 131072 + 262144, // host ratio 0.5 of 256 MiB + swap
    Committed_AS: 39936 + 1024 + 10240,
    VmallocUsed: 0,
    Percpu: 0,
    AnonHugePages: 4096,
    ShmemHugePages: 0,
    FileHugePages: 0,
    Balloon: 0,
  };
  for (const [key, kb] of Object.entries(expected)) t.equal(kbOf(out, key), kb, key);
  t.equal(out.get('MemTotal'), 'MemTotal:         262144 kB', 'kernel column layout');
});

t.test('v2 container: a tighter ancestor limit, exact memory.stat keys', async (t) => {
  const out = render(HOST, V2, SWAP_ON, [{ limit: 256 * MiB, swapLimit: Infinity }, { limit: Infinity }]);
  const expected: Record<string, number> = {
    MemTotal: 262144,
    MemFree: 262144 - 153600,
    MemAvailable: 262144 - 153600 + 20480 + 40960 + 3072,
    Cached: 61440,
    SwapCached: 64,
    Active: 22528 + 20480,
    Inactive: 71680 + 40960,
    Unevictable: 4,
    Mlocked: 4,
    SwapTotal: 131072,
    SwapFree: 131072 - 32768,
    Zswap: 1024,
    Zswapped: 3072,
    Dirty: 12,
    Writeback: 4,
    AnonPages: 92160,
    Mapped: 10240,
    Shmem: 2048,
    KReclaimable: 3072,
    Slab: 4096,
    SReclaimable: 3072,
    SUnreclaim: 1024,
    KernelStack: 192,
    PageTables: 400,
    SecPageTables: 0,
    CommitLimit: 131072 + 131072,
    Committed_AS: 92160 + 2048 + 32768,
    VmallocUsed: 16,
    Percpu: 8,
    AnonHugePages: 2048,
  };
  for (const [key, kb] of Object.entries(expected)) t.equal(kbOf(out, key), kb, key);

  // -z / --disable-zswap (LXCFS 7.0): Zswap and Zswapped 0, the rest unchanged.
  const noZswap = render(HOST, V2, { ...SWAP_ON, zswap: false }, [{ limit: 256 * MiB, swapLimit: Infinity }, { limit: Infinity }]);
  t.equal(kbOf(noZswap, 'Zswap'), 0, '-z: Zswap 0');
  t.equal(kbOf(noZswap, 'Zswapped'), 0, '-z: Zswapped 0');
  t.equal(kbOf(noZswap, 'MemAvailable'), expected.MemAvailable, '-z changes nothing else');
});

t.test('machine constants pass through; the file keeps the host line order', async (t) => {
  const out = render(HOST, V2);
  const hostLines = HOST.split('\n').filter(Boolean);
  t.same([...out.keys()], hostLines.map((l) => l.split(':')[0]), 'same keys, same order');
  for (const key of ['VmallocTotal', 'Hugepagesize', 'HugePages_Total', 'DirectMap1G']) {
    t.equal(out.get(key), hostLines.find((l) => l.startsWith(key + ':')), `${key} is the host's`);
  }
  for (const line of out.values()) t.match(line, /^[A-Za-z0-9_()]+:\s+\d+( kB)?$/, 'well-formed');
});

t.test('no unsigned wrap-around', async (t) => {
  // This machine has no swap; LXCFS 5.0.3 prints SwapFree: 18446744073709551364 kB here.
  const unlimited: MemoryReading = { ...V1, limit: Infinity, swapLimit: Infinity, usage: 30 * MiB, swapUsage: 31 * MiB };
  const out = render(HOST_NOSWAP, unlimited);
  t.equal(kbOf(out, 'SwapTotal'), 0);
  t.equal(kbOf(out, 'SwapFree'), 0);
  t.equal(kbOf(out, 'MemTotal'), kbOf(render(HOST_NOSWAP, undefined), 'MemTotal'), 'unlimited: host MemTotal');

  // Limit lowered below current usage: nothing is free, nothing wraps.
  const squeezed = render(HOST, { ...V1, limit: 64 * MiB, usage: 100 * MiB });
  t.equal(kbOf(squeezed, 'MemTotal'), 65536);
  t.equal(kbOf(squeezed, 'MemFree'), 0);
  t.ok(kbOf(squeezed, 'MemAvailable') <= 65536, 'MemAvailable never above MemTotal');

  // Swap usage above the limit (limit lowered): SwapFree 0, used clamped to the total.
  const overSwap = render(HOST, { ...V2, swapLimit: 16 * MiB, swapUsage: 32 * MiB });
  t.equal(kbOf(overSwap, 'SwapTotal'), 16384);
  t.equal(kbOf(overSwap, 'SwapFree'), 0);
});

t.test('swap switches', async (t) => {
  const off = render(HOST, V2, { swap: false, cfs: false });
  t.equal(kbOf(off, 'SwapTotal'), 0, '-u hides swap');
  t.equal(kbOf(off, 'SwapFree'), 0);

  const noAccounting = render(HOST, { ...V1, swapLimit: undefined, swapUsage: undefined });
  t.equal(kbOf(noAccounting, 'SwapTotal'), 0, 'no memsw files: no swap accounting, no swap shown');

  const swappiness0 = render(HOST, { ...V1, swappiness: 0 });
  t.equal(kbOf(swappiness0, 'SwapTotal'), 10240, 'swappiness 0 shows only the swap already in use');
  t.equal(kbOf(swappiness0, 'SwapFree'), 0);

  const memswUnlimited = render(HOST, { ...V1, swapLimit: Infinity });
  t.equal(kbOf(memswUnlimited, 'SwapTotal'), 4194304, 'memsw unlimited: the host swap');
});

t.test('no memory cgroup: the host file as is', async (t) => {
  t.equal(renderMeminfo(collectMeminfo(sources(HOST, undefined)), SWAP_ON), HOST);
});

t.test('garbage numbers still give well-formed lines', async (t) => {
  const huge: MemoryReading = { ...V2, usage: 1e30, stat: stat({ file: 1e40, anon: Number.NaN, shmem: -5 }) };
  const out = render(HOST, huge);
  for (const line of out.values()) t.match(line, /^[A-Za-z0-9_()]+:\s+\d+( kB)?$/);
  for (const key of out.keys()) if (/ kB$/.test(out.get(key)!)) t.ok(BigInt(kbOf(out, key)) < 2n ** 64n, `${key} fits u64`);
});

t.test('host keys named like Object.prototype members pass through', async (t) => {
  // Found by fuzzing: a line "constructor: 5 kB" used to look up Object.prototype.constructor as a formula.
  const host = HOST + 'constructor:           5 kB\n__proto__:             7 kB\ntoString: x\n';
  const out = render(host, V1);
  t.equal(out.get('constructor'), 'constructor:           5 kB');
  t.equal(out.get('__proto__'), '__proto__:             7 kB');
  t.equal(out.get('toString'), 'toString: x');
  t.equal(kbOf(out, 'MemTotal'), 256 * 1024);
});
