// The fleet benchmark (npm run bench:fleet) end to end at a tiny size: exit 0, every read made and none
// failed, the JSON's shape, nothing left behind, also after Ctrl-C; and where it puts the containers'
// cgroups on v1, hybrid and v2 hosts (bench/lib.mjs cgroupPlan, on the fixture hosts' mount tables).
// Nothing timed is asserted: the numbers of a tiny run mean nothing.

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error plain JavaScript module without types
import { cgroupPlan } from '../bench/lib.mjs';
import { cleanup, ROOT, scratchDir } from './helpers/daemon.js';

const FLEET = join(ROOT, 'bench/fleet.mjs');
const FIXTURES = join(ROOT, 'test/fixtures');
const fixture = (tree: string, file: string) => readFileSync(join(FIXTURES, tree, 'proc/100', file), 'utf8');

interface Latency {
  reads: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  over10ms: number;
}
interface Phase {
  phase: string;
  files: Record<string, Latency>;
  all: Latency;
  daemonCpuMs: number;
  daemonCpuPerReadUs: number;
  atEnd: { rssKiB: number; fds: number };
  loadGenerator: { ticks: number; overruns: number; failedReaders: number; cpuMs: number };
  stalls: { windows: number; longestMs: number; mostContainers: number; longest: unknown[] };
  neighbour?: { threads: number; file: string; reads: number; errors: number; firstReadMs: number; firstReadErr: number };
}
interface Result {
  target: string;
  before: { rssKiB: number; fds: number };
  after: { rssKiB: number; fds: number };
  phases: Phase[];
}

/** Our own cgroup directories in the v1 hierarchies the bench uses (this host is hybrid). */
function ownDirs(): string[] {
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    for (const c of controllers?.split(',') ?? []) if (['memory', 'cpu', 'cpuacct', 'cpuset'].includes(c)) dirs.push(join('/sys/fs/cgroup', c, path!));
  }
  return dirs;
}
/** What a fleet run could leave behind: its cgroups, mounts, readers. */
function leftovers(): string[] {
  const cgroups = ownDirs().flatMap((d) => readdirSync(d).filter((n) => n.startsWith('lxcfs-ts-fleet-')).map((n) => join(d, n)));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes('/lxcfs-ts-fleet-'));
  const readers = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        // a zombie holds nothing but its pid, until whoever adopted it reaps it
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return stat.startsWith(`${p} (fleet-reader) `) && stat[stat.lastIndexOf(')') + 2] !== 'Z';
      } catch {
        return false;
      }
    });
  return [...cgroups, ...mounts, ...readers.map((p) => `fleet-reader pid ${p}`)];
}

