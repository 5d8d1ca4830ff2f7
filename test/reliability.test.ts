// The daemon stays up and flat whatever containers do: faults in renderers, hostile callers, races,
// many concurrent readers, container churn, and lifecycle faults. SOAK=long (npm run soak) runs the long
// versions: >= 100k soak reads and 1000 churn cycles; npm test runs short ones.

import t from 'tap';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../src/context/containers.js';
import { sourcesFor } from '../src/context/sources.js';
import { files } from '../src/renderers/index.js';
import { createContainer, type ScratchContainer, type Teardown, liveCgroupsMissing } from './helpers/cgroups.js';
import { runInContainer } from './helpers/container.js';
import { cleanup, hangGuardMs, MAIN, mountsAt, refreshStatus, ROOT, run, scratchDir, startDaemon, type Daemon } from './helpers/daemon.js';
const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`reliability.test.ts: tests with containers skipped: ${noCgroups}\n`);

const LONG = process.env.SOAK === 'long';
/** In the QEMU guests of `npm run test:vm` (TCG, ~17x slower): shorter runs where a test's claim does not need the length. */
const VM = process.env.LXCFS_TS_VM !== undefined;
const MiB = 1024 * 1024;
const ALL = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'swaps', 'loadavg', 'diskstats', 'pressure/cpu', 'pressure/io', 'pressure/memory'];

function memoryContainer(t: Teardown, name: string, limitMiB: number): ScratchContainer {
  return createContainer(t, name, { memoryBytes: limitMiB * MiB });
}

/** What each of the daemon's fds points at (readlink of /proc/PID/fd/N), and its resident memory. */
function daemonFacts(d: Daemon): { fds: number; targets: string[]; rssKiB: number } {
  const pid = d.child.pid!;
  const targets = readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '(closed while listed)';
    }
  });
  return { fds: targets.length, targets, rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) };
}

/**
 * daemonFacts once the fd count is back to `before`'s, or the hang guard has passed. The SIGUSR1 that
 * drops gone containers also ends the loadavg worker thread (its own epoll, eventfd and pipes), and a
 * thread ends asynchronously; a leaked fd never comes back, so the checks that follow still see it.
 */
async function settledFacts(d: Daemon, before: { fds: number }): Promise<ReturnType<typeof daemonFacts>> {
  const deadline = Date.now() + hangGuardMs(5_000);
  let facts = daemonFacts(d);
  while (facts.fds > before.fds && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    facts = daemonFacts(d);
  }
  return facts;
}

/**
 * The daemon's fds that still point into gone containers: a file under one of their cgroup directories, or
 * one of their pid namespaces ("pid:[INODE]" as the containers printed it). Should be none.
 */
function fdsOfGone(facts: { targets: string[] }, cgroupDirs: string[], pidNamespaces: string[]): string[] {
  return facts.targets.filter((target) => cgroupDirs.some((dir) => target.startsWith(`${dir}/`)) || pidNamespaces.includes(target));
}

