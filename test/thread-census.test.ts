// The thread census behind procs_running / procs_blocked: counts R and D threads of a cgroup subtree from
// a scratch tree (cgroup.procs files and /proc/<pid>/task/<tid>/stat), reuses a census for a while (longer when it
// was expensive), and keeps it in the daemon's ContainerStates, so it goes when the cgroup goes.

import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerStates } from '../src/context/container-state.js';
import { createContainer, liveCgroupsMissing, removeCgroup } from './helpers/cgroups.js';
import { MAX_COUNTED_THREADS, threadStateOf, threadsUnderInPool } from '../src/context/tasks.js';
import { MIN_AGE_MS, SLICE_THREADS, SYNC_THREADS, ThreadCensus } from '../src/context/thread-census.js';

function scratch(t: Test): { root: string; cgroup: string; setState: (tid: number, state: string) => void; reader: CgroupReader } {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-census-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cgroup = join(root, 'cg/c1');
  mkdirSync(join(cgroup, 'app'), { recursive: true });
  // Process 10 (threads 10, 11) in c1, process 12 (threads 12, 13, 14) in c1/app.
  writeFileSync(join(cgroup, 'cgroup.procs'), '10\n');
  writeFileSync(join(cgroup, 'app/cgroup.procs'), '12\n');
  const processOf = (tid: number) => (tid < 12 ? 10 : 12);
  const setState = (tid: number, state: string) => {
    const dir = join(root, 'proc', String(processOf(tid)), 'task', String(tid));
    mkdirSync(dir, { recursive: true });
    // comm with a space and a ')' : the state is after the last ')'
    writeFileSync(join(dir, 'stat'), `${tid} (a b) c) ${state} 1 ${'0 '.repeat(17)}100 0\n`);
  };
  for (const [tid, state] of [[10, 'S'], [11, 'R'], [12, 'R'], [13, 'D'], [14, 'S']] as const) setState(tid, state);
  return { root, cgroup, setState, reader: new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root, mountinfo: '' }) };
}

t.test('counts R and D over the cgroup and its descendants', async (t) => {
  const s = scratch(t);
  const census = new ThreadCensus(s.reader, { minAgeMs: 0 });
  t.same(census.statesOf(s.cgroup, 1), { running: 2, blocked: 1 });
  s.setState(14, 'R');
  t.same(census.statesOf(s.cgroup, 1), { running: 3, blocked: 1 }, 'minAgeMs 0: every call counts afresh');
  t.equal(census.states.size, 0, 'and keeps nothing');
  rmSync(join(s.root, 'proc/12/task/13'), { recursive: true });
  t.same(census.statesOf(s.cgroup, 1), { running: 3, blocked: 0 }, 'a thread that exited mid-census is not counted');
});

t.test('a census is reused for MIN_AGE_MS; then a small container is counted again while its reader waits', async (t) => {
  const s = scratch(t);
  let now = 1000;
  const deferred: (() => void)[] = [];
  const census = new ThreadCensus(s.reader, { now: () => now, defer: (fn) => void deferred.push(fn) });
  t.same(census.statesOf(s.cgroup, 1), { running: 2, blocked: 1 });
  s.setState(10, 'R');
  now += MIN_AGE_MS - 1;
  t.same(census.statesOf(s.cgroup, 1), { running: 2, blocked: 1 }, 'still the kept census');
  now += 1;
  t.same(census.statesOf(s.cgroup, 1), { running: 3, blocked: 1 }, 'MIN_AGE_MS old: counted again, the new figures at once');
  s.setState(10, 'S');
  now += 10_000;
  t.same(census.statesOf(s.cgroup, 1), { running: 2, blocked: 1 }, 'however long the gap: never a read behind');
  t.equal(deferred.length, 0, 'nothing in the background for a small container');
  t.equal(census.states.size, 1);
});

