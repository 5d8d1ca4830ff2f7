// systemd/lxcfs-ts.service: systemd's own verifier accepts it, it has what an upgrade-friendly FUSE daemon
// needs, and its readiness wait really waits for the mount.

import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, MAIN, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';

const UNIT = readFileSync(join(ROOT, 'systemd/lxcfs-ts.service'), 'utf8');
const directive = (name: string) => UNIT.split('\n').filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));

t.test('systemd-analyze verify', { skip: run('sh', ['-c', 'command -v systemd-analyze']).code !== 0 ? 'systemd-analyze not installed' : false }, async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  // The verifier wants ExecStart's binary to exist: point it at this checkout's build.
  const unit = join(dir, 'lxcfs-ts.service');
  writeFileSync(unit, UNIT.replace('/usr/local/bin/lxcfs-ts', `${process.execPath} ${MAIN}`));
  const r = run('systemd-analyze', ['verify', unit]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stderr, /lxcfs-ts\.service/, `no complaint about the unit: ${r.stderr}`);
});

t.test('the unit\'s contract', async (t) => {
  t.same(directive('ExecStart'), ['/usr/local/bin/lxcfs-ts /var/lib/lxcfs']);
  t.same(directive('ExecReload'), ['/bin/kill -USR1 $MAINPID'], 'reload = SIGUSR1, never a restart');
  t.same(directive('KillMode'), ['process']);
  t.same(directive('Restart'), ['on-failure']);
  t.same(directive('Before'), ['lxc.service']);
  t.same(directive('ExecStopPost'), ['-/bin/umount -l /var/lib/lxcfs']);
  t.same(directive('OOMScoreAdjust'), ['-1000']);
  t.same(directive('WantedBy'), ['multi-user.target']);
});

t.test('ExecStartPost waits for the files to be served', async (t) => {
  const wait = directive('ExecStartPost')[0]!;
  const script = /^\/bin\/sh -c '(.*)'$/.exec(wait)![1]!;
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  const quick = script.replaceAll('/var/lib/lxcfs', mountpoint).replace('seq 100', 'seq 5');
  t.not(run('sh', ['-c', quick]).code, 0, 'nothing served: fails after its bound');
  const daemon = await startDaemon({ dir, mountpoint });
  t.equal(run('sh', ['-c', quick]).code, 0, 'served: returns 0');
  await daemon.stop();
});
