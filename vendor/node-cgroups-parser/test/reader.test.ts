// The reader against the fixture trees in test/fixtures/{v1,hybrid,v2} (see test/fixtures/README.md) and
// against the live host.

import t from 'tap';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CgroupReader, minLimit, type CgroupDir, type PidCgroups } from '../src/index.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const MiB = 1024 * 1024;
const HOST_NS = 4026531836;
const C1_NS = 4026532000;
const C2_NS = 4026532100;

function fixture(tree: 'v1' | 'hybrid' | 'v2'): CgroupReader {
  return new CgroupReader({ procRoot: `${FIXTURES}${tree}/proc`, fsRoot: `${FIXTURES}${tree}` });
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('unexpectedly undefined');
  return value;
}

function effectiveLimit(reader: CgroupReader, dir: CgroupDir): number {
  return minLimit(reader.ancestorsOf(dir).map((d) => reader.readMemory(d).limit));
}

t.test('layout kind per tree', async (t) => {
  t.equal(fixture('v1').layout.kind, 'v1');
  t.equal(fixture('hybrid').layout.kind, 'hybrid');
  t.equal(fixture('v2').layout.kind, 'v2');
  const v1 = fixture('v1').layout;
  t.equal(v1.v1.get('cpu'), v1.v1.get('cpuacct'), 'v1 tree co-mounts cpu,cpuacct');
  t.equal(v1.v1.get('cpu')?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  t.equal(v1.v1.get('name=systemd')?.mountPoint, '/sys/fs/cgroup/systemd');
  t.equal(fixture('hybrid').layout.unified?.mountPoint, '/sys/fs/cgroup/unified');
  t.equal(fixture('v2').layout.unified?.mountPoint, '/sys/fs/cgroup');
});

t.test('no mountinfo: kind none, nothing resolves, nothing throws', async (t) => {
  const reader = new CgroupReader({ procRoot: `${FIXTURES}does-not-exist`, fsRoot: `${FIXTURES}does-not-exist` });
  t.equal(reader.layout.kind, 'none');
  t.equal(reader.dirOf({ v1: new Map([['memory', '/']]), unified: '/' }, 'memory'), undefined);
  t.equal(reader.unifiedDirOf({ v1: new Map(), unified: '/' }), undefined);
  t.same(reader.listPids(), []);
  t.equal(reader.cgroupsOf(1), undefined);
});

t.test('cgroupsOf', async (t) => {
  const hybrid = must(fixture('hybrid').cgroupsOf(201));
  t.equal(hybrid.v1.get('memory'), '/lxc/c1/init.scope');
  t.equal(hybrid.v1.get('name=systemd'), '/lxc/c1/init.scope');
  t.equal(hybrid.unified, '/lxc/c1/init.scope');

  const v1 = must(fixture('v1').cgroupsOf(201));
  t.equal(v1.v1.get('memory'), '/lxc/c1');
  t.equal(v1.v1.get('cpu'), '/lxc/c1', 'co-mounted controllers each get a key');
  t.equal(v1.v1.get('cpuacct'), '/lxc/c1');
  t.equal(v1.v1.get('net_prio'), '/lxc/c1');
  t.equal(v1.v1.get('name=systemd'), '/lxc/c1/init.scope');
  t.equal(v1.unified, '/', 'the kernel prints 0::/ even with no cgroup2 mounted');

  const v2 = must(fixture('v2').cgroupsOf(201));
  t.equal(v2.v1.size, 0);
  t.equal(v2.unified, '/lxc/c1/init.scope');
  t.equal(must(fixture('v2').cgroupsOf(202)).unified, '/lxc/c1/app');
});

t.test('a pid that vanished', async (t) => {
  for (const tree of ['v1', 'hybrid', 'v2'] as const) {
    const reader = fixture(tree);
    t.equal(reader.cgroupsOf(9999), undefined, `${tree}: cgroupsOf`);
    t.equal(reader.readProcStatus(9999), undefined, `${tree}: readProcStatus`);
    t.equal(reader.readProcStat(9999), undefined, `${tree}: readProcStat`);
    t.equal(reader.pidNamespaceOf(9999), undefined, `${tree}: pidNamespaceOf`);
  }
});

t.test('dirOf memory: v1 hierarchy on v1/hybrid, unified on v2', async (t) => {
  for (const tree of ['v1', 'hybrid'] as const) {
    const reader = fixture(tree);
    const dir = must(reader.dirOf(must(reader.cgroupsOf(202)), 'memory'));
    t.equal(dir.version, 1);
    t.equal(dir.cgroup, '/lxc/c1/app');
    t.equal(dir.dir, `${FIXTURES}${tree}/sys/fs/cgroup/memory/lxc/c1/app`);
    t.ok(statSync(dir.dir).isDirectory());
  }
  const v2 = fixture('v2');
  const dir = must(v2.dirOf(must(v2.cgroupsOf(202)), 'memory'));
  t.equal(dir.version, 2);
  t.equal(dir.controller, 'memory');
  t.equal(dir.dir, `${FIXTURES}v2/sys/fs/cgroup/lxc/c1/app`);
});

t.test('dirOf: missing controllers are undefined', async (t) => {
  const hybrid = fixture('hybrid');
  const cg = must(hybrid.cgroupsOf(202));
  t.equal(hybrid.dirOf(cg, 'net_cls'), undefined, 'hybrid: not mounted, not in the unified cgroup.controllers');
  t.equal(hybrid.dirOf(cg, 'io'), undefined, 'hybrid: io is not enabled on the unified mount');
  const hugetlb = must(hybrid.dirOf(cg, 'hugetlb'));
  t.equal(hugetlb.version, 2, 'hybrid: hugetlb is left to the unified hierarchy (as on this machine)');
  t.equal(hugetlb.dir, `${FIXTURES}hybrid/sys/fs/cgroup/unified/lxc/c1/app`);

  const v2 = fixture('v2');
  t.equal(v2.dirOf(must(v2.cgroupsOf(202)), 'cpuacct'), undefined, 'v2 has no cpuacct');
  t.equal(v2.dirOf(must(v2.cgroupsOf(202)), 'name=systemd'), undefined);
  t.ok(v2.dirOf(must(v2.cgroupsOf(202)), 'cpu'));

  const v1 = fixture('v1');
  t.equal(v1.dirOf(must(v1.cgroupsOf(202)), 'io'), undefined, 'v1: no unified mount');
  t.equal(v1.unifiedDirOf(must(v1.cgroupsOf(202))), undefined);
  t.equal(v1.dirOf({ v1: new Map(), unified: null }, 'memory'), undefined, 'process without a line for the controller');
});

t.test('unifiedDirOf on hybrid: pressure files live there', async (t) => {
  const reader = fixture('hybrid');
  const dir = must(reader.unifiedDirOf(must(reader.cgroupsOf(201))));
  t.equal(dir.controller, 'unified');
  t.equal(dir.version, 2);
  t.equal(dir.dir, `${FIXTURES}hybrid/sys/fs/cgroup/unified/lxc/c1/init.scope`);
  t.match(reader.readFile(`${dir.dir}/memory.pressure`), /^some avg10=/);
  t.match(reader.readFile(`${dir.dir}/cpu.stat`), /^usage_usec \d+/);
});

t.test('readMemory v1 with swap accounting (hybrid)', async (t) => {
  const reader = fixture('hybrid');
  const dir = must(reader.dirOf({ v1: new Map([['memory', '/lxc/c1']]), unified: null }, 'memory'));
  const c1 = reader.readMemory(dir);
  t.equal(c1.version, 1);
  t.equal(c1.limit, 256 * MiB);
  t.equal(c1.usage, 150 * MiB);
  t.equal(c1.swapLimit, 384 * MiB, 'memsw is RAM+swap');
  t.equal(c1.swapUsage, 154 * MiB);
  t.equal(c1.swappiness, 60);
  t.equal(c1.stat?.get('total_cache'), 86507520);
  t.equal(c1.stat?.get('total_rss'), 59768832);

  const root = reader.readMemory(reader.ancestorsOf(dir).at(-1)!);
  t.equal(root.limit, Infinity, 'the 9223372036854771712 sentinel is unlimited');
  t.equal(root.swapLimit, Infinity);

  const c2 = reader.readMemory(must(reader.dirOf(must(reader.cgroupsOf(300)), 'memory')));
  t.equal(c2.swappiness, 0);
});

t.test('readMemory v1 without swap accounting (v1 tree)', async (t) => {
  const reader = fixture('v1');
  const dir = must(reader.dirOf(must(reader.cgroupsOf(201)), 'memory'));
  const c1 = reader.readMemory(dir);
  t.equal(c1.limit, 256 * MiB);
  t.equal(c1.usage, 150 * MiB);
  t.equal(c1.swapLimit, undefined, 'no memsw files');
  t.equal(c1.swapUsage, undefined);
  t.notOk('swapLimit' in c1, 'missing values are absent, not set to undefined');
  t.equal(c1.stat?.has('total_swap'), false);
});

t.test('readMemory v2', async (t) => {
  const reader = fixture('v2');
  const dir = must(reader.dirOf(must(reader.cgroupsOf(201)), 'memory'));
  t.equal(dir.cgroup, '/lxc/c1/init.scope');
  const scope = reader.readMemory(dir);
  t.equal(scope.version, 2);
  t.equal(scope.limit, Infinity, 'memory.max "max"');
  t.equal(scope.swappiness, undefined, 'v2 has no swappiness');

  const chain = reader.ancestorsOf(dir);
  const c1 = reader.readMemory(chain[1]!);
  t.equal(c1.limit, 256 * MiB);
  t.equal(c1.usage, 150 * MiB);
  t.equal(c1.swapLimit, 128 * MiB, 'swap.max is swap only');
  t.equal(c1.swapUsage, 4 * MiB);
  for (const key of ['anon', 'file', 'kernel_stack', 'shmem', 'file_mapped', 'slab_reclaimable', 'active_file', 'inactive_file', 'zswap']) {
    t.ok(c1.stat?.has(key), `memory.stat has ${key}`);
  }
  t.equal(c1.stat?.get('file'), 86507520);

  const root = reader.readMemory(chain.at(-1)!);
  t.equal(root.limit, undefined, 'the v2 root has no memory.max');
  t.equal(root.usage, undefined, 'the v2 root has no memory.current');
  t.ok(root.stat && root.stat.size > 0, 'but it has memory.stat');

  const gone = reader.readMemory({ ...dir, dir: `${dir.dir}/no-such-child` });
  t.same(gone, { version: 2 }, 'a directory that vanished reads as all-missing');
});

t.test('ancestorsOf + minLimit: a tighter ancestor wins', async (t) => {
  for (const tree of ['v1', 'hybrid', 'v2'] as const) {
    const reader = fixture(tree);
    const app = must(reader.dirOf(must(reader.cgroupsOf(202)), 'memory'));
    const chain = reader.ancestorsOf(app);
    t.same(chain.map((d) => d.cgroup), ['/lxc/c1/app', '/lxc/c1', '/lxc', '/'], `${tree}: self first, root last`);
    t.equal(reader.readMemory(app).limit, 512 * MiB, `${tree}: app's own limit is looser`);
    t.equal(effectiveLimit(reader, app), 256 * MiB, `${tree}: /lxc/c1's 256 MiB applies`);

    const c2 = must(reader.dirOf(must(reader.cgroupsOf(300)), 'memory'));
    t.equal(reader.readMemory(c2).limit, 2048 * MiB, `${tree}: c2's own limit`);
    t.equal(effectiveLimit(reader, c2), 1024 * MiB, `${tree}: /lxc's 1 GiB applies to c2`);

    const host = must(reader.dirOf(must(reader.cgroupsOf(100)), 'memory'));
    t.equal(effectiveLimit(reader, host), Infinity, `${tree}: the daemon is unlimited`);
  }
});

t.test('a cgroup mount whose root is not / (container view, no cgroup namespace)', async (t) => {
  const tree = `${FIXTURES}hybrid`;
  // pid 201's own mountinfo, read with its root filesystem as fsRoot
  const reader = new CgroupReader({
    procRoot: `${tree}/proc`,
    fsRoot: `${tree}/proc/201/root`,
    mountinfo: readFileSync(`${tree}/proc/201/mountinfo`, 'utf8'),
  });
  t.equal(reader.layout.kind, 'hybrid');
  t.equal(reader.layout.v1.get('memory')?.root, '/lxc/c1');

  const app = must(reader.dirOf(must(reader.cgroupsOf(202)), 'memory'));
  t.equal(app.cgroup, '/lxc/c1/app');
  t.equal(app.dir, `${tree}/proc/201/root/sys/fs/cgroup/memory/app`, 'the root prefix is stripped');
  t.equal(reader.readMemory(app).limit, 512 * MiB);

  const chain = reader.ancestorsOf(app);
  t.same(chain.map((d) => d.cgroup), ['/lxc/c1/app', '/lxc/c1'], 'stops at the mount root');
  t.equal(chain[1]!.dir, `${tree}/proc/201/root/sys/fs/cgroup/memory`);
  t.equal(minLimit(chain.map((d) => reader.readMemory(d).limit)), 256 * MiB);

  t.equal(reader.dirOf(must(reader.cgroupsOf(300)), 'memory'), undefined, '/lxc/c2 is outside the mounted root');
  t.equal(reader.dirOf(must(reader.cgroupsOf(100)), 'memory'), undefined, 'so is the host daemon');
  const lookalike: PidCgroups = { v1: new Map([['memory', '/lxc/c10']]), unified: null };
  t.equal(reader.dirOf(lookalike, 'memory'), undefined, '/lxc/c10 is not below /lxc/c1');
  const escaping: PidCgroups = { v1: new Map([['memory', '/lxc/c1/../c2']]), unified: null };
  t.equal(reader.dirOf(escaping, 'memory'), undefined, '.. never resolves');
});

t.test('cgroup namespace view: cgroups outside the namespace show as /..', async (t) => {
  const reader = new CgroupReader({
    procRoot: `${FIXTURES}v2/proc`,
    fsRoot: `${FIXTURES}v2`,
    mountinfo: '29 21 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n',
  });
  t.equal(reader.dirOf({ v1: new Map(), unified: '/../../system.slice' }, 'memory'), undefined);
});

t.test('process table: status, stat, pid namespaces', async (t) => {
  for (const tree of ['v1', 'hybrid', 'v2'] as const) {
    const reader = fixture(tree);
    t.same(reader.listPids(), [1, 100, 200, 201, 202, 290, 300], `${tree}: listPids (self is not a pid)`);

    t.equal(reader.pidNamespaceOf(1), HOST_NS);
    t.equal(reader.pidNamespaceOf(100), HOST_NS);
    t.equal(reader.pidNamespaceOf(201), C1_NS, 'ns/pid -> pid:[4026532000]');
    t.equal(reader.pidNamespaceOf(202), C1_NS);
    t.equal(reader.pidNamespaceOf(300), C2_NS);

    const init = must(reader.readProcStatus(201));
    t.same(init.nspid, [201, 1], 'container init');
    t.equal(init.ppid, 200, 'its parent lxc-start is outside the container');
    t.equal(reader.pidNamespaceOf(init.ppid!), HOST_NS);
    const child = must(reader.readProcStatus(202));
    t.same(child.nspid, [202, 5]);
    t.equal(child.name, 'tmux: server');
    t.same(must(reader.readProcStatus(300)).uid, [100000, 100000, 100000, 100000], 'c2 is unprivileged');
    t.same(must(reader.readProcStatus(1)).nspid, [1]);

    const stat = must(reader.readProcStat(202));
    t.equal(stat.comm, 'tmux: server');
    t.equal(stat.ppid, 201);
    const starts = [1, 200, 201, 202].map((pid) => must(reader.readProcStat(pid)).startTime);
    t.same(starts, [...starts].sort((a, b) => a - b), 'parents start before children');
    t.ok(starts[2]! > starts[1]!, 'init starts after its lxc-start');
  }
});

t.test('fixture trees carry a host meminfo and proc/self', async (t) => {
  for (const tree of ['v1', 'hybrid', 'v2'] as const) {
    const reader = fixture(tree);
    t.match(reader.readFile(`${reader.procRoot}/meminfo`), /^MemTotal:\s+\d+ kB/);
    t.ok(existsSync(`${reader.procRoot}/self/mountinfo`));
  }
});

t.test('live host', async (t) => {
  const reader = new CgroupReader();
  t.equal(reader.procRoot, '/proc');
  t.equal(reader.fsRoot, '');
  // What this machine has, from mountinfo's filesystem types (not by the parser): v1 hierarchies, cgroup2
  // or both. `npm test` runs on the hybrid development machine, `npm run test:vm` on pure v2 and pure v1.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => {
    const fields = l.split(' ');
    const rest = fields.slice(fields.indexOf('-') + 1);
    return { mountPoint: fields[4]!, fsType: rest[0]!, superOptions: (rest[2] ?? '').split(',') };
  });
  const hasV1 = mounts.some((m) => m.fsType === 'cgroup');
  const cgroup2 = mounts.find((m) => m.fsType === 'cgroup2');
  const expected = hasV1 ? (cgroup2 ? 'hybrid' : 'v1') : 'v2';
  t.equal(reader.layout.kind, expected, `this machine is ${expected}`);
  const cgroups = must(reader.cgroupsOf(process.pid));
  const dir = must(reader.dirOf(cgroups, 'memory'));
  t.ok(statSync(dir.dir).isDirectory(), dir.dir);
  const reading = reader.readMemory(dir);
  if (expected === 'v2') {
    t.equal(cgroups.v1.size, 0, 'no v1 controllers');
    t.ok(cgroups.unified?.startsWith('/'), `cgroup2 path ${cgroups.unified}`);
    t.equal(dir.version, 2);
    t.ok(reading.stat?.has('anon'), 'memory.stat with v2 keys');
    // The root cgroup has no memory.current (the kernel's CFTYPE_NOT_ON_ROOT); any other has.
    if (cgroups.unified === '/') t.equal(reading.usage, undefined, 'the root cgroup: no usage file');
    else t.ok(reading.usage! > 0, `usage ${reading.usage}`);
    t.equal(reader.ancestorsOf(dir).at(-1)!.dir, cgroup2!.mountPoint, 'ancestors end at the cgroup2 root');
    t.equal(reader.unifiedDirOf(cgroups)?.dir, dir.dir, 'pressure files come from the same directory');
  } else {
    const memoryMount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('memory'));
    t.ok(cgroups.v1.get('memory')?.startsWith('/'), `memory path ${cgroups.v1.get('memory')}`);
    t.equal(dir.version, 1);
    t.type(reading.usage, 'number');
    t.ok(reading.usage! > 0);
    t.ok(reading.stat?.has('total_rss'), 'memory.stat with v1 keys');
    t.equal(reader.ancestorsOf(dir).at(-1)!.dir, memoryMount?.mountPoint, 'ancestors end at the memory hierarchy\'s root');
    if (expected === 'hybrid') t.ok(reader.unifiedDirOf(cgroups), 'pressure files come from the unified mount');
    else t.equal(reader.unifiedDirOf(cgroups), undefined, 'pure v1: no unified directory');
  }
  t.equal(reader.pidNamespaceOf(process.pid), Number(/\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0]));
  t.ok(reader.listPids().includes(process.pid));
  t.equal(must(reader.readProcStat(process.pid)).pid, process.pid);
  t.equal(must(reader.readProcStatus(process.pid)).tgid, process.pid);
});

