// Every served file over a real mount, read by real tools from containers whose cgroups set a memory
// limit, a cpuset and a CFS quota, on whatever cgroup layout the host has (v1, hybrid, v2).

import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContainer, liveCgroupsMissing, swapMissing } from './helpers/cgroups.js';
import { runInContainer } from './helpers/container.js';
import { cleanup, hangGuardMs, MAIN, run, startDaemon } from './helpers/daemon.js';

const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`files-mount.test.ts: tests with containers skipped: ${noCgroups}\n`);

const MiB = 1024 * 1024;

const hostSwapKb = () => Number(/^SwapTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
const hostCpus = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
if (hostCpus < 2) process.stderr.write(`files-mount.test.ts: the CPU view test skipped: it needs 2 CPUs, this host has ${hostCpus}\n`);

t.test('CPU, memory and uptime views from containers', { skip: noCgroups || (hostCpus < 2 ? 'needs 2 CPUs' : false) }, async (t) => {
  const daemon = await startDaemon({ args: ['--enable-cfs'] });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const pinned = createContainer(t, 'pinned', { cpus: '1', memoryBytes: 256 * MiB });
  const quota = createContainer(t, 'quota', { cpus: '0-1', memoryBytes: 512 * MiB, quotaCpus: 0.5 });

  const probe = [
    'echo processors=$(grep -c ^processor /proc/cpuinfo)',
    'echo first=$(grep ^processor /proc/cpuinfo | head -1 | tr -d "\\t ")',
    'echo onln=$(getconf _NPROCESSORS_ONLN)',
    'echo python=$(python3 -c "import os; print(os.cpu_count())")',
    'echo online=$(cat /sys/devices/system/cpu/online) present=$(cat /sys/devices/system/cpu/present) possible=$(cat /sys/devices/system/cpu/possible)',
    'echo cpulines=$(grep ^cpu /proc/stat | cut -d" " -f1 | tr "\\n" ,)',
    'echo memtotal=$(free -b | awk "/^Mem:/{print \\$2}")',
    'echo uptime=$(cut -d" " -f1 /proc/uptime)',
    'echo swaps=$(wc -l < /proc/swaps)',
    'echo cpudirs=$(ls /sys/devices/system/cpu | grep -E "^cpu[0-9]+$" | tr "\\n" ,)',
    'echo cpu0dir=$(test -e /sys/devices/system/cpu/cpu0 && echo yes || echo no)',
    'echo kernelmax=$(cat /sys/devices/system/cpu/kernel_max)',
    'top -bn1 | head -5',
  ].join('; ');
  // Both containers read at the same time; each must see only its own numbers.
  const [a, b] = await Promise.all([runInContainer(pinned.dirs, daemon.mountpoint, probe), runInContainer(quota.dirs, daemon.mountpoint, probe)]);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  const field = (out: string, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(out)?.[1];

  t.equal(field(a.stdout, 'processors'), '1', 'cpuset {1}: one processor in cpuinfo');
  t.equal(field(a.stdout, 'first'), 'processor:1', 'the host id: pinning to it works');
  t.equal(field(a.stdout, 'onln'), '1', 'getconf _NPROCESSORS_ONLN');
  t.equal(field(a.stdout, 'python'), '1', 'Python os.cpu_count()');
  t.equal(field(a.stdout, 'online'), '1 present=1 possible=1', 'online, present, possible agree');
  t.equal(field(a.stdout, 'cpulines'), 'cpu,cpu1,', '/proc/stat: the aggregate and cpu1 only');
  t.equal(field(a.stdout, 'memtotal'), String(256 * MiB), 'free -b');
  t.ok(Number(field(a.stdout, 'uptime')) < 30, `uptime of a fresh pid namespace is about 0 (${field(a.stdout, 'uptime')})`);
  if (hostSwapKb() === 0) t.equal(field(a.stdout, 'swaps'), '1', '/proc/swaps: header only (no swap on this host)');
  else t.equal(field(a.stdout, 'swaps'), '2', '/proc/swaps: one virtual entry (the host has swap, the container no swap limit)');
  t.equal(field(a.stdout, 'cpudirs'), 'cpu1,', 'only its CPU\'s cpuN directory is listed');
  t.equal(field(a.stdout, 'cpu0dir'), 'no', 'and the hidden one cannot be looked up either');
  t.equal(field(a.stdout, 'kernelmax'), readFileSync('/sys/devices/system/cpu/kernel_max', 'utf8').trim(), 'the rest of /sys/devices/system/cpu mirrors the host');
  t.match(a.stdout, /MiB Mem :\s+256\.0 total/, 'top header shows the container memory');
  t.match(a.stdout, /^%?Cpu\(s\):/m, 'top reads /proc/stat');
  t.match(a.stdout, /^top - .* up\s+0 min/m, 'top: up 0 min');

  t.equal(field(b.stdout, 'processors'), '1', 'quota 0.5 CPU with --enable-cfs: one processor');
  t.equal(field(b.stdout, 'onln'), '1');
  t.equal(field(b.stdout, 'cpulines'), 'cpu,cpu0,', 'the first ceil(0.5) = 1 CPU of its cpuset 0-1');
  t.equal(field(b.stdout, 'cpudirs'), 'cpu0,');
  t.equal(field(b.stdout, 'memtotal'), String(512 * MiB));
});

const noSwap = swapMissing() ?? false;
if (noSwap && !noCgroups) process.stderr.write(`files-mount.test.ts: the swap test skipped: ${noSwap}\n`);

t.test('swap: the container\'s own limit and use, in meminfo, /proc/swaps and free', { skip: noSwap }, async (t) => {
  const daemon = await startDaemon();
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  // 64 MiB of memory and 128 MiB of swap (v2 memory.swap.max; v1 memory.memsw.limit_in_bytes 192 MiB):
  // a 112 MiB allocation has to put about half of itself in swap.
  const box = createContainer(t, 'swap', { memoryBytes: 64 * MiB, swapBytes: 128 * MiB });
  // What the cgroup says it has in swap (v2 memory.swap.current; v1 memsw usage minus memory usage), read
  // by the allocating process itself right before and after the files, while it holds the memory.
  const swapUsed =
    box.layout === 'v2'
      ? `int(open("${join(box.memory, 'memory.swap.current')}").read())`
      : `int(open("${join(box.memory, 'memory.memsw.usage_in_bytes')}").read()) - int(open("${join(box.memory, 'memory.usage_in_bytes')}").read())`;
  const python = [
    'import subprocess',
    'b=bytearray(112*1024*1024)',
    'for i in range(0,len(b),4096): b[i]=1',
    `print("cgroup-before", ${swapUsed})`,
    'print(open("/proc/meminfo").read())',
    'print(open("/proc/swaps").read())',
    'print(subprocess.run(["free","-b"],capture_output=True,text=True).stdout)',
    `print("cgroup-after", ${swapUsed})`,
  ].join('\n');
  const r = await runInContainer(box.dirs, daemon.mountpoint, `python3 -c '${python}'`);
  t.equal(r.code, 0, r.stderr);
  const kbOf = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(r.stdout)?.[1]);
  const expectedKb = Math.min(128 * 1024, hostSwapKb());
  t.equal(kbOf('SwapTotal'), expectedKb, `SwapTotal: the container's 128 MiB of swap (or the host's ${hostSwapKb()} kB, if less)`);
  const usedKb = kbOf('SwapTotal') - kbOf('SwapFree');
  const [before, after] = ['cgroup-before', 'cgroup-after'].map((k) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(r.stdout)?.[1]) / 1024);
  t.ok(before! >= 16 * 1024, `the allocation is partly in swap (the cgroup says ${before} kB)`);
  // the file was rendered between the two cgroup readings: its used swap is between them (1 MiB of slack
  // for pages that moved in or out while the render read the cgroup's files)
  t.ok(usedKb >= Math.min(before!, after!) - 1024 && usedKb <= Math.max(before!, after!) + 1024, `meminfo's used swap ${usedKb} kB is the cgroup's (${before} -> ${after} kB)`);
  const swapsLine = r.stdout.split('\n').find((l) => l.startsWith('none '))?.split(/\s+/);
  t.equal(Number(swapsLine?.[2]), expectedKb, '/proc/swaps: the same size');
  t.ok(Math.abs(Number(swapsLine?.[3]) - usedKb) <= 1024, `/proc/swaps: the same use (${swapsLine?.[3]} kB)`);
  t.equal(Number(/^Swap:\s+(\d+)/m.exec(r.stdout)?.[1]), expectedKb * 1024, 'free -b: the same total');
});