t.test('an expensive census is kept longer: counting stays under 2% of a core', async (t) => {
  const s = scratch(t);
  let now = 0;
  let reads = 0;
  // the clock advances 4 ms per thread read: 5 threads, 20 ms, so the census is kept 50 x 20 = 1000 ms
  // (more than MIN_AGE_MS: the cost, not the floor, decides)
  const stateOf = (path: string) => ((now += 4), reads++, threadStateOf(path));
  const census = new ThreadCensus(s.reader, { now: () => now, stateOf });
  census.statesOf(s.cgroup, 1);
  const countedAt = now;
  t.equal(reads, 5);
  now = countedAt + 999;
  census.statesOf(s.cgroup, 1);
  t.equal(reads, 5, '20 ms census: kept 1000 ms (50x its cost)');
  now = countedAt + 1000;
  census.statesOf(s.cgroup, 1);
  t.equal(reads, 10, 'then counted again');
});

t.test('a big container: its first reader waits for SYNC_THREADS threads at most, the rest is counted in slices', async (t) => {
  const s = scratch(t);
  // process 20 with 1000 threads, all running
  const big = join(s.root, 'cg/big');
  mkdirSync(big, { recursive: true });
  writeFileSync(join(big, 'cgroup.procs'), '20\n');
  for (let i = 0; i < 1000; i++) {
    const dir = join(s.root, 'proc/20/task', String(1000 + i));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stat'), `${1000 + i} (busy) R 1 ${'0 '.repeat(17)}100 0\n`);
  }
  const deferred: (() => void)[] = [];
  let reads = 0;
  const stateOf = (path: string) => (reads++, threadStateOf(path));
  let now = 0;
  let listing: Promise<unknown> | undefined;
  let listings = 0;
  const listInPool = (dir: string, version: 1 | 2) => (listings++, (listing = threadsUnderInPool(dir, version, MAX_COUNTED_THREADS, join(s.root, 'proc'))));
  const census = new ThreadCensus(s.reader, { now: () => now, defer: (fn) => void deferred.push(fn), stateOf, listInPool });
  t.same(census.statesOf(big, 2), { running: SYNC_THREADS, blocked: 0 }, `the first answer counts ${SYNC_THREADS} threads`);
  t.equal(reads, SYNC_THREADS, 'and reads no more while its reader waits');
  let slices = 0;
  while (deferred.length > 0) {
    const before = reads;
    deferred.shift()!();
    t.ok(reads - before <= SLICE_THREADS, `a slice reads at most ${SLICE_THREADS} threads (${reads - before})`);
    slices++;
  }
  t.equal(slices, Math.ceil(1000 / SLICE_THREADS));
  t.equal(listings, 0, 'the first census listed its threads while its reader waited (it needed them)');
  t.same(census.statesOf(big, 2), { running: 1000, blocked: 0 }, 'then all 1000');
  // Later, stale: answered at once with the census before (stale-while-revalidate), counted in slices.
  for (let i = 0; i < 100; i++) writeFileSync(join(s.root, 'proc/20/task', String(1000 + i), 'stat'), `${1000 + i} (busy) S 1 ${'0 '.repeat(17)}100 0\n`);
  const before = reads;
  now += 10 * MIN_AGE_MS;
  t.same(census.statesOf(big, 2), { running: 1000, blocked: 0 }, 'a big container\'s stale census answers at once');
  t.equal(reads, before, 'without reading a thread while its reader waits');
  t.equal(listings, 1, 'its threads are listed on the thread pool, not while its reader (or anyone) waits');
  t.equal(deferred.length, 0, 'counting starts once the listing is back');
  t.same(census.statesOf(big, 2), { running: 1000, blocked: 0 }, 'a read meanwhile: the kept census, no second listing');
  t.equal(listings, 1);
  await listing;
  while (deferred.length > 0) deferred.shift()!();
  t.same(census.statesOf(big, 2), { running: 900, blocked: 0 }, 'and the background count replaces it');
});

