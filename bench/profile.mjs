#!/usr/bin/env node
// Where the time of one read goes (bench/README.md, "Profile"). From readers in the same kind of container
// as bench/run.mjs, for each served file:
//   - FUSE requests per open/read/close, by opcode: `strace -f -e trace=read -xx -s 8` on the daemon,
//     decoding the fuse_in_header (len, opcode) of every read() on its /dev/fuse descriptor;
//   - opens handed to JavaScript per read: the `-d` log, which logs every open;
//   - files the daemon opens per render: `strace -f -e trace=openat` over the reads / number of reads;
//   - the hand-off floor: open/read/close of bench/empty-fs.cjs's /empty (open answered from JS with an
//     empty buffer, as lxcfs-ts hands over content) against the host's /proc/uptime and lxcfs-ts's files
//     (served by a second lxcfs-ts without -d);
//   - the single-thread ceiling: 8 concurrent readers of /empty, with lxcfs-ts and LXCFS meminfo and stat
//     in the same run, and each daemon's CPU time per read;
//   - the floor under a first read: a new process in a new pid namespace reading /empty once.
// LXCFS gets the FUSE-request and openat counts too when `lxcfs` is on PATH.
// Needs strace (apt-get install strace). BENCH_QUICK=1: small counts. Writes BENCH_PROFILE_RESULTS
// (default bench/results/profile.json).

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildReader, containerCgroups, cpuTicks, HZ, ownCgroup, inContainer, lxcfsTsArgv, percentile, readsPerSecond, ROOT, sleep, startDaemon, workspace } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const N = QUICK ? 50 : 1000; // reads per traced run
const LAT = QUICK ? 50 : 2000; // cycles per latency run
const FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg'];
const OUT = process.env.BENCH_PROFILE_RESULTS || join(ROOT, 'bench/results/profile.json');
const OPCODES = { 1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 14: 'OPEN', 15: 'READ', 18: 'RELEASE', 22: 'GETXATTR', 25: 'FLUSH', 26: 'INIT', 27: 'OPENDIR', 28: 'READDIR', 29: 'RELEASEDIR', 34: 'ACCESS', 36: 'INTERRUPT', 42: 'BATCH_FORGET', 44: 'READDIRPLUS' };
const OWN_MEMORY = (() => {
  const own = ownCgroup('memory');
  return own && own !== '/' ? own.slice(1) : '\0';
})();
const log = (msg) => process.stderr.write(`profile: ${msg}\n`);

if (spawnSync('strace', ['-V']).status !== 0) throw new Error('strace is needed: apt-get install strace');
const ws = workspace('lxcfs-ts-profile-');
const READER = buildReader(ws);
const cgroups = containerCgroups(ws, 'lxcfs-ts-profile');

const debugLog = join(ws.dir, 'lxcfs-ts.log');
const debugFd = openSync(debugLog, 'w');
const mntTs = join(ws.dir, 'mnt-ts');
const daemons = [await startDaemon(ws, 'lxcfs-ts', lxcfsTsArgv(ws, mntTs, ['-l', '-d']), mntTs, 'proc/meminfo', debugFd)];
closeSync(debugFd);
const lxcfsBin = spawnSync('sh', ['-c', 'command -v lxcfs'], { encoding: 'utf8' }).stdout.trim();
if (lxcfsBin) {
  const mnt = join(ws.dir, 'mnt-lxcfs');
  daemons.push(await startDaemon(ws, 'LXCFS', [lxcfsBin, '-f', '-l', '-p', join(ws.dir, 'lxcfs.pid'), mnt], mnt));
}
// latencies come from a second lxcfs-ts without -d (logging every open costs time of its own)
const mntPlain = join(ws.dir, 'mnt-plain');
const plain = await startDaemon(ws, 'lxcfs-ts', [process.execPath, join(ROOT, 'dist/src/daemon/main.js'), '-l', '-p', join(ws.dir, 'plain.pid'), mntPlain], mntPlain);
const mntEmpty = join(ws.dir, 'mnt-empty');
const empty = await startDaemon(ws, 'empty-fs', [process.execPath, join(ROOT, 'bench/empty-fs.cjs'), mntEmpty], mntEmpty, 'empty');

async function readN(path, mode, n, env = {}) {
  const r = await inContainer(cgroups, [READER, mode, path, String(n)], env);
  if (r.code !== 0) throw new Error(`reader ${mode} ${path}: exit ${r.code}: ${r.err}`);
  return r.out;
}