/** Targets in `after` that `before` did not have (a multiset difference), for the comment when counts differ. */
function newTargets(before: { targets: string[] }, after: { targets: string[] }): string[] {
  const left = [...before.targets];
  return after.targets.filter((target) => {
    const i = left.indexOf(target);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

/** Teardowns that run at end() (or at the test's end if never called): a container per loop iteration. */
function scopedTeardown(t: Teardown): Teardown & { end: () => void } {
  let pending: (() => void | Promise<void>)[] = [];
  const end = () => {
    const now = pending;
    pending = [];
    for (const fn of now) void fn();
  };
  t.teardown(end);
  return { teardown: (fn) => pending.push(fn), end };
}

/** The daemon's per-container state counts, after a SIGUSR1 made it drop what belongs to gone cgroups. */
async function caches(d: Daemon): Promise<{ pidNamespaces: number; containerStates: number; loadavgContainers: number }> {
  const { pidNamespaces, containerStates, loadavgContainers } = (await refreshStatus(d)).caches as Record<string, number>;
  return { pidNamespaces: pidNamespaces!, containerStates: containerStates!, loadavgContainers: loadavgContainers! };
}

t.test('a throwing or garbage renderer costs its own file only, and is logged once', { skip: noCgroups }, async (t) => {
  const dir = scratchDir();
  const bundle = join(dir, 'renderers.cjs');
  // cpuinfo throws for containers (the daemon's own smoke render still passes), stat returns garbage.
  writeFileSync(
    bundle,
    `${readFileSync(join(ROOT, 'dist/renderers.cjs'), 'utf8')}
;(() => {
  const cpuinfo = module.exports.files.find((f) => f.path === 'proc/cpuinfo');
  const collect = cpuinfo.collect;
  cpuinfo.collect = (sources, options) => { if (!sources.container.host) throw new Error('cpuinfo exploded'); return collect(sources, options); };
  const stat = module.exports.files.find((f) => f.path === 'proc/stat');
  const render = stat.render;
  stat.render = (snapshot, options) => (snapshot.usage || snapshot.spread ? { not: 'text' } : render(snapshot, options));
})();`,
  );
  const daemon = await startDaemon({ dir, env: { LXCFS_TS_RENDERERS: bundle } });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(dir, daemon.mountpoint);
  });
  const box = memoryContainer(t, 'faulty', 200);
  const r = await runInContainer(box.dirs, daemon.mountpoint, 'for i in $(seq 25); do cat /proc/cpuinfo >/dev/null 2>&1 || echo cpuinfo-failed; cat /proc/stat >/dev/null 2>&1 || echo stat-failed; done; head -1 /proc/meminfo; cat /proc/uptime');
  t.equal(r.stdout.split('\n').filter((l) => l === 'cpuinfo-failed').length, 25, 'cpuinfo fails (EIO) every time');
  t.equal(r.stdout.split('\n').filter((l) => l === 'stat-failed').length, 25, 'garbage from stat is an error too');
  t.match(r.stdout, /^MemTotal:\s+204800 kB$/m, 'other files are still served');
  t.match(r.stdout, /^\d+\.\d\d \d+\.\d\d$/m);
  const errors = daemon.logs().filter((l) => (l.level as number) >= 50);
  t.equal(errors.filter((l) => /cpuinfo exploded/.test(String(l.msg)) && l.repeats === undefined).length, 1, 'cpuinfo logged once');
  t.equal(errors.filter((l) => /returned object/.test(String(l.msg)) && l.repeats === undefined).length, 1, 'stat logged once');
  t.ok(errors.length <= 6, `no log flood (${errors.length} error lines for 50 failures)`);
  t.match(run('cat', [join(daemon.mountpoint, 'proc/cpuinfo')]).stdout, /^processor/, 'host callers unaffected');
});

t.test('permissions: everyone reads, nobody writes; nothing outside the documented tree', async (t) => {
  const daemon = await startDaemon();
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const m = daemon.mountpoint;
  const asNobody = (cmd: string[]) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd]);
  for (const f of ALL) {
    const r = asNobody(['cat', join(m, 'proc', f)]);
    t.equal(r.code, 0, `non-root reads proc/${f}: ${r.stderr}`);
    t.ok(r.stdout.length > 0 || f === 'diskstats', `proc/${f} has content`);
  }
  t.equal(asNobody(['cat', join(m, 'sys/devices/system/cpu/online')]).code, 0, 'non-root reads sys/devices/system/cpu/online');
  const slab = asNobody(['cat', join(m, 'proc/slabinfo')]);
  t.match(slab.stderr, /Permission denied/, 'slabinfo stays root-only (0400), as the kernel\'s');
  t.equal(run('cat', [join(m, 'proc/slabinfo')]).code, 0, 'root reads slabinfo');

  const meminfo = join(m, 'proc/meminfo');
  const py = (code: string) => run('python3', ['-c', `import os,sys\ntry:\n  ${code}\n  print("allowed")\nexcept OSError as e:\n  print(e.errno)`, meminfo, m]);
  const EROFS = '30';
  const attempts: Record<string, string> = {
    write: 'open(sys.argv[1], "w")',
    append: 'open(sys.argv[1], "a")',
    truncate: 'os.truncate(sys.argv[1], 0)',
    create: 'open(sys.argv[2] + "/proc/new", "w")',
    mknod: 'os.mknod(sys.argv[2] + "/proc/node")',
    mkdir: 'os.mkdir(sys.argv[2] + "/proc/dir")',
    unlink: 'os.unlink(sys.argv[1])',
    rmdir: 'os.rmdir(sys.argv[2] + "/proc/pressure")',
    rename: 'os.rename(sys.argv[1], sys.argv[2] + "/proc/m2")',
    chmod: 'os.chmod(sys.argv[1], 0o666)',
    chown: 'os.chown(sys.argv[1], 1, 1)',
    setxattr: 'os.setxattr(sys.argv[1], "user.x", b"1")',
    symlink: 'os.symlink("/etc/passwd", sys.argv[2] + "/proc/link")',
    link: 'os.link(sys.argv[1], sys.argv[2] + "/proc/hard")',
    utime: 'os.utime(sys.argv[1], (1, 1))',
  };
  for (const [op, code] of Object.entries(attempts)) {
    t.equal(py(code).stdout.trim(), EROFS, `${op} refused with EROFS`);
  }
  // The tree: only documented paths (the cpu directory mirrors the host).
  const listing = run('find', [m, '-maxdepth', '3', '-not', '-path', `${m}/sys/devices/*`]).stdout.trim().split('\n').map((p) => p.slice(m.length) || '/').sort();
  t.same(listing, ['/', '/proc', ...ALL.map((f) => `/proc/${f}`), '/proc/pressure', '/proc/slabinfo', '/sys', '/sys/devices'].sort(), 'documented tree');
  t.same(readdirSync(join(m, 'sys/devices/system/cpu')).sort(), readdirSync('/sys/devices/system/cpu').sort(), 'cpu directory lists the host entries once each');
  t.equal(run('cat', [join(m, 'proc/self/status')]).code !== 0, true, 'no proc/self or pid paths: the caller alone decides what is rendered');
});

