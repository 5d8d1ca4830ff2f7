// A restart under systemd's file descriptor store breaks nothing (issue 11 item 2, docs/systemd.md "Restart
// without a failed read"): the daemon stores its /dev/fuse descriptor and the binding's state memfd
// (FDSTORE=1), and the next daemon serves the same kernel connection again, so a container's reads wait
// while no daemon runs and then succeed, files it holds open included.
//
// systemd is played by test/helpers/fd-store.py (a notify socket that keeps stored descriptors and starts
// the next daemon with them as fds 3.., LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES). The container is a pid +
// mount namespace in its own memory cgroup with the served files bound over /proc and the cpu directory,
// running two readers: one holds /proc/stat, /proc/meminfo and the cpu directory open and re-reads them
// (pread at 0, listdir of the held fd) in a loop, the other opens, reads and closes /proc/meminfo and
// lists the cpu directory in a loop. Each logs every read's outcome. Restarts are decided by events: the
// old daemon's exit, a reader seen blocked in the kernel on the FUSE connection, the new daemon's log,
// the readers' lines after a mark. A restarted daemon runs a renderer bundle that marks meminfo, so the
// content read after a restart is shown to be the new daemon's.

import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { createContainer, liveCgroupsMissing, type ScratchContainer } from './helpers/cgroups.js';
import { PROC_FILES } from './helpers/container.js';
import { cleanup, MAIN, mountsAt, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';
import { startFdStore, type FdStore, type StoredDaemon } from './helpers/fd-store.js';

const MiB = 1024 * 1024;
const BUNDLE = join(ROOT, 'dist/renderers.cjs');
const MARKER = 'LxcfsTsRestarted:      1 kB';
const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`fdstore.test.ts: tests with containers skipped: ${noCgroups}\n`);

/** The renderer bundle plus a footer that puts a marker line first in meminfo (as test/reload.test.ts). */
function markerBundle(dir: string): string {
  const path = join(dir, 'marker-renderers.cjs');
  writeFileSync(
    path,
    `${readFileSync(BUNDLE, 'utf8')}
;(() => {
  const meminfo = module.exports.files.find((f) => f.path === 'proc/meminfo');
  const render = meminfo.render;
  meminfo.render = (snapshot, options) => ${JSON.stringify(MARKER + '\n')} + render(snapshot, options);
  module.exports = { ...module.exports, version: 'restarted' };
})();
`,
  );
  return path;
}

/** Wait until `cond` holds (a hang guard bounds it, not a timing assertion). */
async function until(what: string, cond: () => boolean, why?: () => string): Promise<void> {
  for (let i = 0; i < 2400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`gave up waiting for ${what}${why ? `: ${why()}` : ''}`);
}

const HELD_READER = `
import os, sys
log = open(sys.argv[1], 'a', buffering=1)
held = {name: os.open('/proc/' + name, os.O_RDONLY) for name in ('stat', 'meminfo')}
cpu = os.open('/sys/devices/system/cpu', os.O_RDONLY | os.O_DIRECTORY)
n = 0
while not os.path.exists(sys.argv[2]):
    n += 1
    for name, fd in held.items():
        try:
            lines = os.pread(fd, 65536, 0).decode().split('\\n')
            log.write(f'ok {n} {name} {lines[0]}|{lines[1]}\\n')
        except OSError as e:
            log.write(f'err {n} {name} {e.errno} {e.strerror}\\n')
    try:
        names = os.listdir(cpu)
        log.write(f'ok {n} cpu {len([x for x in names if x.startswith("cpu")])}\\n')
    except OSError as e:
        log.write(f'err {n} cpu {e.errno} {e.strerror}\\n')
`;

const OPEN_READER = `while [ ! -e "$STOP" ]; do
  if l=$(head -2 /proc/meminfo 2>&1); then echo "ok meminfo $(echo "$l" | tr '\\n' '|')"; else echo "err meminfo $l"; fi
  if l=$(ls /sys/devices/system/cpu 2>&1); then echo "ok ls $(echo "$l" | grep -c '^cpu[0-9]')"; else echo "err ls $l"; fi
done >> "$LOG"`;