/** Trace the daemon while `n` reads of `path` run in the container; returns the strace output lines. */
async function traced(pid, filter, path, n) {
  const file = join(ws.dir, `strace-${pid}.txt`);
  const st = spawn('strace', ['-f', '-qq', '-e', `trace=${filter}`, '-e', 'signal=none', '-xx', '-s', '8', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  const gone = new Promise((resolve) => st.on('exit', resolve));
  // strace attaches to every thread before it writes anything; give it time, then check it is tracing
  await sleep(1000);
  if (st.exitCode !== null) throw new Error(`strace could not attach to ${pid}`);
  await readN(path, 'throughput', n);
  await sleep(200);
  st.kill('SIGINT');
  await gone;
  return readFileSync(file, 'utf8').split('\n');
}

function fuseFds(pid) {
  return new Set(readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse';
    } catch {
      return false;
    }
  }));
}

/** FUSE requests by opcode: read() calls on a /dev/fuse fd, header bytes 4..7 = opcode (little endian). */
function fuseRequests(lines, fds) {
  const pendingFd = new Map(); // tid -> fd of its unfinished read
  const counts = {};
  for (const line of lines) {
    const start = /^(\d+)\s+read\((\d+),(.*)$/.exec(line);
    let fd;
    let rest;
    if (start) {
      [, , fd, rest] = start;
      if (rest.includes('<unfinished')) {
        pendingFd.set(start[1], fd);
        continue;
      }
    } else {
      const resumed = /^(\d+)\s+<\.\.\. read resumed>(.*)$/.exec(line);
      if (!resumed) continue;
      fd = pendingFd.get(resumed[1]);
      pendingFd.delete(resumed[1]);
      rest = resumed[2];
    }
    if (!fds.has(fd)) continue;
    const hex = /"((?:\\x[0-9a-f]{2}){8})"/.exec(rest);
    if (!hex || /= -1/.test(rest)) continue;
    const bytes = hex[1].split('\\x').slice(1).map((h) => parseInt(h, 16));
    const opcode = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
    const name = OPCODES[opcode] ?? `op${opcode}`;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

const opensLogged = () => readFileSync(debugLog, 'utf8').split('\n').filter((l) => l.includes('"msg":"open"')).length;
const results = { date: new Date().toISOString(), quick: QUICK, reads: N, fuseRequestsPerRead: {}, jsOpensPerRead: {}, openatPerRead: {}, openatPaths: {}, latencyMedianUs: {} };

for (const d of daemons) {
  const fds = fuseFds(d.pid);
  results.fuseRequestsPerRead[d.name] = {};
  results.openatPerRead[d.name] = {};
  for (const file of FILES) {
    const path = join(d.mountpoint, 'proc', file);
    await readN(path, 'throughput', 20); // warm: the container's init is known, loadavg tracked
    log(`${d.name} ${file}: FUSE requests`);
    const before = d.name === 'lxcfs-ts' ? opensLogged() : 0;
    const counts = fuseRequests(await traced(d.pid, 'read', path, N), fds);
    results.fuseRequestsPerRead[d.name][file] = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / N) * 1000) / 1000]));
    if (d.name === 'lxcfs-ts') results.jsOpensPerRead[file] = (opensLogged() - before) / N;
    log(`${d.name} ${file}: openat`);
    const opens = (await traced(d.pid, 'openat', path, N)).filter((l) => /openat\(/.test(l));
    results.openatPerRead[d.name][file] = Math.round((opens.length / N) * 100) / 100;
    const byPath = {};
    for (const l of opens) {
      const raw = /openat\([^,]+, "([^"]*)"/.exec(l)?.[1]?.replace(/\\x([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      const p = raw?.replace(/\/proc\/\d+\//, '/proc/<pid>/').replace(/lxcfs-ts-profile-[^/]+/, '<container>').replace(OWN_MEMORY, '<own>');
      if (p) byPath[p] = (byPath[p] ?? 0) + 1;
    }
    results.openatPaths[`${d.name} ${file}`] = Object.fromEntries(Object.entries(byPath).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / N) * 100) / 100]));
  }
}

