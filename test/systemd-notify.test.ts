// src/daemon/systemd-notify.ts with a recording `send`: which states go out, when the watchdog runs,
// and how failures are logged. The real datagrams are tested in systemd.test.ts against a stand-in socket.

import t from 'tap';
import { SystemdNotifier } from '../src/daemon/systemd-notify.js';
import type { Logger } from '../src/daemon/logger.js';

function recorder(result: 0 | string | null = 0) {
  const sent: string[] = [];
  const warnings: unknown[][] = [];
  const log = { warn: (...args: unknown[]) => warnings.push(args) } as unknown as Logger;
  return { sent, warnings, log, send: (state: string) => (sent.push(state), result) };
}

t.test('states in order, STATUS on one line', async (t) => {
  const r = recorder();
  const n = new SystemdNotifier(r.log, {}, r.send);
  n.ready('serving /x\n(cgroup v2)');
  n.status('a\nb');
  n.reloading();
  n.stopping();
  t.equal(r.sent[0], `READY=1\nSTATUS=serving /x; (cgroup v2)\nMAINPID=${process.pid}`);
  t.equal(r.sent[1], 'STATUS=a; b');
  t.match(r.sent[2], /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  t.equal(r.sent[3], 'STOPPING=1\nSTATUS=stopping');
  t.equal(r.sent.length, 4, 'no WATCHDOG_USEC: no pings');
});

t.test('the watchdog: WATCHDOG_USEC halves into the ping period; another WATCHDOG_PID is not ours', async (t) => {
  const r = recorder();
  const mine = new SystemdNotifier(r.log, { WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }, r.send);
  t.equal(mine.startWatchdog(), 15_000, '30 s watchdog: ping every 15 s');
  t.same(r.sent, ['WATCHDOG=1'], 'a first ping at once');
  t.equal(mine.startWatchdog(), undefined, 'started once');
  mine.stopWatchdog();
  for (const env of [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid + 1) }, { WATCHDOG_USEC: '0' }, { WATCHDOG_USEC: 'x' }, {}]) {
    t.equal(new SystemdNotifier(r.log, env, r.send).startWatchdog(), undefined, JSON.stringify(env));
  }
  t.equal(r.sent.length, 1);
});

t.test('failures are logged once; no socket is silence', async (t) => {
  const failing = recorder('ECONNREFUSED');
  const n = new SystemdNotifier(failing.log, { NOTIFY_SOCKET: '/run/x' }, failing.send);
  n.ready('a');
  n.status('b');
  n.stopping();
  t.equal(failing.sent.length, 3);
  t.equal(failing.warnings.length, 1);
  t.match(failing.warnings[0], [{ socket: '/run/x', errno: 'ECONNREFUSED', state: 'READY=1' }, 'sd_notify failed']);
  const silent = recorder(null);
  new SystemdNotifier(silent.log, {}, silent.send).ready('a');
  t.equal(silent.warnings.length, 0);
});
