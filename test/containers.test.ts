// Caller -> container resolution on a simulated process table: the ancestor walk, the /proc scan for
// processes that setns()'d in, pid recycling, cache pruning, init.scope pruning.

import t from 'tap';
import type { CgroupReader, PidCgroups, ProcStat, ProcStatus } from 'node-cgroups-parser';
import { ContainerResolver, FORGET_EVERY_MS, pruneInitScope } from '../src/context/containers.js';
import { MS_PER_TICK } from '../src/kernel.js';

interface Proc {
  ns: number;
  nspid: number[];
  ppid: number;
  tgid?: number;
  start: number;
  cgroup: string;
}

const HOST_NS = 4026531836;
const CT_NS = 4026532500;

class FakeProcs {
  procs = new Map<number, Proc>();
  reads = 0;
  leaderStatReads = 0;
  reader(): CgroupReader {
    const get = (pid: number) => {
      this.reads++;
      return this.procs.get(pid);
    };
    const procStatText = (path: string): string | undefined => {
      // Only the leader thread's stat: /proc/<pid>/stat sums every thread of the process on each read.
      const m = /^\/proc\/(\d+)\/task\/(\d+)\/stat$/.exec(path);
      if (m) this.leaderStatReads++;
      const p = m && m[1] === m[2] ? get(Number(m[1])) : undefined;
      return p && `${m![1]} (x) S ${p.ppid} ${'0 '.repeat(17)}${p.start} 0\n`;
    };
    const fake = {
      procRoot: '/proc',
      pidNamespaceOf: (pid: number) => get(pid)?.ns,
      readProcStatus: (pid: number): ProcStatus | undefined => {
        const p = get(pid);
        return p && { tgid: p.tgid ?? pid, pid, ppid: p.ppid, nspid: p.nspid };
      },
      readProcStat: (pid: number): ProcStat | undefined => {
        const p = get(pid);
        return p && { pid, comm: 'x', state: 'S', ppid: p.ppid, startTime: p.start, utime: 0, stime: 0, cutime: 0, cstime: 0 };
      },
      cgroupsOf: (pid: number): PidCgroups | undefined => {
        const p = get(pid);
        return p && { v1: new Map([['memory', p.cgroup]]), unified: p.cgroup };
      },
      listPids: () => [...this.procs.keys()].sort((a, b) => a - b),
      // /proc/<pid>/task/<pid>/stat as text: the resolver keeps it for renderers (fields 4..22: ppid ... starttime)
      readFile: (path: string): string | undefined => procStatText(path),
      readKept: (path: string): string | undefined => procStatText(path),
    };
    return fake as unknown as CgroupReader;
  }
}

function table(): FakeProcs {
  const f = new FakeProcs();
  f.procs.set(1, { ns: HOST_NS, nspid: [1], ppid: 0, start: 1, cgroup: '/init.scope' });
  f.procs.set(100, { ns: HOST_NS, nspid: [100], ppid: 1, start: 50, cgroup: '/daemon' }); // the daemon
  f.procs.set(200, { ns: HOST_NS, nspid: [200], ppid: 1, start: 60, cgroup: '/lxc/c1' }); // unshare/lxc-start
  f.procs.set(201, { ns: CT_NS, nspid: [201, 1], ppid: 200, start: 61, cgroup: '/lxc/c1/init.scope' }); // container init
  f.procs.set(202, { ns: CT_NS, nspid: [202, 5], ppid: 201, start: 70, cgroup: '/lxc/c1/app' });
  f.procs.set(203, { ns: CT_NS, nspid: [203, 6], ppid: 202, start: 71, cgroup: '/lxc/c1/app', tgid: 203 });
  f.procs.set(204, { ns: CT_NS, nspid: [204, 7], ppid: 202, start: 71, cgroup: '/lxc/c1/app', tgid: 203 }); // a thread of 203
  f.procs.set(300, { ns: CT_NS, nspid: [300, 9], ppid: 1, start: 80, cgroup: '/lxc/c1' }); // setns'd in (lxc-attach)
  return f;
}

/** The resolver's bookkeeping after a miss runs once the current open is answered (setImmediate). */
const afterReply = () => new Promise((resolve) => setImmediate(resolve));

t.test('a container process resolves to its pid namespace init, init.scope pruned', async (t) => {
  const f = table();
  const r = new ContainerResolver(f.reader(), 100);
  for (const caller of [201, 202, 203, 204]) {
    const res = r.resolve(caller);
    t.ok(res.ok, `caller ${caller}`);
    if (!res.ok) continue;
    t.equal(res.container.initPid, 201);
    t.equal(res.container.host, false);
    t.equal(res.container.cgroups.v1.get('memory'), '/lxc/c1', 'the container cgroup, not the caller\'s /lxc/c1/app');
  }
  t.equal(r.cachedNamespaces, 0, 'a miss records the init only once the open is answered');
  await afterReply();
  t.equal(r.cachedNamespaces, 1);
});

