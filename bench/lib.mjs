// Shared pieces of the benchmarks (bench/run.mjs, bench/profile.mjs, bench/fleet.mjs): the C readers,
// daemons on temporary mountpoints, container-like sets of scratch cgroups under our own, and readers run
// inside them in a fresh pid namespace. Everything started or created is registered for cleanup, which
// also runs on failure.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectLayout, parseMountinfo, parseProcCgroup } from 'node-cgroups-parser';

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
 * One container's cgroups for `npm run bench` and the profile: memory (limit 512 MiB), cpuset, cpu and
 * cpuacct wherever this host has them (v1, hybrid or pure v2: cgroupPlan), children of our own cgroup,
 * removed at cleanup. Returns their directories (a process joins by writing its pid into each one's
 * cgroup.procs: inContainer).
 */
export function containerCgroups(ws, tag = 'lxcfs-ts-bench') {
  const plan = prepareCgroupPlan(ws, cgroupPlan(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8')));
  return createContainerCgroups(ws, plan, `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`).dirs;
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

/** utime + stime + cutime + cstime: also the CPU of children it waited for (LXCFS forks into pid namespaces). */
export function cpuTicksWithChildren(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]); // fields 14-17 of proc(5)
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

// ---- fleet bench (bench/fleet.mjs): cgroups on v1, hybrid and v2 hosts, the fleet reader, fd counts ----

/** Compile bench/fleet-reader.c into the workspace. */
export function buildFleetReader(ws) {
  const out = join(ws.dir, 'fleet-reader');
  const cc = spawnSync('gcc', ['-O2', '-pthread', '-o', out, join(ROOT, 'bench/fleet-reader.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) throw new Error(`cannot compile bench/fleet-reader.c (gcc needed): ${cc.error?.message ?? cc.stderr}`);
  return out;
}

/** Open file descriptors of a process. */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Where a container's cgroups go, from mountinfo and /proc/self/cgroup text: one entry per hierarchy,
 * { version: 1|2, controllers, parent } with `parent` our own cgroup's directory in that hierarchy. A
 * controller goes to the v1 hierarchy it is bound to (v1, hybrid), else to cgroup2 (v2; cpuacct has no
 * v2 controller: every cgroup2 directory has cpu.stat). Throws when memory has nowhere to go.
 */
export function cgroupPlan(mountinfoText, procCgroupText, controllers = ['memory', 'cpu', 'cpuacct', 'cpuset']) {
  const layout = detectLayout(parseMountinfo(mountinfoText));
  const own = parseProcCgroup(procCgroupText);
  const dirOf = (hierarchy, path) => {
    if (path === undefined) return undefined;
    const rel = relative(hierarchy.root, path);
    if (rel.startsWith('..')) throw new Error(`our cgroup ${path} is outside the mounted ${hierarchy.mountPoint} (root ${hierarchy.root})`);
    return join(hierarchy.mountPoint, rel);
  };
  const groups = new Map(); // mountPoint -> entry
  for (const controller of controllers) {
    const v1 = layout.v1.get(controller);
    let hierarchy, path;
    if (v1) {
      hierarchy = v1;
      path = own.find((e) => e.hierarchyId !== 0 && e.controllers.includes(controller))?.path;
    } else if (layout.unified && controller !== 'cpuacct') {
      hierarchy = layout.unified;
      path = own.find((e) => e.hierarchyId === 0 && e.controllers.length === 0)?.path;
    } else continue;
    const parent = dirOf(hierarchy, path);
    if (parent === undefined) continue;
    const entry = groups.get(hierarchy.mountPoint) ?? { version: hierarchy.version, controllers: [], parent };
    entry.controllers.push(controller);
    groups.set(hierarchy.mountPoint, entry);
  }
  const plan = [...groups.values()];
  if (!plan.some((g) => g.controllers.includes('memory'))) throw new Error(`no memory cgroup hierarchy (${layout.kind} layout): the fleet bench needs the memory controller on cgroup v1 or v2`);
  return plan;
}

/**
 * Get the plan's hierarchies ready for children: on cgroup2, our cgroup must delegate the planned
 * controllers to its children (cgroup.subtree_control). Those it does not are enabled here and disabled
 * again at cleanup; controllers the kernel does not offer there are dropped (memory is required). The
 * kernel refuses to enable them while our cgroup holds processes itself (cgroup v2's no-internal-processes
 * rule) unless it is the root: that error says how to run instead. Returns the plan to use.
 */
export function prepareCgroupPlan(ws, plan, log = () => {}) {
  const out = [];
  for (const group of plan) {
    if (group.version === 1) {
      out.push(group);
      continue;
    }
    const words = (f) => readFileSync(join(group.parent, f), 'utf8').trim().split(/\s+/).filter(Boolean);
    const available = words('cgroup.controllers');
    const controllers = group.controllers.filter((c) => available.includes(c));
    const dropped = group.controllers.filter((c) => !controllers.includes(c));
    if (dropped.includes('memory')) throw new Error(`cgroup v2: ${group.parent} does not offer the memory controller (cgroup.controllers: ${available.join(' ') || 'none'})`);
    if (dropped.length) log(`cgroup v2: ${group.parent} does not offer ${dropped.join(', ')}; the containers go without`);
    const missing = controllers.filter((c) => !words('cgroup.subtree_control').includes(c));
    if (missing.length) {
      try {
        writeFileSync(join(group.parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      } catch (err) {
        throw new Error(
          `cgroup v2: cannot enable ${missing.join(' ')} in ${group.parent}/cgroup.subtree_control (${err.code ?? err.message}). ` +
            'The kernel refuses while that cgroup holds processes (the no-internal-processes rule): run the bench from a cgroup ' +
            'whose subtree_control already has them, e.g. as the only process of a leaf under a delegated cgroup',
          { cause: err },
        );
      }
      ws.onCleanup(() => writeFileSync(join(group.parent, 'cgroup.subtree_control'), missing.map((c) => `-${c}`).join(' ')));
    }
    out.push({ ...group, controllers });
  }
  return out;
}

/** SIGKILL every process in a cgroup directory we created (its readers; nothing else can be in it). */
function killCgroupProcs(dir) {
  let pids;
  try {
    pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/**
 * One container's cgroups, a new child `name` of our own cgroup in each hierarchy of a prepared plan:
 * memory limited to `memoryLimit` bytes, cpuset (v1) with our own CPUs and memory nodes. Removed at
 * cleanup, after killing whatever still runs in them. Returns { name, dirs, procs } (procs: the
 * cgroup.procs files a process writes its pid into to join).
 */
export function createContainerCgroups(ws, plan, name, memoryLimit = 512 * 1024 * 1024) {
  const dirs = [];
  for (const group of plan) {
    const dir = join(group.parent, name);
    mkdirSync(dir);
    ws.onCleanup(() => {
      killCgroupProcs(dir);
      removeCgroupDir(dir);
    });
    if (group.controllers.includes('memory')) writeFileSync(join(dir, group.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), String(memoryLimit));
    if (group.version === 1 && group.controllers.includes('cpuset')) {
      // a new v1 cpuset starts empty, and a process cannot join an empty one
      for (const f of ['cpuset.mems', 'cpuset.cpus']) writeFileSync(join(dir, f), readFileSync(join(group.parent, f), 'utf8').trim());
    }
    dirs.push(dir);
  }
  return { name, dirs, procs: dirs.map((d) => join(d, 'cgroup.procs')) };
}
