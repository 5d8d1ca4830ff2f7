// systemd/lxcfs-ts.service: systemd's own verifier accepts it, it has what an upgrade-friendly FUSE daemon
// needs, and its readiness wait (ExecStartPost) really waits for the mount. Nothing is installed on the
// machine: the unit is verified as a temp copy whose ExecStart points at a temp "/usr/local/bin".

import t from 'tap';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, MAIN, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';

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

t.test('the unit\'s contract', async (t) => {
  t.same(directive('ExecStart'), ['/usr/local/bin/lxcfs-ts /var/lib/lxcfs']);
  t.same(directive('ExecStartPre'), ['/bin/mkdir -p /var/lib/lxcfs']);
  t.same(directive('Type'), ['simple']);
  t.same(directive('ExecReload'), ['/bin/kill -USR1 $MAINPID'], 'reload = SIGUSR1 to the daemon, never a restart');
  t.same(directive('KillMode'), ['process']);
  t.same(directive('Restart'), ['on-failure']);
  t.same(directive('Before'), ['lxc.service']);
  t.same(directive('After'), ['local-fs.target']);
  t.same(directive('ConditionVirtualization'), ['!container']);
  t.same(directive('ExecStopPost'), ['-/bin/umount -l /var/lib/lxcfs'], 'a dead mount is detached, failure ignored');
  t.same(directive('OOMScoreAdjust'), ['-1000']);
  t.same(directive('Delegate'), ['yes']);
  t.same(directive('WantedBy'), ['multi-user.target']);
  t.equal(directive('ExecStartPost').length, 1);
});

t.test('ExecStartPost waits for the files to be served', async (t) => {
  const script = /^\/bin\/sh -c '(.*)'$/.exec(directive('ExecStartPost')[0] ?? '')?.[1];
  if (script === undefined) return t.fail('ExecStartPost is not /bin/sh -c \'...\'');
  t.match(script, /seq 100\b.*sleep 0\.1/, 'bounded: 100 x 0.1 s');
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  const at = (mp: string, tries: number) => script.replaceAll('/var/lib/lxcfs', mp).replace('seq 100', `seq ${tries}`);

  let started = Date.now();
  const none = run('sh', ['-c', at(mountpoint, 5)]);
  t.not(none.code, 0, 'nothing served: fails');
  t.ok(Date.now() - started < 3000, `quickly, after its (shortened, 0.5 s) bound: ${Date.now() - started} ms`);
  t.match(none.stderr, /not served/);

  // Started together with the daemon, as systemd does: it waits until the mount answers.
  const daemon = await startDaemon({ dir, mountpoint, waitReady: false });
  started = Date.now();
  const served = run('sh', ['-c', at(mountpoint, 100)]);
  t.equal(served.code, 0, `served: returns 0 (${Date.now() - started} ms) ${served.stderr}`);
  t.ok(run('sh', ['-c', `[ -e ${mountpoint}/proc/meminfo ]`]).code === 0, 'and the files are there');
  await daemon.stop();

  // After a stop the wait fails again (the daemon unmounted).
  t.not(run('sh', ['-c', at(mountpoint, 3)]).code, 0, 'stopped: fails again');
});
