#!/usr/bin/env node
// npm run bench: lxcfs-ts against Debian's LXCFS (when `lxcfs` is on PATH: apt-get install lxcfs) and the
// host's own /proc, in one run, from readers (bench/reader.c) inside a container: scratch memory (512 MiB),
// cpuset, cpu and cpuacct cgroups and a new pid namespace. Prints one table and writes the JSON.
//
//   BENCH_QUICK=1          tiny counts: checks the harness (test/bench.test.ts), numbers mean nothing
//   BENCH_RESULTS=FILE     where the JSON goes (default bench/results/latest.json)
//   --only NAME[,NAME]     targets to measure: lxcfs-ts, cached (lxcfs-ts --render-cache-ms 100), LXCFS,
//                          host (default: all available)
//   --files F[,F]          files (default meminfo,cpuinfo,stat,uptime,loadavg)
//
// Needs root, /dev/fuse, gcc, unshare, the memory controller (cgroup v1, hybrid or v2) and a built dist/.
// Counts are fixed; nothing is timed out or asserted on time. See bench/README.md.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildReader, containerCgroups, cpuTicks, HZ, inContainer, lxcfsTsArgv, percentile, readsPerSecond, ROOT, rssKiB, sleep, startDaemon, workspace } from './lib.mjs';

const HELP = `usage: npm run bench -- [options]     (or: node --expose-gc bench/run.mjs [options])

lxcfs-ts (default, and with --render-cache-ms 100), Debian's LXCFS (when lxcfs is on PATH) and the host's
own /proc, one after the other, read by bench/reader.c from inside a container (its own memory, cpu,
cpuacct and cpuset cgroups and pid namespace): latency, throughput with 2 and 8 readers, the first read in
a new pid namespace, daemon CPU per read, RSS, and CPU over 30 s idle. Prints one table, writes the JSON.

  --only NAME[,NAME]   targets: lxcfs-ts, cached, LXCFS, host (default: all available)
  --files F[,F]        files (default meminfo,cpuinfo,stat,uptime,loadavg)
  -h, --help           this help

Environment: BENCH_RESULTS=FILE for the JSON (default bench/results/latest.json); BENCH_QUICK=1 for tiny
counts (checks the harness; the numbers mean nothing). Needs root, /dev/fuse, gcc, unshare, the memory
controller (cgroup v1, hybrid or v2) and a built dist/ (npm run build). See bench/README.md.`;

let args;
try {
  ({ values: args } = parseArgs({ options: { only: { type: 'string' }, files: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } }));
} catch (err) {
  process.stderr.write(`bench: ${err.message} (--help)\n`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const QUICK = process.env.BENCH_QUICK === '1';
const COUNTS = QUICK
  ? { latency: 50, throughput: { 2: 100, 8: 50 }, fresh: 2, rssReads: 1000, idleSeconds: 2 }
  : { latency: 2000, throughput: { 2: 2500, 8: 1000 }, fresh: 12, rssReads: 100_000, idleSeconds: 30 };
const ALL_FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg'];
const FILES = args.files ? args.files.split(',') : ALL_FILES;
for (const f of FILES) if (!ALL_FILES.includes(f)) throw new Error(`--files: ${f} is not one of ${ALL_FILES.join(', ')}`);
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
for (const n of ONLY ?? []) if (!['lxcfs-ts', 'cached', 'LXCFS', 'host'].includes(n)) throw new Error(`--only: ${n} is not lxcfs-ts, cached, LXCFS or host`);
const wanted = (name) => !ONLY || ONLY.has(name);
const CACHE_MS = 100;
const OUT = process.env.BENCH_RESULTS || join(ROOT, 'bench/results/latest.json');
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

const hostLoad = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadBefore = hostLoad(); // other work on the machine skews every figure: recorded with the results
const ws = workspace('lxcfs-ts-bench-');
const READER = buildReader(ws);

// ---- daemons (both with -l: loadavg virtualized) ----
const daemons = [];
if (wanted('lxcfs-ts')) {
  const mnt = join(ws.dir, 'mnt-ts');
  daemons.push(await startDaemon(ws, 'lxcfs-ts', lxcfsTsArgv(ws, mnt, ['-l']), mnt));
}
if (wanted('cached')) {
  // the same daemon with the render cache on: a container's repeated reads within 100 ms are served natively
  const mnt = join(ws.dir, 'mnt-ts-cached');
  const argv = lxcfsTsArgv(ws, mnt, ['-l', '--render-cache-ms', String(CACHE_MS)]);
  argv[argv.indexOf('-p') + 1] = join(ws.dir, 'lxcfs-ts-cached.pid');
  daemons.push(await startDaemon(ws, 'lxcfs-ts cached', argv, mnt));
}
const lxcfsBin = spawnSync('sh', ['-c', 'command -v lxcfs'], { encoding: 'utf8' }).stdout.trim();
let lxcfsVersion;
if (wanted('LXCFS') && lxcfsBin) {
  // Debian's lxcfs 5.0.3 prints nothing for --version: ask the package manager
  const v = spawnSync(lxcfsBin, ['--version'], { encoding: 'utf8' });
  lxcfsVersion = `${v.stdout ?? ''}${v.stderr ?? ''}`.trim() || spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'lxcfs'], { encoding: 'utf8' }).stdout?.trim() || undefined;
  const mnt = join(ws.dir, 'mnt-lxcfs');
  daemons.push(await startDaemon(ws, 'LXCFS', [lxcfsBin, '-f', '-l', '-p', join(ws.dir, 'lxcfs.pid'), mnt], mnt));
} else if (wanted('LXCFS')) log('lxcfs is not installed (apt-get install lxcfs): its columns stay empty');
const host = wanted('host') ? { name: 'host' } : undefined;
const targets = [...daemons, ...(host ? [host] : [])];
const pathOf = (target, file) => (target.mountpoint ? join(target.mountpoint, 'proc', file) : `/proc/${file}`);

