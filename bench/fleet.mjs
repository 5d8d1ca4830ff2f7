#!/usr/bin/env node
// npm run bench:fleet: a node's worth of containers polling their /proc files, served by lxcfs-ts (default),
// lxcfs-ts --render-cache-ms and Debian's LXCFS, one daemon after the other in one run. Each container is
// one bench/fleet-reader (compiled here) that joins its own cgroups, is the init of a new pid namespace,
// holds idle threads and reads the files once per period at a random phase. Per target and file it
// prints latency percentiles, reads and errors, the daemon's CPU per read, RSS and descriptors; with
// --noisy also the same load beside a container of 5000 threads reading /proc/stat in a loop.
// See bench/README.md ("Fleet") and --help.

import { spawn, spawnSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildFleetReader, cgroupPlan, cpuTicksWithChildren, createContainerCgroups, fdCount, HZ, lxcfsTsArgv, percentile, prepareCgroupPlan, ROOT, rssKiB, sleep, startDaemon, workspace } from './lib.mjs';

const HELP = `usage: npm run bench:fleet -- [options]     (or: node bench/fleet.mjs [options])

N containers (own memory, cpu, cpuacct and cpuset cgroups under ours; init of their own pid namespace;
THREADS idle threads) each read FILES from the daemon's mount once per PERIOD, at a random phase, for
DURATION seconds after WARMUP seconds that are not counted. Targets run one after the other.

  -n, --containers N      containers (default 100)
  -t, --threads T         idle threads per container besides its reader (default 10)
      --files LIST        files under <mount>/proc, read in this order each period
                          (default meminfo,stat,cpuinfo,uptime,loadavg; also swaps, diskstats)
      --period-ms MS      period of each container's reads (default 1000)
  -d, --duration S        measured seconds per target (default 30)
      --warmup S          seconds read but not counted first: the first reads of a new pid
                          namespace, daemon caches filling (default 2)
      --targets LIST      lxcfs-ts (default mode), cached (--render-cache-ms CACHE_MS), LXCFS
                          (Debian's lxcfs -l, when installed) (default: all three)
      --cache-ms MS       the cached target's --render-cache-ms (default 100)
      --noisy             per target, run the load twice: alone, then beside a noisy neighbour
      --noisy-threads T   the neighbour's threads (default 5000); it reads /proc/stat back to back
      --lxcfs-ts FILE     the lxcfs-ts executable (default dist/src/daemon/main.js, run as installed)
      --seed N            seed of the phases (default random; recorded in the JSON)
  -o, --results FILE      JSON output (default bench/results/fleet.json; env BENCH_RESULTS too)
  -h, --help              this help

Needs root, /dev/fuse, gcc, a built dist/ (npm run build), and the memory controller on cgroup v1, hybrid
or v2 (v2: our cgroup must be able to delegate memory, cpu and cpuset to children). Any failed open, read
or close, or an empty read, counts as an error; the run then exits 1. Ctrl-C removes everything it made.`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      containers: { type: 'string', short: 'n', default: '100' },
      threads: { type: 'string', short: 't', default: '10' },
      files: { type: 'string', default: 'meminfo,stat,cpuinfo,uptime,loadavg' },
      'period-ms': { type: 'string', default: '1000' },
      duration: { type: 'string', short: 'd', default: '30' },
      warmup: { type: 'string', default: '2' },
      targets: { type: 'string', default: 'lxcfs-ts,cached,LXCFS' },
      'cache-ms': { type: 'string', default: '100' },
      noisy: { type: 'boolean', default: false },
      'noisy-threads': { type: 'string', default: '5000' },
      'lxcfs-ts': { type: 'string' },
      seed: { type: 'string' },
      results: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  process.stderr.write(`bench:fleet: ${err.message}\n`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const usage = (msg) => {
  process.stderr.write(`bench:fleet: ${msg} (--help)\n`);
  process.exit(2);
};
const int = (name, min) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) usage(`--${name} must be an integer >= ${min}`);
  return v;
};
const num = (name, min) => {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v < min) usage(`--${name} must be a number >= ${min}`);
  return v;
};
const SERVED = ['meminfo', 'stat', 'cpuinfo', 'uptime', 'loadavg', 'swaps', 'diskstats'];
const P = {
  containers: int('containers', 1),
  threads: int('threads', 0),
  files: args.files.split(',').filter(Boolean),
  periodMs: num('period-ms', 1),
  durationS: num('duration', 0.1),
  warmupS: num('warmup', 0),
  targets: args.targets.split(',').filter(Boolean),
  cacheMs: int('cache-ms', 1),
  noisy: args.noisy,
  noisyThreads: int('noisy-threads', 0),
  seed: args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', 0),
};
for (const f of P.files) if (!SERVED.includes(f)) usage(`--files: ${f} is not one of ${SERVED.join(', ')}`);
if (!P.files.length) usage('--files: empty');
for (const t of P.targets) if (!['lxcfs-ts', 'cached', 'LXCFS'].includes(t)) usage(`--targets: ${t} is not lxcfs-ts, cached or LXCFS`);
const OUT = args.results || process.env.BENCH_RESULTS || join(ROOT, 'bench/results/fleet.json');
const MAIN = args['lxcfs-ts'];
const log = (msg) => process.stderr.write(`bench:fleet: ${msg}\n`);

