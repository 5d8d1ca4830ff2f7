// Every renderer on the fixture trees (test/fixtures: hybrid = this machine's layout, v2 = pure cgroup2,
// v1 = legacy), through the daemon's own Sources, with exact expected output. Container c1: init 201,
// caller 202, cpuset {1} of a 4-CPU host. Arithmetic in the comments.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../src/context/containers.js';
import { sourcesFor } from '../src/context/sources.js';
import { files } from '../src/renderers/index.js';
import { renderCpuinfo } from '../src/renderers/cpuinfo.js';
import { renderLoadavg } from '../src/renderers/loadavg.js';
import { collectMeminfo, renderMeminfo } from '../src/renderers/meminfo.js';
import { renderSwaps } from '../src/renderers/swaps.js';
import type { RenderOptions } from '../src/renderers/types.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const OPTS: RenderOptions = { swap: true, cfs: false };
const fixture = (tree: string, path: string) => readFileSync(join(FIXTURES, tree, path), 'utf8');

function render(tree: string, caller: number, path: string, options = OPTS): string {
  const reader = new CgroupReader({ procRoot: join(FIXTURES, tree, 'proc'), fsRoot: join(FIXTURES, tree) });
  const resolved = new ContainerResolver(reader, 100).resolve(caller);
  if (!resolved.ok) throw new Error(resolved.reason);
  const file = files.find((f) => f.path === path)!;
  return file.render(file.collect(sourcesFor(reader, resolved.container), options), options);
}

const hostCpuBlocks = (tree: string) => fixture(tree, 'proc/cpuinfo').split('\n\n').filter(Boolean);

t.test('cpuinfo: the cpuset\'s CPUs, renumbered from 0', async (t) => {
  for (const tree of ['hybrid', 'v2']) {
    // cpuset {1}: host block 1, now "processor : 0" (its core id and apicid stay the host's).
    const expected = hostCpuBlocks(tree)[1]!.replace(/^processor\t: 1/, 'processor\t: 0') + '\n\n';
    t.equal(render(tree, 202, 'proc/cpuinfo'), expected, `${tree} c1`);
  }
  const blocks = hostCpuBlocks('hybrid');
  t.equal(render('hybrid', 100, 'proc/cpuinfo'), `${blocks[0]}\n\n${blocks[1]}\n\n`, 'the daemon\'s own cgroup: cpuset 0-1 of the 4 host CPUs');
});