const cgroups = containerCgroups(ws);

const failures = Object.fromEntries(targets.map((t) => [t.name, 0]));
const rows = [];
/** One table row: a number (or undefined) per target. */
const row = (metric, file, unit, values) => rows.push({ metric, file, unit, ...values });

/** Run the reader in the container; count its failures (a reader that printed nothing failed entirely). */
async function reader(target, mode, file, n, expected) {
  const r = await inContainer(cgroups, [READER, mode, pathOf(target, file), ...(n === undefined ? [] : [String(n)])]);
  const failed = /failures (\d+)/.exec(r.out);
  failures[target.name] += failed ? Number(failed[1]) : expected;
  if (!failed || r.code !== 0) log(`${target.name} ${mode} ${file}: exit ${r.code} ${r.err.trim()}`);
  return r.out;
}

const idle = async (label) => {
  const before = daemons.map((d) => cpuTicks(d.pid));
  await sleep(COUNTS.idleSeconds * 1000);
  row(`daemon CPU over ${COUNTS.idleSeconds} s idle, ${label}`, '-', 'ms', Object.fromEntries(daemons.map((d, i) => [d.name, ((cpuTicks(d.pid) - before[i]) * 1000) / HZ])));
};

// (f1) idle before any container has read anything (lxcfs-ts: no loadavg container tracked yet)
log(`idle ${COUNTS.idleSeconds} s`);
await idle('before any loadavg read');

// (a) latency from inside the container, and (d) the daemon's CPU time per read over the same run
for (const file of FILES) {
  log(`latency ${file}`);
  const stats = {};
  const sorted = (out) =>
    out
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number)
      .sort((a, b) => a - b);
  const us = (ns, p) => (ns.length ? Math.round(percentile(ns, p) / 100) / 10 : undefined);
  for (const target of targets) {
    // A first pass warms the daemon's code for this file (a daemon that has served for a while has its
    // JavaScript compiled and optimized; one just started has not): its p99 is reported on its own row,
    // the measured pass below is the steady state.
    const cold = sorted(await reader(target, 'latency', file, COUNTS.latency, COUNTS.latency));
    const before = target.pid ? cpuTicks(target.pid) : 0;
    const ns = sorted(await reader(target, 'latency', file, COUNTS.latency, COUNTS.latency));
    const cpuUs = target.pid ? ((cpuTicks(target.pid) - before) * 1e6) / HZ / COUNTS.latency : undefined;
    stats[target.name] = { median: us(ns, 50), p90: us(ns, 90), p99: us(ns, 99), coldP99: us(cold, 99), cpu: cpuUs === undefined ? undefined : Math.round(cpuUs * 10) / 10 };
  }
  for (const p of ['median', 'p90', 'p99']) row(`latency ${p}`, file, 'µs', Object.fromEntries(targets.map((t) => [t.name, stats[t.name][p]])));
  row('cold latency p99 (first pass after start)', file, 'µs', Object.fromEntries(targets.map((t) => [t.name, stats[t.name].coldP99])));
  row('daemon CPU per read', file, 'µs', Object.fromEntries(daemons.map((d) => [d.name, stats[d.name].cpu])));
}

