// The CPU view on the fixture trees (test/fixtures: v1 = legacy, hybrid = this machine's layout, v2 = pure
// cgroup2), rendered through the daemon's own Sources with exact expected output: proc/cpuinfo, proc/stat
// and sys/devices/system/cpu/{online,present,possible}, which must always agree.
//
// Fixture facts used below (test/fixtures/README.md): the host has 4 CPUs (cpuinfo, stat, online 0-3);
// container c1 (init 201, child 202) has cpuset {1} and quota 100000/100000; container c2 (init 300)
// inherits cpuset 0-1 and has no quota of its own; their parent /lxc has quota 150000/100000 (1.5 CPUs).
// Host /proc/stat per CPU (user nice system idle iowait irq softirq steal guest guest_nice):
//   cpu0, cpu2, cpu3: 1000 10 500 10000 100 0 10 0 0 0   busy = 1000+10+500+100+0+10+0 = 1620
//   cpu1:             6000 10 500 10000 100 0 10 0 0 0   busy = 6000+10+500+100+0+10+0 = 6620
// Scenarios that need other cgroup values run on a private copy of a tree (`variant`).

import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuinfo, renderCpuinfo } from '../src/renderers/cpuinfo.js';
import { stat } from '../src/renderers/stat.js';
import { cpuOnline, cpuPossible, cpuPresent } from '../src/renderers/sys-cpu.js';
import type { RenderOptions } from '../src/renderers/types.js';
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
/** The expected cpuinfo for host CPUs `cpus`: their blocks in order, renumbered 0..n-1, blank-line ended. */
const cpuinfoOf = (cpus: number[]) => cpus.map((cpu, i) => hostBlocks[cpu]!.replace(/^processor\t: \d+/, `processor\t: ${i}`) + '\n\n').join('');

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

