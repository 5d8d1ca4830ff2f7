// src/daemon/pidfile.ts: the pid file is held by an flock(2) lock for the daemon's life. Locks are taken
// here from other processes (flock(1) from util-linux, and a second open file in this process: flock
// locks belong to the open file, so two opens conflict even in one process).

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquirePidfile, pidfileHolder } from '../src/daemon/pidfile.js';
import { cleanup, scratchDir } from './helpers/daemon.js';

t.test('taken, refused to a second taker, released by a clean stop', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const path = join(dir, 'run/lxcfs-ts.pid');
  const first = acquirePidfile(path, 4242);
  if (!first.ok) return t.fail(first.message);
  t.equal(readFileSync(path, 'utf8'), '4242\n', 'the pid, in a directory made for it');
  t.same(pidfileHolder(path), { running: true, pid: 4242 });

  const second = acquirePidfile(path, 4343);
  t.equal(second.ok, false);
  if (!second.ok) t.match(second.message, `pid file ${path} is locked by running lxcfs-ts (pid 4242)`);
  t.equal(readFileSync(path, 'utf8'), '4242\n', 'the refused taker did not write');

  first.release();
  t.notOk(existsSync(path), 'removed on release');
  t.same(pidfileHolder(path), { running: false, pid: undefined, exists: false });
  const third = acquirePidfile(path, 4444);
  t.ok(third.ok, 'free again');
  if (third.ok) third.release();
});

t.test('a stale file naming a live process (a recycled pid) does not block; its lock does', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const path = join(dir, 'lxcfs-ts.pid');
  // What the old liveness guess got wrong: a live process whose command line says lxcfs-ts.
  const impostor = spawn('sh', ['-c', 'read x; : lxcfs-ts'], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.teardown(() => impostor.stdin.end());
  writeFileSync(path, `${impostor.pid}\n`);
  t.same(pidfileHolder(path), { running: false, pid: impostor.pid, exists: true }, 'status: not running');
  const taken = acquirePidfile(path, 5151);
  t.ok(taken.ok, 'taken over');
  t.equal(readFileSync(path, 'utf8'), '5151\n', 'rewritten, not appended');
  if (taken.ok) taken.release();
});

t.test('a lock held by another process is the kernel\'s word, whatever the file says', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const path = join(dir, 'lxcfs-ts.pid');
  writeFileSync(path, 'garbage\n');
  // flock(1) holds an exclusive lock on the file while its child waits on stdin.
  const holder = spawn('flock', ['--exclusive', path, 'sh', '-c', 'echo locked; read x'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  t.same(pidfileHolder(path), { running: true, pid: undefined }, 'running, pid unknown');
  const refused = acquirePidfile(path, 6161);
  t.equal(refused.ok, false);
  if (!refused.ok) t.match(refused.message, /is locked by running lxcfs-ts; is another instance running\?/);
  holder.stdin.end();
  await new Promise((resolve) => holder.on('exit', resolve));
  t.same(pidfileHolder(path), { running: false, pid: undefined, exists: true }, 'the holder exited: the lock died with it');
  const taken = acquirePidfile(path, 6262);
  t.ok(taken.ok);
  if (taken.ok) taken.release();
});

t.test('release removes only its own file: one put in its place meanwhile stays', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const path = join(dir, 'lxcfs-ts.pid');
  const held = acquirePidfile(path, 7171);
  if (!held.ok) return t.fail(held.message);
  rmSync(path);
  writeFileSync(path, '7272\n'); // someone else's now
  held.release();
  t.equal(readFileSync(path, 'utf8'), '7272\n', 'not unlinked');
});

t.test('a directory that cannot be made, or a path that cannot be opened, is a clear refusal', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  writeFileSync(join(dir, 'file'), '');
  const nodir = acquirePidfile(join(dir, 'file/sub/x.pid'));
  t.equal(nodir.ok, false);
  if (!nodir.ok) t.match(nodir.message, /cannot create the directory of pid file/);
  const isdir = acquirePidfile(dir);
  t.equal(isdir.ok, false);
  if (!isdir.ok) t.match(isdir.message, /cannot open pid file .*EISDIR/);
});