t.test('races: an fd outliving its opener, a vanished cgroup, a limit change between reads', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon();
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const box = memoryContainer(t, 'race', 256);
  // The opener exits; its child reads the inherited fd afterwards: the snapshot made at open.
  const r = await runInContainer(
    box.dirs,
    daemon.mountpoint,
    // The child reads only once its parent (the opener) has exited (it polls getppid()), and the shell
    // waits for the child's result: event order, no timing.
    `python3 -c 'import os,time
fd=os.open("/proc/meminfo",os.O_RDONLY)
parent=os.getpid()
if os.fork()==0:
  while os.getppid()==parent: time.sleep(0.01)
  data=b""
  while True:
    b=os.read(fd,100)
    if not b: break
    data+=b
  open("${join(daemon.dir, 'opener-gone')}","w").write(data.decode().splitlines()[0]+"\\n")
  os._exit(0)
os._exit(0)'; while [ ! -s ${join(daemon.dir, 'opener-gone')} ]; do sleep 0.05; done; cat ${join(daemon.dir, 'opener-gone')}`,
  );
  t.match(r.stdout, /^MemTotal:\s+262144 kB$/m, 'read after the opener exited');

  // Limit changes between two reads: the second read sees the new limit.
  const first = await runInContainer(box.dirs, daemon.mountpoint, 'head -1 /proc/meminfo');
  box.setMemoryLimit(128 * MiB);
  const second = await runInContainer(box.dirs, daemon.mountpoint, 'head -1 /proc/meminfo');
  t.match(first.stdout, /262144 kB/);
  t.match(second.stdout, /131072 kB/, 'the new limit, no stale cache');

  // A cgroup removed under a render (fixture copy): files vanish, renderers fall back, nothing throws.
  const tree = join(scratchDir(), 'hybrid');
  cpSync(join(ROOT, 'test/fixtures/hybrid'), tree, { recursive: true, verbatimSymlinks: true });
  const reader = new CgroupReader({ procRoot: join(tree, 'proc'), fsRoot: tree });
  const resolved = new ContainerResolver(reader, 100).resolve(202);
  t.ok(resolved.ok, 'resolved before removal');
  if (!resolved.ok) return;
  rmSync(join(tree, 'sys/fs/cgroup'), { recursive: true, force: true });
  for (const file of files) {
    t.doesNotThrow(() => {
      const options = { swap: true, cfs: true };
      const text = file.render(file.collect(sourcesFor(reader, resolved.container), options), options);
      if (typeof text !== 'string') throw new Error('not text');
    }, `${file.path} with its cgroups gone`);
  }
  rmSync(join(tree, '..'), { recursive: true, force: true });
  t.equal(daemon.child.exitCode, null, 'daemon still up');
});