interface Readers {
  held: () => string[];
  open: () => string[];
  /** pid (in our pid namespace) of the reader that holds files open */
  heldPid: () => number | undefined;
  stop: () => Promise<void>;
}

/** The container and its two readers; their log lines are what the test decides on. */
function container(t: Test, dir: string, mountpoint: string, box: ScratchContainer): Readers {
  const heldLog = join(dir, 'held.log');
  const openLog = join(dir, 'open.log');
  const stopFile = join(dir, 'stop');
  const script = join(dir, 'held-reader.py');
  writeFileSync(script, HELD_READER);
  writeFileSync(heldLog, '');
  writeFileSync(openLog, '');
  const binds = [...PROC_FILES.map((f) => `mount --bind "$MNT/proc/${f}" /proc/${f}`), 'mount --bind "$MNT/sys/devices/system/cpu" /sys/devices/system/cpu'].join(' && ');
  const inner = `${binds} && { python3 "$SCRIPT" "$HELD" "$STOP" & sh -c "$OPEN_READER" & wait; }`;
  const outer = `${box.dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ')} && exec unshare -m --pid --fork --mount-proc sh -c "$INNER"`;
  const child = spawn('sh', ['-c', outer], {
    env: { ...process.env, MNT: mountpoint, INNER: inner, SCRIPT: script, HELD: heldLog, STOP: stopFile, LOG: openLog, OPEN_READER },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  t.teardown(() => {
    child.kill('SIGKILL');
    for (const pid of box.procs()) run('kill', ['-9', String(pid)]);
  });
  const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
  return {
    held: () => lines(heldLog),
    open: () => lines(openLog),
    heldPid: () => box.procs().find((pid) => existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('held-reader.py')),
    stop: async () => {
      writeFileSync(stopFile, '');
      await exited;
    },
  };
}

/** The kernel function a task sleeps in ('' when running): a FUSE request waits in request_wait_answer. */
const wchan = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
};

async function serving(d: StoredDaemon): Promise<Record<string, unknown>> {
  await until('the daemon serving', () => d.logs().some((l) => l.msg === 'serving'));
  return d.logs().find((l) => l.msg === 'serving')!;
}

const resumedLine = (d: StoredDaemon) => d.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('resumed the FUSE connection'));