t.test('cpuinfo: --enable-cfs, host formats', async (t) => {
  const host = fixture('hybrid', 'proc/cpuinfo');
  const view = { cpus: [0, 1, 2, 3], quota: 0.5 };
  const one = renderCpuinfo({ host, view }, { swap: true, cfs: true });
  t.equal((one.match(/^processor/gm) ?? []).length, 1, 'quota 0.5 CPU -> ceil = 1 processor');
  t.equal(renderCpuinfo({ host, view: { cpus: [0, 1, 2, 3], quota: 2.2 } }, { swap: true, cfs: true }).match(/^processor/gm)!.length, 3, 'quota 2.2 -> 3');
  t.equal(renderCpuinfo({ host, view }, OPTS).match(/^processor/gm)!.length, 4, 'quota ignored without --enable-cfs');

  const arm = 'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n\n';
  t.equal(renderCpuinfo({ host: arm, view: { cpus: [1], quota: Infinity } }, OPTS), 'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n\n', 'aarch64');

  const ppc = 'processor\t: 0\ncpu\t\t: POWER9\nclock\t\t: 2200MHz\n\nprocessor\t: 1\ncpu\t\t: POWER9\nclock\t\t: 2200MHz\n\ntimebase\t: 512000000\nplatform\t: PowerNV\nmodel\t\t: 9006-22P\nmachine\t\t: PowerNV 9006-22P\n';
  t.equal(renderCpuinfo({ host: ppc, view: { cpus: [1], quota: Infinity } }, OPTS), 'processor\t: 0\ncpu\t\t: POWER9\nclock\t\t: 2200MHz\n\ntimebase\t: 512000000\nplatform\t: PowerNV\nmodel\t\t: 9006-22P\nmachine\t\t: PowerNV 9006-22P\n', 'ppc64le keeps its machine block, ending as the host\'s');

  const s390 = 'vendor_id       : IBM/S390\n# processors    : 4\nbogomips per cpu: 3033.00\nprocessor 0: version = FF,  identification = 0133E8,  machine = 2964\nprocessor 1: version = FF,  identification = 0133E8,  machine = 2964\nprocessor 2: version = FF,  identification = 0133E8,  machine = 2964\nprocessor 3: version = FF,  identification = 0133E8,  machine = 2964\n\ncpu number      : 0\ncpu MHz dynamic : 5000\n\ncpu number      : 2\ncpu MHz dynamic : 5000\n';
  const s390out = renderCpuinfo({ host: s390, view: { cpus: [2, 3], quota: Infinity } }, OPTS);
  t.match(s390out, /^# processors    : 2$/m, 's390x: processor count');
  t.match(s390out, /^processor 0: version = FF/m);
  t.notMatch(s390out, /^processor [23]:/m, 's390x: renumbered');
  t.match(s390out, /^cpu number      : 0\ncpu MHz dynamic : 5000$/m, 's390x: host cpu 2 becomes 0');
  t.notMatch(s390out, /^cpu number      : 2/m);

  t.equal(renderCpuinfo({ host: 'some unknown\nformat\n', view: { cpus: [0], quota: Infinity } }, OPTS), 'some unknown\nformat\n', 'unknown format: host file');
});

t.test('stat: the container\'s CPU times, host idle plus unused busy time', async (t) => {
  // hybrid: cpuacct.usage_all cpu1 = 57433000000 ns user -> 5743 ticks, 6443300000 ns system -> 644.
  // host cpu1 busy = 6000+10+500+100+0+10+0 = 6620; container 6387; idle = 10000 + (6620-6387) = 10233.
  // threads of c1: 201 (S), 202 (R) -> procs_running 1, procs_blocked 0.
  const rest = 'intr 12345 1 2 3\nctxt 777777\nbtime 1700000000\nprocesses 4242\n';
  t.equal(
    render('hybrid', 202, 'proc/stat'),
    `cpu  5743 0 644 10233 0 0 0 0 0 0\ncpu0 5743 0 644 10233 0 0 0 0 0 0\n${rest}procs_running 1\nprocs_blocked 0\nsoftirq 99 1 2 3 4 5 6 7 8 9 10\n`,
    'hybrid (cpuacct v1)',
  );
  // v2: cpu.stat user_usec 113866000 -> 11386 ticks, system_usec 12386600 -> 1238, on its one CPU;
  // 12624 > host busy 6620, so idle stays 10000. Threads 201 (S), 202 (D).
  t.equal(
    render('v2', 202, 'proc/stat'),
    `cpu  11386 0 1238 10000 0 0 0 0 0 0\ncpu0 11386 0 1238 10000 0 0 0 0 0 0\n${rest}procs_running 0\nprocs_blocked 1\nsoftirq 99 1 2 3 4 5 6 7 8 9 10\n`,
    'pure v2 (cpu.stat, spread)',
  );
});

t.test('uptime: the age of the container\'s init', async (t) => {
  // init 201 started at 2352 ticks = 23.52 s; host uptime 5000.50 -> age 4976.98;
  // used 126.2526 s (cpuacct.usage 126252600000 ns / cpu.stat usage_usec 126252600) on 1 CPU -> idle 4850.73.
  t.equal(render('hybrid', 202, 'proc/uptime'), '4976.98 4850.73\n');
  t.equal(render('v2', 202, 'proc/uptime'), '4976.98 4850.73\n');
  t.equal(render('hybrid', 100, 'proc/uptime'), '5000.50 19000.25\n', 'a host caller gets the host file');
});

t.test('online, present, possible agree with cpuinfo and stat', async (t) => {
  for (const tree of ['hybrid', 'v2']) {
    for (const f of ['online', 'present', 'possible']) t.equal(render(tree, 202, `sys/devices/system/cpu/${f}`), '0\n', `${tree} ${f}`);
    t.equal(render(tree, 202, 'proc/cpuinfo').match(/^processor/gm)!.length, 1);
    t.same(render(tree, 202, 'proc/stat').match(/^cpu\d+/gm), ['cpu0']);
    t.equal(render(tree, 100, 'sys/devices/system/cpu/online'), '0-1\n', `${tree}: the daemon's cgroup has cpuset 0-1`);
  }
});

t.test('diskstats: the cgroup\'s own I/O, idle devices omitted', async (t) => {
  // hybrid (blkio.throttle): 254:0 read 1 MiB = 2048 sectors in 16 I/Os, wrote 2 MiB = 4096 sectors in 32.
  t.equal(render('hybrid', 202, 'proc/diskstats'), ' 254       0 vda 16 0 2048 0 32 0 4096 0 0 0 0 0 0 0 0 0 0\n');
  // v2 (io.stat): rbytes 4 MiB = 8192 sectors / 64 rios, wbytes 1 MiB = 2048 / 16, 512 discarded = 1 / 1.
  t.equal(render('v2', 202, 'proc/diskstats'), ' 254       0 vda 64 0 8192 0 16 0 2048 0 0 0 0 1 0 1 0 0 0\n');
  t.equal(render('hybrid', 100, 'proc/diskstats'), fixture('hybrid', 'proc/diskstats'), 'host caller: host file');
});

t.test('pressure, slabinfo', async (t) => {
  t.equal(render('hybrid', 202, 'proc/pressure/cpu'), fixture('hybrid', 'sys/fs/cgroup/unified/lxc/c1/cpu.pressure'), 'hybrid: the unified cgroup\'s file');
  t.equal(render('v2', 202, 'proc/pressure/cpu'), fixture('v2', 'sys/fs/cgroup/lxc/c1/cpu.pressure'));
  t.equal(render('v1', 202, 'proc/pressure/cpu'), fixture('v1', 'proc/pressure/cpu'), 'no cgroup2: the host file');
  t.equal(render('hybrid', 202, 'proc/slabinfo'), fixture('hybrid', 'proc/slabinfo'), 'no per-cgroup slabinfo content: host');
  t.equal(render('v2', 202, 'proc/slabinfo'), fixture('v2', 'proc/slabinfo'));
  t.equal(files.find((f) => f.path === 'proc/slabinfo')!.mode, 0o400);
});

t.test('swaps matches meminfo', async (t) => {
  // This machine's meminfo (fixture) has no swap: c1's memsw allowance (384-256 MiB) is capped to 0.
  t.equal(render('hybrid', 202, 'proc/swaps'), 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n');
  t.match(render('hybrid', 202, 'proc/meminfo'), /^SwapTotal:\s+0 kB$/m);
  // With host swap (4 GiB): v2 swap.max 64 MiB, swap.current 8 MiB.
  const host = readFileSync(join(FIXTURES, 'host/meminfo'), 'utf8');
  const own = { version: 2 as const, limit: 256 * 2 ** 20, usage: 100 * 2 ** 20, swapLimit: 64 * 2 ** 20, swapUsage: 8 * 2 ** 20, stat: new Map() };
  const snap = collectMeminfo({ hostFile: () => host, memory: () => ({ own, chain: [{ limit: own.limit, swapLimit: own.swapLimit }] }) } as never);
  const swaps = renderSwaps({ meminfo: snap, host: '' }, OPTS);
  t.equal(swaps.split('\n')[1], `${'none'.padEnd(40)}virtual\t\t65536\t\t8192\t\t0`);
  const mem = renderMeminfo(snap, OPTS);
  t.match(mem, /^SwapTotal:\s+65536 kB$/m);
  t.match(mem, /^SwapFree:\s+57344 kB$/m, 'SwapFree = 65536 - 8192');
  t.equal(renderSwaps({ meminfo: snap, host: '' }, { swap: false, cfs: false }), 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n', '-u: header only');
});

t.test('loadavg formatting (the kernel\'s fixed point)', async (t) => {
  // FIXED_1 = 2048: 2048 -> 1.00, 1024 -> 0.50, 21 -> (21+10)/2048 = 0.0151 -> 0.01
  t.equal(renderLoadavg({ host: '', load: { fixed: [2048, 1024, 21], running: 2, total: 17, lastPid: 42 } }, OPTS), '1.00 0.50 0.01 2/17 42\n');
  t.equal(render('hybrid', 202, 'proc/loadavg'), fixture('hybrid', 'proc/loadavg'), 'no sampler (-l off): the host file');
});

t.test('loadavg sampler: kernel fixed-point decay, tracking and forgetting', async (t) => {
  const { calcLoad, LoadavgSampler, FIXED_1 } = await import('../src/context/loadavg-sampler.js');
  // calc_load(0, EXP_1, 1 task): (0*1884 + 2048*(2048-1884) + 2047) / 2048 = 337919 / 2048 = 164 (integer)
  t.equal(calcLoad(0, 1884, 1), 164);
  // and decays with no task: 164*1884 / 2048 = 150.87 -> 150 (no rounding term when falling)
  t.equal(calcLoad(164, 1884, 0), 150);
  let load = 0;
  for (let i = 0; i < 12; i++) load = calcLoad(load, 1884, 1); // one minute of one running task
  t.ok(Math.abs(load / FIXED_1 - (1 - (1884 / 2048) ** 12)) < 0.01, `1-minute load after 60 s of 1 task ~ 0.63 (${(load / FIXED_1).toFixed(3)})`);

  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync(join((await import('node:os')).tmpdir(), 'lxcfs-ts-sampler-'));
  writeFileSync(join(dir, 'tasks'), `${process.pid}\n`);
  const sampler = new LoadavgSampler(new CgroupReader(), { intervalMs: 60_000 });
  t.teardown(() => sampler.stop());
  const view = sampler.view(dir, 1);
  t.equal(view.total, 1, 'counts the cgroup\'s threads');
  t.equal(view.lastPid, process.pid, 'the newest pid (no pid namespace here: host numbering)');
  t.equal(sampler.size, 1);
  t.ok(sampler.running, 'ticking while a container is tracked');
  rmSync(dir, { recursive: true });
  sampler.tick();
  t.equal(sampler.size, 0, 'forgotten once its cgroup is gone');
  t.notOk(sampler.running, 'and the timer stops: an idle daemon does no work');
});

t.test('this bundle on an older daemon: collect without options, and Sources without threadStates', async (t) => {
  // A SIGUSR1 upgrade loads new renderers into a daemon that may predate parts of their contract: it
  // calls collect(sources) with no options and its Sources have no threadStates. Every file must render
  // as the old daemon expects (the CFS quota read, thread states counted by the renderer).
  const reader = new CgroupReader({ procRoot: join(FIXTURES, 'hybrid', 'proc'), fsRoot: join(FIXTURES, 'hybrid') });
  const resolved = new ContainerResolver(reader, 100).resolve(202);
  if (!resolved.ok) throw new Error(resolved.reason);
  for (const options of [OPTS, { swap: true, cfs: true }]) {
    for (const file of files) {
      const current = file.render(file.collect(sourcesFor(reader, resolved.container), options), options);
      const { threadStates: _, ...older } = sourcesFor(reader, resolved.container);
      const collectOld = file.collect as (sources: unknown) => unknown;
      let text: string | undefined;
      t.doesNotThrow(() => (text = file.render(collectOld(older), options)), `${file.path}, cfs ${options.cfs}`);
      // loadavg has no sampler here in either case; everything else must be the same text
      t.equal(text, current, `${file.path}, cfs ${options.cfs}: same text`);
    }
  }
});