// the hand-off floor
const median = async (path, env) => {
  const ns = (await readN(path, 'latency', LAT, env)).split('\n').filter((l) => /^\d+$/.test(l)).map(Number).sort((a, b) => a - b);
  return Math.round(percentile(ns, 50) / 100) / 10;
};
log('latencies');
results.latencyMedianUs['empty-fs /empty'] = await median(join(mntEmpty, 'empty'), { BENCH_ALLOW_EMPTY: '1' });
results.latencyMedianUs['host /proc/uptime'] = await median('/proc/uptime');
results.latencyMedianUs['host /proc/meminfo'] = await median('/proc/meminfo');
for (const file of FILES) results.latencyMedianUs[`lxcfs-ts ${file}`] = await median(join(mntPlain, 'proc', file));

// The single-thread ceiling: 8 readers on /empty (one JS hand-off per read, nothing rendered) bound the
// reads/s of any lxcfs-ts whose opens all cross to Node's main thread; the daemon's CPU per read over the
// same run shows what the FUSE round trips and the hand-off cost it. LXCFS and lxcfs-ts alongside, same run.
const throughput8 = async (target, path, env = {}) => {
  const per = QUICK ? 50 : 1000;
  const before = cpuTicks(target.pid);
  const outs = await Promise.all(Array.from({ length: 8 }, () => inContainer(cgroups, [READER, 'throughput', path, String(per)], env)));
  const rate = readsPerSecond(outs.map((o) => o.out), per);
  if (rate === undefined) throw new Error(`throughput ${path}: ${outs.map((o) => o.err).join(' ')}`);
  return { readsPerSecond: rate, daemonCpuUsPerRead: Math.round(((cpuTicks(target.pid) - before) * 1e6) / HZ / (8 * per)) };
};
log('throughput ceiling');
results.throughput8 = { 'empty-fs /empty': await throughput8(empty, join(mntEmpty, 'empty'), { BENCH_ALLOW_EMPTY: '1' }) };
for (const file of ['meminfo', 'stat']) {
  results.throughput8[`lxcfs-ts ${file}`] = await throughput8(plain, join(mntPlain, 'proc', file));
  const lxcfs = daemons.find((d) => d.name === 'LXCFS');
  if (lxcfs) results.throughput8[`LXCFS ${file}`] = await throughput8(lxcfs, join(lxcfs.mountpoint, 'proc', file));
}

// The floor under a first read: a reader that is a brand-new process in a brand-new pid namespace, on
// the empty file (nothing to resolve or render) and on lxcfs-ts, median of 12 each.
log('first reads');
const firstRead = async (path, env = {}) => {
  const us = [];
  for (let i = 0; i < (QUICK ? 2 : 12); i++) {
    const r = await inContainer(cgroups, [READER, 'once', path], env);
    const ns = Number(r.out.split('\n')[0]);
    if (r.code === 0 && ns > 0) us.push(ns / 1000);
  }
  us.sort((a, b) => a - b);
  return us.length ? Math.round(percentile(us, 50) * 10) / 10 : undefined;
};
results.firstReadMedianUs = {
  'empty-fs /empty': await firstRead(join(mntEmpty, 'empty'), { BENCH_ALLOW_EMPTY: '1' }),
  'host /proc/meminfo': await firstRead('/proc/meminfo'),
  'lxcfs-ts meminfo': await firstRead(join(mntPlain, 'proc', 'meminfo')),
};

for (const d of [...daemons, plain, empty]) await d.stop();
ws.cleanup();

console.log(`FUSE requests per open/read/close (strace on /dev/fuse, ${N} reads each):`);
for (const [name, files] of Object.entries(results.fuseRequestsPerRead)) for (const [file, counts] of Object.entries(files)) console.log(`  ${name.padEnd(9)} ${file.padEnd(8)} ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`opens handed to JS per read (lxcfs-ts -d log): ${JSON.stringify(results.jsOpensPerRead)}`);
console.log(`files opened by the daemon per read (strace openat, ${N} reads): ${JSON.stringify(results.openatPerRead)}`);
for (const [k, v] of Object.entries(results.openatPaths)) console.log(`  ${k}: ${JSON.stringify(v)}`);
console.log(`median open/read/close latency, µs (${LAT} cycles, in the container): ${JSON.stringify(results.latencyMedianUs)}`);
console.log(`8 readers at once: ${JSON.stringify(results.throughput8)}`);
console.log(`first read of a new process in a new pid namespace, median µs: ${JSON.stringify(results.firstReadMedianUs)}`);
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
console.log(`results: ${OUT}`);
