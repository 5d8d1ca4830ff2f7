// --render-cache-ms over a real mount: a container's repeated reads within the window get the same
// content (served by the binding, counted as hits), later ones a new rendering; host processes, other
// containers, root-only files and other open modes never get cached content; SIGUSR2 and SIGUSR1 empty it.

import t from 'tap';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createContainer, type Teardown, liveCgroupsMissing } from './helpers/cgroups.js';
import { runInContainer } from './helpers/container.js';
import { cleanup, hangGuardMs, MAIN, refreshStatus, run, startDaemon } from './helpers/daemon.js';

const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`render-cache.test.ts: tests with containers skipped: ${noCgroups}\n`);

const MiB = 1024 * 1024;
/** In the QEMU guests of `npm run test:vm` (TCG, ~17x slower): smaller loads where a test's claim does not need the size. */
const VM = process.env.LXCFS_TS_VM !== undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** CLOCK_MONOTONIC in ms: the clock the binding's render cache expires entries by. */
const monotonicMs = () => Number(process.hrtime.bigint() / 1_000_000n);

function memoryBox(t: Teardown, name: string, limitMiB: number) {
  return createContainer(t, name, { memoryBytes: limitMiB * MiB });
}

/** The daemon's render-cache counters, via `lxcfs-ts status` after a SIGUSR1 refreshed them. */
async function cacheStats(d: Awaited<ReturnType<typeof startDaemon>>): Promise<{ hits: number; misses: number; entries: number }> {
  await refreshStatus(d);
  const out = run(process.execPath, [MAIN, 'status', '-p', d.pidfile]).stdout;
  const m = /render cache: \d+ ms, (\d+) entries, (\d+) hits, (\d+) misses/.exec(out);
  if (!m) throw new Error(`no render cache line in: ${out}`);
  return { entries: Number(m[1]), hits: Number(m[2]), misses: Number(m[3]) };
}

t.test('repeated reads within the window: one rendering, served again natively', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['--render-cache-ms', '3000'] });
  const box = memoryBox(t, 'cache', 192);
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  // uptime changes every 10 ms: equal texts from two reads at least 20 ms apart can only come from the
  // cache (the second read starts well inside the 3 s window however slow the machine: a machine that
  // takes 3 s between two cats fails this test loudly, it does not pass it); 3.1 s later (sleep is a lower
  // bound, so past the window whatever the load) it is rendered again.
  const r = await runInContainer(box.dirs, daemon.mountpoint, 'a=$(cat /proc/uptime); sleep 0.02; b=$(cat /proc/uptime); sleep 3.1; c=$(cat /proc/uptime); echo "$a|$b|$c"; free -b | grep Mem:');
  t.equal(r.code, 0, r.stderr);
  const [a, b, c] = r.stdout.split('\n')[0]!.split('|');
  t.match(a, /^\d+\.\d\d \d+\.\d\d$/);
  t.equal(b, a, 'a read 20 ms later: the cached text');
  t.not(c, a, 'a read after the window: rendered again');
  t.ok(Number(c!.split(' ')[0]) - Number(a!.split(' ')[0]) >= 3.1, `uptime moved on (${a} -> ${c})`);
  t.match(r.stdout, new RegExp(`^Mem:\\s+${192 * MiB}\\s`, 'm'), 'free: the container\'s own limit');
  const stats = await cacheStats(daemon);
  t.ok(stats.hits >= 1, `the binding counted a hit (${JSON.stringify(stats)})`);

  // Host processes are never cached: two reads 50 ms apart differ.
  const host = run('sh', ['-c', `cat ${join(daemon.mountpoint, 'proc/uptime')}; sleep 0.05; cat ${join(daemon.mountpoint, 'proc/uptime')}`]).stdout.split('\n');
  t.not(host[0], host[1], 'a host process always gets a fresh rendering');
});

t.test('two containers never see each other\'s cached content', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['--render-cache-ms', '2000'] });
  const small = memoryBox(t, 'cache-small', 128);
  const big = memoryBox(t, 'cache-big', 384);
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  // Interleaved, inside the 2 s window: each container reads twice.
  const script = 'for i in 1 2; do head -1 /proc/meminfo; sleep 0.1; done';
  const [s, b] = await Promise.all([runInContainer(small.dirs, daemon.mountpoint, script), runInContainer(big.dirs, daemon.mountpoint, script)]);
  t.same(s.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' ')), ['MemTotal: 131072 kB', 'MemTotal: 131072 kB']);
  t.same(b.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' ')), ['MemTotal: 393216 kB', 'MemTotal: 393216 kB']);
});