t.test('SIGKILL, then SIGTERM, under the descriptor store: no read fails, held files and directories keep working', { skip: noCgroups }, async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  const pidfile = join(dir, 'lxcfs-ts.pid');
  const store = await startFdStore(dir);
  t.teardown(() => {
    store.close();
    cleanup(dir, mountpoint);
  });
  const plain = join(dir, 'renderers.cjs');
  copyFileSync(BUNDLE, plain);
  const marked = markerBundle(dir);
  const daemons: StoredDaemon[] = [];
  t.teardown(() => {
    for (const d of daemons) run('kill', ['-9', String(d.pid)]);
  });
  const start = async (bundle: string) => {
    const d = await store.startDaemon(['-p', pidfile, mountpoint], { LXCFS_TS_RENDERERS: bundle });
    daemons.push(d);
    return d;
  };

  const first = await start(plain);
  const firstServing = await serving(first);
  t.equal(firstServing.fdStore, true, 'the first daemon stored its connection');
  t.equal(firstServing.resumed, false);
  const stored = await store.waitFor((e) => e.kept !== undefined);
  t.same(stored.event.kept!.map((target) => target.replace(/ \(deleted\)$/, '')), ['/dev/fuse', '/memfd:lxcfs-ts-fuse-state'], 'FDSTORE=1 with /dev/fuse and the state memfd, under FDNAME=fuse');
  t.equal(store.events.find((e) => e.message?.FDSTORE === '1')!.message!.FDNAME, 'fuse');

  const box = createContainer(t, 'fdstore', { memoryBytes: 192 * MiB });
  const readers = container(t, dir, mountpoint, box);
  await until('both readers reading', () => readers.held().some((l) => / meminfo /.test(l)) && readers.open().some((l) => l.startsWith('ok ls')));
  t.match(readers.held().find((l) => / meminfo /.test(l)), /^ok \d+ meminfo MemTotal:\s+196608 kB\|/, 'the held meminfo is the container\'s own');

  /** Kill or stop `d`; wait until the holding reader is blocked on the connection; start the next. */
  const restart = async (d: StoredDaemon, signal: 'SIGKILL' | 'SIGTERM', bundle: string) => {
    const mountId = mountsAt(mountpoint)[0]?.split(' ')[0];
    process.kill(d.pid, signal);
    const exit = await d.exited;
    t.same(exit, signal === 'SIGKILL' ? { code: null, signal: 'SIGKILL' } : { code: 0, signal: null }, `${signal}: the daemon is gone`);
    t.equal(mountsAt(mountpoint)[0]?.split(' ')[0], mountId, `${signal}: the same mount stays, with nobody serving it`);
    const marks = { held: readers.held().length, open: readers.open().length };
    // The holding reader's next pread waits in the kernel now (no daemon answers): an event, not a time.
    await until(`${signal}: the reader waiting on the connection`, () => /request_wait_answer|fuse/.test(wchan(readers.heldPid() ?? 0)));
    const next = await start(bundle);
    const info = await serving(next);
    t.equal(info.resumed, true, `${signal}: the next daemon resumed the connection`);
    t.equal(mountsAt(mountpoint)[0]?.split(' ')[0], mountId, `${signal}: no new mount: the same connection serves`);
    return { next, marks };
  };

  // SIGKILL: the new daemon runs the marking bundle.
  const killed = await restart(first, 'SIGKILL', marked);
  const second = killed.next;
  const marked1 = new RegExp(`^ok \\d+ meminfo ${MARKER}\\|MemTotal:\\s+196608 kB$`);
  await until('SIGKILL: every reader served by the new daemon', () =>
    readers.held().slice(killed.marks.held).some((l) => marked1.test(l)) &&
    readers.held().slice(killed.marks.held).some((l) => / cpu \d+$/.test(l)) &&
    readers.open().slice(killed.marks.open).some((l) => l.startsWith(`ok meminfo ${MARKER}|`)) &&
    readers.open().slice(killed.marks.open).some((l) => l.startsWith('ok ls')),
  () => `held: ${readers.held().slice(killed.marks.held).slice(-6).join(' / ')}; open: ${readers.open().slice(killed.marks.open).slice(-6).join(' / ')}`);
  t.pass('SIGKILL: the held meminfo, the held cpu directory and new opens all read the new daemon\'s content, the container\'s own');
  const resumed1 = resumedLine(second)!;
  t.equal(resumed1.generation, 2, 'the second daemon on this connection');
  t.equal(resumed1.resend, 0, 'the kernel accepted the resend request (Linux 6.9+)');

  // SIGTERM: hand-over (the mount stays), then the plain bundle again.
  const handedOver = await restart(second, 'SIGTERM', plain);
  const third = handedOver.next;
  t.ok(second.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('handing the FUSE connection over')), 'SIGTERM handed the connection over instead of unmounting');
  await until('SIGTERM: every reader served by the third daemon', () =>
    readers.held().slice(handedOver.marks.held).some((l) => /^ok \d+ meminfo MemTotal:\s+196608 kB\|/.test(l)) &&
    readers.open().slice(handedOver.marks.open).some((l) => /^ok meminfo MemTotal:\s+196608 kB\|/.test(l)),
  () => `held: ${readers.held().slice(handedOver.marks.held).slice(-6).join(' / ')}; open: ${readers.open().slice(handedOver.marks.open).slice(-6).join(' / ')}`);
  t.equal(resumedLine(third)!.generation, 3, 'the third daemon on this connection');
  const status = run(process.execPath, [MAIN, 'status', '-p', pidfile]);
  t.match(status.stdout, /connection: +in systemd's descriptor store, resumed \(daemon 3 on it\)/, 'lxcfs-ts status says so');

  await readers.stop();
  const failed = [...readers.held(), ...readers.open()].filter((l) => !l.startsWith('ok '));
  t.same(failed, [], `not one read failed (${readers.held().length + readers.open().length} reads across a SIGKILL and a SIGTERM restart)`);
  t.ok(readers.held().length > killed.marks.held && readers.open().length > killed.marks.open, 'reads went on after the restarts');

  // SIGINT is a real stop: unmount, and the store lets go of the connection.
  const from = store.events.length;
  process.kill(third.pid, 'SIGINT');
  t.same(await third.exited, { code: 0, signal: null });
  t.same(mountsAt(mountpoint), [], 'SIGINT unmounted');
  await store.waitFor((e) => e.message?.FDSTOREREMOVE === '1' && e.message.FDNAME === 'fuse', from);
  // (The store may have dropped /dev/fuse itself first: the unmount ended the connection, POLLERR.)
  t.same(await store.list(), [], 'FDSTOREREMOVE=1: the store let go of the connection and its state');
});

