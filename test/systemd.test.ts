// systemd/lxcfs-ts.service: systemd's own verifier accepts it, its commands do what they say when run
// against a real daemon, and the daemon speaks Type=notify (READY=1 once served, STATUS, WATCHDOG,
// RELOADING, STOPPING) to a stand-in notify socket (helpers/notify-socket.py). Nothing is installed on the
// machine: the unit runs from a temp copy whose ExecStart points at a temp "/usr/local/bin".

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, MAIN, mountsAt, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';
import { startNotifySocket } from './helpers/notify-socket.js';

const UNIT = readFileSync(join(ROOT, 'systemd/lxcfs-ts.service'), 'utf8');
const directive = (name: string) => UNIT.split('\n').filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));
const haveVerify = run('sh', ['-c', 'command -v systemd-analyze']).code === 0;
if (!haveVerify) process.stderr.write('systemd.test.ts: systemd-analyze verify skipped: systemd-analyze is not installed (apt-get install systemd)\n');

/** A temp root with usr/local/bin/lxcfs-ts -> dist/src/daemon/main.js, as the install instructions make it. */
function tempInstall(dir: string): string {
  const bin = join(dir, 'usr/local/bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(MAIN, join(bin, 'lxcfs-ts'));
  return join(bin, 'lxcfs-ts');
}

t.test('systemd-analyze verify', { skip: haveVerify ? false : 'systemd-analyze not installed' }, async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const bin = tempInstall(dir);
  const unit = join(dir, 'lxcfs-ts.service');
  writeFileSync(unit, UNIT.replaceAll('/usr/local/bin/lxcfs-ts', bin));
  const r = run('systemd-analyze', ['verify', unit]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stderr, /lxcfs-ts\.service/, `no complaint about the unit: ${r.stderr}`);

  // The verifier does check: the same unit with a missing binary is refused.
  const broken = join(dir, 'broken', 'lxcfs-ts.service');
  mkdirSync(join(dir, 'broken'));
  writeFileSync(broken, UNIT.replaceAll('/usr/local/bin/lxcfs-ts', join(dir, 'missing/lxcfs-ts')));
  const b = run('systemd-analyze', ['verify', broken]);
  t.not(b.code, 0, 'a missing ExecStart binary fails verification');
  t.match(b.stderr, /lxcfs-ts\.service/);
});

t.test('the installed bin works through a symlink', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const bin = tempInstall(dir);
  t.match(run(bin, ['--version']).stdout, /^lxcfs-ts \d+\.\d+\.\d+/);
  // render loads dist/renderers.cjs relative to the script: resolved through the symlink
  const r = run(bin, ['render', '/proc/meminfo']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^MemTotal:\s+\d+ kB$/m);
});