t.test('SIGUSR2 and SIGUSR1 empty the cache; root-only files and write opens bypass it', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['--render-cache-ms', '5000'] });
  const box = memoryBox(t, 'cache-flush', 160);
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  // One container (one pid namespace) throughout: it reads meminfo (cached for 5 s), the test toggles
  // passthrough, and it reads again well inside the window.
  const fifo = join(daemon.dir, 'go');
  run('mkfifo', [fifo]);
  const pending = runInContainer(
    box.dirs,
    daemon.mountpoint,
    `head -1 /proc/meminfo; echo ready > ${fifo}.ready; cat ${fifo} >/dev/null; head -1 /proc/meminfo; (echo x > /proc/meminfo) 2>&1 | grep -c 'Read-only'`,
  );
  // hang guards: the container says it read; the daemon logs the toggle
  const readyBy = monotonicMs() + hangGuardMs(5_000);
  while (!existsSync(`${fifo}.ready`) && monotonicMs() < readyBy) await sleep(25);
  daemon.child.kill('SIGUSR2');
  const toggledBy = monotonicMs() + hangGuardMs(2_000);
  while (!daemon.logs().some((l) => l.passthrough === true) && monotonicMs() < toggledBy) await sleep(20);
  run('sh', ['-c', `echo go > ${fifo}`]);
  const r = await pending;
  const lines = r.stdout.trim().split('\n');
  t.match(lines[0], /^MemTotal:\s+163840 kB$/, 'the container\'s limit, now cached');
  const hostTotal = /^MemTotal:\s+(\d+) kB$/m.exec(run('cat', ['/proc/meminfo']).stdout)![1];
  t.match(lines[1], new RegExp(`^MemTotal:\\s+${hostTotal} kB$`), 'after SIGUSR2 the host file at once, not the cached one');
  t.equal(lines[2], '1', 'a write open is refused (EROFS), never answered from the cache');

  // slabinfo is 0400: the binding never caches it (the permission check is per caller), whatever mode.
  daemon.child.kill('SIGUSR2'); // virtualization back on
  const before = await cacheStats(daemon);
  await runInContainer(box.dirs, daemon.mountpoint, 'cat /proc/slabinfo >/dev/null 2>&1; cat /proc/slabinfo > /dev/null 2>&1');
  const after = await cacheStats(daemon);
  t.equal(after.hits, before.hits, 'no hit for a root-only file');
  t.equal(after.entries, 0, 'the second SIGUSR2 emptied the cache, and nothing root-only was stored since');
});

t.test('--render-cache-ms is validated', async (t) => {
  for (const bad of ['-1', 'x', '1.5', '10001']) {
    const r = run(process.execPath, [MAIN, `--render-cache-ms=${bad}`, '/tmp/lxcfs-ts-never']);
    t.equal(r.code, 2, `exit 2 for ${bad}`);
    t.match(r.stderr, /render-cache-ms/);
  }
  t.match(run(process.execPath, [MAIN, '--help']).stdout, /--render-cache-ms MS/);
});

