// Shared pieces of the benchmarks (bench/run.mjs, bench/profile.mjs): the C reader, daemons on temporary
// mountpoints, a container-like set of scratch cgroups under our own, and readers run inside it in a fresh
// pid namespace. Everything started or created is registered for cleanup, which also runs on failure.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HZ = 100; // USER_HZ: clock ticks in /proc/<pid>/stat
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A scratch area: temp dir, and a LIFO of cleanups that runs once (normal end, exception or signal). */
export function workspace(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const cleanups = [];
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    while (cleanups.length) {
      try {
        cleanups.pop()();
      } catch (err) {
        process.stderr.write(`cleanup: ${err?.message ?? err}\n`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
  return { dir, onCleanup: (fn) => cleanups.push(fn), cleanup };
}

/** Compile bench/reader.c into the workspace. */
export function buildReader(ws) {
  const out = join(ws.dir, 'reader');
  const cc = spawnSync('gcc', ['-O2', '-o', out, join(ROOT, 'bench/reader.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) throw new Error(`cannot compile bench/reader.c (gcc needed): ${cc.error?.message ?? cc.stderr}`);
  return out;
}

function mounted(path) {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

/** Running (a zombie, not yet reaped while the event loop is blocked, counts as gone). */
function alive(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s[s.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Start a FUSE daemon (argv) serving `mountpoint`; ready once `mountpoint/<probe>` exists (its stdout goes
 * to `stdout`: 'ignore' or a file descriptor). Returns
 * { name, pid, mountpoint, stop() }; stop() sends SIGTERM, waits for the exit, and detaches a mount left
 * behind. The same happens synchronously from the workspace cleanup if stop() was never reached.
 */
export async function startDaemon(ws, name, argv, mountpoint, probe = 'proc/meminfo', stdout = 'ignore') {
  mkdirSync(mountpoint, { recursive: true });
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let stopped = false;
  const finish = () => {
    for (let i = 0; i < 8 && mounted(mountpoint); i++) spawnSync('umount', ['-l', mountpoint]);
  };
  ws.onCleanup(() => {
    if (stopped) return;
    if (alive(child.pid)) child.kill('SIGTERM');
    // synchronous wait (we may be inside process.on('exit')): up to 5 s, then SIGKILL
    for (let i = 0; i < 50 && alive(child.pid) && child.exitCode === null; i++) spawnSync('sleep', ['0.1']);
    if (child.exitCode === null && alive(child.pid)) child.kill('SIGKILL');
    finish();
  });
  const deadline = Date.now() + 30_000;
  while (!existsSync(join(mountpoint, probe))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited before serving: ${err}`);
    if (Date.now() > deadline) throw new Error(`${name} did not serve ${mountpoint} within 30 s: ${err}`);
    await sleep(50);
  }
  return {
    name,
    pid: child.pid,
    mountpoint,
    stderr: () => err,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      finish();
    },
  };
}

/** The lxcfs-ts daemon built in dist/ (npm run build). */
export function lxcfsTsArgv(ws, mountpoint, extra = []) {
  const main = join(ROOT, 'dist/src/daemon/main.js');
  if (!existsSync(main)) throw new Error('dist/ is missing: run npm run build first');
  // run as installed: the executable, so its shebang's node flags apply
  return [main, ...extra, '-p', join(ws.dir, 'lxcfs-ts.pid'), mountpoint];
}

/** Our own cgroup path in a v1 controller's hierarchy (undefined when that controller is not mounted). */
export function ownCgroup(controller) {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes(controller)) return path;
  }
  return undefined;
}

function removeCgroupDir(dir) {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      spawnSync('sleep', ['0.05']); // EBUSY while the last reader is still exiting
    }
  }
}

/**
 * A container's cgroups: memory (limit 512 MiB), cpuset (our own CPUs and mems), cpu and cpuacct, each a
 * new child of our own cgroup in that hierarchy (v1; hybrid hosts). Returns the directories to join.
 */
export function containerCgroups(ws, tag = 'lxcfs-ts-bench') {
  const name = `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const dirs = [];
  for (const controller of ['memory', 'cpuset', 'cpu', 'cpuacct']) {
    const own = ownCgroup(controller);
    const root = join('/sys/fs/cgroup', controller);
    if (own === undefined || !existsSync(join(root, own))) continue;
    const parent = join(root, own);
    const dir = join(parent, name);
    mkdirSync(dir);
    ws.onCleanup(() => removeCgroupDir(dir));
    if (controller === 'memory') writeFileSync(join(dir, 'memory.limit_in_bytes'), String(512 * 1024 * 1024));
    if (controller === 'cpuset') {
      const inherit = (f) => readFileSync(join(parent, f), 'utf8').trim() || readFileSync(join(root, f), 'utf8').trim();
      writeFileSync(join(dir, 'cpuset.mems'), inherit('cpuset.mems'));
      writeFileSync(join(dir, 'cpuset.cpus'), inherit('cpuset.cpus'));
    }
    dirs.push(dir);
  }
  if (!dirs.some((d) => d.includes('/memory/'))) throw new Error('no cgroup v1 memory hierarchy: the bench needs a hybrid or v1 host');
  return dirs;
}

/**
 * Run argv in the container: a shell joins every cgroup, then becomes `unshare --pid --fork --mount-proc`
 * (new pid and mount namespace; argv runs as the namespace's init). Resolves { code, out, err }.
 */
export function inContainer(cgroupDirs, argv, env = {}) {
  return new Promise((resolve) => {
    const script = 'for d in $CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 3; done; exec unshare --pid --fork --mount-proc "$@"';
    const child = spawn('sh', ['-c', script, 'bench', ...argv], { env: { ...process.env, ...env, CGROUPS: cgroupDirs.join(' ') } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

export function rssKiB(pid) {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

/**
 * Reads per second of concurrent `reader throughput` runs: all reads over the span from the first
 * reader's start to the last one's end, both stamped by the readers (process start-up not counted).
 * undefined unless every reader printed its stamps.
 */
export function readsPerSecond(outputs, readsEach) {
  const stamps = outputs.map((o) => /start_ns (\d+) end_ns (\d+)/.exec(o)).filter(Boolean);
  if (stamps.length !== outputs.length) return undefined;
  const start = Math.min(...stamps.map((m) => Number(m[1])));
  const end = Math.max(...stamps.map((m) => Number(m[2])));
  return Math.round((outputs.length * readsEach) / ((end - start) / 1e9));
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1))];
}
