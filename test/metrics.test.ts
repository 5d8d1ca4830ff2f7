// --metrics: Prometheus text at /metrics (src/daemon/metrics.ts), computed when scraped. The exposition
// format on hand-made observations, then a daemon on a TCP port and one on a unix socket, scraped with
// `curl` while a container reads.

import t from 'tap';
import { createServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUCKETS, Metrics } from '../src/daemon/metrics.js';
import { createContainer, liveCgroupsMissing } from './helpers/cgroups.js';
import { runInContainer } from './helpers/container.js';
import { cleanup, run, scratchDir, startDaemon } from './helpers/daemon.js';

const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`metrics.test.ts: tests with containers skipped: ${noCgroups}\n`);

const gauges = { reloads: 2, reloadFailures: 1, passthrough: false, pidNamespaces: 3, containerStates: 4, loadavgContainers: 5, reattachedMounts: 6, renderCache: { entries: 7, hits: 8, misses: 9 }, dispatch: { flows: 10, served: 11, overtaken: 12 } };

t.test('the exposition format: counters, a cumulative histogram per file, gauges', async (t) => {
  const m = new Metrics();
  m.observe('proc/meminfo', 0.0003);
  m.observe('proc/meminfo', 0.002);
  m.observe('proc/meminfo', 3, 'ESRCH');
  m.observe('proc/"odd"', 0.00005);
  const text = m.text(gauges);
  t.match(text, /^# TYPE lxcfs_ts_requests_total counter$/m);
  t.match(text, /^lxcfs_ts_requests_total\{file="proc\/meminfo"\} 3$/m);
  t.match(text, /^lxcfs_ts_requests_total\{file="proc\/\\"odd\\""\} 1$/m, 'label values escaped');
  t.match(text, /^lxcfs_ts_request_errors_total\{file="proc\/meminfo",errno="ESRCH"\} 1$/m);
  // 0.0003 falls in le=0.0005 and above, 0.002 in le=0.0025 and above, 3 s only in +Inf.
  const bucket = (le: string) => Number(new RegExp(`^lxcfs_ts_render_seconds_bucket\\{file="proc/meminfo",le="${le.replace("+", "\\+")}"\\} (\\d+)$`, "m").exec(text)?.[1]);
  t.same([bucket('0.00025'), bucket('0.0005'), bucket('0.001'), bucket('0.0025'), bucket('1'), bucket('+Inf')], [0, 1, 1, 2, 2, 3]);
  t.equal(text.split('\n').filter((l) => l.startsWith('lxcfs_ts_render_seconds_bucket{file="proc/meminfo"')).length, BUCKETS.length + 1);
  t.match(text, /^lxcfs_ts_render_seconds_sum\{file="proc\/meminfo"\} 3\.0023$/m);
  t.match(text, /^lxcfs_ts_render_seconds_count\{file="proc\/meminfo"\} 3$/m);
  for (const [name, value] of [['lxcfs_ts_reloads_total', 2], ['lxcfs_ts_reload_failures_total', 1], ['lxcfs_ts_passthrough', 0], ['lxcfs_ts_pid_namespaces', 3], ['lxcfs_ts_tracked_containers', 4], ['lxcfs_ts_loadavg_containers', 5], ['lxcfs_ts_reattached_mounts_total', 6], ['lxcfs_ts_render_cache_entries', 7], ['lxcfs_ts_render_cache_hits_total', 8], ['lxcfs_ts_dispatch_pid_namespaces', 10], ['lxcfs_ts_dispatch_requests_total', 11], ['lxcfs_ts_dispatch_overtaken_total', 12]] as const) {
    t.match(text, new RegExp(`^${name} ${value}$`, 'm'), name);
  }
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) t.match(line, /^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/, 'sample line');
});