const PERIOD_NS = BigInt(Math.round(P.periodMs * 1e6));
const WARMUP_NS = BigInt(Math.round(P.warmupS * 1e9));
const DURATION_NS = BigInt(Math.round(P.durationS * 1e9));
const NEIGHBOUR_FILE = 'stat';
const ERRNO_NAME = Object.fromEntries(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));
const errName = (e) => (e === -1 ? 'empty' : (ERRNO_NAME[e] ?? `errno ${e}`));

/** mulberry32: phases reproducible from --seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hostLoad = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadBefore = hostLoad();
const ws = workspace('lxcfs-ts-fleet-');
const READER = buildFleetReader(ws);

// ---- cgroups: N containers (+ the neighbour), created once, reused by every target and phase ----
const plan = prepareCgroupPlan(ws, cgroupPlan(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8')), log);
const tag = `lxcfs-ts-fleet-${process.pid}`;
const cgroups = Array.from({ length: P.containers }, (_, i) => createContainerCgroups(ws, plan, `${tag}-${i}`));
const neighbourCgroups = P.noisy ? createContainerCgroups(ws, plan, `${tag}-noisy`) : undefined;
const live = new Set(); // reader launchers still running
/** Registered after the cgroups and again after each daemon (cleanups run last-in first-out): on Ctrl-C the
 * readers go first, then the daemon, then the cgroups (whose removal also kills anything left in them). */
const killReaders = () => {
  for (const child of live) child.kill('SIGKILL'); // its pid namespace's init follows (PR_SET_PDEATHSIG)
};
ws.onCleanup(killReaders);
log(`cgroups: ${plan.map((g) => `${g.controllers.join(',')} (v${g.version}) under ${g.parent}`).join('; ')}`);

/**
 * Start one container's reader; resolves once it is ready, with { child, done, line(re) }: done resolves
 * with its whole output at exit, line(re) with the first output line matching re (undefined if it exits
 * without one).
 */