t.test('readMemory v1 with effectiveLimits: the limits from memory.stat, limit files not read', async (t) => {
  const reader = fixture('hybrid');
  const asked: string[] = [];
  const readFile = reader.readFile.bind(reader);
  const readKept = reader.readKept.bind(reader);
  reader.readFile = (path: string) => (asked.push(path.slice(path.lastIndexOf('/') + 1)), readFile(path));
  reader.readKept = (path: string) => (asked.push(path.slice(path.lastIndexOf('/') + 1)), readKept(path));
  const dir = must(reader.dirOf({ v1: new Map([['memory', '/lxc/c1']]), unified: null }, 'memory'));
  const c1 = reader.readMemory(dir, { effectiveLimits: true });
  t.equal(c1.effectiveLimits, true);
  t.equal(c1.limit, 256 * MiB, 'hierarchical_memory_limit');
  t.equal(c1.swapLimit, 384 * MiB, 'hierarchical_memsw_limit');
  t.equal(c1.usage, 150 * MiB);
  t.equal(c1.swapUsage, 154 * MiB);
  t.same(asked.sort(), ['memory.memsw.usage_in_bytes', 'memory.stat', 'memory.swappiness', 'memory.usage_in_bytes']);

  const root = reader.readMemory(reader.ancestorsOf(dir).at(-1)!, { effectiveLimits: true });
  t.equal(root.limit, Infinity, 'the page-counter maximum in memory.stat is unlimited too');

  const v2 = fixture('v2');
  const c1v2 = v2.readMemory(must(v2.dirOf(must(v2.cgroupsOf(201)), 'memory')), { effectiveLimits: true });
  t.equal(c1v2.effectiveLimits, undefined, 'v2 has no hierarchical limits: its own files, and the caller walks up');
});