t.test('the unit\'s commands, run as systemd runs them, against a real daemon', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'var/lib/lxcfs');
  t.teardown(() => cleanup(dir, mountpoint));
  const bin = tempInstall(dir);
  // The unit's own command lines, pointed at this temp root (and a temp runtime dir for the pid file), with
  // systemd's own substitutions made: $$ is a literal $, %n the unit's name.
  const local = (command: string) =>
    command.replaceAll('/var/lib/lxcfs', mountpoint).replace('/usr/local/bin/lxcfs-ts', `${bin} --runtime-dir ${dir}`).replaceAll('$$', '$').replaceAll('%n', 'lxcfs-ts.service');
  const [pre] = directive('ExecStartPre');
  const [start] = directive('ExecStart');
  const [reload] = directive('ExecReload');
  const [stopPost] = directive('ExecStopPost');
  if (!pre || !start || !reload || !stopPost) return t.fail('ExecStartPre, ExecStart, ExecReload and ExecStopPost are all set');

  t.equal(run('sh', ['-c', local(pre)]).code, 0, 'ExecStartPre');
  t.ok(statSync(mountpoint).isDirectory(), 'ExecStartPre made the mountpoint');

  const socket = await startNotifySocket(join(dir, 'notify.sock'), join(mountpoint, 'proc/meminfo'));
  t.teardown(() => socket.close());
  const [file, ...args] = local(start).split(' ');
  const daemon = spawn(file!, args, { stdio: 'ignore', env: { ...process.env, NOTIFY_SOCKET: socket.name } });
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
  t.teardown(() => daemon.kill('SIGKILL'));
  t.same(directive('Type'), ['notify'], 'systemd waits for READY=1');
  const ready = await socket.waitFor((m) => m.state.READY === '1');
  t.equal(ready.message.exists, true, 'ExecStart: READY=1 came once the files were served');
  t.equal(readFileSync(join(dir, 'lxcfs-ts.pid'), 'utf8').trim(), String(daemon.pid), 'the pid file is in the runtime dir');

  t.equal(run('sh', ['-c', local(reload).replace('$MAINPID', String(daemon.pid))]).code, 0);
  const reloading = await socket.waitFor((m) => m.state.RELOADING === '1', ready.index + 1);
  await socket.waitFor((m) => m.state.READY === '1', reloading.index + 1);
  t.pass('ExecReload: the daemon reloaded (RELOADING=1, then READY=1) and still runs');
  t.equal(daemon.exitCode, null);

  // ExecStopPost runs with $SERVICE_RESULT set by systemd. After a crash the mount stays: Restart= starts
  // the next daemon, which resumes the connection systemd kept (test/fdstore.test.ts; this stand-in keeps
  // nothing, so here the mount is dead, and the next start would detach it itself).
  daemon.kill('SIGKILL');
  await exited;
  t.equal(mountsAt(mountpoint).length, 1, 'the killed daemon left its mount');
  t.match(stopPost, /^-/, 'ExecStopPost failures are ignored (nothing mounted is fine)');
  const stopPostWith = (env: Record<string, string>) => spawnSync('sh', ['-c', local(stopPost.slice(1))], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 }).status;
  t.equal(stopPostWith({ SERVICE_RESULT: 'signal' }), 0, 'ExecStopPost after a crash');
  t.equal(mountsAt(mountpoint).length, 1, 'after a crash the mount stays for the next start');
  // A clean exit under `systemctl restart` (a restart job is queued for the unit): it stays too.
  const fakeBin = join(dir, 'fake-bin');
  mkdirSync(fakeBin);
  writeFileSync(join(fakeBin, 'systemctl'), `#!/bin/sh\n[ "$1 $2 $3" = "list-jobs --no-legend lxcfs-ts.service" ] && echo "4711 lxcfs-ts.service restart running"\n`, { mode: 0o755 });
  t.equal(stopPostWith({ SERVICE_RESULT: 'success', PATH: `${fakeBin}:${process.env.PATH}` }), 0, 'ExecStopPost under systemctl restart');
  t.equal(mountsAt(mountpoint).length, 1, 'under systemctl restart the mount stays for the next start');
  // A clean exit with no restart coming (`systemctl stop`; here systemctl cannot list jobs at all): detached.
  t.equal(stopPostWith({ SERVICE_RESULT: 'success' }), 0, 'ExecStopPost after systemctl stop');
  t.same(mountsAt(mountpoint), [], 'after systemctl stop the mount is detached');
  t.not(stopPostWith({ SERVICE_RESULT: 'success' }), 0, 'and it fails with nothing mounted, hence the "-"');
});

t.test('the unit\'s requirements', async (t) => {
  t.same(directive('ExecStartPost'), [], 'no polling for readiness: Type=notify says it');
  t.same(directive('KillMode'), ['process'], 'SIGTERM reaches only the daemon, which hands its connection over or unmounts');
  t.ok(directive('FileDescriptorStoreMax').some((n) => Number(n) >= 2), 'systemd keeps the FUSE connection and its state across restarts');
  t.ok(directive('Restart').some((r) => ['on-failure', 'always', 'on-abnormal'].includes(r)), 'a crashed daemon comes back');
  t.ok(directive('Before').join(' ').split(/\s+/).includes('lxc.service'), 'LXC\'s mount hook finds the files served');
  t.ok(directive('OOMScoreAdjust').some((v) => Number(v) < 0), 'the OOM killer prefers anything else');
  t.same(directive('ConditionVirtualization'), ['!container'], 'a nested host\'s daemon serves containers already');
  t.notOk(directive('ExecReload').some((c) => /restart|systemctl/.test(c)), 'a reload never restarts');
});