t.test('soak: concurrent readers in 4 containers each see only their own numbers', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['-l'] });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const limits = [128, 192, 256, 320];
  const scoped = scopedTeardown(t);
  const boxes = limits.map((l, i) => memoryContainer(scoped, `soak${i}`, l));
  // 2 readers per container, 8 in all; each cycle reads every file; totals: short 8 x 60 x 10 (8 x 20 x 10
  // in the test VM), long 8 x 1300 x 10.
  const cycles = LONG ? 1300 : VM ? 20 : 60;
  const reader = () => `python3 -c '
import sys
files=${JSON.stringify(ALL.map((f) => `/proc/${f}`))}
bad=0; reads=0
for i in range(${cycles}):
  for f in files:
    try:
      data=open(f,"rb").read(); reads+=1
      if f=="/proc/meminfo" and not data.startswith(b"MemTotal:") : bad+=1
      if f=="/proc/meminfo" and int(data.split()[1])!=${'${LIMIT}'}: bad+=1
      if f!="/proc/diskstats" and len(data)==0: bad+=1
    except OSError as e:
      bad+=1
print("reads",reads,"bad",bad)' & python_pid=$!`;
  // Baseline after a host process read every file once (the host files the renderers serve stay open
  // for the daemon's life, pinned, so they are in both counts) and a SIGUSR1, as after the containers.
  for (const f of ALL) run('cat', [join(daemon.mountpoint, 'proc', f)]);
  await caches(daemon);
  const before = daemonFacts(daemon);
  const runs = boxes.flatMap((b, i) =>
    [0, 1].map(() => runInContainer(b.dirs, daemon.mountpoint, `echo "ns $(readlink /proc/self/ns/pid)"; ${reader().replace('${LIMIT}', String(limits[i]! * 1024))}; wait`, 600_000)),
  );
  const results = await Promise.all(runs);
  const namespaces = results.map((r) => /^ns (\S+)$/m.exec(r.stdout)?.[1] ?? 'unknown');
  const cgroupDirs = boxes.flatMap((b) => b.dirs);
  let reads = 0;
  let bad = 0;
  for (const r of results) {
    const m = /reads (\d+) bad (\d+)/.exec(r.stdout);
    t.ok(m, `reader reported: ${r.stdout} ${r.stderr}`);
    if (m) {
      reads += Number(m[1]);
      bad += Number(m[2]);
    }
  }
  const during = daemonFacts(daemon);
  // The containers' cgroup files are kept open while they live; once their cgroups are gone, a SIGUSR1
  // (or a failed read, or 10 s without one) closes them.
  scoped.end();
  await caches(daemon);
  const after = await settledFacts(daemon, before);
  t.equal(reads, 8 * cycles * ALL.length, `${reads} reads`);
  t.equal(bad, 0, '0 errors, every meminfo from the reader\'s own container');
  t.comment(`soak: ${reads} reads; daemon fds ${before.fds} -> ${during.fds} while the containers lived -> ${after.fds}, RSS ${before.rssKiB} -> ${after.rssKiB} KiB`);
  t.ok(during.fds - before.fds <= 4 * 40, `fds kept for 4 live containers are bounded (${during.fds - before.fds})`);
  // Decided by what the fds point at: the count alone moves with fds the daemon holds for a moment.
  t.ok(fdsOfGone(during, cgroupDirs, namespaces).length > 0, `while the cgroups existed, ${fdsOfGone(during, cgroupDirs, namespaces).length} fds pointed into them (what the next check looks for)`);
  t.same(fdsOfGone(after, cgroupDirs, namespaces), [], 'no fd into a gone container\'s cgroups or pid namespace');
  t.ok(after.fds <= before.fds, `no fd leaked once the containers are gone (${before.fds} -> ${after.fds}; not in the baseline: ${JSON.stringify(newTargets(before, after))})`);
  if (after.fds < before.fds) t.comment(`only in the baseline: ${JSON.stringify(newTargets(after, before))}`);
  t.equal(daemon.child.exitCode, null);
});