function startReader(cg, extra, paths, phaseNs) {
  return new Promise((resolve, reject) => {
    const argv = [...cg.procs.flatMap((p) => ['-c', p]), ...extra, String(PERIOD_NS), String(phaseNs), ...paths];
    const child = spawn(READER, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    let err = '';
    let ready = false;
    const done = new Promise((res) =>
      child.on('close', (code) => {
        live.delete(child);
        res({ out, err, code });
      }),
    );
    const line = (re) =>
      new Promise((res) => {
        const look = () => {
          const m = out.split('\n').slice(0, -1).find((l) => re.test(l)); // whole lines only
          if (m !== undefined) res(m);
          return m !== undefined;
        };
        if (look()) return;
        const onData = () => look() && child.stdout.off('data', onData);
        child.stdout.on('data', onData);
        done.then(() => look() || res(undefined));
      });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      if (!ready && out.includes('\n')) {
        ready = true;
        if (out.startsWith('ready ')) resolve({ child, done, line });
        else reject(new Error(`reader in ${cg.name}: ${out.trim()} ${err}`));
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    done.then(({ code }) => {
      if (!ready) reject(new Error(`reader in ${cg.name} exited ${code} before ready: ${err.trim()}`));
    });
  });
}

const SLOW_NS = 10_000_000;

/** fn(), or null when it throws: a daemon that died mid-run leaves no /proc/<pid> to sample. */
const sample = (fn) => {
  try {
    return fn();
  } catch {
    return null;
  }
};
const resources = (daemon) => ({ rssKiB: sample(() => rssKiB(daemon.pid)), fds: sample(() => fdCount(daemon.pid)) });

/** Latency summary in µs (ns input, unsorted Float64Array); over10ms: successful reads slower than 10 ms. */
function summary(ns) {
  ns.sort();
  const us = (p) => (ns.length ? Math.round(percentile(ns, p) / 100) / 10 : null);
  let slow = 0;
  for (let i = ns.length - 1; i >= 0 && ns[i] > SLOW_NS; i--) slow++;
  return { p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: ns.length ? Math.round(ns[ns.length - 1] / 100) / 10 : null, over10ms: slow };
}

/**
 * One phase: N containers (and the neighbour when `noisy`) read from `daemon` for warmup + duration.
 * Returns per-file and overall latencies of the N containers' reads that started after the warm-up,
 * errors, the daemon's CPU over the measured window, and the load generator's own cost.
 */
async function runPhase(daemon, noisy) {
  const rand = prng(P.seed);
  const paths = P.files.map((f) => join(daemon.mountpoint, 'proc', f));
  // The neighbour comes first and is reading before the others exist: its arrival (the daemon's first look
  // at its threads) is reported apart, as its first read; the phase measures the steady state beside it.
  let neighbour, neighbourFirst;
  if (noisy) {
    neighbour = await startReader(neighbourCgroups, ['-t', String(P.noisyThreads), '-l'], [join(daemon.mountpoint, 'proc', NEIGHBOUR_FILE)], 0n);
    const now = process.hrtime.bigint();
    const never = now + 86_400_000_000_000n;
    neighbour.child.stdin.write(`${now + 100_000_000n} ${never} ${never}\n`); // read from now on, count nothing yet
    const first = await neighbour.line(/^first /);
    if (!first) throw new Error(`the neighbour exited before its first read: ${(await neighbour.done).err}`);
    neighbourFirst = { latencyMs: Math.round(Number(first.split(' ')[1]) / 1e4) / 100, err: Number(first.split(' ')[2]) };
    await sleep(1000);
  }
  const spawned = [];
  for (let i = 0; i < P.containers; i++) spawned.push(startReader(cgroups[i], ['-t', String(P.threads)], paths, BigInt(Math.floor(rand() * Number(PERIOD_NS)))));
  const settled = await Promise.allSettled(spawned);
  const readers = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    for (const r of [...readers, ...(neighbour ? [neighbour] : [])]) r.child.kill('SIGKILL');
    throw failed.reason;
  }

  // every reader gets the same absolute schedule (CLOCK_MONOTONIC: process.hrtime is the same clock)
  const start = process.hrtime.bigint() + 500_000_000n;
  const measureFrom = start + WARMUP_NS;
  const end = measureFrom + DURATION_NS;
  for (const r of readers) r.child.stdin.end(`${start} ${end}\n`);
  neighbour?.child.stdin.end(`${measureFrom} ${end}\n`); // the neighbour's reads count in the measured window

  const at = (t) => sleep(Math.max(0, Number(t - process.hrtime.bigint()) / 1e6));
  await at(measureFrom);
  const cpu0 = sample(() => cpuTicksWithChildren(daemon.pid));
  await at(end);
  const atEnd = resources(daemon);
  const outs = await Promise.all(readers.map((r) => r.done));
  const cpu1 = sample(() => cpuTicksWithChildren(daemon.pid));
  const nOut = neighbour ? await neighbour.done : undefined;

  const perFile = P.files.map(() => []);
  const slow = []; // [start, end] of reads over SLOW_NS, ns from START, for the stall windows
  const errors = P.files.map(() => ({}));
  const lags = [];
  let loadgenCpuUs = 0;
  let badReaders = 0;
  let overruns = 0;
  const warmNs = Number(WARMUP_NS);
  for (const [container, { out, err, code }] of outs.entries()) {
    if (code !== 0 || !/^done \d+$/m.test(out)) {
      badReaders++;
      log(`a reader exited ${code}: ${err.trim()}`);
    }
    for (const line of out.split('\n')) {
      const f = line.split(' ');
      if (f[0] === 'R') {
        if (Number(f[2]) < warmNs) continue; // a tick due in the warm-up
        const file = Number(f[1]);
        const e = Number(f[5]);
        const latency = Number(f[4]);
        if (e === 0) perFile[file].push(latency);
        else errors[file][errName(e)] = (errors[file][errName(e)] ?? 0) + 1;
        if (latency > SLOW_NS) slow.push({ container, start: Number(f[3]), end: Number(f[3]) + latency });
      } else if (f[0] === 'L') {
        if (Number(f[1]) < warmNs) continue;
        lags.push(Number(f[2]));
        if (f[3] === '1') overruns++;
      } else if (f[0] === 'done') loadgenCpuUs += Number(f[1]);
    }
  }
  const count = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  const files = {};
  P.files.forEach((name, i) => {
    files[name] = { reads: perFile[i].length + count(errors[i]), errors: count(errors[i]), errorKinds: errors[i], ...summary(Float64Array.from(perFile[i])) };
  });
  const allErrors = {};
  for (const e of errors) for (const [k, v] of Object.entries(e)) allErrors[k] = (allErrors[k] ?? 0) + v;
  const reads = Object.values(files).reduce((a, f) => a + f.reads, 0);
  const all = { reads, errors: count(allErrors), errorKinds: allErrors, ...summary(Float64Array.from(perFile.flat())) };

  let neighbourResult;
  if (nOut) {
    const m = /^N (\d+) (\d+) (\d+) (\d+)$/m.exec(nOut.out);
    if (!m || nOut.code !== 0) {
      badReaders++;
      log(`the neighbour exited ${nOut.code}: ${nOut.err.trim()}`);
    }
    const nReads = m ? Number(m[1]) : 0;
    neighbourResult = {
      threads: P.noisyThreads,
      file: NEIGHBOUR_FILE,
      reads: nReads,
      errors: m ? Number(m[2]) : 0,
      meanUs: nReads ? Math.round(Number(m[3]) / nReads / 100) / 10 : null,
      maxUs: m ? Math.round(Number(m[4]) / 100) / 10 : null,
      // its very first read, before the others started: the daemon meeting a container of that many threads
      firstReadMs: neighbourFirst.latencyMs,
      firstReadErr: neighbourFirst.err,
      cpuMs: Number(/^done (\d+)$/m.exec(nOut.out)?.[1] ?? 0) / 1000,
    };
  }
  const daemonCpuMs = cpu0 === null || cpu1 === null ? null : ((cpu1 - cpu0) * 1000) / HZ; // null: the daemon died
  const servedReads = reads + (neighbourResult?.reads ?? 0);
  lags.sort((a, b) => a - b);
  return {
    phase: noisy ? 'noisy' : 'quiet',
    files,
    all,
    daemonCpuMs,
    // every read the daemon served in the window, the neighbour's included
    daemonCpuPerReadUs: servedReads && daemonCpuMs !== null ? Math.round((daemonCpuMs * 1000 * 10) / servedReads) / 10 : null,
    atEnd,
    loadGenerator: {
      cpuMs: Math.round(loadgenCpuUs / 100) / 10,
      tickLagP99Ms: lags.length ? Math.round(percentile(lags, 99) / 1e4) / 100 : null,
      tickLagMaxMs: lags.length ? Math.round(lags[lags.length - 1] / 1e4) / 100 : null,
      ticks: lags.length,
      // ticks that came due while the container's previous tick was still reading (a read longer than the period)
      overruns,
      failedReaders: badReaders,
    },
    stalls: stallWindows(slow),
    neighbour: neighbourResult,
  };
}

/**
 * Stall windows: reads slower than SLOW_NS whose [start, end] overlap, merged. A daemon-wide stall shows as
 * one window holding the reads of many containers; a slow file alone, as many windows of one read each.
 * Returns their count, the longest, the most containers caught in one, and the 20 longest (ms from START).
 */
function stallWindows(slow) {
  slow.sort((a, b) => a.start - b.start);
  const windows = [];
  for (const r of slow) {
    const w = windows[windows.length - 1];
    if (w && r.start <= w.end) {
      w.end = Math.max(w.end, r.end);
      w.reads++;
      w.containers.add(r.container);
    } else windows.push({ start: r.start, end: r.end, reads: 1, containers: new Set([r.container]) });
  }
  const ms = (ns) => Math.round(ns / 1e5) / 10;
  const list = windows.map((w) => ({ atMs: ms(w.start), durationMs: ms(w.end - w.start), reads: w.reads, containers: w.containers.size }));
  return {
    windows: list.length,
    longestMs: list.length ? Math.max(...list.map((w) => w.durationMs)) : 0,
    mostContainers: list.length ? Math.max(...list.map((w) => w.containers)) : 0,
    longest: [...list].sort((a, b) => b.durationMs - a.durationMs).slice(0, 20),
  };
}

// ---- targets, one after the other ----
const lxcfsBin = spawnSync('sh', ['-c', 'command -v lxcfs'], { encoding: 'utf8' }).stdout.trim();
const lxcfsVersion = lxcfsBin ? spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'lxcfs'], { encoding: 'utf8' }).stdout?.trim() || undefined : undefined;
const results = [];
const skipped = [];
for (const t of P.targets) {
  const mnt = join(ws.dir, `mnt-${t}`);
  let name, argv;
  if (t === 'lxcfs-ts' || t === 'cached') {
    name = t === 'lxcfs-ts' ? 'lxcfs-ts' : `lxcfs-ts cached ${P.cacheMs}`;
    argv = lxcfsTsArgv(ws, mnt, t === 'cached' ? ['-l', '--render-cache-ms', String(P.cacheMs)] : ['-l']);
    if (MAIN) argv[0] = MAIN;
    argv[argv.indexOf('-p') + 1] = join(ws.dir, `${t}.pid`);
  } else {
    name = 'LXCFS';
    if (!lxcfsBin) {
      log('lxcfs is not installed (apt-get install lxcfs): skipped');
      skipped.push({ target: 'LXCFS', reason: 'lxcfs not on PATH' });
      continue;
    }
    argv = [lxcfsBin, '-f', '-l', '-p', join(ws.dir, 'lxcfs.pid'), mnt];
  }
  log(`${name}: starting (${argv.join(' ')})`);
  const daemon = await startDaemon(ws, name, argv, mnt);
  ws.onCleanup(killReaders);
  for (const f of P.files) if (!existsSync(join(mnt, 'proc', f))) log(`${name} does not serve proc/${f}: its reads will fail`);
  await sleep(500);
  const before = resources(daemon);
  const phases = [];
  for (const noisy of P.noisy ? [false, true] : [false]) {
    log(`${name}: ${P.containers} containers x ${P.threads} threads${noisy ? ` + neighbour (${P.noisyThreads} threads)` : ''}, ${P.warmupS} s warm-up + ${P.durationS} s`);
    phases.push(await runPhase(daemon, noisy));
    await sleep(1000);
  }
  const after = resources(daemon);
  const died = after.rssKiB === null;
  if (died) log(`${name} died during the run: ${daemon.stderr().trim()}`);
  const said = daemon.stderr().trim(); // anything it said on stderr
  await daemon.stop();
  results.push({ target: name, argv: argv.map((a) => a.replace(ws.dir, '$TMP')), version: name === 'LXCFS' ? lxcfsVersion : undefined, before, after, died, phases, daemonStderr: said || undefined });
}

