// Every non-CPU renderer on the fixture trees (test/fixtures: v1 = legacy, hybrid = this machine's layout,
// v2 = pure cgroup2), through the daemon's own Sources, with exact expected output: proc/uptime,
// proc/swaps, proc/loadavg (and the daemon's LoadavgSampler), proc/diskstats, proc/slabinfo and
// proc/pressure/*. Container c1: init 201 (started at tick 2352), child 202; container c2: init 300 (tick
// 2402); the daemon is pid 100. Host /proc/uptime "5000.50 19000.25". Arithmetic in the comments.

import t, { type Test } from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { LoadavgSampler } from '../src/context/loadavg-sampler.js';
import { calcLoad, EXP_1, EXP_15, EXP_5, FIXED_1 } from '../src/kernel.js';
import { diskstats } from '../src/renderers/diskstats.js';
import { loadavg, renderLoadavg } from '../src/renderers/loadavg.js';
import { meminfo } from '../src/renderers/meminfo.js';
import { pressureCpu, pressureIo, pressureMemory } from '../src/renderers/pressure.js';
import { slabinfo } from '../src/renderers/slabinfo.js';
import { SWAPS_HEADER, swaps } from '../src/renderers/swaps.js';
import { CFS, FIXTURES, fx, OPTS, render, renderWithState, TREES, variant, type Tree } from './helpers/fixture-trees.js';
import { uptime } from '../src/renderers/uptime.js';


const read = (root: string, path: string) => readFileSync(join(root, path), 'utf8');
const HOST_UPTIME = '5000.50 19000.25\n';
const HOST_SWAP_MEMINFO = readFileSync(join(FIXTURES, 'host/meminfo'), 'utf8'); // SwapTotal 4194304 kB

t.test('uptime: the age of the container\'s init, idle from the CPU time used since it started', async (t) => {
  for (const tree of TREES) {
    t.equal(read(fx(tree), 'proc/uptime'), HOST_UPTIME, `${tree}: host uptime fixture`);
    // c1: init 201 started at tick 2352 / 100 Hz = 23.52 s; age = 5000.50 - 23.52 = 4976.98.
    // The cgroup's counter says 126.2526 s (v1 cpuacct.usage 126252600000 ns, v2 usage_usec 126252600),
    // but c1's processes used only 201: utime 45 + stime 19 and 202: 46 + 20 ticks = 130 ticks = 1.30 s
    // (the rest ran in the cgroup before this init: a container restarted into its old cgroup).
    // idle = 4976.98 x 1 CPU (cpuset {1}) - 1.30 = 4975.68.
    t.equal(render(fx(tree), 202, uptime), '4976.98 4975.68\n', `${tree}: c1 from its child`);
    t.equal(render(fx(tree), 201, uptime), '4976.98 4975.68\n', `${tree}: c1 from its init`);
    // c2: init 300 at tick 2402 = 24.02 s; age = 4976.48; 2 CPUs (cpuset 0-1); its one process used
    // 46 + 18 ticks = 0.64 s: idle = 4976.48 x 2 - 0.64 = 9952.32.
    t.equal(render(fx(tree), 300, uptime), '4976.48 9952.32\n', `${tree}: c2 on 2 CPUs`);
    // --enable-cfs: c2's ancestor /lxc allows 1.5 CPUs -> ceil 2: unchanged.
    t.equal(render(fx(tree), 300, uptime, CFS), '4976.48 9952.32\n', `${tree}: c2 with --enable-cfs`);
    // Host callers (the daemon, pid 1): the host file verbatim.
    t.equal(render(fx(tree), 100, uptime), HOST_UPTIME, `${tree}: the daemon`);
    t.equal(render(fx(tree), 1, uptime), HOST_UPTIME, `${tree}: host init`);
  }
});