t.test('a process that joined with setns (no ancestor inside) is found by scanning /proc', async (t) => {
  const f = table();
  const res = new ContainerResolver(f.reader(), 100).resolve(300);
  t.ok(res.ok && res.container.initPid === 201);
});

t.test('host callers use their own cgroup', async (t) => {
  const f = table();
  const res = new ContainerResolver(f.reader(), 100).resolve(200);
  t.ok(res.ok && res.container.host && res.container.initPid === 200 && res.container.cgroups.v1.get('memory') === '/lxc/c1');
  const init = new ContainerResolver(f.reader(), 100).resolve(1);
  t.ok(init.ok && init.container.cgroups.v1.get('memory') === '/', 'host init: /init.scope pruned to /');
});

t.test('the cache is used, and a recycled init pid is never trusted', async (t) => {
  const f = table();
  let clock = 0;
  const r = new ContainerResolver(f.reader(), 100, { now: () => clock });
  t.ok(r.resolve(203).ok);
  await afterReply();
  f.reads = 0;
  const hit = r.resolve(203);
  // the caller's namespace, the init's stat (start time), the init's cgroup: nothing else
  t.equal(f.reads, 3, 'a cache hit reads three files');
  t.match(hit.ok && hit.container.initStat, /^201 \(x\) S 200 (0 ){17}61 /, 'the init stat read to revalidate is handed on');
  clock += MS_PER_TICK;
  f.reads = 0;
  const hinted = r.resolve(203, CT_NS);
  t.equal(f.reads, 2, 'with the namespace known (from the binding), a hit reads two: no readlink');
  t.ok(hinted.ok && hinted.container.initPid === 201 && hinted.container.pidNamespace === CT_NS, 'and resolves the same');

  // The next file of the same reader, within a tick: the init is proven alive again, its cgroups are shared.
  f.procs.get(201)!.cgroup = '/lxc/c1/moved';
  clock += MS_PER_TICK - 1;
  f.reads = 0;
  const shared = r.resolve(203, CT_NS);
  t.equal(f.reads, 1, 'within a tick of the last cgroup read: only the init\'s stat is read');
  t.equal(shared.ok && shared.container.cgroups.unified, '/lxc/c1', 'and the cgroups are those read a moment ago');
  clock += 1;
  const later = r.resolve(203, CT_NS);
  t.equal(later.ok && later.container.cgroups.unified, '/lxc/c1/moved', 'a tick later the init\'s move is seen');
  f.procs.get(201)!.cgroup = '/lxc/c1/init.scope';
  clock += MS_PER_TICK;

  // The container restarts: init 201 exits, its pid is reused by an unrelated host process, and a new
  // namespace gets a new init.
  f.procs.delete(202);
  f.procs.delete(203);
  f.procs.delete(204);
  f.procs.delete(300);
  f.procs.set(201, { ns: HOST_NS, nspid: [201], ppid: 1, start: 900, cgroup: '/other' });
  const NEW_NS = 4026532600;
  f.procs.set(500, { ns: NEW_NS, nspid: [500, 1], ppid: 200, start: 901, cgroup: '/lxc/c2' });
  f.procs.set(501, { ns: NEW_NS, nspid: [501, 2], ppid: 500, start: 902, cgroup: '/lxc/c2' });
  clock += FORGET_EVERY_MS; // (a miss looks for dead namespaces at most this often: see the test below)
  f.reads = 0;
  const res = r.resolve(501);
  // 501's namespace and status, 500's namespace (twice: parent check, init check) and status, 500's cgroup.
  // The new init's start time and the dead namespace's check wait until the open is answered.
  t.equal(f.reads, 6, 'a miss reads only what answering needs');
  t.ok(res.ok && res.container.initPid === 500 && res.container.cgroups.v1.get('memory') === '/lxc/c2');
  await afterReply();
  t.equal(r.cachedNamespaces, 1, 'the dead namespace was forgotten after the miss');

  // Same namespace, init replaced by a recycled pid in another namespace: not trusted.
  f.procs.set(500, { ns: HOST_NS, nspid: [500], ppid: 1, start: 950, cgroup: '/elsewhere' });
  const orphan = r.resolve(501);
  t.notOk(orphan.ok, 'no init: an error value, not the recycled process\'s cgroup');
});