/** A TCP port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const requests = (text: string, file: string) => Number(new RegExp(`^lxcfs_ts_requests_total\\{file="${file}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

t.test('a daemon with --metrics on TCP and on a unix socket: requests grow as a container reads', { skip: noCgroups }, async (t) => {
  const port = await freePort();
  const daemon = await startDaemon({ args: ['--metrics', `127.0.0.1:${port}`] });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const box = createContainer(t, 'metrics', { memoryBytes: 128 * 1024 * 1024 });
  const scrape = () => run('curl', ['-sf', `http://127.0.0.1:${port}/metrics`]);
  const before = scrape();
  t.equal(before.code, 0, before.stderr);
  t.equal(requests(before.stdout, 'proc/meminfo'), 0, 'nothing read yet');
  const r = await runInContainer(box.dirs, daemon.mountpoint, 'for i in 1 2 3 4 5; do head -1 /proc/meminfo; done; cat /proc/stat > /dev/null');
  t.equal(r.code, 0, r.stderr);
  const after = scrape().stdout;
  t.equal(requests(after, 'proc/meminfo'), 5, 'five opens of meminfo');
  t.equal(requests(after, 'proc/stat'), 1);
  t.match(after, /^lxcfs_ts_tracked_containers [1-9]\d*$/m, 'the container is tracked');
  // The container's namespace and ours (curl, the host) asked within 5 s; each open went through the queue.
  t.match(after, /^lxcfs_ts_dispatch_pid_namespaces [1-9]\d*$/m, 'the fair queue accounts for the namespaces that asked');
  const dispatched = Number(/^lxcfs_ts_dispatch_requests_total (\d+)$/m.exec(after)?.[1] ?? 0);
  t.ok(dispatched >= 6, `every open went to the main thread through the queue (${dispatched} requests)`);
  t.equal(run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/other`]).stdout, '404', 'only /metrics');

  const dir = join(daemon.dir, 'unix');
  const socket = join(daemon.dir, 'metrics.sock');
  const other = await startDaemon({ dir: undefined, mountpoint: join(dir, 'mnt'), args: ['--metrics', `unix:${socket}`] });
  t.teardown(async () => {
    await other.stop();
    cleanup(other.dir, other.mountpoint);
  });
  const viaSocket = run('curl', ['-sf', '--unix-socket', socket, 'http://localhost/metrics']);
  t.equal(viaSocket.code, 0, viaSocket.stderr);
  t.match(viaSocket.stdout, /^# TYPE lxcfs_ts_requests_total counter$/m);
});

t.test('--metrics is validated', async (t) => {
  const { MAIN } = await import('./helpers/daemon.js');
  for (const bad of ['8080', 'host:', 'unix:relative', ':80']) {
    const r = run(process.execPath, [MAIN, '--metrics', bad, '/tmp/lxcfs-ts-never']);
    t.equal(r.code, 2, `exit 2 for ${bad}`);
    t.match(r.stderr, /--metrics needs HOST:PORT or unix:\/PATH/);
  }
  for (const bad of ['127.0.0.1:99999', 'localhost:0', '[::1]:65536']) {
    const r = run(process.execPath, [MAIN, '--metrics', bad, '/tmp/lxcfs-ts-never']);
    t.equal(r.code, 2, `exit 2 for ${bad}`);
    t.match(r.stderr, /--metrics PORT must be 1-65535/);
  }
});

t.test('a unix path that is not a stale socket is never deleted; a busy address costs the metrics, not the mount', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir, join(dir, 'mnt')));
  const precious = join(dir, 'precious.txt');
  writeFileSync(precious, 'keep me\n');
  const daemon = await startDaemon({ dir, args: ['--metrics', `unix:${precious}`] });
  t.equal(readFileSync(precious, 'utf8'), 'keep me\n', 'the file is still there');
  t.ok(daemon.logs().some((l) => l.msg === 'cannot serve metrics; serving the files without them' && /not a socket/.test(String(l.err))));
  t.match(run('cat', [join(daemon.mountpoint, 'proc/meminfo')]).stdout, /^MemTotal:/, 'the files are served');
  // A socket something listens on is not taken over.
  const socket = join(dir, 'metrics.sock');
  const first = await startDaemon({ mountpoint: join(dir, 'mnt2'), args: ['--metrics', `unix:${socket}`] });
  t.teardown(async () => {
    await first.stop();
    cleanup(first.dir, first.mountpoint);
  });
  const second = await startDaemon({ mountpoint: join(dir, 'mnt3'), args: ['--metrics', `unix:${socket}`] });
  t.teardown(async () => {
    await second.stop();
    cleanup(second.dir, second.mountpoint);
  });
  t.ok(second.logs().some((l) => l.msg === 'cannot serve metrics; serving the files without them' && /already serves/.test(String(l.err))), 'the second daemon says so');
  t.equal(run('curl', ['-sf', '--unix-socket', socket, 'http://localhost/metrics']).code, 0, 'the first daemon still answers on it');
  // A stale socket (its daemon was killed) is replaced.
  first.child.kill('SIGKILL');
  await first.exited;
  const third = await startDaemon({ mountpoint: join(dir, 'mnt4'), args: ['--metrics', `unix:${socket}`] });
  t.teardown(async () => {
    await third.stop();
    cleanup(third.dir, third.mountpoint);
  });
  t.notOk(third.logs().some((l) => l.msg === 'cannot serve metrics; serving the files without them'));
  t.equal(run('curl', ['-sf', '--unix-socket', socket, 'http://localhost/metrics']).code, 0, 'served by the new daemon');
  await daemon.stop();
});