t.test('uptime: later renders count the cgroup\'s usage from the kept baseline; a new init starts over', async (t) => {
  for (const tree of ['v1', 'v2'] as const) {
    const usageFile = tree === 'v1' ? 'sys/fs/cgroup/cpu,cpuacct/lxc/c1/cpuacct.usage' : 'sys/fs/cgroup/lxc/c1/cpu.stat';
    const usage = (seconds: number) => (tree === 'v1' ? `${seconds * 1e9}\n` : `usage_usec ${seconds * 1e6}\nuser_usec ${seconds * 1e6}\nsystem_usec 0\n`);
    const first = renderWithState(fx(tree), 202, uptime);
    t.equal(first.text, '4976.98 4975.68\n');
    t.match(first.state, { v: 2, initStart: 2352, offset: 126.2526 - 1.3 }, `${tree}: the baseline: what the counter held before init 201`);
    // 20 s later with 10 more CPU seconds in the cgroup: age 4996.98, idle 4975.68 + 20 x 1 CPU - 10 =
    // 4985.68. The processes are not summed again: 202's utime of 5000 ticks (50 s) would otherwise move
    // the baseline.
    const later = variant(t, tree, { 'proc/uptime': '5020.50 19040.25\n', [usageFile]: usage(136.2526), 'proc/202/stat': read(fx(tree), 'proc/202/stat').replace(' 46 20 0 0 ', ' 5000 20 0 0 ') });
    const second = renderWithState(later, 202, uptime, OPTS, first.state);
    t.equal(second.text, '4996.98 4985.68\n', `${tree}: 10 s more busy in 20 s`);
    // 30 s pass with 40 CPU seconds used (more than its one CPU can give): idle stays 4985.68, never lower.
    const busier = variant(t, tree, { 'proc/uptime': '5050.50 19100.25\n', [usageFile]: usage(176.2526) });
    t.equal(renderWithState(busier, 202, uptime, OPTS, second.state).text, '5026.98 4985.68\n', `${tree}: an interval busier than its CPUs adds no idle and takes none`);
    // c2 (cpuset 0-1, idle 9952.32 at age 4976.48) shrinks to {1}; 10 s later with no more usage its idle
    // grows by 10 s x 1 CPU to 9962.32 (computed afresh it would be 4986.48 x 1 - 0.64 = 4985.84: a drop).
    const c2 = renderWithState(fx(tree), 300, uptime);
    t.equal(c2.text, '4976.48 9952.32\n');
    const shrunk = variant(t, tree, { 'proc/uptime': '5010.50 19020.25\n', [tree === 'v1' ? 'sys/fs/cgroup/cpuset/lxc/c2/cpuset.cpus' : 'sys/fs/cgroup/lxc/c2/cpuset.cpus']: '1\n', ...(tree === 'v2' ? { 'sys/fs/cgroup/lxc/c2/cpuset.cpus.effective': '1\n' } : {}) });
    t.equal(renderWithState(shrunk, 300, uptime, OPTS, c2.state).text, '4986.48 9962.32\n', `${tree}: a cpuset shrink never lowers idle`);
    // A state from the previous renderers (v1: no idle kept) is read for its offset; idle is computed anew.
    t.equal(renderWithState(later, 202, uptime, OPTS, { v: 1, initStart: 2352, offset: 126.2526 - 1.3 }).text, '4996.98 4985.68\n', `${tree}: a v1 state`);
    // A state from another init (the container restarted): measured again from its processes.
    const other = { v: 1, initStart: 1000, offset: 0 };
    t.equal(renderWithState(fx(tree), 202, uptime, OPTS, other).text, '4976.98 4975.68\n', `${tree}: a state of another init is not used`);
    t.equal(renderWithState(fx(tree), 202, uptime, OPTS, { v: 1, initStart: 2352, offset: 'x' }).text, '4976.98 4975.68\n', `${tree}: a malformed state is not used`);
  }
});

