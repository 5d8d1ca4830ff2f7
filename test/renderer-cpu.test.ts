// The CPU view on the fixture trees (test/fixtures: v1 = legacy, hybrid = this machine's layout, v2 = pure
// cgroup2), rendered through the daemon's own Sources with exact expected output: proc/cpuinfo, proc/stat
// and sys/devices/system/cpu/{online,present,possible}, which must always agree.
//
// Fixture facts used below (test/fixtures/README.md): the host has 4 CPUs (cpuinfo, stat, online 0-3);
// container c1 (init 201, child 202) has cpuset {1} and quota 100000/100000; container c2 (init 300)
// inherits cpuset 0-1 and has no quota of its own; their parent /lxc has quota 150000/100000 (1.5 CPUs).
// Host /proc/stat per CPU (user nice system idle iowait irq softirq steal guest guest_nice):
//   cpu0, cpu2, cpu3: 1000 10 500 10000 100 0 10 0 0 0   busy = user+nice+system+irq+softirq+steal = 1520,
//                                                        total = busy + idle + iowait = 11620
//   cpu1:             6000 10 500 10000 100 0 10 0 0 0   busy = 6520, total = 16620
// cpuacct.usage_all of c1 and c2 (ns -> ticks at USER_HZ 100: / 1e7):
//   row 0: user 5643.3, system 594.33 ticks; row 1: user 5743.3, system 644.33 ticks
// v2 cpu.stat of c1 and c2: user 11386.6, system 1238.66 ticks (the same totals, no per-CPU split).
// A first render (no state kept yet) gives each visible CPU min(its own usage, host busy), then spreads the
// usage that has no line of its own (on CPUs not shown; on v2 all of it) over the busy time left, in
// proportion to it; user/system as the usage splits; idle = total - busy (src/renderers/cpu-accounting.ts).
// Scenarios that need other cgroup values run on a private copy of a tree (`variant`).

import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuinfo, renderCpuinfo } from '../src/renderers/cpuinfo.js';
import { renderStat, stat } from '../src/renderers/stat.js';
import { cpuOnline, cpuPossible, cpuPresent } from '../src/renderers/sys-cpu.js';
import type { RenderOptions } from '../src/contract.js';
import { CFS, FIXTURES, fx, OPTS, render, TREES, variant, type Tree } from './helpers/fixture-trees.js';


/** Where each tree keeps a cgroup's files for a controller. */
function cg(tree: Tree, controller: 'cpuset' | 'cpu' | 'cpuacct', cgroup: string, file: string): string {
  if (tree === 'v2') return `sys/fs/cgroup${cgroup}/${file}`;
  const hierarchy = tree === 'v1' && controller !== 'cpuset' ? 'cpu,cpuacct' : controller;
  return `sys/fs/cgroup/${hierarchy}${cgroup}/${file}`;
}

/** The quota file(s) of a cgroup: v1 cfs_quota_us (period 100000 in every fixture), v2 cpu.max. */
function quota(tree: Tree, cgroup: string, quotaUs: number | 'max'): Record<string, string> {
  if (tree === 'v2') return { [cg(tree, 'cpu', cgroup, 'cpu.max')]: `${quotaUs} 100000\n` };
  return { [cg(tree, 'cpu', cgroup, 'cpu.cfs_quota_us')]: `${quotaUs === 'max' ? -1 : quotaUs}\n` };
}

const hostCpuinfo = readFileSync(join(FIXTURES, 'v1/proc/cpuinfo'), 'utf8');
/** The host's cpuinfo blocks (identical in the three trees), without their blank separators. */
const hostBlocks = hostCpuinfo.split('\n\n').filter(Boolean);
/** The expected cpuinfo for host CPUs `cpus`: their blocks in order, under their host ids, blank-line ended. */
const cpuinfoOf = (cpus: number[]) => cpus.map((cpu) => hostBlocks[cpu]! + '\n\n').join('');

const STAT_TAIL = (running: number, blocked: number) =>
  `intr 12345 1 2 3\nctxt 777777\nbtime 1700000000\nprocesses 4242\nprocs_running ${running}\nprocs_blocked ${blocked}\nsoftirq 99 1 2 3 4 5 6 7 8 9 10\n`;