t.test('entries of namespaces that are gone are dropped: descriptors stay flat', { skip: noCgroups }, async (t) => {
  // The longest window (10 s). Which entries must still be held when they are counted is decided by the
  // clock the binding expires them by (CLOCK_MONOTONIC): an entry is stored after its container started, so
  // one that started less than a window before the count is still there, however slow the machine.
  const windowMs = 10_000;
  const daemon = await startDaemon({ args: ['--render-cache-ms', String(windowMs)] });
  const box = memoryBox(t, 'cache-churn', 128);
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  // The descriptors the cache holds: one per entry, on its container's pid namespace.
  const nsFds = () => {
    const dir = `/proc/${daemon.child.pid}/fd`;
    return readdirSync(dir).filter((fd) => {
      try {
        return readlinkSync(join(dir, fd)).startsWith('pid:[');
      } catch {
        return false;
      }
    }).length;
  };
  t.equal(nsFds(), 0, 'nothing cached yet');
  // Short-lived containers (each its own pid namespace), 2 files each: each cached entry holds its
  // namespace open. 25 on a host, 10 in the test VM (each container costs seconds under TCG).
  const containers = VM ? 10 : 25;
  const started: number[] = [];
  const failed: string[] = [];
  for (let i = 0; i < containers; i++) {
    started.push(monotonicMs());
    const r = await runInContainer(box.dirs, daemon.mountpoint, 'head -1 /proc/meminfo >/dev/null; head -1 /proc/uptime >/dev/null');
    if (r.code !== 0) failed.push(`container ${i}: exit ${r.code} ${r.stderr}`);
  }
  const held = nsFds();
  const countedAt = monotonicMs();
  t.same(failed, [], `${containers} containers read both files`);
  const fresh = started.filter((s) => s + windowMs > countedAt).length;
  t.ok(fresh > 0, `${fresh} of ${containers} containers started less than ${windowMs} ms before the count (the last ${countedAt - started[containers - 1]!} ms ago)`);
  t.ok(held >= 2 * fresh, `entries hold their namespaces while fresh (${held} namespace fds; ${fresh} containers within the window, 2 files each)`);
  // Nothing reads any more: the daemon's one sweep timer drops the expired entries by itself (the wait is
  // bounded by a hang guard; what decides is the count reaching 0).
  const deadline = monotonicMs() + windowMs + hangGuardMs(30_000);
  while (nsFds() > 0 && monotonicMs() < deadline) await sleep(50);
  t.equal(nsFds(), 0, 'expired entries released their namespaces with no further read');
  t.equal((await cacheStats(daemon)).entries, 0, 'the cache is empty');
});

t.test('under load: concurrent containers, flushes racing the hits, never another container\'s file', { skip: noCgroups }, async (t) => {
  // A window long enough that a loaded machine still gets hits between two flushes.
  const daemon = await startDaemon({ args: ['--render-cache-ms', '100'] });
  const limits = [96, 112, 144, 176];
  const boxes = limits.map((mib, i) => memoryBox(t, `cache-race-${i}`, mib));
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const hostTotal = /^MemTotal:\s+(\d+) kB$/m.exec(run('cat', ['/proc/meminfo']).stdout)![1];
  // Each container: 2 readers x 400 reads of MemTotal (x 100 in the test VM, where each read costs a
  // process start under TCG), printed as a histogram of what was seen.
  const reads = VM ? 100 : 400;
  const loop = `for i in $(seq ${reads}); do head -1 /proc/meminfo || echo FAILED; done`;
  const readers = boxes.map((b) => runInContainer(b.dirs, daemon.mountpoint, `(${loop}) & (${loop}); wait`, 120_000));
  // Meanwhile: passthrough on and off every 120 ms (each toggle empties the cache).
  let toggles = 0;
  let done = false;
  void Promise.all(readers).then(() => (done = true));
  while (!done) {
    daemon.child.kill('SIGUSR2');
    toggles++;
    await new Promise((r) => setTimeout(r, 120));
  }
  if (toggles % 2 === 1) daemon.child.kill('SIGUSR2');
  const results = await Promise.all(readers);
  const stats = await cacheStats(daemon);
  t.ok(toggles >= 2, `${toggles} toggles during the reads`);
  t.ok(stats.hits > 0, `the cache served some reads (${JSON.stringify(stats)})`);
  results.forEach((r, i) => {
    const seen = new Map<string, number>();
    for (const line of r.stdout.trim().split('\n')) {
      const kb = /^MemTotal:\s+(\d+) kB$/.exec(line)?.[1] ?? line;
      seen.set(kb, (seen.get(kb) ?? 0) + 1);
    }
    const own = String(limits[i]! * 1024);
    const other = [...seen.keys()].filter((k) => k !== own && k !== hostTotal);
    t.same(other, [], `container ${i} (${limits[i]} MiB) saw only its own MemTotal or the host's: ${JSON.stringify(Object.fromEntries(seen))}`);
    t.equal([...seen.values()].reduce((a, b) => a + b, 0), 2 * reads, `container ${i}: ${2 * reads} reads, none failed`);
    t.ok((seen.get(own) ?? 0) > 0, `container ${i} saw its own limit`);
  });
});