t.test('loadavg rises under a busy loop and decays (-l), pressure is the cgroup\'s', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon({ args: ['-l'], env: { LXCFS_TS_LOADAVG_INTERVAL_MS: '250' } });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const busy = createContainer(t, 'busy', { memoryBytes: 256 * MiB });
  // Watched until the load has risen, then until it has fallen (each bounded by 200 reads of 0.1 s): the
  // outcome is decided by the values, not by how long the machine took to get there.
  const ownPressure = busy.unified ? ` ; sed "s/^/own-/" ${join(busy.unified, 'cpu.pressure')}` : '';
  const script = [
    'cat /proc/loadavg', // starts tracking: 0.00
    '(while :; do :; done) & A=$!; (while :; do :; done) & B=$!; (while :; do :; done) & C=$!',
    'i=0; while [ $i -lt 200 ] && ! awk "{exit !(\\$1 > 1.5)}" /proc/loadavg; do sleep 0.1; i=$((i+1)); done',
    `cat /proc/loadavg; cat /proc/pressure/cpu${ownPressure}`,
    // the load when the loops stop is read while they still run: after the kill a tick may already have
    // lowered it (under TCG, starting cut takes longer than a 250 ms tick)
    'top=$(cut -d" " -f1 /proc/loadavg); kill $A $B $C; echo "top $top"',
    'i=0; while [ $i -lt 200 ] && ! awk -v top=$top "{exit !(\\$1 < top / 2)}" /proc/loadavg; do sleep 0.1; i=$((i+1)); done',
    'cat /proc/loadavg',
  ].join('\n');
  const r = await runInContainer(busy.dirs, daemon.mountpoint, script);
  t.equal(r.code, 0, r.stderr);
  const loads = r.stdout.split('\n').filter((l) => /^\d+\.\d\d /.test(l)).map((l) => Number(l.split(' ')[0]));
  t.equal(loads.length, 3, r.stdout);
  t.equal(loads[0], 0, 'a new container starts at 0.00');
  t.ok(loads[1]! > 1, `rises under 3 busy loops (${loads[1]})`);
  const top = Number(/^top (\S+)$/m.exec(r.stdout)?.[1]);
  t.ok(top >= loads[1]! && loads[2]! < top / 2, `decays after (${top} when the loops stopped, then ${loads[2]})`);
  t.match(r.stdout, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+$/m, 'the kernel\'s format');

  const pressure = r.stdout.split('\n').find((l) => l.startsWith('some '));
  const total = Number(/total=(\d+)/.exec(pressure ?? '')?.[1]);
  if (busy.unified === undefined) {
    // pure v1: no cgroup has *.pressure files, so the host's file is served.
    t.equal(pressure?.replace(/total=\d+|avg\d+=[\d.]+/g, ''), readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0]!.replace(/total=\d+|avg\d+=[\d.]+/g, ''), 'pure v1: the host\'s cpu pressure');
  } else {
    // The cgroup's own file, read right after inside the container, holds at least the served total (totals
    // only grow); the host's would hold more than the cgroup's: it counts every stall since boot, from
    // before the container existed.
    const own = Number(/^own-some .*total=(\d+)/m.exec(r.stdout)?.[1]);
    t.ok(Number.isFinite(total) && Number.isFinite(own) && total <= own, `container cpu.pressure (total ${total}) is its own cgroup's (${own} right after)`);
  }
});