/** A daemon started by the stand-in, serving, its connection stored. */
async function storedDaemon(t: Test, store: FdStore, dir: string, mountpoint: string): Promise<StoredDaemon> {
  const d = await store.startDaemon(['-p', join(dir, 'lxcfs-ts.pid'), mountpoint]);
  t.teardown(() => run('kill', ['-9', String(d.pid)]));
  t.equal((await serving(d)).fdStore, true);
  return d;
}

/** A scratch dir, a descriptor store and a first daemon serving `mountpoint` (relative to the dir) through it. */
async function storedScene(t: Test, mount = 'mnt'): Promise<{ dir: string; mountpoint: string; store: FdStore; first: StoredDaemon }> {
  const dir = scratchDir();
  const mountpoint = join(dir, mount);
  const store = await startFdStore(dir);
  t.teardown(() => {
    store.close();
    cleanup(dir, mountpoint);
  });
  return { dir, mountpoint, store, first: await storedDaemon(t, store, dir, mountpoint) };
}

t.test('a stored connection whose mount is gone is not resumed: closed, dropped from the store, a fresh mount', async (t) => {
  const { dir, mountpoint, store, first } = await storedScene(t);
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  // Someone unmounts it while no daemon runs: nothing else holds the superblock, so the kernel ends the
  // connection, and the store drops the descriptor that now reports POLLERR (systemd does the same).
  const from = store.events.length;
  t.equal(run('umount', ['-l', mountpoint]).code, 0);
  const dropped = await store.waitFor((e) => e.dropped !== undefined, from);
  t.equal(dropped.event.target, '/dev/fuse', 'the ended connection left the store');

  const second = await store.startDaemon(['-p', join(dir, 'lxcfs-ts.pid'), mountpoint]);
  t.teardown(() => run('kill', ['-9', String(second.pid)]));
  const info = await serving(second);
  t.equal(info.resumed, false, 'mounted afresh');
  t.equal(info.fdStore, true, 'and stored the new connection');
  const warning = second.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('not resuming'));
  t.match(warning?.reason, /holds 0 FUSE descriptors and 1 states/, 'the lone state is not used');
  t.equal(run('head', ['-1', join(mountpoint, 'proc/meminfo')]).code, 0, 'the fresh mount serves');
  const kept = await store.list();
  t.same(kept.map((k) => k.target.replace(/ \(deleted\)$/, '')), ['/dev/fuse', '/memfd:lxcfs-ts-fuse-state'], 'the store holds the new connection only (the old state was removed)');
  process.kill(second.pid, 'SIGINT');
  await second.exited;
});

