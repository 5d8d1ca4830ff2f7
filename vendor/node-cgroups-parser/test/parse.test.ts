import t from 'tap';
import {
  UNLIMITED,
  detectLayout,
  minLimit,
  parseCount,
  parseCpuList,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parseProcStat,
  parseProcStatus,
} from '../src/index.js';

const HYBRID_MOUNTINFO = `22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

t.test('parseMountinfo', async (t) => {
  const mounts = parseMountinfo(HYBRID_MOUNTINFO);
  t.equal(mounts.length, 9);
  t.same(mounts[4], {
    mountId: 32, parentId: 31, device: '0:29', root: '/', mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', source: 'cgroup', superOptions: ['rw', 'cpu'],
  });

  const optional = parseMountinfo(
    '26 24 0:23 /lxc/c1 /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 master:3 propagate_from:2 - cgroup cgroup rw,cpu,cpuacct\n',
  );
  t.equal(optional.length, 1);
  t.equal(optional[0]!.root, '/lxc/c1');
  t.equal(optional[0]!.fsType, 'cgroup', 'optional fields before " - " are skipped');
  t.same(optional[0]!.superOptions, ['rw', 'cpu', 'cpuacct']);

  const noOptional = parseMountinfo('29 21 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n');
  t.equal(noOptional[0]!.fsType, 'cgroup2');

  const escaped = parseMountinfo('48 23 0:44 /a\\134b /var/lib/my\\040dir\\011x rw - tmpfs my\\040src rw\n');
  t.equal(escaped[0]!.mountPoint, '/var/lib/my dir\tx', 'octal escapes (\\040 space, \\011 tab)');
  t.equal(escaped[0]!.root, '/a\\b', '\\134 is a backslash');
  t.equal(escaped[0]!.source, 'my src');

  t.same(parseMountinfo(''), []);
  t.same(parseMountinfo('garbage\n\n1 2 3\nx y 0:1 / / rw - ext4 /dev/a rw\n'), [], 'malformed lines skipped');
  t.same(parseMountinfo('1 2 0:1 / / rw shared:1 -\n'), [], 'a line cut after the separator is skipped');
  t.equal(parseMountinfo(`garbage\n${HYBRID_MOUNTINFO}`).length, 9, 'good lines survive next to bad ones');
});

t.test('parseProcCgroup', async (t) => {
  const entries = parseProcCgroup('9:name=systemd:/init.scope\n4:memory:/lxc/c1\n2:cpu,cpuacct:/lxc/c1\n0::/lxc/c1/init.scope\n');
  t.same(entries, [
    { hierarchyId: 9, controllers: ['name=systemd'], path: '/init.scope' },
    { hierarchyId: 4, controllers: ['memory'], path: '/lxc/c1' },
    { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/lxc/c1' },
    { hierarchyId: 0, controllers: [], path: '/lxc/c1/init.scope' },
  ]);
  t.same(parseProcCgroup('0::/weird:name\n'), [{ hierarchyId: 0, controllers: [], path: '/weird:name' }], 'colons in the path are kept');
  t.same(parseProcCgroup(''), []);
  t.same(parseProcCgroup('garbage\nx:memory:/a\n4:memory\n5:pids:\n'), [], 'malformed lines skipped');
});

t.test('detectLayout', async (t) => {
  const hybrid = detectLayout(parseMountinfo(HYBRID_MOUNTINFO));
  t.equal(hybrid.kind, 'hybrid');
  t.equal(hybrid.v1.get('memory')?.mountPoint, '/sys/fs/cgroup/memory');
  t.equal(hybrid.v1.get('name=systemd')?.mountPoint, '/sys/fs/cgroup/systemd', 'named hierarchy keyed by name=');
  t.same(hybrid.v1.get('name=systemd')?.controllers, ['name=systemd']);
  t.notOk(hybrid.v1.has('rw'), 'mount options are not controllers');
  t.equal(hybrid.unified?.mountPoint, '/sys/fs/cgroup/unified');
  t.equal(hybrid.unified?.version, 2);

  const v1 = detectLayout(parseMountinfo(`25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
