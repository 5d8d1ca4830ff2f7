// A daemon restart, crash or SIGKILL never breaks a running container: the next daemon re-attaches the
// container's bind mounts of the dead FUSE connection to its own mount (src/daemon/reattach.ts and the
// binding's lxcfs-ts-reattach helper), and `lxcfs-ts reattach` does the same on demand. Containers here
// are pid+mount namespaces with the served files and the cpu directory bind-mounted, one process reading
// in a loop and one holding a file open; a namespace that never had lxcfs-ts mounts must stay untouched.

import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from 'node-cgroups-parser';
import { classify, reattachNamespace, scan } from '../src/daemon/reattach.js';
import { createContainer, liveCgroupsMissing, type ScratchContainer } from './helpers/cgroups.js';
import { PROC_FILES } from './helpers/container.js';
import { cleanup, MAIN, ROOT, run, scratchDir, startDaemon, type Daemon } from './helpers/daemon.js';

const MiB = 1024 * 1024;
const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`reattach.test.ts: tests with containers skipped: ${noCgroups}\n`);

// Recorded from a test container of this machine after a SIGKILLed daemon and a new one on /tmp/m4/mnt
// (device 0:42 live, 0:40 dead), plus a runtime's placeholder bind made while no daemon served and a
// dead bind of another daemon's mount (/srv/other: not ours to touch).
const MOUNTINFO = `104 47 0:40 / /tmp/m4/mnt rw,nosuid,nodev,relatime - fuse.lxcfs-ts lxcfs-ts:/tmp/m4/mnt rw,user_id=0,group_id=0,allow_other
106 105 0:40 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime - fuse.lxcfs-ts lxcfs-ts:/tmp/m4/mnt rw,user_id=0,group_id=0,allow_other
112 50 0:40 /sys/devices/system/cpu /sys/devices/system/cpu rw,nosuid,nodev,relatime - fuse.lxcfs-ts lxcfs-ts:/tmp/m4/mnt rw,user_id=0,group_id=0,allow_other
113 105 0:42 /proc/stat /proc/stat rw,nosuid,nodev,relatime - fuse.lxcfs-ts lxcfs-ts:/tmp/m4/mnt rw,user_id=0,group_id=0,allow_other
114 105 254:0 /tmp/m4/mnt/proc/uptime /proc/uptime rw,relatime - ext4 /dev/vda rw
115 105 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw
116 105 0:37 /proc/swaps /proc/swaps rw,nosuid,nodev,relatime - fuse.lxcfs-ts lxcfs-ts:/srv/other rw,user_id=0,group_id=0,allow_other
117 47 254:0 /tmp/m4/mnt /tmp/m4/mnt rw,relatime - ext4 /dev/vda rw
`;

t.test('classify: dead lxcfs-ts binds, live ones, placeholders', async (t) => {
  const { dead, placeholders } = classify(parseMountinfo(MOUNTINFO), '0:42', '/tmp/m4/mnt');
  t.same(dead, [
    { root: '/', target: '/tmp/m4/mnt' },
    { root: '/proc/meminfo', target: '/proc/meminfo' },
    { root: '/sys/devices/system/cpu', target: '/sys/devices/system/cpu' },
  ], 'the mounts of the old connection (0:40), not the live one (0:42), nor another daemon\'s');
  t.same(placeholders, ['/proc/uptime'], 'a bind of the bare mountpoint directory, made while no daemon served (not the mountpoint onto itself)');
});

interface Box {
  child: ChildProcess;
  log: string;
  box: ScratchContainer;
  /** lines the reader has written so far */
  lines: () => string[];
}

/**
 * A long-running container: binds of the served files and the cpu directory, a reader appending
 * "ok <first line of meminfo>" or "err <message>" to `log` every 50 ms, and a process holding meminfo open.
 */