t.test('churn: containers come and go, the daemon stays flat', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['-l'] });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const cycles = LONG ? 1000 : VM ? 10 : 25;
  // Each cycle's container is removed at the end of the cycle (and by the test's teardown if it throws).
  const scoped = scopedTeardown(t);
  // Baseline: a host process read every file (the host files stay pinned open; a host caller's own
  // per-cgroup state is kept as long as its cgroup, the root, exists).
  for (const f of ALL) run('cat', [join(daemon.mountpoint, 'proc', f)]);
  const cachesBaseline = await caches(daemon);
  const baseline = daemonFacts(daemon);
  const warm = createContainer(scoped, 'churn-warm', { memoryBytes: 100 * MiB });
  await runInContainer(warm.dirs, daemon.mountpoint, `for f in ${ALL.join(' ')}; do cat /proc/$f >/dev/null; done`);
  scoped.end();
  const cachesBefore = await caches(daemon);
  const before = await settledFacts(daemon, baseline); // the warm container's loadavg worker has ended
  t.ok(before.fds <= baseline.fds, `the warm-up container left no fd behind (${baseline.fds} -> ${before.fds}; ${JSON.stringify(newTargets(baseline, before))})`);
  let failures = 0;
  const cgroupDirs: string[] = [];
  const namespaces: string[] = [];
  for (let i = 0; i < cycles; i++) {
    const box = createContainer(scoped, `churn${i % 10}`, { memoryBytes: (64 + (i % 7) * 16) * MiB });
    cgroupDirs.push(...box.dirs);
    const r = await runInContainer(box.dirs, daemon.mountpoint, `echo "ns $(readlink /proc/self/ns/pid)"; for f in ${ALL.join(' ')}; do cat /proc/$f >/dev/null || echo FAIL; done; head -1 /proc/meminfo`);
    namespaces.push(/^ns (\S+)$/m.exec(r.stdout)?.[1] ?? 'unknown');
    if (r.code !== 0 || r.stdout.includes('FAIL') || !r.stdout.includes(` ${(64 + (i % 7) * 16) * 1024} kB`)) failures++;
    scoped.end();
  }
  const cachesAfter = await caches(daemon); // SIGUSR1: what belonged to gone cgroups is dropped
  const after = await settledFacts(daemon, before);
  t.equal(failures, 0, `${cycles} create -> read every file -> destroy cycles`);
  t.comment(`churn x${cycles}: fds ${before.fds} -> ${after.fds}, RSS ${before.rssKiB} -> ${after.rssKiB} KiB, caches ${JSON.stringify(cachesBefore)} -> ${JSON.stringify(cachesAfter)}`);
  // Decided by what the fds point at, and a count that may only have gone down (the baseline may hold fds
  // the daemon had open for a moment; a leak of one per container would show as a rise).
  t.same(fdsOfGone(after, cgroupDirs, namespaces), [], 'no fd into a gone container\'s cgroups or pid namespace');
  t.ok(after.fds <= before.fds, `fd count flat (${before.fds} -> ${after.fds}; not in the baseline: ${JSON.stringify(newTargets(before, after))})`);
  if (after.fds < before.fds) t.comment(`only in the baseline: ${JSON.stringify(newTargets(after, before))}`);
  t.same(cachesBefore, cachesBaseline, 'the warm-up container left nothing behind');
  t.same(cachesAfter, cachesBefore, 'nor did the churned ones: no state of a gone container is kept');
  t.ok(after.rssKiB < before.rssKiB * 1.5 + 16384, `RSS stays bounded (${before.rssKiB} -> ${after.rssKiB} KiB)`);
});