t.test('cgroupPlan: one child of our own cgroup per hierarchy, on the fixture hosts', async (t) => {
  // this machine's layout: separate cpu, cpuacct, cpuset and memory hierarchies, cgroup2 holding only hugetlb
  t.same(cgroupPlan(fixture('hybrid', 'mountinfo'), fixture('hybrid', 'cgroup')), [
    { version: 1, controllers: ['memory'], parent: '/sys/fs/cgroup/memory/system.slice/lxcfs-ts.service' },
    { version: 1, controllers: ['cpu'], parent: '/sys/fs/cgroup/cpu/system.slice/lxcfs-ts.service' },
    { version: 1, controllers: ['cpuacct'], parent: '/sys/fs/cgroup/cpuacct/system.slice/lxcfs-ts.service' },
    { version: 1, controllers: ['cpuset'], parent: '/sys/fs/cgroup/cpuset/system.slice/lxcfs-ts.service' },
  ]);
  // co-mounted cpu,cpuacct: one directory serves both
  t.same(cgroupPlan(fixture('v1', 'mountinfo'), fixture('v1', 'cgroup')), [
    { version: 1, controllers: ['memory'], parent: '/sys/fs/cgroup/memory/system.slice/lxcfs-ts.service' },
    { version: 1, controllers: ['cpu', 'cpuacct'], parent: '/sys/fs/cgroup/cpu,cpuacct/system.slice/lxcfs-ts.service' },
    { version: 1, controllers: ['cpuset'], parent: '/sys/fs/cgroup/cpuset/system.slice/lxcfs-ts.service' },
  ]);
  // pure v2: one directory; no cpuacct controller exists there (cpu.stat is in every cgroup)
  t.same(cgroupPlan(fixture('v2', 'mountinfo'), fixture('v2', 'cgroup')), [
    { version: 2, controllers: ['memory', 'cpu', 'cpuset'], parent: '/sys/fs/cgroup/system.slice/lxcfs-ts.service' },
  ]);
  // a cgroup2 mount whose root is a sub-cgroup (cgroup namespace, bind mount): paths are relative to it
  const nsMountinfo = '29 21 0:26 /system.slice /sys/fs/cgroup rw,relatime shared:4 - cgroup2 cgroup2 rw\n';
  t.same(cgroupPlan(nsMountinfo, '0::/system.slice/bench.scope\n'), [{ version: 2, controllers: ['memory', 'cpu', 'cpuset'], parent: '/sys/fs/cgroup/bench.scope' }]);
  t.throws(() => cgroupPlan(nsMountinfo, '0::/user.slice\n'), /outside the mounted/, 'our cgroup outside the mount');
  t.throws(() => cgroupPlan('24 18 0:20 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n', '0::/\n'), /no memory cgroup hierarchy/);
});

t.test('npm run bench:fleet, tiny run with the noisy neighbour', async (t) => {
  const dir = scratchDir('lxcfs-ts-fleet-test-');
  t.teardown(() => cleanup(dir));
  const out = join(dir, 'fleet.json');
  const before = leftovers();
  const N = 3;
  const PERIOD_MS = 250;
  const DURATION_S = 2; // a multiple of the period: every container has exactly DURATION/PERIOD ticks in it
  const TICKS = (DURATION_S * 1000) / PERIOD_MS;
  const files = ['meminfo', 'stat', 'cpuinfo', 'uptime', 'loadavg'];
  const r = spawnSync(
    process.execPath,
    [FLEET, '-n', String(N), '-t', '3', '--period-ms', String(PERIOD_MS), '-d', String(DURATION_S), '--warmup', '0.6', '--noisy', '--noisy-threads', '50', '-o', out],
    { encoding: 'utf8', timeout: 240_000 },
  );
  t.equal(r.status, 0, `exit 0\n${r.stderr}`);
  t.match(r.stdout, /^target\s+phase\s+file\s+reads\s+errors\s+p50 µs\s+p90 µs\s+p99 µs\s+p99\.9 µs\s+max µs\s+>10 ms\s+CPU\/read µs$/m, 'the latency table');
  t.match(r.stdout, /^errors: lxcfs-ts 0, lxcfs-ts cached 100 0\b/m, 'errors line');

  const json = JSON.parse(readFileSync(out, 'utf8')) as { params: Record<string, unknown>; lxcfs: unknown; skipped: { target: string }[]; results: Result[]; errors: number };
  t.equal(json.errors, 0, 'no failed read');
  t.match(json.params, { containers: N, threads: 3, periodMs: PERIOD_MS, durationS: DURATION_S, noisy: true, noisyThreads: 50, files });
  const names = json.results.map((x) => x.target);
  t.same(names, json.lxcfs ? ['lxcfs-ts', 'lxcfs-ts cached 100', 'LXCFS'] : ['lxcfs-ts', 'lxcfs-ts cached 100'], 'every target, in order');
  t.same(json.skipped.map((s) => s.target), json.lxcfs ? [] : ['LXCFS'], 'LXCFS skipped only when not installed');

  for (const res of json.results) {
    t.ok(res.before.rssKiB > 0 && res.after.rssKiB > 0 && res.before.fds > 0 && res.after.fds > 0, `${res.target}: RSS and fds sampled`);
    t.same(res.phases.map((p) => p.phase), ['quiet', 'noisy'], `${res.target}: both phases`);
    for (const ph of res.phases) {
      const label = `${res.target} ${ph.phase}`;
      t.same(Object.keys(ph.files), files, `${label}: one entry per file, in order`);
      for (const [file, s] of Object.entries(ph.files)) {
        t.equal(s.reads, N * TICKS, `${label} ${file}: every container read it once per tick`);
        t.equal(s.errors, 0, `${label} ${file}: no error`);
        t.ok(s.p50 > 0 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max, `${label} ${file}: ordered percentiles ${s.p50} ${s.p90} ${s.p99} ${s.p999} ${s.max}`);
      }
      t.equal(ph.all.reads, N * TICKS * files.length, `${label}: all reads`);
      t.equal(ph.loadGenerator.ticks, N * TICKS, `${label}: ticks`);
      t.equal(ph.loadGenerator.failedReaders, 0, `${label}: every reader ran`);
      t.match(ph.stalls, { windows: Number, longestMs: Number, mostContainers: Number, longest: Array }, `${label}: stall windows`);
      // CPU time comes in 10 ms clock ticks: a tiny run may honestly measure 0
      t.ok(ph.daemonCpuMs >= 0 && ph.daemonCpuPerReadUs >= 0, `${label}: daemon CPU measured`);
      t.ok(ph.atEnd.rssKiB > 0 && ph.atEnd.fds > 0, `${label}: RSS and fds at the end`);
      if (ph.phase === 'noisy') {
        t.match(ph.neighbour, { threads: 50, file: 'stat', errors: 0, firstReadErr: 0, firstReadMs: Number }, `${label}: the neighbour`);
        t.ok(ph.neighbour!.reads > 0, `${label}: the neighbour read ${ph.neighbour!.reads} times`);
      } else t.equal(ph.neighbour, undefined, `${label}: no neighbour`);
    }
  }
  t.match(r.stdout, /^target\s+file\s+p99 quiet µs\s+p99 noisy µs\s+ratio/m, 'the with/without neighbour table');
  t.same(leftovers(), before, 'no cgroup, mount or reader left behind');
});