t.test('uptime: visible CPUs with --enable-cfs, idle never negative, unknown usage', async (t) => {
  // /lxc quota 50000/100000 = 0.5 -> c2 sees 1 CPU with --enable-cfs: idle = 4976.48 - 0.64 = 4975.84.
  const v1Half = variant(t, 'v1', { 'sys/fs/cgroup/cpu,cpuacct/lxc/cpu.cfs_quota_us': '50000\n' });
  t.equal(render(v1Half, 300, uptime, CFS), '4976.48 4975.84\n', 'v1 c2, ancestor quota 0.5');
  t.equal(render(v1Half, 300, uptime, OPTS), '4976.48 9952.32\n', 'v1 c2, quota ignored without --enable-cfs');
  const v2Half = variant(t, 'v2', { 'sys/fs/cgroup/lxc/cpu.max': '50000 100000\n' });
  t.equal(render(v2Half, 300, uptime, CFS), '4976.48 4975.84\n', 'v2 c2, ancestor quota 0.5');

  // More CPU time since the init started than age x CPUs (the processes' times say 9999 s): idle 0, not
  // negative.
  const busyStat = read(fx('v1'), 'proc/201/stat').replace(' 45 19 0 0 ', ' 45 19 999900 0 ');
  const busyV1 = variant(t, 'v1', { 'sys/fs/cgroup/cpu,cpuacct/lxc/c1/cpuacct.usage': '9999000000000\n', 'proc/201/stat': busyStat });
  t.equal(render(busyV1, 202, uptime), '4976.98 0.00\n', 'v1: idle clamped at 0');
  const busyV2 = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/cpu.stat': 'usage_usec 9999000000\nuser_usec 9000000000\nsystem_usec 999000000\n', 'proc/201/stat': busyStat.replace(/^(\S+ \S+ )S/, '$1S') });
  t.equal(render(busyV2, 202, uptime), '4976.98 0.00\n', 'v2: idle clamped at 0');

  // No usage source: idle = age x CPUs.
  const unknownV1 = variant(t, 'v1', { 'sys/fs/cgroup/cpu,cpuacct/lxc/c1/cpuacct.usage': null });
  t.equal(render(unknownV1, 202, uptime), '4976.98 4976.98\n', 'v1 without cpuacct.usage');
  const unknownV2 = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/cpu.stat': null });
  t.equal(render(unknownV2, 202, uptime), '4976.98 4976.98\n', 'v2 without cpu.stat');
});

/** meminfo's SwapTotal and SwapTotal - SwapFree, kB, for comparison with /proc/swaps. */
function meminfoSwap(text: string): { total: number; used: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)![1]);
  return { total: kb('SwapTotal'), used: kb('SwapTotal') - kb('SwapFree') };
}

/** The kernel's swaps layout for one virtual entry (mm/swapfile.c: swap_show). */
const swapEntry = (size: number, used: number) => `none${' '.repeat(36)}virtual\t\t${size}\t\t${used}\t\t0\n`;