26 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
27 24 0:23 / /sys/fs/cgroup/cpuset rw,nosuid shared:11 - cgroup cgroup rw,cpuset,clone_children,noprefix
28 24 0:24 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory
90 88 0:24 / /var/lib/lxc/c1/rootfs/sys/fs/cgroup/memory rw master:12 - cgroup cgroup rw,memory
`));
  t.equal(v1.kind, 'v1');
  t.equal(v1.unified, null);
  t.equal(v1.v1.get('cpu'), v1.v1.get('cpuacct'), 'co-mounted controllers share one hierarchy');
  t.same(v1.v1.get('cpu')?.controllers, ['cpu', 'cpuacct']);
  t.same(v1.v1.get('name=systemd')?.controllers, ['name=systemd'], 'xattr and release_agent= are options');
  t.same(v1.v1.get('cpuset')?.controllers, ['cpuset'], 'clone_children and noprefix are options');
  t.equal(v1.v1.get('memory')?.mountPoint, '/sys/fs/cgroup/memory', 'the first mount of a hierarchy wins');
  t.same([...v1.v1.keys()].sort(), ['cpu', 'cpuacct', 'cpuset', 'memory', 'name=systemd']);

  const v2 = detectLayout(parseMountinfo('29 21 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n'));
  t.equal(v2.kind, 'v2');
  t.equal(v2.v1.size, 0);
  t.equal(v2.unified?.mountPoint, '/sys/fs/cgroup');

  t.equal(detectLayout([]).kind, 'none');
  t.equal(detectLayout(parseMountinfo('27 1 254:0 / / rw - ext4 /dev/vda rw\n')).kind, 'none');
});

t.test('parseLimit', async (t) => {
  t.equal(UNLIMITED, Infinity);
  t.equal(parseLimit('268435456\n'), 268435456);
  t.equal(parseLimit('  1073741824  '), 1073741824, 'trimmed');
  t.equal(parseLimit('0'), 0);
  t.equal(parseLimit('max\n'), Infinity, 'v2 max');
  t.equal(parseLimit('-1\n'), Infinity, 'v1 quota -1');
  t.equal(parseLimit('9223372036854771712\n'), Infinity, 'v1 PAGE_COUNTER_MAX * PAGE_SIZE sentinel');
  t.equal(parseLimit('9223372036854775807'), Infinity, 'LLONG_MAX');
  t.equal(parseLimit('9223372036854710272'), Infinity, '64 KiB page sentinel');
  t.equal(parseLimit(String(2n ** 62n)), Infinity, '2^62 is the threshold');
  t.equal(parseLimit(String(2n ** 62n - 1n)), Number(2n ** 62n - 1n), 'just below stays a number');
  t.equal(parseLimit('99999999999999999999999'), Infinity, 'beyond 64 bits');
  for (const bad of ['', '\n', 'garbage', '-2', '12k', '1.5', 'max max', '0x10', 'Infinity']) {
    t.equal(parseLimit(bad), undefined, JSON.stringify(bad));
  }
});

t.test('parseCount', async (t) => {
  t.equal(parseCount('13631488\n'), 13631488);
  t.equal(parseCount('max'), undefined);
  t.equal(parseCount(''), undefined);
  t.equal(parseCount('-1'), undefined);
});

t.test('parseFlatKeyed', async (t) => {
  const stat = parseFlatKeyed('anon 59768832\nfile 86507520\nslab_reclaimable 4718592\nhierarchical_memory_limit 9223372036854771712\n');
  t.equal(stat.get('anon'), 59768832);
  t.equal(stat.get('file'), 86507520);
  t.equal(stat.get('slab_reclaimable'), 4718592);
  t.ok(stat.get('hierarchical_memory_limit')! > 9e18, 'huge values kept (approximately)');
  t.equal(stat.size, 4);

  const cpu = parseFlatKeyed('usage_usec 58349967\nuser_usec 34150651\nsystem_usec 24199316\n');
  t.equal(cpu.get('usage_usec'), 58349967);

  const messy = parseFlatKeyed('\ngarbage\nkey\nanon 1 2\nfile x\nneg -5\n  shmem   4096  \nTotal_cache 7\nanon 3\n');
  t.same([...messy], [['shmem', 4096], ['Total_cache', 7], ['anon', 3]], 'malformed lines skipped, keys exact, last value wins');
  t.equal(messy.get('total_cache'), undefined, 'keys are case-sensitive');
  t.equal(parseFlatKeyed('').size, 0);
  t.equal(parseFlatKeyed('some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n').size, 0, 'nested-keyed lines are not flat');
});

const STATUS = `Name:\ttmux: server
Umask:\t0022
State:\tS (sleeping)
Tgid:\t202
Ngid:\t0
Pid:\t202
PPid:\t201
TracerPid:\t0
Uid:\t0\t0\t0\t0
Gid:\t100000\t100000\t100000\t100000
FDSize:\t64
Groups:\t 
NStgid:\t202\t5
NSpid:\t202\t5
NSpgid:\t202\t5
VmRSS:\t   11844 kB
`;

t.test('parseProcStatus', async (t) => {
  t.same(parseProcStatus(STATUS), {
    name: 'tmux: server', state: 'S', tgid: 202, pid: 202, ppid: 201, nspid: [202, 5], uid: [0, 0, 0, 0], gid: [100000, 100000, 100000, 100000],
  });
  t.same(parseProcStatus('NSpid:\t4321\t1\n').nspid, [4321, 1]);
  t.same(parseProcStatus('NSpid:\t4321\n').nspid, [4321], 'a host process has one level');
  t.same(parseProcStatus(''), {});
  t.same(parseProcStatus('garbage\n:\nPid:\tabc\nNSpid:\t1\tx\nTgid:\n'), {}, 'malformed values skipped');
  t.same(parseProcStatus('Pid:\tabc\nPid:\t7\n'), { pid: 7 });
});

const STAT_TAIL = '4194304 3322 0 4 0 46 20 0 0 20 0 1 0 2610 43610112 3163 18446744073709551615 94592288432128 0 17 0 0';

t.test('parseProcStat', async (t) => {
  // fields 14-17 of STAT_TAIL: utime 46, stime 20, cutime 0, cstime 0 (ticks)
  t.same(parseProcStat(`202 (tmux: server) S 201 202 202 0 -1 ${STAT_TAIL}\n`), {
    pid: 202, comm: 'tmux: server', state: 'S', ppid: 201, startTime: 2610, utime: 46, stime: 20, cutime: 0, cstime: 0,
  });
  t.same(
    parseProcStat(`9 (x) S 1 9 9 0 -1 4194304 10 0 4 0 1234 567 89 10 20 0 1 0 300 0 0`),
    { pid: 9, comm: 'x', state: 'S', ppid: 1, startTime: 300, utime: 1234, stime: 567, cutime: 89, cstime: 10 },
    'utime, stime, cutime, cstime are fields 14 to 17',
  );
  t.same(parseProcStat(`7 ((sd-pam)) S 6 7 7 0 -1 ${STAT_TAIL}`)?.comm, '(sd-pam)');
  const evil = parseProcStat(`8 (a) b) R (c ) S 1 8 8 0 -1 ${STAT_TAIL}`);
  t.equal(evil?.comm, 'a) b) R (c ', 'split at the last )');
  t.equal(evil?.ppid, 1);
  t.equal(evil?.startTime, 2610);
  t.equal(parseProcStat(''), undefined);
  t.equal(parseProcStat('garbage'), undefined);
  t.equal(parseProcStat('12 (cut) S 1 2 3'), undefined, 'truncated before field 22');
  t.equal(parseProcStat(`x (a) S 1 1 1 0 -1 ${STAT_TAIL}`), undefined, 'non-numeric pid');
  t.equal(parseProcStat(`9 (a) S z 1 1 0 -1 ${STAT_TAIL}`), undefined, 'non-numeric ppid');
});

t.test('parseCpuList', async (t) => {
  t.same(parseCpuList('0-3,7,9-10\n'), [0, 1, 2, 3, 7, 9, 10]);
  t.same(parseCpuList('3,1,1-2'), [1, 2, 3], 'sorted and unique');
  t.same(parseCpuList('5'), [5]);
  t.same(parseCpuList(''), []);
  t.same(parseCpuList('\n'), []);
  for (const bad of ['garbage', '1-', '-1', '3-1', '1,,2', '0-3,x', '1.5']) t.same(parseCpuList(bad), [], JSON.stringify(bad));
  const absurd = parseCpuList('0-4294967295');
  t.equal(absurd.length, 65536, 'absurd ranges are capped');
  t.same(parseCpuList('99999999'), [], 'a cpu beyond the cap is dropped');
});

t.test('minLimit', async (t) => {
  t.equal(minLimit([]), Infinity);
  t.equal(minLimit([undefined, undefined]), Infinity);
  t.equal(minLimit([Infinity, 268435456, undefined, 1073741824]), 268435456);
  t.equal(minLimit([0, 5]), 0);
});