t.test('SIGUSR2 toggles host passthrough; render --pid shows what a process reads', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon();
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const box = createContainer(t, 'toggle', { memoryBytes: 128 * MiB });
  const hostTotal = /^MemTotal:.*$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![0];
  const memTotal = async () => /^MemTotal:.*$/m.exec((await runInContainer(box.dirs, daemon.mountpoint, 'cat /proc/meminfo')).stdout)?.[0];

  // Each SIGUSR2 is handled when its log line appears: read after that, not after a guessed delay.
  const toggled = async (passthrough: boolean, times: number) => {
    const seen = () => daemon.logs().filter((l) => l.passthrough === passthrough).length >= times;
    for (let i = 0; i < 400 && !seen(); i++) await new Promise((r) => setTimeout(r, 25));
    t.ok(seen(), `SIGUSR2 logged (passthrough ${passthrough})`);
  };
  t.equal(await memTotal(), 'MemTotal:         131072 kB');
  daemon.child.kill('SIGUSR2');
  await toggled(true, 1);
  t.equal(await memTotal(), hostTotal, 'passthrough: the host file');
  daemon.child.kill('SIGUSR2');
  await toggled(false, 1);
  t.equal(await memTotal(), 'MemTotal:         131072 kB', 'virtualization back on');

  // render --pid, from outside: what the container's init would read, without the mount. The container says
  // when it is up and then lives until the test kills it, after the render: events, not a guessed lifetime.
  const up = join(daemon.dir, 'container-up');
  const running = runInContainer(box.dirs, daemon.mountpoint, `echo up > ${up}; sleep 3600`, 600_000);
  try {
    // a hang guard: 10 s on a host (scaled in the test VM)
    for (let i = 0; i < hangGuardMs(10_000) / 25 && !existsSync(up); i++) await new Promise((r) => setTimeout(r, 25));
    t.ok(existsSync(up), 'the container started');
    // its init: the process in its cgroup that is pid 1 of its own pid namespace
    const init = box.procs().find((pid) => {
      try {
        return /^NSpid:\s+\d+\s+1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false; // exited
      }
    });
    t.ok(init, 'found the container init');
    const rendered = run(process.execPath, [MAIN, 'render', '--pid', String(init), '/proc/meminfo']);
    t.equal(rendered.code, 0, rendered.stderr);
    t.match(rendered.stdout, /^MemTotal:\s+131072 kB$/m, 'render --pid: the container\'s meminfo');
  } finally {
    // killing the namespace's init ends everything in it
    for (const pid of box.procs()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await running;
  const bad = run(process.execPath, [MAIN, 'render', 'proc/nope']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /no such file proc\/nope; files: proc\/meminfo/);
});