t.test('a stored connection still alive but no longer on the mountpoint: dropped, a fresh mount, the container re-attached', { skip: noCgroups }, async (t) => {
  const { dir, mountpoint, store, first } = await storedScene(t);
  const box = createContainer(t, 'fdstore-gone', { memoryBytes: 160 * MiB });
  const readers = container(t, dir, mountpoint, box);
  await until('the container reading', () => readers.open().some((l) => l.startsWith('ok meminfo')));
  // The host's mount goes; the container's binds keep the connection alive (the daemon still serves them).
  t.equal(run('umount', ['-l', mountpoint]).code, 0);
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  t.equal((await store.list()).length, 2, 'both descriptors still stored: the connection lives on in the container');

  const from = store.events.length;
  const second = await store.startDaemon(['-p', join(dir, 'lxcfs-ts.pid'), mountpoint]);
  t.teardown(() => run('kill', ['-9', String(second.pid)]));
  const info = await serving(second);
  t.equal(info.resumed, false, 'not resumed: a new mount');
  t.match(second.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('not resuming'))?.reason, /no longer the mount on/);
  const removed = await store.waitFor((e) => e.removed !== undefined, from);
  t.equal(removed.event.removed!.length, 2, 'FDSTOREREMOVE=1: the old connection is let go');
  await until('the re-attach pass', () => second.logs().some((l) => l.msg === 're-attach pass done'));
  t.ok((second.logs().find((l) => l.msg === 're-attach pass done')!.reattached as number) > 0, 'the container\'s dead binds were re-attached to the new mount');
  const mark = readers.open().length;
  await until('the container reading the new mount', () => readers.open().slice(mark).some((l) => /^ok meminfo MemTotal:\s+163840 kB\|/.test(l)));
  await readers.stop();
  process.kill(second.pid, 'SIGINT');
  await second.exited;
});

t.test('a daemon started by hand while systemd keeps the connection: it aborts the unserved connection, mounts afresh and re-attaches the container', { skip: noCgroups }, async (t) => {
  const { dir, mountpoint, first } = await storedScene(t);
  const box = createContainer(t, 'fdstore-byhand', { memoryBytes: 176 * MiB });
  const readers = container(t, dir, mountpoint, box);
  await until('the container reading', () => readers.open().some((l) => l.startsWith('ok meminfo')));
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  // The connection is alive (the store holds it) and nobody serves it: a stat of the mountpoint would wait
  // for ever. A daemon started by hand, without the stored descriptors, must neither hang nor refuse.
  const byHand = await startDaemon({ dir: join(dir, 'byhand'), mountpoint });
  t.teardown(async () => {
    await byHand.stop();
  });
  t.ok(byHand.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('the mountpoint held an lxcfs-ts connection nobody served')), 'it said what it did');
  await until('the re-attach pass', () => byHand.logs().some((l) => l.msg === 're-attach pass done'));
  const mark = readers.open().length;
  await until('the container reading the new mount', () => readers.open().slice(mark).some((l) => /^ok meminfo MemTotal:\s+180224 kB/.test(l)));
  t.equal(mountsAt(mountpoint).length, 1, 'one mount: the new one');
  await readers.stop();
});

/** CPU time (clock ticks) a thread has used in user mode: /proc/PID/task/TID/stat field 14. */
function userTicks(pid: number, tid = pid): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[11]);
  } catch {
    return 0;
  }
}

const [kernelMajor, kernelMinor] = release().split('.').map(Number) as [number, number];
const hasResend = kernelMajor > 6 || (kernelMajor === 6 && kernelMinor >= 9);
if (!hasResend) process.stderr.write(`fdstore.test.ts: the resend test skipped: Linux ${release()} has no FUSE_NOTIFY_RESEND (6.9+)\n`);