function container(t: Test, daemon: Daemon, name: string, limit: number): Box {
  const box = createContainer(t, name, { memoryBytes: limit });
  const log = join(daemon.dir, `${name}.log`);
  writeFileSync(log, '');
  const binds = [...PROC_FILES.map((f) => `mount --bind "$MNT/proc/${f}" /proc/${f}`), 'mount --bind "$MNT/sys/devices/system/cpu" /sys/devices/system/cpu'].join(' && ');
  const inner = `${binds} && { python3 -c 'import os,time; f=os.open("/proc/meminfo",os.O_RDONLY); time.sleep(3600)' & while :; do if l=$(head -1 /proc/meminfo 2>&1); then echo "ok $l" >> "$LOG"; else echo "err $l" >> "$LOG"; fi; sleep 0.05; done; }`;
  const outer = `${box.dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ')} && exec unshare -m --pid --fork --mount-proc sh -c "$INNER"`;
  const child = spawn('sh', ['-c', outer], { env: { ...process.env, MNT: daemon.mountpoint, INNER: inner, LOG: log }, stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
    for (const pid of box.procs()) run('kill', ['-9', String(pid)]);
  });
  return { child, log, box, lines: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

t.test('scan: a namespace is entered through its oldest process, not its lowest pid', async (t) => {
  // A fake /proc: namespace A holds pid 5 (started at tick 900: a short-lived process after pids wrapped)
  // and pid 7 (tick 100: the container's init); namespace B (ours) is skipped.
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const proc = join(dir, 'proc');
  const pidDir = (pid: number | string, ns: string, start: number, mountinfo: string) => {
    mkdirSync(join(proc, String(pid), 'ns'), { recursive: true });
    symlinkSync(ns, join(proc, String(pid), 'ns/mnt'));
    writeFileSync(join(proc, String(pid), 'stat'), `${pid} (s h) S 1 ${'0 '.repeat(17)}${start} 0\n`);
    writeFileSync(join(proc, String(pid), 'mountinfo'), mountinfo);
  };
  pidDir('self', 'mnt:[2]', 1, '');
  pidDir(5, 'mnt:[1]', 900, MOUNTINFO);
  pidDir(7, 'mnt:[1]', 100, MOUNTINFO);
  pidDir(9, 'mnt:[2]', 50, MOUNTINFO);
  const found = await scan('/tmp/m4/mnt', '0:42', { procRoot: proc });
  t.same(found.map((c) => [c.namespace, c.pid, c.candidates]), [['mnt:[1]', 7, [7, 5]]]);
});

t.test('reattachNamespace: a candidate that can no longer be entered is skipped for the next', async (t) => {
  // A stand-in helper: pid 11 "exited" (exit 2, as the real one when it cannot enter), pid 12 works.
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const helper = join(dir, 'helper');
  writeFileSync(helper, '#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\nif [ "$1" = 11 ]; then echo "cannot enter the mount namespace of pid 11: No such file or directory" >&2; exit 2; fi\nwhile IFS="$(printf \'\\t\')" read -r root target; do printf \'ok\\t%s\\n\' "$target"; done\n');
  chmodSync(helper, 0o755);
  const r = await reattachNamespace(helper, '/tmp/m4/mnt', { namespace: 'mnt:[77]', pid: 11, candidates: [11, 12], dead: [{ root: '/proc/meminfo', target: '/proc/meminfo' }], placeholders: [] });
  t.match(r, { pid: 12, kind: 'container', reattached: ['/proc/meminfo'], failed: [] });
  t.same(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'), ['11 /tmp/m4/mnt 77', '12 /tmp/m4/mnt 77'], 'the namespace inode goes with the pid');
});

t.test('the real helper refuses a pid that is no longer in the namespace it was chosen for', async (t) => {
  const helper = join(ROOT, 'vendor/fuse-native/build/Release/lxcfs-ts-reattach');
  const r = run('sh', ['-c', `echo "/proc/meminfo	/nowhere" | ${helper} $$ /tmp 1`]);
  t.equal(r.code, 2);
  t.match(r.stderr, /pid \d+ is no longer in mount namespace 1/);
});

t.test('the helper sees a dead bind as dead while the kernel still answers stat from its cache', async (t) => {
  // A bind whose attributes the kernel cached (echo-fs --timeouts: 60 s) keeps answering stat after its
  // daemon is killed; a new daemon started within that time must still re-attach it (statfs asks the
  // daemon every time). Order of events, no timing: stat, kill, start the new one, run the helper.
  const helper = join(ROOT, 'vendor/fuse-native/build/Release/lxcfs-ts-reattach');
  const dir = scratchDir();
  const [oldMnt, newMnt, target] = [join(dir, 'old'), join(dir, 'new'), join(dir, 'target')];
  mkdirSync(oldMnt);
  mkdirSync(newMnt);
  writeFileSync(target, '');
  const started: ChildProcess[] = [];
  const echoFs = (mnt: string) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/helpers/echo-fs.cjs'), mnt, '--timeouts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return { child, ready: () => /^ready /m.test(out) };
  };
  const older = echoFs(oldMnt);
  t.teardown(() => {
    for (const child of started) child.kill('SIGKILL');
    for (const mnt of [oldMnt, newMnt]) run('umount', ['-l', mnt]);
    cleanup(dir);
  });
  await until('the old echo-fs', older.ready);
  const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${oldMnt}/whoami ${target} && stat ${target} >/dev/null && echo bound && exec sleep 3600`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let held = '';
  holder.stdout!.on('data', (d) => (held += d));
  t.teardown(() => holder.kill('SIGKILL'));
  await until('the bind in the holder\'s namespace', () => held.includes('bound'));
  older.child.kill('SIGKILL');
  await new Promise((resolve) => older.child.once('exit', resolve));
  const inNs = (...cmd: string[]) => run('nsenter', ['-t', String(holder.pid), '-m', ...cmd]);
  t.equal(inNs('stat', target).code, 0, 'the premise: stat of the dead bind still succeeds (cached attributes)');
  t.not(inNs('cat', target).code, 0, 'while reading it fails');
  const newer = echoFs(newMnt);
  await until('the new echo-fs', newer.ready);
  const r = run(helper, [String(holder.pid), newMnt], { input: `/whoami\t${target}\n` });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `ok\t${target}\n`, 're-attached, not skipped as "not a dead mount"');
  t.match(inNs('cat', target).stdout, /^\d+ 0 0/, 'the bind reads the new daemon\'s file');
});

/** Wait until `cond` holds (a hang guard bounds it, not a timing assertion). */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

const mountinfoOf = (pid: number) => readFileSync(`/proc/${pid}/mountinfo`, 'utf8');

t.test('containers survive SIGTERM + start, SIGKILL + start and lxcfs-ts reattach', { skip: noCgroups }, async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  // A namespace that never had lxcfs-ts mounts: made before the daemon mounts anything.
  const bystander = spawn('unshare', ['-m', 'sleep', '3600'], { stdio: 'ignore' });
  t.teardown(() => bystander.kill('SIGKILL'));
  let daemon = await startDaemon({ dir, mountpoint });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(dir, mountpoint);
  });
  // A process that made a private mount namespace while the daemon served: a copy of the mount, no binds.
  const copyHolder = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', '3600'], { stdio: 'ignore' });
  t.teardown(() => copyHolder.kill('SIGKILL'));
  await until('the copy holder in its namespace', () => mountinfoOf(copyHolder.pid!).includes(`lxcfs-ts:${mountpoint}`) && readlinkSync(`/proc/${copyHolder.pid}/ns/mnt`) !== readlinkSync('/proc/self/ns/mnt'));
  const a = container(t, daemon, 'reattach-a', 192 * MiB);
  const b = container(t, daemon, 'reattach-b', 320 * MiB);
  await until('both containers reading', () => a.lines().some((l) => l.startsWith('ok ')) && b.lines().some((l) => l.startsWith('ok ')));
  const bystanderBefore = mountinfoOf(bystander.pid!);
  // Each container's lxcfs-ts mounts: its 9 binds (8 /proc files and the cpu directory), and the copy of
  // the daemon's own mount that its new mount namespace inherited.
  // (Only this daemon's: tests running beside this one may have their own mounts, copied in too.)
  const ours = (c: Box) => parseMountinfo(mountinfoOf(c.box.procs()[0]!)).filter((m) => m.fsType === 'fuse.lxcfs-ts' && m.source === `lxcfs-ts:${mountpoint}`).length;
  const namespaceOf = (c: Box) => readlinkSync(`/proc/${c.box.procs()[0]!}/ns/mnt`);
  // What a pass did for containers a and b, from its per-namespace lines (a process that made a private
  // mount namespace elsewhere on this machine while the daemon served holds a copy of the mount too, and
  // is repaired as well: it is not counted here).
  const perContainer = (lines: { namespace: string; count: number }[]) => [a, b].map((c) => lines.filter((l) => l.namespace === namespaceOf(c)).reduce((n, l) => n + l.count, 0));
  const expected = ours(a) + ours(b);
  t.equal(expected, 20, 'two containers, 10 lxcfs-ts mounts each');

  const cycle = async (how: 'SIGTERM' | 'SIGKILL' | 'reattach command') => {
    const marks = [a, b].map((c) => c.lines().length);
    daemon.child.kill(how === 'SIGTERM' ? 'SIGTERM' : 'SIGKILL');
    await daemon.exited;
    // The containers' reads fail now ("Transport endpoint is not connected"): event, not time.
    await until(`${how}: reads failing`, () => [a, b].every((c, i) => c.lines().slice(marks[i]).some((l) => l.startsWith('err '))));
    const failedAt = [a, b].map((c) => c.lines().length);
    daemon = await startDaemon({ dir, mountpoint, args: how === 'reattach command' ? ['--no-reattach'] : [] });
    if (how === 'reattach command') {
      // The daemon was told not to: the containers still fail until the command runs.
      t.ok([a, b].every((c) => c.lines().slice(-1)[0]?.startsWith('err ')), 'with --no-reattach the containers stay broken');
      const r = run(process.execPath, [MAIN, 'reattach', mountpoint]);
      t.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n').map((l) => /^pid \d+ \((mnt:\[\d+\])\): re-attached /.exec(l)).filter((m) => m !== null).map((m) => ({ namespace: m[1]!, count: 1 }));
      t.same(perContainer(lines), [ours(a), ours(b)], `${how}: every lxcfs-ts mount of both containers re-attached`);
      t.match(r.stdout, /^re-attached \d+ mounts in \d+ containers/m, r.stdout);
    } else {
      await until('the re-attach pass', () => daemon.logs().some((l) => l.msg === 're-attach pass done'));
      const done = daemon.logs().find((l) => l.msg === 're-attach pass done')!;
      const lines = daemon.logs().filter((l) => l.msg === 'container re-attached').map((l) => ({ namespace: String(l.namespace), count: (l.reattached as string[]).length }));
      // Each container is named by its oldest process (the one that made its namespaces), however many
      // short-lived ones (the reader loop's) come and go with lower or higher pids.
      for (const c of [a, b]) t.equal(daemon.logs().find((l) => l.msg === 'container re-attached' && l.namespace === namespaceOf(c))?.containerPid, c.child.pid, `${how}: named by its oldest process`);
      t.same(perContainer(lines), [ours(a), ours(b)], `${how}: every lxcfs-ts mount of both containers re-attached`);
      t.ok((done.containers as number) >= 2 && (done.reattached as number) >= expected, `${how}: the summary counts them`);
      t.equal(done.failed, 0);
      const copy = daemon.logs().find((l) => l.namespace === readlinkSync(`/proc/${copyHolder.pid}/ns/mnt`));
      t.match(copy, { kind: 'copy', msg: /^mount namespace \(a copy of the mount, no container binds\) re-attached$/, containerPid: copyHolder.pid, reattached: [mountpoint] }, `${how}: the copy is repaired, and not called a container`);
      t.ok((done.namespaces as number) >= 1);
    }
    // New opens in both containers read the new daemon's files, each its own.
    await until(`${how}: reads succeeding again`, () => [a, b].every((c, i) => c.lines().slice(failedAt[i]).some((l) => l.startsWith('ok '))));
    t.match(a.lines().slice(-1)[0], /^ok MemTotal:\s+196608 kB$/, `${how}: container a reads its own MemTotal again`);
    t.match(b.lines().slice(-1)[0], /^ok MemTotal:\s+327680 kB$/, `${how}: container b reads its own MemTotal again`);
    t.equal(run('nsenter', ['-t', String(a.box.procs()[0]), '-m', 'cat', '/sys/devices/system/cpu/online']).code, 0, `${how}: the cpu directory is back too`);
  };
  await cycle('SIGTERM');
  await cycle('SIGKILL');
  await cycle('reattach command');

  // Between a dead mount and its replacement a reader sees one or the other (an error, or its own
  // figures), never the file underneath: the container's own procfs, i.e. the host's MemTotal.
  t.same(a.lines().filter((l) => l.startsWith('ok ') && !/^ok MemTotal:\s+196608 kB$/.test(l)), [], 'container a never read anything but its own MemTotal');
  t.same(b.lines().filter((l) => l.startsWith('ok ') && !/^ok MemTotal:\s+327680 kB$/.test(l)), [], 'container b never read anything but its own MemTotal');
  t.equal(mountinfoOf(bystander.pid!), bystanderBefore, 'a namespace without lxcfs-ts mounts was not touched');
  t.ok(a.child.exitCode === null && b.child.exitCode === null, 'the containers never stopped');
  const again = run(process.execPath, [MAIN, 'reattach', mountpoint]);
  t.match(again.stdout, /nothing to re-attach/, 'a second pass finds nothing to do');
  t.ok(existsSync(mountpoint));
});