// ---- report ----
ws.cleanup();
const table = [['target', 'phase', 'file', 'reads', 'errors', 'p50 µs', 'p90 µs', 'p99 µs', 'p99.9 µs', 'max µs', '>10 ms', 'CPU/read µs']];
for (const r of results) {
  for (const ph of r.phases) {
    for (const [file, s] of [...Object.entries(ph.files), ['all', ph.all]]) {
      table.push([r.target, ph.phase, file, s.reads, s.errors, s.p50, s.p90, s.p99, s.p999, s.max, s.over10ms, file === 'all' ? ph.daemonCpuPerReadUs : ''].map((v) => (v === null || v === undefined ? '-' : String(v))));
    }
  }
}
const print = (rows) => {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((l) => l[i].length)));
  for (const l of rows) console.log(l.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
};
print(table);
console.log('');
const daemonTable = [['target', 'phase', 'daemon CPU ms', 'RSS KiB before', 'at end', 'after', 'fds before', 'at end', 'after', 'stalls', 'longest ms', 'most containers', 'load gen CPU ms', 'tick lag p99/max ms', 'overrun ticks', 'neighbour reads/errors', 'its first read ms']];
for (const r of results) {
  for (const ph of r.phases) {
    daemonTable.push([
      r.target,
      ph.phase,
      ph.daemonCpuMs,
      r.before.rssKiB,
      ph.atEnd.rssKiB,
      r.after.rssKiB,
      r.before.fds,
      ph.atEnd.fds,
      r.after.fds,
      ph.stalls.windows,
      ph.stalls.longestMs,
      ph.stalls.mostContainers,
      Math.round(ph.loadGenerator.cpuMs + (ph.neighbour?.cpuMs ?? 0)),
      `${ph.loadGenerator.tickLagP99Ms ?? '-'}/${ph.loadGenerator.tickLagMaxMs ?? '-'}`,
      `${ph.loadGenerator.overruns}/${ph.loadGenerator.ticks}`,
      ph.neighbour ? `${ph.neighbour.reads}/${ph.neighbour.errors}` : '-',
      ph.neighbour ? `${ph.neighbour.firstReadMs}${ph.neighbour.firstReadErr ? ` (${errName(ph.neighbour.firstReadErr)})` : ''}` : '-',
    ].map((v) => String(v ?? '-')));
  }
}
print(daemonTable);
if (P.noisy) {
  console.log('');
  const cmp = [['target', 'file', 'p99 quiet µs', 'p99 noisy µs', 'ratio', 'p99.9 quiet µs', 'p99.9 noisy µs', 'ratio']];
  const ratio = (a, b) => (a && b ? (b / a).toFixed(2) : '-');
  for (const r of results) {
    const [q, n] = r.phases;
    for (const file of [...P.files, 'all']) {
      const a = file === 'all' ? q.all : q.files[file];
      const b = file === 'all' ? n.all : n.files[file];
      cmp.push([r.target, file, a.p99, b.p99, ratio(a.p99, b.p99), a.p999, b.p999, ratio(a.p999, b.p999)].map((v) => String(v ?? '-')));
    }
  }
  print(cmp);
}
for (const s of skipped) console.log(`skipped: ${s.target} (${s.reason})`);
const phaseErrors = (ph) => ph.all.errors + (ph.neighbour ? ph.neighbour.errors + (ph.neighbour.firstReadErr ? 1 : 0) : 0);
const totalErrors = results.reduce((a, r) => a + r.phases.reduce((b, ph) => b + phaseErrors(ph), 0), 0);
const failedReaders = results.reduce((a, r) => a + r.phases.reduce((b, ph) => b + ph.loadGenerator.failedReaders, 0), 0);
console.log(`errors: ${results.map((r) => `${r.target} ${r.phases.reduce((b, ph) => b + phaseErrors(ph), 0)}`).join(', ')}; host load average ${loadBefore} before, ${hostLoad()} after`);

const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
const json = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpuinfo.match(/^processor/gm)?.length,
    model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1],
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1],
    loadavgBefore: loadBefore,
    loadavgAfter: hostLoad(),
    cgroups: plan.map((g) => ({ version: g.version, controllers: g.controllers })),
  },
  params: { ...P, neighbourFile: NEIGHBOUR_FILE, memoryLimitMiB: 512 },
  lxcfs: lxcfsBin ? { path: lxcfsBin, version: lxcfsVersion } : null,
  skipped,
  results,
  errors: totalErrors,
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(json, null, 2) + '\n');
console.log(`results: ${OUT}`);
process.exit(totalErrors === 0 && failedReaders === 0 && !results.some((r) => r.died) ? 0 : 1);