t.test('bench:fleet --help, and a bad option', async (t) => {
  const help = spawnSync(process.execPath, [FLEET, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  for (const opt of ['--containers', '--threads', '--files', '--period-ms', '--duration', '--targets', '--noisy', '--results']) t.match(help.stdout, opt);
  const bad = spawnSync(process.execPath, [FLEET, '--files', 'meminfo,nosuch'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /nosuch/);
});

t.test('Ctrl-C in the middle of a phase removes everything', async (t) => {
  const dir = scratchDir('lxcfs-ts-fleet-test-');
  t.teardown(() => cleanup(dir));
  const before = leftovers();
  const child = spawn(process.execPath, [FLEET, '-n', '3', '-t', '2', '-d', '120', '--warmup', '0', '--targets', 'lxcfs-ts', '-o', join(dir, 'never.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // the phase has started once the harness says so; the containers are then up and reading
  await new Promise<void>((resolve) =>
    child.stderr.on('data', (d) => {
      err += d;
      if (/containers x 2 threads/.test(err)) resolve();
    }),
  );
  const workspace = /-p (\/\S+)\/lxcfs-ts\.pid/.exec(err)?.[1];
  t.ok(workspace && existsSync(workspace), `workspace ${workspace}`);
  // wait until the readers exist (they print ready before the schedule starts)
  while (leftovers().filter((l) => l.startsWith('fleet-reader')).length < 3) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  t.equal(await exited, 130, 'exits 130');
  t.notOk(existsSync(workspace!), 'workspace removed');
  t.notOk(existsSync(join(dir, 'never.json')), 'no results written');
  t.same(leftovers(), before, 'no cgroup, mount or reader left behind');
  const daemons = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return stat[stat.lastIndexOf(')') + 2] !== 'Z' && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(workspace!);
      } catch {
        return false;
      }
    });
  t.same(daemons, [], 'no daemon left running');
});
