// Thread and process listing of a cgroup subtree and the per-thread state read (src/context/tasks.ts): the
// state letter is the field after the last ")" of a stat, whatever comm holds; a thread gone or a file that
// is not a stat gives no state; and on the live kernel the thread reading its own stat is running.

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countThreads, threadStateOf } from '../src/context/tasks.js';

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