t.test('the census of a removed cgroup goes with it, at the next new container', async (t) => {
  const s = scratch(t);
  let now = 0;
  const states = new ContainerStates({ now: () => now });
  const census = new ThreadCensus(s.reader, { now: () => now, states });
  census.statesOf(s.cgroup, 1);
  census.statesOf(join(s.cgroup, 'app'), 1);
  t.equal(states.size, 2);
  rmSync(join(s.cgroup, 'app'), { recursive: true });
  now += 2000;
  const other = join(s.root, 'cg/c2');
  mkdirSync(other);
  writeFileSync(join(other, 'cgroup.procs'), '');
  census.statesOf(other, 1);
  t.equal(states.size, 2, 'app (removed) was dropped when c2 arrived; c1 and c2 stay');
  t.same(census.statesOf(join(s.root, 'cg/gone'), 1), { running: 0, blocked: 0 }, 'a removed cgroup counts nothing');
});

t.test('a real cgroup tree: threads in a child cgroup are counted (a leaf is recognised by its link count, not skipped wrongly)', { skip: liveCgroupsMissing() ?? false }, async (t) => {
  const c = createContainer(t, 'census');
  const app = join(c.memory, 'app');
  mkdirSync(app);
  const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  try {
    writeFileSync(join(app, 'cgroup.procs'), String(busy.pid));
    const census = new ThreadCensus(new CgroupReader(), { minAgeMs: 0 });
    // A busy loop is always R (running or runnable), on any number of CPUs.
    t.same(census.statesOf(c.memory, c.layout === 'v2' ? 2 : 1), { running: 1, blocked: 0 }, 'the busy process in a child cgroup');
    t.same(census.statesOf(app, c.layout === 'v2' ? 2 : 1), { running: 1, blocked: 0 }, 'and in its own (leaf) cgroup');
  } finally {
    busy.kill('SIGKILL');
    await once(busy, 'exit');
    removeCgroup(app);
  }
});

t.test('a background count that runs out of descriptors gives up quietly and is tried again later', async (t) => {
  const s = scratch(t);
  const big = join(s.root, 'cg/big');
  mkdirSync(big, { recursive: true });
  writeFileSync(join(big, 'cgroup.procs'), '20\n');
  for (let i = 0; i < SYNC_THREADS + 10; i++) {
    const dir = join(s.root, 'proc/20/task', String(1000 + i));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stat'), `${1000 + i} (busy) R 1 ${'0 '.repeat(17)}100 0\n`);
  }
  const deferred: (() => void)[] = [];
  let exhausted = false;
  const stateOf = (path: string) => {
    if (exhausted) throw new Error('out of file descriptors (EMFILE)');
    return threadStateOf(path);
  };
  let now = 0;
  let listing: Promise<unknown> | undefined;
  const listInPool = (dir: string, version: 1 | 2) => (listing = threadsUnderInPool(dir, version, MAX_COUNTED_THREADS, join(s.root, 'proc')));
  const census = new ThreadCensus(s.reader, { now: () => now, defer: (fn) => void deferred.push(fn), stateOf, listInPool });
  t.same(census.statesOf(big, 2), { running: SYNC_THREADS, blocked: 0 });
  exhausted = true;
  t.doesNotThrow(() => {
    while (deferred.length > 0) deferred.shift()!();
  }, 'the slice that fails does not throw out of setImmediate (which would end the daemon)');
  t.same(census.statesOf(big, 2), { running: SYNC_THREADS, blocked: 0 }, 'the kept census still answers');
  exhausted = false;
  now += 100 * MIN_AGE_MS;
  census.statesOf(big, 2);
  t.ok(listing, 'a later stale read starts a new background count (the failed one no longer blocks it)');
  await listing;
  while (deferred.length > 0) deferred.shift()!();
  t.same(census.statesOf(big, 2), { running: SYNC_THREADS + 10, blocked: 0 }, 'and it completes');
});