t.test('a request the killed daemon had read and not answered is answered by the next one', { skip: noCgroups || (hasResend ? false : `Linux ${release()} has no FUSE_NOTIFY_RESEND (6.9+)`) }, async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  const store = await startFdStore(dir);
  t.teardown(() => {
    store.close();
    cleanup(dir, mountpoint);
  });
  // A bundle whose meminfo never finishes for a 144 MiB container (the smoke render at start has other
  // limits): the container's open is read by the daemon, which then spins in JavaScript until killed.
  const stuck = join(dir, 'stuck-renderers.cjs');
  writeFileSync(
    stuck,
    `${readFileSync(BUNDLE, 'utf8')}
;(() => {
  const meminfo = module.exports.files.find((f) => f.path === 'proc/meminfo');
  const render = meminfo.render;
  meminfo.render = (snapshot, options) => {
    const text = render(snapshot, options);
    if (/^MemTotal:\\s+147456 kB$/m.test(text)) for (;;) {}
    return text;
  };
})();
`,
  );
  const first = await store.startDaemon(['-p', join(dir, 'lxcfs-ts.pid'), mountpoint], { LXCFS_TS_RENDERERS: stuck });
  t.teardown(() => run('kill', ['-9', String(first.pid)]));
  await serving(first);
  const box = createContainer(t, 'fdstore-resend', { memoryBytes: 144 * MiB });
  const out = join(dir, 'resend.out');
  const before = userTicks(first.pid);
  const reader = spawn('sh', ['-c', `${box.dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ')} && exec unshare -m --pid --fork --mount-proc sh -c 'mount --bind "$MNT/proc/meminfo" /proc/meminfo && head -1 /proc/meminfo > "$OUT" 2>&1; echo "exit $?" >> "$OUT"'`], {
    env: { ...process.env, MNT: mountpoint, OUT: out },
    stdio: 'ignore',
  });
  t.teardown(() => reader.kill('SIGKILL'));
  let readerDone = false;
  reader.on('exit', () => (readerDone = true));
  // The daemon's JavaScript thread spinning (a second of CPU, where an idle daemon uses none) means it
  // took the container's open.
  await until('the daemon spinning on the container\'s open', () => userTicks(first.pid) - before > 100);
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  t.notOk(existsSync(out) && readFileSync(out, 'utf8').includes('exit'), 'the open has not returned');
  const second = await store.startDaemon(['-p', join(dir, 'lxcfs-ts.pid'), mountpoint]);
  t.teardown(() => run('kill', ['-9', String(second.pid)]));
  await serving(second);
  await until('the container\'s open to return', () => readerDone);
  t.match(readFileSync(out, 'utf8'), /^MemTotal:\s+147456 kB\nexit 0\n$/, 'the kernel sent the open again, and the next daemon answered it: the container read its own meminfo');
  t.equal(resumedLine(second)?.resend, 0, 'FUSE_NOTIFY_RESEND accepted');
  process.kill(second.pid, 'SIGINT');
  await second.exited;
});

t.test('the unit\'s ExecStartPre does not wait on the kept mount', async (t) => {
  // After a restart the mountpoint is the kept connection's mount with no daemon behind it yet: anything
  // that stat()s it waits for the daemon that ExecStartPre comes before.
  const { dir, mountpoint, store, first } = await storedScene(t, 'var/lib/lxcfs');
  process.kill(first.pid, 'SIGKILL');
  await first.exited;
  const unit = readFileSync(join(ROOT, 'systemd/lxcfs-ts.service'), 'utf8');
  const pre = unit.split('\n').find((l) => l.startsWith('ExecStartPre='))!.slice('ExecStartPre='.length);
  const r = run('sh', ['-c', pre.replaceAll('/var/lib/lxcfs', mountpoint).replaceAll('$$', '$')]);
  t.equal(r.code, 0, `ExecStartPre returned (${r.stderr})`);
  const second = await storedDaemon(t, store, dir, mountpoint);
  t.equal(resumedLine(second)?.generation, 2, 'and the next start resumed the connection');
  process.kill(second.pid, 'SIGINT');
  await second.exited;
});

t.test('without NOTIFY_SOCKET: nothing stored, SIGTERM unmounts as before', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  const daemon = await startDaemon({ dir, mountpoint, env: { NOTIFY_SOCKET: '' } });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(dir, mountpoint);
  });
  const info = daemon.logs().find((l) => l.msg === 'serving')!;
  t.equal(info.fdStore, false);
  t.equal(info.resumed, false);
  t.match(run(process.execPath, [MAIN, 'status', '-p', daemon.pidfile]).stdout, /connection: +not in a descriptor store/);
  t.same((await daemon.stop()).code, 0);
  t.same(mountsAt(mountpoint), [], 'SIGTERM unmounted');
});