t.test('swaps: one virtual entry equal to meminfo\'s swap', async (t) => {
  const header = `${SWAPS_HEADER}\n`;
  t.equal(header, 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n', 'the kernel\'s header');
  const withSwap = (tree: Tree, edits: Record<string, string | null> = {}) => variant(t, tree, { 'proc/meminfo': HOST_SWAP_MEMINFO, ...edits });
  const check = (t: Test, root: string, caller: number, expected: string, options = OPTS) => {
    const text = render(root, caller, swaps, options);
    t.equal(text, expected);
    // Size and Used are meminfo's SwapTotal and SwapTotal - SwapFree, whatever the case.
    const mem = meminfoSwap(render(root, caller, meminfo, options));
    const entry = text.split('\n')[1]!.split(/\s+/);
    t.same(entry.length > 1 ? { total: Number(entry[2]), used: Number(entry[3]) } : { total: 0, used: 0 }, mem, 'matches meminfo');
  };

  for (const tree of TREES) check(t, fx(tree), 202, header); // the fixture host has no swap: SwapTotal 0

  // Host swap 4 GiB. hybrid c1: memsw limit 384 MiB - limit 256 MiB = 128 MiB = 131072 kB of swap;
  // used = memsw usage 154 MiB - usage 150 MiB = 4 MiB = 4096 kB.
  check(t, withSwap('hybrid'), 202, header + swapEntry(131072, 4096));
  // v2 c1: memory.swap.max 128 MiB = 131072 kB, memory.swap.current 4 MiB = 4096 kB.
  check(t, withSwap('v2'), 202, header + swapEntry(131072, 4096));
  // v1: swap accounting off (no memsw files): header only.
  check(t, withSwap('v1'), 202, header);
  // -u: header only.
  check(t, withSwap('hybrid'), 202, header, { swap: false, cfs: false });
  check(t, withSwap('v2'), 202, header, { swap: false, cfs: false });
  // A limit that leaves no swap: v2 swap.max 0; v1 memsw limit = memory limit (256 MiB).
  check(t, withSwap('v2', { 'sys/fs/cgroup/lxc/c1/memory.swap.max': '0\n' }), 202, header);
  // (the kernel reflects a limit write in memory.stat's hierarchical_* lines too, which the daemon reads)
  const c1Stat = readFileSync(join(fx('hybrid'), 'sys/fs/cgroup/memory/lxc/c1/memory.stat'), 'utf8');
  check(t, withSwap('hybrid', {
    'sys/fs/cgroup/memory/lxc/c1/memory.memsw.limit_in_bytes': '268435456\n',
    'sys/fs/cgroup/memory/lxc/c1/memory.stat': c1Stat.replace(/^hierarchical_memsw_limit \d+$/m, 'hierarchical_memsw_limit 268435456'),
  }), 202, header);
  // hybrid c2: swappiness 0 and no swap in use (memsw usage = usage): total = min(total, used 0) = 0.
  check(t, withSwap('hybrid'), 300, header);
  // swappiness 0 with 4 MiB in use: total = used = 4096 kB.
  check(t, withSwap('hybrid', { 'sys/fs/cgroup/memory/lxc/c1/memory.swappiness': '0\n' }), 202, header + swapEntry(4096, 4096));
  // More in use (4 MiB) than swap.max (2 MiB = 2048 kB): meminfo SwapFree is 0, so Used = Size = 2048.
  check(t, withSwap('v2', { 'sys/fs/cgroup/lxc/c1/memory.swap.max': '2097152\n' }), 202, header + swapEntry(2048, 2048));
});

t.test('loadavg: host file without the sampler, the kernel\'s formatting', async (t) => {
  for (const tree of TREES) {
    t.equal(render(fx(tree), 202, loadavg), '0.42 0.30 0.21 1/200 12345\n', `${tree}: no -l, the host file`);
    t.equal(render(fx(tree), 202, loadavg), read(fx(tree), 'proc/loadavg'));
  }
  const fmt = (fixed: [number, number, number], running = 2, total = 17, lastPid = 42) => renderLoadavg({ host: '', load: { fixed, running, total, lastPid } }, OPTS);
  // fs/proc/loadavg.c: x + FIXED_1/200 (= 2048/200 = 10 in C), then x >> 11 "." ((x & 2047) * 100) >> 11.
  // 2048 + 10 = 2058 -> 1, (10*100)>>11 = 0 -> "1.00"; 1024 + 10 = 1034 -> 0, 103400>>11 = 50 -> "0.50";
  // 256 + 10 = 266 -> 26600>>11 = 12 -> "0.12" (adding 10.24 instead would give 13).
  t.equal(fmt([2048, 1024, 256]), '1.00 0.50 0.12 2/17 42\n');
  // 0 + 10 -> 1000>>11 = 0 -> "0.00"; 2047 + 10 = 2057 -> 1, (9*100)>>11 = 0 -> "1.00";
  // 11250 + 10 = 11260 -> 5, ((11260-10240)*100)>>11 = 102000>>11 = 49 -> "5.49".
  t.equal(fmt([0, 2047, 11250], 0, 1, 1), '0.00 1.00 5.49 0/1 1\n');
  // 164 + 10 = 174 -> 17400>>11 = 8 -> "0.08"; 34 + 10 -> 4400>>11 = 2; 11 + 10 -> 2100>>11 = 1.
  t.equal(fmt([164, 34, 11], 1, 2, 5), '0.08 0.02 0.01 1/2 5\n');
  t.equal(fmt([NaN, -5, Infinity], NaN, -1, Infinity), '0.00 0.00 0.00 0/0 0\n', 'garbage prints as 0, never NaN');
});