t.test('a stop signal the moment the mount appears: the daemon still unmounts and exits 0', async (t) => {
  // The daemon mounts, then logs "serving" and tells systemd READY=1: a SIGTERM or SIGINT in between must
  // not take the default action (death with the mount left behind). Sent as soon as the mount shows in
  // mountinfo, polled without sleeping, so it lands before or after the handlers' old place; either way
  // the outcome must be the same.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGTERM', 'SIGINT', 'SIGTERM', 'SIGINT', 'SIGTERM', 'SIGINT'] as const) {
    const dir = scratchDir();
    const mountpoint = join(dir, 'mnt');
    t.teardown(() => cleanup(dir, mountpoint));
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [MAIN, '-p', join(dir, 'lxcfs-ts.pid'), mountpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + hangGuardMs(10_000); // hang guard only
    while (mountsAt(mountpoint).length === 0 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    t.equal(mountsAt(mountpoint).length, 1, `${signal}: the mount appeared`);
    child.kill(signal);
    t.equal(await exited, 0, `${signal} right after the mount: exit 0`);
    t.match(out, /"msg":"unmounting"/, `${signal}: the daemon handled it (its log: ${out.split('\n').slice(-3).join(' ').slice(0, 300)})`);
    t.same(mountsAt(mountpoint), [], `${signal} right after the mount: no mount left`);
  }
});

t.test('lifecycle faults: SIGINT, an unwritable pid file directory, a full disk', async (t) => {
  const d = await startDaemon();
  d.child.kill('SIGINT');
  t.equal((await d.exited).code, 0, 'SIGINT: exit 0');
  t.same(mountsAt(d.mountpoint), [], 'SIGINT leaves no mount');
  cleanup(d.dir, d.mountpoint);

  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const bad = run(process.execPath, [MAIN, '-p', '/proc/lxcfs-ts/x.pid', join(dir, 'mnt')]);
  t.equal(bad.code, 1, 'unwritable pid file directory: exit 1');
  t.match(bad.stderr, /^lxcfs-ts: cannot create the directory of pid file \/proc\/lxcfs-ts\/x\.pid: /m);

  // A full filesystem for the pid file (a 4 KiB tmpfs, filled), in a private mount namespace.
  mkdirSync(join(dir, 'full'));
  const full = run('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=4k tmpfs "$0" && dd if=/dev/zero of="$0/fill" bs=4k count=4 2>/dev/null; exec "$1" "$2" -p "$0/lxcfs-ts.pid" "$3"`, join(dir, 'full'), process.execPath, MAIN, join(dir, 'mnt2')]);
  t.equal(full.code, 1, 'full disk: exit 1');
  t.match(full.stderr, /^lxcfs-ts: cannot write pid file .*ENOSPC/m);
  t.notOk(existsSync(join(dir, 'mnt2', 'proc')), 'nothing mounted');
});
