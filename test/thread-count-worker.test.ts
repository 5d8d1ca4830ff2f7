// The loadavg sampler's off-thread counter (src/context/thread-count-worker.ts) on a scratch tree of
// cgroups and /proc files: what it counts per container (R, R+D, threads, the newest thread in the
// container's own numbering, a removed cgroup), that the worker thread answers the same as counting
// inline, and that closing it fails what is pending and a later count starts a new thread.

import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { countContainer, ThreadCountWorker } from '../src/context/thread-count-worker.js';

const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-count-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const proc = join(root, 'proc');

/** A process `pid` with threads `states` (tids pid, pid+1, ...), its status saying NSpid `nspid`. */
function processWith(pid: number, states: string[], nspid?: number): void {
  states.forEach((state, i) => {
    const dir = join(proc, String(pid), 'task', String(pid + i));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stat'), `${pid + i} (app) ${state} 1 ${'0 '.repeat(17)}100 0\n`);
    mkdirSync(join(proc, String(pid + i)), { recursive: true });
    writeFileSync(join(proc, String(pid + i), 'status'), `Name:\tapp\nNSpid:\t${pid + i}${nspid !== undefined ? `\t${nspid + i}` : ''}\n`);
  });
}
const cg = (name: string, pids: number[]) => {
  const dir = join(root, 'cg', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  return dir;
};
processWith(100, ['R', 'D', 'S', 'R'], 1);
processWith(200, ['S']);
const busy = cg('busy', [100]);
const child = cg('busy/child', [200]); // a child cgroup's threads are the container's too
const idle = cg('idle', [200]);
const reader = new CgroupReader({ procRoot: proc, fsRoot: root, mountinfo: '' });

t.test('countContainer: R, R+D, threads of the subtree, the newest in the container\'s numbering', async (t) => {
  t.same(countContainer(reader, { dir: busy, version: 2 }), { gone: false, running: 2, active: 3, total: 5, lastPid: 200 }, 'newest is 200 (host numbering: it has no inner NSpid)');
  t.same(countContainer(reader, { dir: child, version: 2 }), { gone: false, running: 0, active: 0, total: 1, lastPid: 200 });
  t.same(countContainer(reader, { dir: join(root, 'cg', 'never'), version: 2 }), { gone: true }, 'a missing cgroup is gone');
  const onlyBusy = cg('only-busy', [100]);
  t.same(countContainer(reader, { dir: onlyBusy, version: 2 }), { gone: false, running: 2, active: 3, total: 4, lastPid: 4 }, 'newest 103 is 4 inside its namespace');
});

t.test('the worker answers what counting inline answers, in job order; close fails pending counts and a later count starts a new thread', async (t) => {
  const worker = new ThreadCountWorker({ procRoot: proc, fsRoot: root });
  t.teardown(() => worker.close());
  t.notOk(worker.alive, 'no thread before the first count');
  worker.warm();
  t.ok(worker.alive, 'warm() starts it');
  for (let i = 0; i < 2000 && !worker.ready; i++) await new Promise((r) => setTimeout(r, 5)); // hang guard only
  t.ok(worker.ready, 'and it says when it has loaded');
  const jobs = [busy, idle, join(root, 'cg', 'never'), child].map((dir) => ({ dir, version: 2 as const }));
  t.same(await worker.count(jobs), jobs.map((job) => countContainer(reader, job)));
  t.ok(worker.alive);

  const pending = worker.count(jobs);
  worker.close();
  await t.rejects(pending, /closed/, 'closing fails the count under way');
  t.notOk(worker.alive, 'the thread is gone');
  t.notOk(worker.ready, 'and not ready');
  t.same(await worker.count(jobs.slice(0, 1)), [countContainer(reader, jobs[0]!)], 'the next count starts a new thread');
});

t.test('a worker closed while it is still loading ends once it has loaded, and its thread is gone', async (t) => {
  const tasks = () => readdirSync('/proc/self/task').length;
  const baseline = tasks();
  const worker = new ThreadCountWorker({ procRoot: proc, fsRoot: root });
  worker.warm();
  const loading = tasks();
  worker.close(); // before its ready message can have arrived: this thread has not yielded since warm()
  t.ok(loading > baseline, `warm() started a thread (${baseline} -> ${loading} tasks)`);
  t.notOk(worker.alive, 'closed: no worker as far as the owner is concerned');
  for (let i = 0; i < 2000 && tasks() > baseline; i++) await new Promise((r) => setTimeout(r, 5)); // hang guard only
  t.equal(tasks(), baseline, 'the thread ended by itself once loaded (terminated on its ready message)');
});