t.test('cpuinfo: only the cpuset\'s CPUs, renumbered from 0', async (t) => {
  for (const tree of TREES) {
    // c1: cpuset {1} -> host block 1 as "processor : 0"; init (201) and child (202) see the same.
    t.equal(render(fx(tree), 202, cpuinfo), cpuinfoOf([1]), `${tree}: c1 from its child`);
    t.equal(render(fx(tree), 201, cpuinfo), cpuinfoOf([1]), `${tree}: c1 from its init`);
    t.match(render(fx(tree), 202, cpuinfo), /^processor\t: 0\n/, 'numbered from 0');
    // c2: inherits cpuset 0-1 -> host blocks 0 and 1, numbers unchanged.
    t.equal(render(fx(tree), 300, cpuinfo), cpuinfoOf([0, 1]), `${tree}: c2`);
    // {1,3}: host blocks 1 and 3 become processors 0 and 1.
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
  t.equal(renderCpuinfo({ host: arm(0) + arm(1) + arm(2) + arm(3), view: view([1, 3]) }, OPTS), arm(1, 0) + arm(3, 1), 'aarch64 {1,3}');

  // ppc64le: per-CPU blocks, then a machine-wide block that is kept (ends with one newline, as the kernel's).
  const ppc = (n: number, id = n) => `processor\t: ${id}\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: 2166.000000MHz\nrevision\t: 2.2 (pvr 004e 1202)\n\n`;
  const machine = 'timebase\t: 512000000\nplatform\t: PowerNV\nmodel\t\t: 9006-22P\nmachine\t\t: PowerNV 9006-22P\nfirmware\t: OPAL\nMMU\t\t: Radix\n';
  t.equal(renderCpuinfo({ host: ppc(0) + ppc(1) + ppc(2) + ppc(3) + machine, view: view([2]) }, OPTS), ppc(2, 0) + machine, 'ppc64le {2} keeps the timebase block');
  t.equal(renderCpuinfo({ host: ppc(0) + ppc(1) + ppc(2) + ppc(3) + machine, view: view([0, 1, 2, 3], 1.5) }, CFS), ppc(0) + ppc(1) + machine, 'ppc64le with --enable-cfs');

  // s390x: a summary with "# processors" and one "processor N:" line per CPU, then one "cpu number"
  // block per CPU, each preceded by a blank line (arch/s390/kernel/processor.c).
  const summary = (count: number, ids: [number, string][]) =>
    `vendor_id       : IBM/S390\n# processors    : ${count}\nbogomips per cpu: 3033.00\nmax thread id   : 0\nfeatures\t: esan3 zarch stfle msa ldisp eimm dfp edat etf3eh highgprs te vx sie \n` +
    ids.map(([id, ident]) => `processor ${id}: version = FF,  identification = ${ident},  machine = 2964\n`).join('');
  const s390cpu = (n: number, id = n) => `\ncpu number      : ${id}\nphysical id     : 1\ncore id         : ${n}\ncpu MHz dynamic : 5000\ncpu MHz static  : 5000\n`;
  const s390 = summary(4, [[0, '0133E8'], [1, '1133E8'], [2, '2133E8'], [3, '3133E8']]) + s390cpu(0) + s390cpu(1) + s390cpu(2) + s390cpu(3);
  // {1,3}: "# processors : 2", lines 1 and 3 as 0 and 1, blocks 1 and 3 renumbered, one blank line between.
  t.equal(renderCpuinfo({ host: s390, view: view([1, 3]) }, OPTS), summary(2, [[0, '1133E8'], [1, '3133E8']]) + s390cpu(1, 0) + s390cpu(3, 1), 's390x {1,3}');
  t.equal(renderCpuinfo({ host: s390, view: view([0, 1]) }, OPTS), summary(2, [[0, '0133E8'], [1, '1133E8']]) + s390cpu(0) + s390cpu(1), 's390x {0,1}: the last blocks dropped');
  t.equal(renderCpuinfo({ host: s390, view: view([0, 1, 2, 3], 0.4) }, CFS), summary(1, [[0, '0133E8']]) + s390cpu(0), 's390x with --enable-cfs');

  // Unknown layout (no "processor : N" block): passed through unchanged.
  const odd = 'cpu model\t: Some SoC\nBogoMIPS\t: 100\n\nHardware\t: board\n';
  t.equal(renderCpuinfo({ host: odd, view: view([0]) }, OPTS), odd, 'unknown format');
});

t.test('stat: container CPU time per visible CPU, host idle plus unused busy time', async (t) => {
  // c1 (cpuset {1}), cpuacct.usage_all row 1: user 57433000000 ns / 1e7 = 5743 ticks, system 6443300000 /
  // 1e7 = 644 ticks (USER_HZ 100). idle = host cpu1 idle 10000 + (busy 6620 - (5743+644 = 6387)) = 10233.
  // procs: c1's threads 201 (S) and 202 (v1 S, hybrid R).
  const c1 = 'cpu0 5743 0 644 10233 0 0 0 0 0 0\n';
  t.equal(render(fx('v1'), 202, stat), `cpu  5743 0 644 10233 0 0 0 0 0 0\n${c1}${STAT_TAIL(0, 0)}`, 'v1 c1');
  t.equal(render(fx('hybrid'), 202, stat), `cpu  5743 0 644 10233 0 0 0 0 0 0\n${c1}${STAT_TAIL(1, 0)}`, 'hybrid c1');
  // v2: cpu.stat user_usec 113866000 us = 11386 ticks, system_usec 12386600 = 1238 ticks, all on its one
  // CPU; 11386+1238 = 12624 > host busy 6620: idle stays the host's 10000 (never below). 202 is D here.
  t.equal(render(fx('v2'), 202, stat), `cpu  11386 0 1238 10000 0 0 0 0 0 0\ncpu0 11386 0 1238 10000 0 0 0 0 0 0\n${STAT_TAIL(0, 1)}`, 'v2 c1');

  // c2 (cpuset 0-1): row 0 user 56433000000 -> 5643, system 5943300000 -> 594; 6237 > host cpu0 busy 1620
  // -> idle 10000. cpu1 as for c1. Aggregate = sum: 5643+5743 = 11386, 594+644 = 1238, 10000+10233 = 20233.
  const c2v1 = 'cpu  11386 0 1238 20233 0 0 0 0 0 0\ncpu0 5643 0 594 10000 0 0 0 0 0 0\ncpu1 5743 0 644 10233 0 0 0 0 0 0\n';
  t.equal(render(fx('v1'), 300, stat), c2v1 + STAT_TAIL(0, 0), 'v1 c2');
  t.equal(render(fx('hybrid'), 300, stat), c2v1 + STAT_TAIL(0, 0), 'hybrid c2');
  // v2 c2: 11386 / 2 CPUs = 5693 user, 1238 / 2 = 619 system on each (spread evenly); used 6312 per CPU:
  // cpu0 idle 10000 (1620 < 6312), cpu1 idle 10000 + 6620 - 6312 = 10308; aggregate idle 20308.
  t.equal(
    render(fx('v2'), 300, stat),
    `cpu  11386 0 1238 20308 0 0 0 0 0 0\ncpu0 5693 0 619 10000 0 0 0 0 0 0\ncpu1 5693 0 619 10308 0 0 0 0 0 0\n${STAT_TAIL(0, 0)}`,
    'v2 c2: cpu.stat spread over two CPUs',
  );
});

t.test('stat: a host caller keeps the host\'s thread counts', async (t) => {
  // The daemon (100) in /system.slice/lxcfs-ts.service, cpuset 0-1: usage_all row 0 user 238570000000 ->
  // 23857, system 24157000000 -> 2415; row 1 23957, 2465. Both exceed host busy: idle 10000 each.
  // procs_running/procs_blocked stay the host's 3 and 1.
  t.equal(
    render(fx('v1'), 100, stat),
    `cpu  47814 0 4880 20000 0 0 0 0 0 0\ncpu0 23857 0 2415 10000 0 0 0 0 0 0\ncpu1 23957 0 2465 10000 0 0 0 0 0 0\n${STAT_TAIL(3, 1)}`,
  );
});

t.test('stat: cpuset {1,3}, exact tick conversion, guest time', async (t) => {
  for (const tree of ['v1', 'hybrid'] as const) {
    const root = variant(t, tree, {
      [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '1,3\n',
      [cg(tree, 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: 'cpu user system\n0 1000000000 0\n1 2000000000 1000000000\n2 3000000000 0\n3 290000000 10000000000\n',
    });
    // host cpu1 -> cpu0: user 2e9 ns = 200 ticks, system 1e9 = 100; idle 10000 + 6620 - 300 = 16320.
    // host cpu3 -> cpu1: user 290000000 ns = 29 ticks (exactly: not 28.999…), system 1e10 = 1000;
    //   idle 10000 + 1620 - 1029 = 10591. Aggregate: 229 0 1100 26911.
    t.equal(
      render(root, 202, stat),
      `cpu  229 0 1100 26911 0 0 0 0 0 0\ncpu0 200 0 100 16320 0 0 0 0 0 0\ncpu1 29 0 1000 10591 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`,
      `${tree}: renumbered like cpuinfo`,
    );
    t.equal(render(root, 202, cpuinfo), cpuinfoOf([1, 3]));
  }
  // guest and guest_nice are already counted in user and nice: host busy excludes them, steal counts.
  // cpu1 = 6000 10 500 10000 100 0 10 5 300 20: busy = 6000+10+500+100+0+10+5 = 6625 (not 6945);
  // idle = 10000 + 6625 - 6387 = 10238.
  const hostStat = readFileSync(join(fx('v1'), 'proc/stat'), 'utf8').replace(/^cpu1 .*$/m, 'cpu1 6000 10 500 10000 100 0 10 5 300 20');
  const guest = variant(t, 'v1', { 'proc/stat': hostStat });
  t.equal(render(guest, 202, stat), `cpu  5743 0 644 10238 0 0 0 0 0 0\ncpu0 5743 0 644 10238 0 0 0 0 0 0\n${STAT_TAIL(0, 0)}`, 'guest time not counted twice');
});

t.test('stat: cpuacct.usage_percpu fallback, no source at all', async (t) => {
  for (const tree of ['v1', 'hybrid'] as const) {
    // No usage_all: usage_percpu "62376300000 63876300000", cpu1 = 63876300000 ns = 6387 ticks, counted
    // as user only (LXCFS counts it as user and system: double). idle = 10000 + 6620 - 6387 = 10233.
    const percpu = variant(t, tree, { [cg(tree, 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: null });
    t.equal(render(percpu, 202, stat), `cpu  6387 0 0 10233 0 0 0 0 0 0\ncpu0 6387 0 0 10233 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`, `${tree}: usage_percpu as user`);
  }
  // v1 (no cgroup2 mount) without either file: no usage known -> host cpu1's line, renumbered cpu0.
  const none = variant(t, 'v1', { [cg('v1', 'cpuacct', '/lxc/c1', 'cpuacct.usage_all')]: null, [cg('v1', 'cpuacct', '/lxc/c1', 'cpuacct.usage_percpu')]: null });
  t.equal(render(none, 202, stat), `cpu  6000 10 500 10000 100 0 10 0 0 0\ncpu0 6000 10 500 10000 100 0 10 0 0 0\n${STAT_TAIL(0, 0)}`, 'v1 without usage files: host line');
});

t.test('stat: --enable-cfs keeps ceil(quota) CPUs', async (t) => {
  for (const tree of TREES) {
    const root = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 50000) });
    if (tree === 'v2') {
      // cpu.stat 11386 user / 1238 system ticks on the one visible CPU (host cpu0): idle 10000.
      t.equal(render(root, 202, stat, CFS), `cpu  11386 0 1238 10000 0 0 0 0 0 0\ncpu0 11386 0 1238 10000 0 0 0 0 0 0\n${STAT_TAIL(0, 1)}`, 'v2 cfs');
      // without the option: spread over 4 CPUs, 11386/4 = 2846, 1238/4 = 309, used 3155 each:
      // cpu0/2/3 idle 10000 (1620 < 3155), cpu1 idle 10000 + 6620 - 3155 = 13465; aggregate 43465.
      t.equal(
        render(root, 202, stat, OPTS),
        'cpu  11384 0 1236 43465 0 0 0 0 0 0\n' +
          'cpu0 2846 0 309 10000 0 0 0 0 0 0\ncpu1 2846 0 309 13465 0 0 0 0 0 0\ncpu2 2846 0 309 10000 0 0 0 0 0 0\ncpu3 2846 0 309 10000 0 0 0 0 0 0\n' +
          STAT_TAIL(0, 1),
        'v2 over 4 CPUs',
      );
      continue;
    }
    // usage_all row 0 (5643/594) on host cpu0: busy 1620 < 6237 -> idle 10000.
    t.equal(render(root, 202, stat, CFS), `cpu  5643 0 594 10000 0 0 0 0 0 0\ncpu0 5643 0 594 10000 0 0 0 0 0 0\n${STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0)}`, `${tree} cfs`);
    // All 4: cpu2/cpu3 have no usage row: 0 used, idle 10000 + 1620 = 11620. Aggregate idle
    // 10000 + 10233 + 11620 + 11620 = 43473.
    t.equal(
      render(root, 202, stat, OPTS),
      'cpu  11386 0 1238 43473 0 0 0 0 0 0\n' +
        'cpu0 5643 0 594 10000 0 0 0 0 0 0\ncpu1 5743 0 644 10233 0 0 0 0 0 0\ncpu2 0 0 0 11620 0 0 0 0 0 0\ncpu3 0 0 0 11620 0 0 0 0 0 0\n' +
        STAT_TAIL(tree === 'hybrid' ? 1 : 0, 0),
      `${tree} over 4 CPUs`,
    );
  }
});

t.test('online, present, possible agree with cpuinfo and stat', async (t) => {
  const lists = [cpuOnline, cpuPresent, cpuPossible];
  const agree = (t: Test, root: string, caller: number, options: RenderOptions, list: string, count: number, what: string) => {
    for (const f of lists) t.equal(render(root, caller, f, options), `${list}\n`, `${what}: ${f.path}`);
    t.equal(render(root, caller, cpuinfo, options).match(/^processor\t: \d+$/gm)?.length, count, `${what}: cpuinfo processors`);
    t.same(render(root, caller, stat, options).match(/^cpu\d+/gm), Array.from({ length: count }, (_, i) => `cpu${i}`), `${what}: stat cpuN lines`);
  };
  for (const tree of TREES) {
    agree(t, fx(tree), 202, OPTS, '0', 1, `${tree} c1 {1}`);
    agree(t, fx(tree), 300, OPTS, '0-1', 2, `${tree} c2 {0,1}`);
    agree(t, fx(tree), 300, CFS, '0-1', 2, `${tree} c2, /lxc quota 1.5 -> 2`);
    agree(t, fx(tree), 100, OPTS, '0-1', 2, `${tree} the daemon's own cgroup (cpuset 0-1)`);
    const pair = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '1,3\n' });
    agree(t, pair, 202, OPTS, '0-1', 2, `${tree} c1 {1,3}`);
    const half = variant(t, tree, { [cg(tree, 'cpuset', '/lxc/c1', 'cpuset.cpus')]: '0-3\n', ...quota(tree, '/lxc/c1', 50000) });
    agree(t, half, 202, CFS, '0', 1, `${tree} quota 0.5 with --enable-cfs`);
    agree(t, half, 202, OPTS, '0-3', 4, `${tree} quota 0.5 without --enable-cfs`);
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
  };
  const off = collectCpuView(sources, { swap: true, cfs: false });
  t.same(off, { cpus: [0, 1, 2, 3], quota: Infinity });
  t.notOk(asked.some((f) => f.startsWith('cpu/cpu.cfs')), `no quota file read without --enable-cfs (${asked.join(', ')})`);
  t.equal(collectCpuView(sources, { swap: true, cfs: true }).quota, 0.5, 'with it: 50000/100000');
});
