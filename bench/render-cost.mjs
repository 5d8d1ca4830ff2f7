#!/usr/bin/env node
// In-process cost of one open's work in lxcfs-ts (resolve the caller's container, collect, render), without
// FUSE: what the JavaScript thread spends per read, file by file. A container (scratch memory, cpuset, cpu
// and cpuacct cgroups, new pid namespace running `sleep`) is the caller. Needs root and a built dist/.
//
//   node bench/render-cost.mjs [N]     N renders per file (default 5000); prints µs per render (median of 5 rounds)

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { containerCgroups, ROOT, sleep, workspace } from './lib.mjs';

const N = Number(process.argv[2] ?? 5000);
const { CgroupReader } = await import(join(ROOT, 'vendor/node-cgroups-parser/dist/index.js'));
const { ContainerResolver } = await import(join(ROOT, 'dist/src/context/containers.js'));
const { RenderService } = await import(join(ROOT, 'dist/src/context/render-service.js'));
const { LoadavgSampler } = await import(join(ROOT, 'dist/src/context/loadavg-sampler.js'));
const { KeptFiles } = await import(join(ROOT, 'dist/src/context/kept-files.js'));
const { hostPath } = await import(join(ROOT, 'dist/src/context/sources.js'));
const module = createRequire(import.meta.url)(join(ROOT, 'dist/renderers.cjs'));

const ws = workspace('lxcfs-ts-render-cost-');
const cgroups = containerCgroups(ws, 'lxcfs-ts-render-cost');
const script = 'for d in $CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 3; done; exec unshare --pid --fork --mount-proc sleep 600';
const child = spawn('sh', ['-c', script], { env: { ...process.env, CGROUPS: cgroups.join(' ') }, stdio: 'ignore' });
// SIGKILL the namespace's init too: unshare's death does not end it.
const killAll = () => { for (const pid of [caller, child.pid]) try { if (pid) process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } };
ws.onCleanup(killAll);
let caller;
for (let i = 0; i < 100 && !caller; i++) {
  await sleep(20);
  // sh exec's unshare; its forked child (sleep) is the init of the new pid namespace
  const kids = (pid) => { try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
  caller = kids(child.pid)[0];
}
if (!caller) throw new Error('container did not start');

// As the daemon builds it (src/daemon/daemon.ts): fds kept open, the served files' host files pinned.
// KEPT_FILES=0 measures plain open/read/close instead.
const kept = process.env.KEPT_FILES === '0' ? undefined : new KeptFiles();
const reader = new CgroupReader(kept ? { files: kept } : {});
const sampler = new LoadavgSampler(reader);
const service = new RenderService(reader, new ContainerResolver(reader), { swap: true, cfs: false }, module, sampler);
kept?.setPinned(module.files.map((f) => hostPath(reader, f.hostPath)));
const rows = [];
// The daemon records a new namespace's init after answering (setImmediate): let that happen once, as
// between two requests of a running daemon.
service.render('proc/meminfo', { pid: caller, uid: 0, gid: 0 });
await new Promise((r) => setImmediate(r));
for (const file of ['proc/meminfo', 'proc/cpuinfo', 'proc/stat', 'proc/uptime', 'proc/loadavg']) {
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const out = service.render(file, { pid: caller, uid: 0, gid: 0 });
      if (!out.ok) throw new Error(`${file}: ${out.reason}`);
    }
    rounds.push(Number(process.hrtime.bigint() - t0) / N / 1000);
  }
  rounds.sort((a, b) => a - b);
  rows.push({ file, usPerRender: Math.round(rounds[2] * 10) / 10 });
}

// First render for a caller whose pid namespace is new to the daemon (the init lookup is a cache miss).
const firsts = [];
for (let i = 0; i < 12; i++) {
  const fresh = spawn('unshare', ['--pid', '--fork', '--mount-proc', 'sleep', '600'], { stdio: 'ignore' });
  let init;
  for (let j = 0; j < 100 && !init; j++) {
    await sleep(10);
    try { init = Number(readFileSync(`/proc/${fresh.pid}/task/${fresh.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || undefined; } catch { /* not started yet */ }
  }
  const t0 = process.hrtime.bigint();
  const out = service.render('proc/meminfo', { pid: init, uid: 0, gid: 0 });
  firsts.push(Number(process.hrtime.bigint() - t0) / 1000);
  process.kill(init, 'SIGKILL');
  fresh.kill('SIGKILL');
  if (!out.ok) throw new Error(out.reason);
}
firsts.sort((a, b) => a - b);
rows.push({ file: 'proc/meminfo, first render in a new pid ns', usPerRender: Math.round(firsts[6] * 10) / 10 });
sampler.stop?.();
kept?.closeAll();
console.table(rows);
killAll();
await sleep(100);
ws.cleanup();
process.exit(0);
