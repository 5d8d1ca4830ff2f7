// Thread and process listing of a cgroup subtree and the per-thread state read (src/context/tasks.ts): the
// state letter is the field after the last ")" of a stat, whatever comm holds; a thread gone or a file that
// is not a stat gives no state; on the live kernel the thread reading its own stat is running; and a
// subtree's threads listed on the thread pool are the same as listed on this thread.

import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countThreads, threadStateOf, threadsUnder, threadsUnderInPool } from '../src/context/tasks.js';

t.test('the state letter after the last ")"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-tasks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  t.equal(threadStateOf(file('plain', '42 (bash) S 1 42 42 0 -1\n')), 'S');
  t.equal(threadStateOf(file('paren', '43 (a) R (b)) D 1 43\n')), 'D', 'comm "a) R (b)": the last ")" ends it');
  t.equal(threadStateOf(file('empty', '')), undefined, 'an empty file');
  t.equal(threadStateOf(file('cut', '44 (x)')), undefined, 'cut after comm');
  t.equal(threadStateOf(file('noparen', 'garbage R\n')), undefined, 'no comm at all');
  t.equal(threadStateOf(join(dir, 'missing')), undefined, 'a thread that exited');
  const counts = countThreads([
    { tid: 42, stat: join(dir, 'plain') },
    { tid: 43, stat: join(dir, 'paren') },
    { tid: 47, stat: join(dir, 'missing') },
    { tid: 45, stat: file('run', '45 (w) R 1\n') },
  ]);
  t.same(counts, { running: 1, blocked: 1, newest: 45 }, 'an exited thread is neither counted nor the newest');
});

t.test('live: the thread reading its own stat is running', async (t) => {
  t.equal(threadStateOf(`/proc/${process.pid}/task/${process.pid}/stat`), 'R');
  t.equal(threadStateOf('/proc/self/task/999999999/stat'), undefined);
});

t.test('threads of a subtree: the thread-pool listing finds what the direct one does', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-tasks-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cg = join(root, 'cg');
  mkdirSync(join(cg, 'a/deep'), { recursive: true });
  mkdirSync(join(cg, 'b'), { recursive: true });
  writeFileSync(join(cg, 'cgroup.procs'), '10\n');
  writeFileSync(join(cg, 'a/cgroup.procs'), '20\n21\n');
  writeFileSync(join(cg, 'a/deep/cgroup.procs'), '30\n');
  writeFileSync(join(cg, 'b/cgroup.procs'), ''); // an empty cgroup
  writeFileSync(join(cg, 'cpu.stat'), 'usage_usec 1\n'); // a control file, not a cgroup
  for (const [pid, tids] of [[10, [10, 11]], [20, [20]], [30, [30, 31, 32]]] as const) {
    for (const tid of tids) mkdirSync(join(root, 'proc', String(pid), 'task', String(tid)), { recursive: true });
  }
  // 21 has no task directory (exited, or a /proc without it): it counts as its main thread alone.
  const proc = join(root, 'proc');
  const direct = threadsUnder(cg, 2, 100, proc);
  t.same(direct.map((r) => r.tid).sort((x, y) => x - y), [10, 11, 20, 21, 30, 31, 32], 'every thread of the subtree');
  t.equal(direct.find((r) => r.tid === 21)?.stat, `${proc}/21/stat`);
  t.equal(direct.find((r) => r.tid === 31)?.stat, `${proc}/30/task/31/stat`);
  t.same(await threadsUnderInPool(cg, 2, 100, proc), direct, 'the same list, in the same order, from the pool');
  t.same(await threadsUnderInPool(cg, 2, 3, proc), threadsUnder(cg, 2, 3, proc), 'and the same bound');
  t.same(await threadsUnderInPool(join(root, 'gone'), 2, 100, proc), [], 'a removed cgroup: nothing, no throw');
});

/** This process's own cgroup2 directory, when a cgroup2 hierarchy is mounted (not in the pure-v1 guest). */
const ownCgroup2 = ((): string | undefined => {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  const mount = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((m) => existsSync(join(m, 'cgroup.controllers')));
  return line && mount ? join(mount, line.slice(3)) : undefined;
})();

t.test('live: this process\'s own threads, from its cgroup2 directory', { skip: ownCgroup2 ? false : 'no cgroup2 hierarchy mounted' }, async (t) => {
  const listed = await threadsUnderInPool(ownCgroup2!, 2, 100_000);
  t.ok(listed.some((r) => r.tid === process.pid && r.stat === `/proc/${process.pid}/task/${process.pid}/stat`), 'the main thread is among them, with its own stat');
  // (not compared with a direct listing: processes of this cgroup, the test runner's among them, come and go)
});