t.test('fixture facts the expectations rely on', async (t) => {
  t.equal(hostBlocks.length, 4, '4 host CPUs');
  t.ok(hostCpuinfo.endsWith('power management:\n\n'), 'x86 cpuinfo ends with a blank line');
  for (const tree of TREES) {
    t.equal(readFileSync(join(fx(tree), 'proc/cpuinfo'), 'utf8'), hostCpuinfo, `${tree}: same host cpuinfo`);
    t.equal(readFileSync(join(fx(tree), 'sys/devices/system/cpu/online'), 'utf8'), '0-3\n');
  }
});

t.test('cpuinfo: only the cpuset\'s CPUs, under their host ids', async (t) => {
  for (const tree of TREES) {
    // c1: cpuset {1} -> host block 1, still "processor : 1"; init (201) and child (202) see the same.
    t.equal(render(fx(tree), 202, cpuinfo), cpuinfoOf([1]), `${tree}: c1 from its child`);
    t.equal(render(fx(tree), 201, cpuinfo), cpuinfoOf([1]), `${tree}: c1 from its init`);
    t.match(render(fx(tree), 202, cpuinfo), /^processor\t: 1\n/, 'the host id: pinning to it works');
    // c2: inherits cpuset 0-1 -> host blocks 0 and 1.
    t.equal(render(fx(tree), 300, cpuinfo), cpuinfoOf([0, 1]), `${tree}: c2`);
    // {1,3}: host blocks 1 and 3, as processors 1 and 3.
    const root = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '1,3\n' });
    t.equal(render(root, 202, cpuinfo), cpuinfoOf([1, 3]), `${tree}: cpuset {1,3}`);
  }
});

t.test('cpuinfo: a cpuset CPU that is offline is not shown', async (t) => {
  // cpuset {1,3}, but only CPUs 0-1 online: {1} -> one processor.
  const root = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/cpuset.cpus': '1,3\n', 'sys/devices/system/cpu/online': '0-1\n' });
  t.equal(render(root, 202, cpuinfo), cpuinfoOf([1]));
});

t.test('cpuinfo: --enable-cfs limits to ceil(quota/period), tightest ancestor', async (t) => {
  for (const tree of TREES) {
    // c1 on all 4 CPUs with quota 50000/100000 = 0.5 CPU: ceil(0.5) = 1 processor with --enable-cfs.
    const half = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 50000) });
    t.equal(render(half, 202, cpuinfo, CFS), cpuinfoOf([0]), `${tree}: quota 0.5 -> 1 processor`);
    t.equal(render(half, 202, cpuinfo, OPTS), hostCpuinfo, `${tree}: quota ignored without --enable-cfs (all 4, = host file)`);

    // c1's own quota 300000/100000 = 3 CPUs, but /lxc keeps 150000/100000 = 1.5: min = 1.5, ceil = 2.
    const loose = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 300000) });
    t.equal(render(loose, 202, cpuinfo, CFS), cpuinfoOf([0, 1]), `${tree}: ancestor quota 1.5 tighter than own 3 -> 2`);

    // c1 without a quota of its own (-1 / max), /lxc at 50000/100000 = 0.5 -> 1.
    const none = variant(t, tree, {
      [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n',
      ...quota(tree, '/lxc/c1', 'max'),
      ...quota(tree, '/lxc', 50000),
    });
    t.equal(render(none, 202, cpuinfo, CFS), cpuinfoOf([0]), `${tree}: only the ancestor has a quota (0.5) -> 1`);

    // The fixture as is: c1 quota 1 CPU and cpuset {1} -> 1; c2 (no quota) under /lxc 1.5 -> ceil 2 of its 2.
    t.equal(render(fx(tree), 202, cpuinfo, CFS), cpuinfoOf([1]), `${tree}: c1 with --enable-cfs`);
    t.equal(render(fx(tree), 300, cpuinfo, CFS), cpuinfoOf([0, 1]), `${tree}: c2 with --enable-cfs`);
  }
});