// (b) throughput with 2 and 8 concurrent readers: all reads / (last reader's end - first reader's start),
// both stamped by the readers themselves (CLOCK_MONOTONIC), so process start-up is not counted
for (const readers of [2, 8]) {
  for (const file of FILES) {
    log(`throughput x${readers} ${file}`);
    const values = {};
    for (const target of targets) {
      const per = COUNTS.throughput[readers];
      const outs = await Promise.all(Array.from({ length: readers }, () => reader(target, 'throughput', file, per, per)));
      const rate = readsPerSecond(outs, per);
      if (rate !== undefined) values[target.name] = rate;
    }
    row(`throughput, ${readers} readers`, file, 'reads/s', values);
  }
}

// (c) first read from a fresh pid namespace: each run is its own `unshare --pid --fork` running `reader once`
{
  log('first reads');
  const values = {};
  for (const target of targets) {
    const ns = [];
    for (let i = 0; i < COUNTS.fresh; i++) {
      const first = Number((await reader(target, 'once', 'meminfo', undefined, 1)).split('\n')[0]);
      if (first > 0) ns.push(first);
    }
    ns.sort((a, b) => a - b);
    if (ns.length) values[target.name] = Math.round(percentile(ns, 50) / 100) / 10;
  }
  row(`first read in a fresh pid ns (median of ${COUNTS.fresh})`, 'meminfo', 'µs', values);
}

// (e) daemon RSS before and after many reads of meminfo, spread over 8 readers
{
  const before = {};
  const after = {};
  for (const d of daemons) {
    log(`RSS ${d.name}`);
    before[d.name] = rssKiB(d.pid);
    const per = Math.ceil(COUNTS.rssReads / 8);
    await Promise.all(Array.from({ length: 8 }, () => reader(d, 'throughput', 'meminfo', per, per)));
    after[d.name] = rssKiB(d.pid);
  }
  row('daemon RSS before the reads', 'meminfo', 'KiB', before);
  row(`daemon RSS after ${COUNTS.rssReads} reads (8 readers)`, 'meminfo', 'KiB', after);
}

// (f2) idle again: the container has read loadavg, so lxcfs-ts's 5 s sampler is now tracking it
log(`idle ${COUNTS.idleSeconds} s`);
await idle('container tracked for loadavg');

// ---- stop, report ----
for (const d of daemons) await d.stop();
ws.cleanup();

const NAMES = ['lxcfs-ts', 'lxcfs-ts cached', 'LXCFS', 'host'];
const cell = (v) => (v === undefined ? '' : String(v));
const ratio = (a, b) => (a !== undefined && b ? (a / b).toFixed(2) : '');
const table = [['metric', 'file', 'unit', ...NAMES, 'lxcfs-ts/LXCFS', 'cached/LXCFS', 'lxcfs-ts/host']];
for (const r of rows) table.push([r.metric, r.file, r.unit, ...NAMES.map((n) => cell(r[n])), ratio(r['lxcfs-ts'], r.LXCFS), ratio(r['lxcfs-ts cached'], r.LXCFS), ratio(r['lxcfs-ts'], r.host)]);
const widths = table[0].map((_, i) => Math.max(...table.map((l) => l[i].length)));
const numeric = (i) => i >= 3;
for (const l of table) console.log(l.map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
const totalFailures = Object.values(failures).reduce((a, b) => a + b, 0);
console.log(`read failures: ${Object.entries(failures).map(([k, v]) => `${k} ${v}`).join(', ')}; host load average ${loadBefore} before, ${hostLoad()} after`);

const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const results = {
  date: new Date().toISOString(),
  quick: QUICK,
  machine: {
    cpus: cpuinfo.match(/^processor/gm)?.length,
    model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1],
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    loadavgBefore: loadBefore,
    loadavgAfter: hostLoad(),
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1],
  },
  lxcfs: lxcfsBin ? { path: lxcfsBin, version: lxcfsVersion, measured: daemons.some((d) => d.name === 'LXCFS') } : null,
  counts: COUNTS,
  renderCacheMs: CACHE_MS,
  files: FILES,
  targets: targets.map((t) => t.name),
  readFailures: failures,
  rows,
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
console.log(`results: ${OUT}`);
process.exit(totalFailures === 0 ? 0 : 1);