t.test('calcLoad: the kernel\'s fixed-point steps', async (t) => {
  t.equal(FIXED_1, 2048);
  t.same([EXP_1, EXP_5, EXP_15], [1884, 2014, 2037]);
  // From 0 with 1 active task (kernel/sched/loadavg.c: calc_load, rounding up while rising):
  // EXP_1:  (0*1884 + 2048*(2048-1884) + 2047) / 2048 = (335872 + 2047) / 2048 = 337919 / 2048 = 164
  // EXP_5:  (2048*34 + 2047) / 2048 = 71679 / 2048 = 34;  EXP_15: (2048*11 + 2047) / 2048 = 24575 / 2048 = 11
  t.equal(calcLoad(0, 1884, 1), 164);
  t.equal(calcLoad(0, 2014, 1), 34);
  t.equal(calcLoad(0, 2037, 1), 11);
  // Second step: (164*1884 + 335872 + 2047) / 2048 = (308976 + 337919) / 2048 = 646895 / 2048 = 315.
  t.equal(calcLoad(164, 1884, 1), 315);
  // Falling (no task): no rounding term, 164*1884 / 2048 = 308976 / 2048 = 150.87 -> 150.
  t.equal(calcLoad(164, 1884, 0), 150);
  // Steady at exactly 1 task: (2048*1884 + 2048*164 + 2047) / 2048 = 2048 + 2047/2048 -> 2048.
  t.equal(calcLoad(2048, 1884, 1), 2048);
  t.equal(calcLoad(0, 1884, 0), 0, 'idle stays 0 (2047/2048 rounds down)');
  // 12 steps (one minute) of 1 task: each step as above.
  const steps: number[] = [];
  let load = 0;
  for (let i = 0; i < 12; i++) steps.push((load = calcLoad(load, 1884, 1)));
  t.same(steps, [164, 315, 454, 582, 700, 808, 908, 1000, 1084, 1162, 1233, 1299]);
  // and that approaches 2048 x (1 - (1884/2048)^12) = 1295.79, the real-valued decay (rounding up adds
  // under one unit per step).
  const ideal = 2048 * (1 - (1884 / 2048) ** 12);
  t.ok(steps[11]! >= ideal && steps[11]! - ideal < 12, `1299 vs ${ideal.toFixed(2)}`);
});

/** A sampler on `root` whose ticks run synchronously and whose clock the test moves. */
function manualSampler(root: string, opts: { exists?: (dir: string) => boolean } = {}) {
  let now = 0;
  const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
  const sampler = new LoadavgSampler(reader, { intervalMs: 5000, now: () => now, schedule: () => () => {}, defer: (fn) => fn(), ...opts });
  return { sampler, advance: (ms: number) => (now += ms) };
}

t.test('loadavg with the sampler: a container\'s own threads', async (t) => {
  for (const tree of TREES) {
    const { sampler, advance } = manualSampler(fx(tree));
    // c1's threads: 201 (S) and 202 (v1 S, hybrid R, v2 D): total 2. The 4th field counts R only (the
    // kernel's nr_running); the average counts R + D. lastPid = the newest thread, 202, in c1's numbering:
    // NSpid "202 5" -> 5.
    const running = tree === 'hybrid' ? 1 : 0;
    const active = tree === 'v1' ? 0 : 1;
    t.equal(render(fx(tree), 202, loadavg, OPTS, sampler), `0.00 0.00 0.00 ${running}/2 5\n`, `${tree}: first read, no history yet`);
    t.equal(sampler.size, 1);
    advance(5000);
    sampler.tick();
    // One 5 s step from 0 with `active` tasks: [164, 34, 11] -> "0.08 0.02 0.01" (see above), or 0.
    t.equal(render(fx(tree), 202, loadavg, OPTS, sampler), active ? `0.08 0.02 0.01 ${running}/2 5\n` : '0.00 0.00 0.00 0/2 5\n', `${tree}: after one tick`);
    t.equal(render(fx(tree), 201, loadavg, OPTS, sampler), render(fx(tree), 202, loadavg, OPTS, sampler), `${tree}: same container, same figures`);
    // c2: init 300 (S) alone: 0/1, lastPid 1 (NSpid "300 1"). A second watched container.
    t.equal(render(fx(tree), 300, loadavg, OPTS, sampler), '0.00 0.00 0.00 0/1 1\n', `${tree}: c2`);
    t.equal(sampler.size, 2);
    // A host process (the daemon, 100): the kernel's own file, and nothing sampled for it.
    t.equal(render(fx(tree), 100, loadavg, OPTS, sampler), read(fx(tree), 'proc/loadavg'), `${tree}: a host caller gets the host's loadavg even with -l`);
    t.equal(sampler.size, 2, 'no host cgroup watched');
    sampler.stop();
    t.notOk(sampler.running);
  }
});