t.test('cpuinfo: empty cpuset.cpus falls back to the effective list, then to the parent', async (t) => {
  // v2: cpuset.cpus "" -> cpuset.cpus.effective "2-3".
  const effective = variant(t, 'v2', { 'sys/fs/cgroup/lxc/c1/cpuset.cpus': '\n', 'sys/fs/cgroup/lxc/c1/cpuset.cpus.effective': '2-3\n' });
  t.equal(render(effective, 202, cpuinfo), cpuinfoOf([2, 3]), 'v2: cpuset.cpus.effective');
  // v2: both empty in c1 -> the parent /lxc's cpuset.cpus "3".
  const parent = variant(t, 'v2', {
    'sys/fs/cgroup/lxc/c1/cpuset.cpus': '\n',
    'sys/fs/cgroup/lxc/c1/cpuset.cpus.effective': '\n',
    'sys/fs/cgroup/lxc/cpuset.cpus': '3\n',
  });
  t.equal(render(parent, 202, cpuinfo), cpuinfoOf([3]), 'v2: the parent');
  for (const tree of ['v1', 'hybrid'] as const) {
    // v1 names the effective list cpuset.effective_cpus.
    const v1 = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '\n', [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.effective_cpus')]: '2\n' });
    t.equal(render(v1, 202, cpuinfo), cpuinfoOf([2]), `${tree}: cpuset.effective_cpus`);
    const up = variant(t, tree, {
      [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '\n',
      [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.effective_cpus')]: '\n',
      [cg(tree, 'cpuset', '/lxc', 'cpuset.cpus')]: '3\n',
    });
    t.equal(render(up, 202, cpuinfo), cpuinfoOf([3]), `${tree}: the parent`);
  }
});

t.test('cpuinfo: host formats (pure renderer, hand-built snapshots)', async (t) => {
  const view = (cpus: number[], quota = Infinity) => ({ cpus, quota });

  // x86 with --enable-cfs: ceil(0.5) = 1, ceil(2.2) = 3, and without the option the quota is ignored.
  t.equal(renderCpuinfo({ host: hostCpuinfo, view: view([0, 1, 2, 3], 0.5) }, CFS), cpuinfoOf([0]));
  t.equal(renderCpuinfo({ host: hostCpuinfo, view: view([0, 1, 2, 3], 2.2) }, CFS), cpuinfoOf([0, 1, 2]));
  t.equal(renderCpuinfo({ host: hostCpuinfo, view: view([1, 3], 0.5) }, CFS), cpuinfoOf([1]), 'the first ceil(quota) CPUs of the cpuset');
  t.equal(renderCpuinfo({ host: hostCpuinfo, view: view([0, 1, 2, 3], 0.5) }, OPTS), hostCpuinfo);
  t.equal(renderCpuinfo({ host: hostCpuinfo, view: view([]) }, OPTS), hostCpuinfo, 'no CPU known: the host file');

  // aarch64: "processor : N" blocks with BogoMIPS/Features, blank-line separated and ended.
  const arm = (n: number, id = n) =>
    `processor\t: ${id}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: ${n}\n\n`;
  t.equal(renderCpuinfo({ host: arm(0) + arm(1) + arm(2) + arm(3), view: view([1, 3]) }, OPTS), arm(1) + arm(3), 'aarch64 {1,3}');

  // ppc64le: per-CPU blocks, then a machine-wide block that is kept (ends with one newline, as the kernel's).
  const ppc = (n: number, id = n) => `processor\t: ${id}\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: 2166.000000MHz\nrevision\t: 2.2 (pvr 004e 1202)\n\n`;
  const machine = 'timebase\t: 512000000\nplatform\t: PowerNV\nmodel\t\t: 9006-22P\nmachine\t\t: PowerNV 9006-22P\nfirmware\t: OPAL\nMMU\t\t: Radix\n';
  t.equal(renderCpuinfo({ host: ppc(0) + ppc(1) + ppc(2) + ppc(3) + machine, view: view([2]) }, OPTS), ppc(2) + machine, 'ppc64le {2} keeps the timebase block');
  t.equal(renderCpuinfo({ host: ppc(0) + ppc(1) + ppc(2) + ppc(3) + machine, view: view([0, 1, 2, 3], 1.5) }, CFS), ppc(0) + ppc(1) + machine, 'ppc64le with --enable-cfs');

  // s390x: a summary with "# processors" and one "processor N:" line per CPU, then one "cpu number"
  // block per CPU, each preceded by a blank line (arch/s390/kernel/processor.c).
  const summary = (count: number, ids: [number, string][]) =>
    `vendor_id       : IBM/S390\n# processors    : ${count}\nbogomips per cpu: 3033.00\nmax thread id   : 0\nfeatures\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te vx sie \n` +
    ids.map(([id, ident]) => `processor ${id}: version = FF,  identification = ${ident},  machine = 2964\n`).join('');
  const s390cpu = (n: number, id = n) => `\ncpu number      : ${id}\nphysical id     : 1\ncore id         : ${n}\ncpu MHz dynamic : 5000\ncpu MHz static  : 5000\n`;
  const s390 = summary(4, [[0, '0133E8'], [1, '1133E8'], [2, '2133E8'], [3, '3133E8']]) + s390cpu(0) + s390cpu(1) + s390cpu(2) + s390cpu(3);
  // {1,3}: "# processors : 2", lines and blocks 1 and 3 kept with their ids, one blank line between.
  t.equal(renderCpuinfo({ host: s390, view: view([1, 3]) }, OPTS), summary(2, [[1, '1133E8'], [3, '3133E8']]) + s390cpu(1) + s390cpu(3), 's390x {1,3}');
  t.equal(renderCpuinfo({ host: s390, view: view([0, 1]) }, OPTS), summary(2, [[0, '0133E8'], [1, '1133E8']]) + s390cpu(0) + s390cpu(1), 's390x {0,1}: the last blocks dropped');
  t.equal(renderCpuinfo({ host: s390, view: view([0, 1, 2, 3], 0.4) }, CFS), summary(1, [[0, '0133E8']]) + s390cpu(0), 's390x with --enable-cfs');

  // Unknown layout (no "processor : N" block): passed through unchanged.
  const odd = 'cpu model\t: Some SoC\nBogoMIPS\t: 100\n\nHardware\t: board\n';
  t.equal(renderCpuinfo({ host: odd, view: view([0]) }, OPTS), odd, 'unknown format');
});

t.test('stat: the first render per container (no state kept yet)', async (t) => {
  // c1 (cpuset {1}), v1/hybrid: own usage on cpu1 6387.63 <= host busy 6520, placed whole; the 132.37 of
  // busy time left takes part of the usage on cpu0 (not shown). user = 5743.3 + 132.37 x 11386.6/12625.26
  // = 5862.68, system = 6520 - 5862.68 = 657.32, idle = 16620 - 6520 = 10100.
  // procs: c1's threads 201 (S) and 202 (v1 S, hybrid R).
  const c1 = 'cpu1 5862 0 657 10100 0 0 0 0 0 0\n';
  t.equal(render(fx('v1'), 202, stat), `cpu  5862 0 657 10100 0 0 0 0 0 0\n${c1}${STAT_TAIL(0, 0)}`, 'v1 c1');
  t.equal(render(fx('hybrid'), 202, stat), `cpu  5862 0 657 10100 0 0 0 0 0 0\n${c1}${STAT_TAIL(1, 0)}`, 'hybrid c1');
  // v2 c1: all 12625.26 ticks have no line of their own; cpu1 takes its whole busy time 6520:
  // user 6520 x 0.90189 = 5880.32, system 639.68, idle 10100. 202 is D here.
  t.equal(render(fx('v2'), 202, stat), `cpu  5880 0 639 10100 0 0 0 0 0 0\ncpu1 5880 0 639 10100 0 0 0 0 0 0\n${STAT_TAIL(0, 1)}`, 'v2 c1');

  // c2 (cpuset 0-1), v1: cpu0's own 6237.63 > host busy 1520: 1520 placed, user 1520 x 5643.3/6237.63 =
  // 1375.17, system 144.83, idle 11620 - 1520 = 10100; cpu1: own 6387.63 placed, idle 16620 - 6387.63 =
  // 10232.37. Aggregate = the sum of the printed lines.
  const c2v1 = 'cpu  7118 0 788 20332 0 0 0 0 0 0\ncpu0 1375 0 144 10100 0 0 0 0 0 0\ncpu1 5743 0 644 10232 0 0 0 0 0 0\n';
  t.equal(render(fx('v1'), 300, stat), c2v1 + STAT_TAIL(0, 0), 'v1 c2');
  t.equal(render(fx('hybrid'), 300, stat), c2v1 + STAT_TAIL(0, 0), 'hybrid c2');
  // v2 c2: 12625.26 ticks over busy time 1520 + 6520 = 8040: both CPUs full. cpu0 user 1370.87, system
  // 149.13; cpu1 user 5880.32, system 639.68; idle 10100 each.
  t.equal(
    render(fx('v2'), 300, stat),
    `cpu  7250 0 788 20200 0 0 0 0 0 0\ncpu0 1370 0 149 10100 0 0 0 0 0 0\ncpu1 5880 0 639 10100 0 0 0 0 0 0\n${STAT_TAIL(0, 0)}`,
    'v2 c2: cpu.stat spread over two CPUs by their busy time',
  );
});

t.test('stat: a host caller keeps the host\'s thread counts', async (t) => {
  // The daemon (100) in /system.slice/lxcfs-ts.service, cpuset 0-1: usage row 0 user 23857, system 2415.7
  // ticks; row 1 23957, 2465.7. Both exceed host busy: cpu0 1520 placed (user 1520 x 23857/26272.7 =
  // 1380.24), cpu1 6520 (user 6520 x 23957/26422.7 = 5911.57); idle 10100 each.
  // procs_running/procs_blocked stay the host's 3 and 1.
  t.equal(
    render(fx('v1'), 100, stat),
    `cpu  7291 0 747 20200 0 0 0 0 0 0\ncpu0 1380 0 139 10100 0 0 0 0 0 0\ncpu1 5911 0 608 10100 0 0 0 0 0 0\n${STAT_TAIL(3, 1)}`,
  );
});

t.test('stat: cpuset {1,3}, exact tick conversion, guest time', async (t) => {
  for (const tree of ['v1', 'hybrid'] as const) {
    const root = variant(t, tree, {
      [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '1,3\n',
      [cg(tree, 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: 'cpu user system\n0 0 0\n1 2000000000 1000000000\n2 0 0\n3 290000000 10000000000\n',
    });
    // cpu1: user 2e9 ns = 200 ticks, system 1e9 = 100; idle 16620 - 300 = 16320.
    // cpu3: user 290000000 ns = 29 ticks (exactly: not 28.999…), system 1e10 = 1000 (within its busy 1520);
    //   idle 11620 - 1029 = 10591. Aggregate: 229 0 1100 26911.
    t.equal(
      render(root, 202, stat),
      `cpu  229 0 1100 26911 0 0 0 0 0 0\ncpu1 200 0 100 16320 0 0 0 0 0 0\ncpu3 29 0 1000 10591 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`,
      `${tree}: host ids, like cpuinfo`,
    );
    t.equal(render(root, 202, cpuinfo), cpuinfoOf([1, 3]));
  }
  // guest and guest_nice are already counted in user and nice: host busy excludes them, steal counts.
  // cpu1 = 6000 10 500 10000 100 0 10 5 300 20: busy = 6000+10+500+0+10+5 = 6525 (not 6845), total 16625;
  // with no usage on cpu0, c1's own 6387.63 is all there is: idle = 16625 - 6387.63 = 10237.37.
  const hostStat = readFileSync(join(fx('v1'), 'proc/stat'), 'utf8').replace(/^cpu1 .*$/m, 'cpu1 6000 10 500 10000 100 0 10 5 300 20');
  const guest = variant(t, 'v1', { 'proc/stat': hostStat, [cg('v1', 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: 'cpu user system\n0 0 0\n1 57433000000 6443300000\n' });
  t.equal(render(guest, 202, stat), `cpu  5743 0 644 10237 0 0 0 0 0 0\ncpu1 5743 0 644 10237 0 0 0 0 0 0\n${STAT_TAIL(0, 0)}`, 'guest time not counted twice');
});

t.test('stat: cpuacct.usage_percpu fallback, no source at all', async (t) => {
  for (const tree of ['v1', 'hybrid'] as const) {
    // No usage_all: usage_percpu "62376300000 63876300000" counted as user only (LXCFS counts it as user
    // and system: double). cpu1 own 6387.63 + 132.37 of cpu0's usage = busy 6520, idle 10100.
    const percpu = variant(t, tree, { [cg(tree, 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: null });
    t.equal(render(percpu, 202, stat), `cpu  6520 0 0 10100 0 0 0 0 0 0\ncpu1 6520 0 0 10100 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`, `${tree}: usage_percpu as user`);
  }
  // v1 (no cgroup2 mount) without either file: no usage known -> host cpu1's line as it is.
  const none = variant(t, 'v1', { [cg('v1', 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: null, [cg('v1', 'cpuacct', '/lxc/c1', 'cpuacct.usage_percpu')]: null });
  t.equal(render(none, 202, stat), `cpu  6000 10 500 10000 100 0 10 0 0 0\ncpu1 6000 10 500 10000 100 0 10 0 0 0\n${STAT_TAIL(0, 0)}`, 'v1 without usage files: host line');
});

t.test('stat: the aggregate is the exact sum of the lines, even for counters past 2^53 (hostile host files)', async (t) => {
  // Found by the fuzz test (seed 1204913460): summed as doubles, 144115187945976928 + 285965128541268224
  // printed 430080316487245184, 32 more than the lines' sum.
  const host = (a: string, b: string) => `cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 ${a} 0 0\ncpu1 0 0 0 0 0 0 0 ${b} 0 0\nintr 0\n`;
  const field8 = (text: string) => text.split('\n').filter((l) => /^cpu/.test(l)).map((l) => BigInt(l.split(/\s+/)[8]!));
  const out = renderStat({ host: host('144115187945976928', '285965128541268224'), view: { cpus: [0, 1], quota: Infinity } }, OPTS);
  const [total, c0, c1] = field8(typeof out === 'string' ? out : out.text);
  t.equal(c0! + c1!, 430080316487245152n, 'the lines as the host has them');
  t.equal(total, c0! + c1!, 'the aggregate their exact sum');
  // Two values near 2^64: each line is capped so that the sum still fits the kernel's u64.
  const near = renderStat({ host: host('18446744073709551000', '18446744073709551000'), view: { cpus: [0, 1], quota: Infinity } }, OPTS);
  const [t2, d0, d1] = field8(typeof near === 'string' ? near : near.text);
  t.equal(t2, d0! + d1!, 'the aggregate is still the sum');
  t.ok(t2! < 2n ** 64n, `and fits a u64 (${t2})`);
});

t.test('stat: --enable-cfs keeps ceil(quota) CPUs, their clocks scaled to the quota', async (t) => {
  for (const tree of TREES) {
    const root = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 50000) });
    if (tree === 'v2') {
      // One CPU (host cpu0) at quota 0.5: total 11620 x 0.5 = 5810, all of it may be busy (usage from the
      // hidden CPUs is folded in): 12625.26 ticks fill it, user 5810 x 0.90189 = 5239.98, system 570.02.
      t.equal(render(root, 202, stat, CFS), `cpu  5239 0 570 0 0 0 0 0 0 0\ncpu0 5239 0 570 0 0 0 0 0 0 0\n${STAT_TAIL(0, 1)}`, 'v2 cfs');
      // Without the option: all 4 CPUs, 12625.26 ticks over busy time 1520 x 3 + 6520 = 11080: all full.
      t.equal(
        render(root, 202, stat, OPTS),
        'cpu  9990 0 1086 40400 0 0 0 0 0 0\n' +
          'cpu0 1370 0 149 10100 0 0 0 0 0 0\ncpu1 5880 0 639 10100 0 0 0 0 0 0\ncpu2 1370 0 149 10100 0 0 0 0 0 0\ncpu3 1370 0 149 10100 0 0 0 0 0 0\n' +
          STAT_TAIL(0, 1),
        'v2 over 4 CPUs',
      );
      continue;
    }
    // usage row 0 (6237.63) and row 1 (6387.63, folded) on host cpu0 at half speed: 5810 placed,
    // user 5810 x 11386.6/12625.26... no: cpu0's own usage fills it first: user 5810 x 5643.3/6237.63 = 5256.41.
    t.equal(render(root, 202, stat, CFS), `cpu  5256 0 553 0 0 0 0 0 0 0\ncpu0 5256 0 553 0 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`, `${tree} cfs`);
    // All 4 without the option: cpu0/cpu1 as c2's, cpu2/cpu3 have no usage: idle = total 11620.
    t.equal(
      render(root, 202, stat, OPTS),
      'cpu  7118 0 788 43572 0 0 0 0 0 0\n' +
        'cpu0 1375 0 144 10100 0 0 0 0 0 0\ncpu1 5743 0 644 10232 0 0 0 0 0 0\ncpu2 0 0 0 11620 0 0 0 0 0 0\ncpu3 0 0 0 11620 0 0 0 0 0 0\n' +
        STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0),
      `${tree} over 4 CPUs`,
    );
  }
});

t.test('online, present, possible agree with cpuinfo, stat and the cpuN directories', async (t) => {
  const { cpuDirectory } = await import('../src/renderers/sys-cpu.js');
  const { CgroupReader } = await import('node-cgroups-parser');
  const { ContainerResolver } = await import('../src/context/containers.js');
  const { sourcesFor } = await import('../src/context/sources.js');
  const hiddenDirs = (root: string, caller: number, options: RenderOptions) => {
    const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
    const resolved = new ContainerResolver(reader, 100).resolve(caller);
    if (!resolved.ok) throw new Error(resolved.reason);
    return cpuDirectory.hide!.render(cpuDirectory.hide!.collect(sourcesFor(reader, resolved.container), options), options);
  };
  const lists = [cpuOnline, cpuPresent, cpuPossible];
  const agree = (t: Test, root: string, caller: number, options: RenderOptions, list: string, cpus: number[], what: string) => {
    for (const f of lists) t.equal(render(root, caller, f, options), `${list}\n`, `${what}: ${f.path}`);
    t.same(render(root, caller, cpuinfo, options).match(/^processor\t: \d+$/gm), cpus.map((c) => `processor\t: ${c}`), `${what}: cpuinfo processors`);
    t.same(render(root, caller, stat, options).match(/^cpu\d+/gm), cpus.map((c) => `cpu${c}`), `${what}: stat cpuN lines`);
    t.same(hiddenDirs(root, caller, options), [0, 1, 2, 3].filter((c) => !cpus.includes(c)).map((c) => `cpu${c}`), `${what}: the other cpuN directories are hidden`);
  };
  for (const tree of TREES) {
    agree(t, fx(tree), 202, OPTS, '1', [1], `${tree} c1 {1}`);
    agree(t, fx(tree), 300, OPTS, '0-1', [0, 1], `${tree} c2 {0,1}`);
    agree(t, fx(tree), 300, CFS, '0-1', [0, 1], `${tree} c2, /lxc quota 1.5 -> 2`);
    agree(t, fx(tree), 100, OPTS, '0-1', [0, 1], `${tree} the daemon's own cgroup (cpuset 0-1)`);
    const pair = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '1,3\n' });
    agree(t, pair, 202, OPTS, '1,3', [1, 3], `${tree} c1 {1,3}`);
    const half = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 50000) });
    agree(t, half, 202, CFS, '0', [0], `${tree} quota 0.5 with --enable-cfs`);
    agree(t, half, 202, OPTS, '0-3', [0, 1, 2, 3], `${tree} quota 0.5 without --enable-cfs`);
    const wide = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0,2-3\n' });
    agree(t, wide, 202, OPTS, '0,2-3', [0, 2, 3], `${tree} c1 {0,2,3}: the kernel's range format`);
  }
});

t.test('quota files are read only with --enable-cfs', async (t) => {
  const { collectCpuView } = await import('../src/renderers/cpu-view.js');
  const asked: string[] = [];
  const sources = {
    container: { initPid: 1, host: false },
    hostFile: (path: string) => (path === '/sys/devices/system/cpu/online' ? '0-3\n' : undefined),
    memory: () => undefined,
    cgroupFile: (controller: string, name: string) => {
      asked.push(`${controller}/${name}`);
      return name === 'cpu.cfs_quota_us' ? '50000\n' : name === 'cpu.cfs_period_us' ? '100000\n' : name === 'cpuset.cpus' ? '0-3\n' : undefined;
    },
    cgroupVersion: () => 1 as const,
    cgroupDepth: () => 0,
    loadavg: () => undefined,
    tasks: () => undefined,
    processes: () => undefined,
    threadStates: () => undefined,
    lastState: () => undefined,
  };
  const off = collectCpuView(sources, { swap: true, cfs: false });
  t.same(off, { cpus: [0, 1, 2, 3], quota: Infinity });
  t.notOk(asked.some((f) => f.startsWith('cpu/cpu.cfs')), `no quota file read without --enable-cfs (${asked.join(', ')})`);
  t.equal(collectCpuView(sources, { swap: true, cfs: true }).quota, 0.5, 'with it: 50000/100000');
});