t.test('cgroups shared within a tick never outlive the init', async (t) => {
  const f = table();
  const clock = 0;
  const r = new ContainerResolver(f.reader(), 100, { now: () => clock });
  t.ok(r.resolve(203, CT_NS).ok);
  await afterReply();
  t.ok(r.resolve(203, CT_NS).ok, 'a hit: the cgroups are kept for a tick');
  // Within the same tick the init exits and its pid goes to a host process.
  f.procs.set(201, { ns: HOST_NS, nspid: [201], ppid: 1, start: 990, cgroup: '/other' });
  const after = r.resolve(203, CT_NS);
  t.ok(!after.ok || after.container.cgroups.unified !== '/lxc/c1', 'the kept cgroups of a dead init are not served');
});

t.test('a burst of new namespaces looks for dead ones once per FORGET_EVERY_MS, not once per miss', async (t) => {
  const f = table();
  let clock = 0;
  const pending: Array<{ fn: () => void; ms: number }> = [];
  const r = new ContainerResolver(f.reader(), 100, { now: () => clock, later: (fn, ms) => pending.push({ fn, ms }) });
  // 50 containers start (a node boots, or the daemon restarts among them): each first read is a miss.
  const N = 50;
  for (let i = 0; i < N; i++) {
    const ns = 4026533000 + i;
    f.procs.set(1000 + 2 * i, { ns, nspid: [1000 + 2 * i, 1], ppid: 200, start: 3000 + i, cgroup: `/lxc/b${i}` });
    f.procs.set(1001 + 2 * i, { ns, nspid: [1001 + 2 * i, 2], ppid: 1000 + 2 * i, start: 3000 + i, cgroup: `/lxc/b${i}` });
  }
  const initStatReads = () => f.leaderStatReads;
  f.leaderStatReads = 0;
  for (let i = 0; i < N; i++) {
    t.ok(r.resolve(1001 + 2 * i).ok, `container ${i}`);
    await afterReply();
    clock += 10; // 50 misses within 0.5 s
  }
  t.equal(r.cachedNamespaces, N, 'every init is cached');
  // Each miss reads its new init's start time once; one pass over the cache (at the first miss) on top.
  t.ok(initStatReads() <= N + 1, `${initStatReads()} leader stat reads for ${N} misses (a pass per miss: ${(N * (N + 1)) / 2})`);

  // A container goes: found at the next miss once FORGET_EVERY_MS has passed, or by prune() at once.
  f.procs.delete(1000);
  f.procs.delete(1001);
  f.procs.set(2000, { ns: 4026534000, nspid: [2000, 1], ppid: 200, start: 5000, cgroup: '/lxc/late' });
  t.ok(r.resolve(2000).ok);
  await afterReply();
  t.equal(r.cachedNamespaces, N + 1, 'a miss within FORGET_EVERY_MS of the last pass does not look');
  t.equal(pending.length, 1, 'one trailing pass scheduled for the whole burst of skipped passes');
  t.ok(pending[0]!.ms > 0 && pending[0]!.ms <= FORGET_EVERY_MS, `due when the period is over (in ${pending[0]!.ms} ms)`);
  pending.shift()!.fn();
  t.equal(r.cachedNamespaces, N, 'the trailing pass forgets the namespace that died, with no further miss');
  f.procs.delete(1004);
  f.procs.delete(1005);
  r.prune();
  t.equal(r.cachedNamespaces, N - 1, 'prune looks at once');
  f.procs.delete(1002);
  f.procs.delete(1003);
  clock += FORGET_EVERY_MS;
  f.procs.set(2002, { ns: 4026534001, nspid: [2002, 1], ppid: 200, start: 5001, cgroup: '/lxc/later' });
  t.ok(r.resolve(2002).ok);
  await afterReply();
  t.equal(r.cachedNamespaces, N - 1, 'a miss FORGET_EVERY_MS later looks again: one gone, one new');
});

t.test('a caller that exited is an error value', async (t) => {
  const f = table();
  const res = new ContainerResolver(f.reader(), 100).resolve(999);
  t.notOk(res.ok);
  if (!res.ok) t.match(res.reason, /exited/);
});

t.test('pruneInitScope', async (t) => {
  const pruned = pruneInitScope({ v1: new Map([['memory', '/a/init.scope'], ['cpu', '/init.scope'], ['pids', '/b/init.scope/x']]), unified: '/a/init.scope' });
  t.same([...pruned.v1.entries()], [['memory', '/a'], ['cpu', '/'], ['pids', '/b/init.scope/x']]);
  t.equal(pruned.unified, '/a');
});