t.test('Type=notify: READY=1 once the files are served, STATUS, watchdog pings, RELOADING, STOPPING', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  const socket = await startNotifySocket(`@lxcfs-ts-test-notify-${process.pid}`, join(mountpoint, 'proc/meminfo'));
  t.teardown(() => socket.close());
  // WATCHDOG_USEC as systemd sets it for WatchdogSec=100ms; WATCHDOG_PID is set after the fork, so it is
  // left out here (the daemon then takes the watchdog as its own, as sd_watchdog_enabled(3) does).
  const daemon = await startDaemon({ dir, mountpoint, waitReady: false, env: { NOTIFY_SOCKET: socket.name, WATCHDOG_USEC: '100000' } });
  t.teardown(() => daemon.stop());

  const ready = await socket.waitFor((m) => m.state.READY === '1');
  t.equal(ready.message.exists, true, 'READY=1 arrived when /proc/meminfo was already served');
  t.equal(ready.message.state.MAINPID, String(daemon.child.pid));
  t.match(ready.message.state.STATUS, new RegExp(`^serving ${mountpoint} \\(cgroup (v1|v2|hybrid), renderers \\d+\\.\\d+\\.\\d+\\)$`));
  t.notOk(socket.messages.slice(0, ready.index).some((m) => m.state.READY), 'one READY=1 at start');

  // Watchdog: pings keep coming after READY (three of them, in order, not a rate).
  let from = ready.index;
  for (let i = 0; i < 3; i++) from = (await socket.waitFor((m) => m.state.WATCHDOG === '1', from + 1)).index;
  t.pass('WATCHDOG=1 pings after READY=1');

  // SIGUSR1: RELOADING=1 (with the monotonic clock, as systemd ≥ 253 wants), then READY=1 again.
  daemon.child.kill('SIGUSR1');
  const reloading = await socket.waitFor((m) => m.state.RELOADING === '1', from + 1);
  t.match(reloading.message.state.MONOTONIC_USEC, /^\d+$/);
  const readyAgain = await socket.waitFor((m) => m.state.READY === '1', reloading.index + 1);
  t.match(readyAgain.message.state.STATUS, /^serving /);

  // SIGUSR2 says so in STATUS.
  daemon.child.kill('SIGUSR2');
  await socket.waitFor((m) => /passthrough: host files/.test(m.state.STATUS ?? ''), readyAgain.index + 1);

  const stopped = daemon.stop();
  const stopping = await socket.waitFor((m) => m.state.STOPPING === '1', readyAgain.index + 1);
  t.equal((await stopped).code, 0);
  t.notOk(socket.messages.slice(stopping.index + 1).some((m) => m.state.WATCHDOG), 'no watchdog ping after STOPPING=1');
});

t.test('Type=notify: a start that fails says why in STATUS and never sends READY=1', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  mkdirSync(mountpoint);
  writeFileSync(join(mountpoint, 'data'), 'not a placeholder\n');
  const socket = await startNotifySocket(join(dir, 'notify.sock'));
  t.teardown(() => socket.close());
  const daemon = await startDaemon({ dir, mountpoint, waitReady: false, env: { NOTIFY_SOCKET: socket.name } });
  t.equal((await daemon.exited).code, 1);
  const failed = await socket.waitFor((m) => m.state.STATUS !== undefined);
  t.match(failed.message.state.STATUS, /^failed: .*not empty/);
  t.notOk(socket.messages.some((m) => m.state.READY), 'no READY=1');
});

t.test('without NOTIFY_SOCKET nothing is sent and nothing is logged about it', async (t) => {
  const daemon = await startDaemon({ env: { NOTIFY_SOCKET: '' } });
  t.teardown(() => cleanup(daemon.dir, daemon.mountpoint));
  t.equal((await daemon.stop()).code, 0);
  t.notOk(daemon.logs().some((l) => /sd_notify/.test(String(l.msg))));
});

t.test('a notify socket that went away: logged once, the daemon serves on', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir, join(dir, 'mnt')));
  const daemon = await startDaemon({ dir, env: { NOTIFY_SOCKET: join(dir, 'nobody-listens.sock'), WATCHDOG_USEC: '50000' } });
  daemon.child.kill('SIGUSR1');
  while (!daemon.logs().some((l) => /SIGUSR1/.test(String(l.msg)))) await new Promise((r) => setTimeout(r, 20));
  t.match(run('cat', [join(daemon.mountpoint, 'proc/meminfo')]).stdout, /^MemTotal:/);
  const failures = daemon.logs().filter((l) => l.msg === 'sd_notify failed');
  t.equal(failures.length, 1, 'one warning, not one per ping');
  t.equal(failures[0]?.errno, 'ENOENT');
  t.equal((await daemon.stop()).code, 0);
});