t.test('LoadavgSampler: watches a cgroup from its first view, forgets it once deleted', async (t) => {
  // Temporary copies of v2's c1 and c2 cgroup directories (cgroup.threads: c1/init.scope 201, c1/app 202,
  // c2 300), read against v2's process table (202 is D, 201 and 300 are S).
  const scratch = mkdtempSync(join(tmpdir(), 'lxcfs-ts-sampler-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const c1 = join(scratch, 'c1');
  const c2 = join(scratch, 'c2');
  cpSync(join(fx('v2'), 'sys/fs/cgroup/lxc/c1'), c1, { recursive: true });
  cpSync(join(fx('v2'), 'sys/fs/cgroup/lxc/c2'), c2, { recursive: true });
  let armed = 0;
  let now = 0;
  const sampler = new LoadavgSampler(new CgroupReader({ procRoot: join(fx('v2'), 'proc'), fsRoot: fx('v2') }), {
    intervalMs: 5000,
    now: () => now,
    schedule: () => (armed++, () => armed--),
    defer: (fn) => fn(),
  });

  t.equal(sampler.size, 0);
  t.notOk(sampler.running, 'no timer before anything is watched');
  t.same(sampler.view(c1, 2), { fixed: [0, 0, 0], running: 0, total: 2, lastPid: 5 }, 'first view: counted, no history (202 is D: not running)');
  t.equal(sampler.size, 1);
  t.equal(armed, 1, 'one timer while something is watched');
  now += 5000;
  sampler.tick();
  t.same(sampler.view(c1, 2).fixed, [164, 34, 11], 'one step with 1 active task (D counts for the average)');
  t.same(sampler.view(c2, 2), { fixed: [0, 0, 0], running: 0, total: 1, lastPid: 1 });
  t.equal(sampler.size, 2);
  t.equal(armed, 1, 'still one timer for two containers');

  rmSync(c1, { recursive: true });
  now += 5000;
  sampler.tick();
  t.equal(sampler.size, 1, 'c1 forgotten at the first tick after its cgroup is gone');
  t.same(sampler.view(c2, 2).fixed, [0, 0, 0], 'c2 stepped with 0 active: stays 0');

  rmSync(c2, { recursive: true });
  now += 5000;
  sampler.tick();
  t.equal(sampler.size, 0, 'nothing watched');
  t.equal(armed, 0, 'and no timer is armed');
  t.notOk(sampler.running);
});

t.test('diskstats: every host disk with the cgroup\'s own I/O in the kernel\'s layout', async (t) => {
  // Host devices: 7:0 loop0 (10 reads on the host), 254:0 vda, 254:1 vda1. Layout "%4d %7d %s" + 17
  // counters: reads, merged, sectors, ms, writes, merged, sectors, ms, in flight, io ms, weighted ms,
  // discards, merged, sectors, ms, flushes, ms. Only the I/O counts and sectors (bytes / 512) have a
  // per-cgroup source; a device the container did no I/O on has zeros.
  const zeros = (maj: string, min: string, name: string) => `${maj.padStart(4)} ${min.padStart(7)} ${name}${' 0'.repeat(17)}\n`;
  // v1 c1 (blkio.throttle.*_recursive): vda read 3145728 B / 512 = 6144 sectors in 48, wrote 8192 B = 16
  // sectors in 2, discarded 4096 B = 8 sectors in 1; vda1 read 1024 B = 2 sectors in 1; loop0 all 0.
  t.equal(
    render(fx('v1'), 202, diskstats),
    zeros('7', '0', 'loop0') + ' 254       0 vda 48 0 6144 0 2 0 16 0 0 0 0 1 0 8 0 0 0\n' + ' 254       1 vda1 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n',
    'v1 c1',
  );
  // hybrid c1 (blkio.throttle.*_recursive): vda read 1048576 B = 2048 sectors in 16, wrote 2097152 B = 4096
  // sectors in 32.
  t.equal(render(fx('hybrid'), 202, diskstats), zeros('7', '0', 'loop0') + ' 254       0 vda 16 0 2048 0 32 0 4096 0 0 0 0 0 0 0 0 0 0\n' + zeros('254', '1', 'vda1'), 'hybrid c1');
  // v2 c1 (io.stat "254:0 rbytes=4194304 wbytes=1048576 rios=64 wios=16 dbytes=512 dios=1", 7:0 all 0):
  // 4194304/512 = 8192, 1048576/512 = 2048, 512/512 = 1.
  t.equal(render(fx('v2'), 202, diskstats), zeros('7', '0', 'loop0') + ' 254       0 vda 64 0 8192 0 16 0 2048 0 0 0 0 1 0 1 0 0 0\n' + zeros('254', '1', 'vda1'), 'v2 c1');
  for (const tree of TREES) {
    for (const line of render(fx(tree), 202, diskstats).split('\n').filter(Boolean)) t.equal(line.trim().split(/\s+/).length, 20, `${tree}: 20 fields`);
    t.equal(render(fx(tree), 100, diskstats), read(fx(tree), 'proc/diskstats'), `${tree}: a host caller gets the host file`);
  }

  // v1 without the recursive files: the cgroup's own blkio.throttle.io_service_bytes / io_serviced
  // (vda read 4096 B = 8 sectors in 1).
  const flat = variant(t, 'v1', {
    'sys/fs/cgroup/blkio/lxc/c1/blkio.throttle.io_service_bytes_recursive': null,
    'sys/fs/cgroup/blkio/lxc/c1/blkio.throttle.io_serviced_recursive': null,
  });
  t.equal(render(flat, 202, diskstats), zeros('7', '0', 'loop0') + ' 254       0 vda 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n' + zeros('254', '1', 'vda1'), 'v1 non-recursive fallback');

  // v2: names and order come from the host's diskstats; 8:0 is not a host device (omitted), vda1 follows vda.
  const order = variant(t, 'v2', {
    'sys/fs/cgroup/lxc/c1/io.stat':
      '8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n254:1 rbytes=0 wbytes=4096 rios=0 wios=1 dbytes=0 dios=0\n254:0 rbytes=1024 wbytes=0 rios=2 wios=0 dbytes=0 dios=0\n7:0 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n',
  });
  t.equal(render(order, 202, diskstats), zeros('7', '0', 'loop0') + ' 254       0 vda 2 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n' + ' 254       1 vda1 0 0 0 0 1 0 8 0 0 0 0 0 0 0 0 0 0\n', 'v2: host names and order');
  // An io cgroup that did no I/O at all (or an empty io.stat, as a fresh cgroup has): every disk, zeros
  // (iostat and vmstat -d still find the devices).
  const idle = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/io.stat': '' });
  t.equal(render(idle, 202, diskstats), zeros('7', '0', 'loop0') + zeros('254', '0', 'vda') + zeros('254', '1', 'vda1'), 'v2: no I/O yet, every disk with zeros');
  // Loop and RAM devices the host never used are left out (as iostat does); used ones stay.
  const hostDisks = read(fx('v2'), 'proc/diskstats').replace(/^ +7 +0 loop0 .*$/m, '   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0') + '   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n   7       1 loop1 0 0 0 0 3 0 6 0 0 0 0 0 0 0 0 0 0\n';
  const unused = variant(t, 'v2', { 'proc/diskstats': hostDisks, 'sys/fs/cgroup/lxc/c1/io.stat': '' });
  t.equal(render(unused, 202, diskstats), zeros('254', '0', 'vda') + zeros('254', '1', 'vda1') + zeros('7', '1', 'loop1'), 'unused loop0 and ram0 left out, loop1 (written on the host) kept');
  // io.stat unreadable: the host file, as LXCFS does for any missing input.
  const missing = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/io.stat': null });
  t.equal(render(missing, 202, diskstats), read(fx('v2'), 'proc/diskstats'), 'v2 without io.stat: host file');
});

t.test('slabinfo: memory.kmem.slabinfo where it has content, else the host\'s', async (t) => {
  t.equal(slabinfo.mode, 0o400, 'root-only, like the kernel\'s');
  const own = read(fx('v1'), 'sys/fs/cgroup/memory/lxc/c1/memory.kmem.slabinfo');
  t.match(own, /^dentry\s+420/m, 'fixture: c1 has its own slab caches');
  t.equal(render(fx('v1'), 202, slabinfo), own, 'v1 c1: its memory.kmem.slabinfo');
  t.equal(read(fx('hybrid'), 'sys/fs/cgroup/memory/lxc/c1/memory.kmem.slabinfo'), '', 'fixture: hybrid c1 has the file, empty (current kernels)');
  t.equal(render(fx('hybrid'), 202, slabinfo), read(fx('hybrid'), 'proc/slabinfo'), 'hybrid c1: empty file -> host');
  t.equal(render(fx('v1'), 300, slabinfo), read(fx('v1'), 'proc/slabinfo'), 'v1 c2: no file -> host');
  t.equal(render(fx('v2'), 202, slabinfo), read(fx('v2'), 'proc/slabinfo'), 'v2: no per-cgroup slabinfo -> host');
  t.match(read(fx('v2'), 'proc/slabinfo'), /^host_cache /m);
});

t.test('pressure: the unified cgroup\'s files, else the host\'s', async (t) => {
  for (const [file, name] of [[pressureCpu, 'cpu'], [pressureIo, 'io'], [pressureMemory, 'memory']] as const) {
    t.equal(file.path, `proc/pressure/${name}`);
    const host = read(fx('v2'), `proc/pressure/${name}`);
    t.match(host, /avg10=9\.99/, 'fixture: the host\'s pressure differs from every cgroup\'s');
    // hybrid: the cgroup2 mount at /sys/fs/cgroup/unified has the files even with no controller enabled.
    t.equal(render(fx('hybrid'), 202, file), read(fx('hybrid'), `sys/fs/cgroup/unified/lxc/c1/${name}.pressure`), `hybrid c1 ${name}`);
    t.equal(render(fx('hybrid'), 300, file), read(fx('hybrid'), `sys/fs/cgroup/unified/lxc/c2/${name}.pressure`), `hybrid c2 ${name}`);
    t.equal(render(fx('v2'), 202, file), read(fx('v2'), `sys/fs/cgroup/lxc/c1/${name}.pressure`), `v2 c1 ${name}`);
    t.not(render(fx('v2'), 202, file), host);
    // v1: no cgroup2 mount -> the host's /proc/pressure file.
    t.equal(render(fx('v1'), 202, file), read(fx('v1'), `proc/pressure/${name}`), `v1 ${name}: host`);
  }
  t.equal(render(fx('hybrid'), 202, pressureCpu), 'some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.05 total=45678\n', 'hybrid c1 cpu, exactly');
  // A cgroup without the file (or with an empty one): the host's, file by file.
  const partial = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/io.pressure': null, 'sys/fs/cgroup/lxc/c1/memory.pressure': '' });
  t.equal(render(partial, 202, pressureIo), read(fx('v2'), 'proc/pressure/io'), 'io.pressure missing -> host');
  t.equal(render(partial, 202, pressureMemory), read(fx('v2'), 'proc/pressure/memory'), 'memory.pressure empty -> host');
  t.equal(render(partial, 202, pressureCpu), read(fx('v2'), 'sys/fs/cgroup/lxc/c1/cpu.pressure'), 'cpu.pressure still the cgroup\'s');
});
