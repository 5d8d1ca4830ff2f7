// The numbers people watch, read by the real tools inside containers over a real mount, over time: top,
// vmstat, mpstat, free -s and Python's pread on a kept-open fd next to a busy loop or a growing
// allocation; /proc/stat sampled at 20 Hz (never a decreasing counter, never more busy than the host CPU);
// --enable-cfs; load averages of several containers; pinning to the CPUs the files list and the tools'
// CPU counts; a cpuset change mid-run; uptime after a restart into an old cgroup; diskstats before any I/O.
//
// What a tool shows is compared with what the container's cgroup says it used over the same run
// (v1 cpuacct.usage, v2 cpu.stat usage_usec), with a tolerance: a loaded CI machine slows both alike.

import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContainer, liveCgroupsMissing, type ScratchContainer } from './helpers/cgroups.js';
import { runInContainer } from './helpers/container.js';
import { cleanup, hangGuardMs, startDaemon, type Daemon } from './helpers/daemon.js';

const MiB = 1024 * 1024;
/** In the QEMU guests of `npm run test:vm` (TCG, ~17x slower). */
const VM = process.env.LXCFS_TS_VM !== undefined;
const hostCpus = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
const hostCpuCount = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
const lastCpu = String(Math.max(...readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => Number(/^cpu(\d+)/.exec(l)![1]))));
const missing = liveCgroupsMissing();
const TWO_CPUS = hostCpuCount < 2 ? 'needs 2 CPUs' : false;
if (missing) process.stderr.write(`live-view.test.ts: skipped, ${missing}\n`);
if (TWO_CPUS) process.stderr.write(`live-view.test.ts: tests needing 2 CPUs skipped (this host has ${hostCpuCount})\n`);

/** A shell command printing the container's CPU usage so far in ns, for $USAGE inside the container. */
function usageCommand(c: ScratchContainer): string {
  // v2: usage_usec with "000" appended, not $2*1000 printed with %d: mawk (Debian's awk) clamps %d to
  // 2^31-1, so from 2.1 s of CPU on every reading would be the same number.
  return c.layout === 'v2' ? `awk '/^usage_usec/{print $2 "000"}' ${c.cpuacct}/cpu.stat` : `cat ${c.cpuacct}/cpuacct.usage`;
}
const USAGE = '$(sh -c "$USAGE")';

/** Start a daemon for one test, stopped by its teardown (registered before anything else can throw). */
async function daemonFor(t: Test, args: string[] = [], env: Record<string, string> = {}): Promise<Daemon> {
  const daemon = await startDaemon({ args, env });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  return daemon;
}

/** "rate <u0> <u1> <t0> <t1>" lines: the container's CPU use over that span, in % of one CPU. */
function rateOf(line: string | undefined): number {
  const [u0, u1, t0, t1] = (line ?? '').split(' ').slice(1).map(Number);
  return ((u1! - u0!) / (t1! - t0!)) * 100;
}

const field = (out: string, key: string) => new RegExp(`^${key}[ =](.*)$`, 'm').exec(out)?.[1];

t.test('top, vmstat and mpstat show the container\'s CPU use while it happens', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'watch', { cpus: lastCpu, memoryBytes: 512 * MiB });
  const span = (name: string, cmd: string) => `u0=${USAGE}; t0=$(date +%s%N); ${cmd}; u1=${USAGE}; t1=$(date +%s%N); echo "rate-${name} $u0 $u1 $t0 $t1"`;
  const r = await runInContainer(
    box.dirs,
    daemon.mountpoint,
    [
      '(while :; do :; done) & B=$!',
      'sleep 0.3',
      span('top', 'top -bn2 -d1 | grep "^%Cpu" | tail -1 | sed "s/^/top /"'),
      span('vmstat', 'vmstat 1 2 | tail -1 | sed "s/^/vmstat /"'),
      span('mpstat', 'mpstat -P ALL 1 1 > /tmp/mpstat.$$; grep "^Average: *all" /tmp/mpstat.$$ | sed "s/^/mpstat /"; head -1 /tmp/mpstat.$$ | sed "s/^/mpstat-header /"; grep "^Average: *[0-9]" /tmp/mpstat.$$ | sed "s/^/mpstat-cpu /"; rm /tmp/mpstat.$$'),
      'kill $B',
    ].join('\n'),
    60_000,
    { env: { USAGE: usageCommand(box) } },
  );
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const rate = (name: string) => rateOf(lines.find((l) => l.startsWith(`rate-${name} `)));

  // top: "%Cpu(s): 97.0 us,  1.0 sy,  0.0 ni,  2.0 id, ..." -> busy = 100 - id
  const topIdle = Number(/(\d+\.\d) id/.exec(field(r.stdout, 'top') ?? '')?.[1]);
  t.ok(Math.abs(100 - topIdle - rate('top')) <= 25, `top's second sample: ${(100 - topIdle).toFixed(1)} % busy, the cgroup used ${rate('top').toFixed(1)} % of its CPU`);
  t.ok(rate('top') < 50 || 100 - topIdle > 40, 'a busy container does not look idle');

  // vmstat: "r b swpd free buff cache si so bi bo in cs us sy id wa st" -> id is the 15th column
  const vm = (field(r.stdout, 'vmstat') ?? '').trim().split(/\s+/).map(Number);
  t.ok(Math.abs(100 - vm[14]! - rate('vmstat')) <= 25, `vmstat: ${100 - vm[14]!} % busy, the cgroup used ${rate('vmstat').toFixed(1)} %`);

  // mpstat: "(1 CPU)" and one CPU line, under the host id of the container's CPU
  t.match(field(r.stdout, 'mpstat-header'), /\(1 CPU\)/, 'mpstat counts one CPU');
  t.equal(lines.filter((l) => l.startsWith('mpstat-cpu ')).map((l) => l.split(/\s+/)[2]).join(','), lastCpu, `mpstat lists CPU ${lastCpu}`);
  const mpIdle = Number((field(r.stdout, 'mpstat') ?? '').trim().split(/\s+/).pop());
  t.ok(Math.abs(100 - mpIdle - rate('mpstat')) <= 25, `mpstat: ${(100 - mpIdle).toFixed(1)} % busy, the cgroup used ${rate('mpstat').toFixed(1)} %`);
});

t.test('free -s and a kept-open pread see memory grow; pread sees CPU time move', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'grow', { cpus: lastCpu, memoryBytes: 512 * MiB });
  const out = join(daemon.dir, 'free.out');
  writeFileSync(out, '');
  const python = [
    'import os,time,subprocess,sys',
    'fd=os.open("/proc/meminfo",os.O_RDONLY)',
    'st=os.open("/proc/stat",os.O_RDONLY)',
    'def mem(): return dict((l.split(":")[0], int(l.split()[1])) for l in os.pread(fd,65536,0).decode().splitlines())',
    'def cpu(): return [int(x) for x in os.pread(st,65536,0).decode().splitlines()[0].split()[1:]]',
    'def used(m): return m["MemTotal"]-m["MemFree"]',
    'a=used(mem())',
    'b=bytearray(100*1024*1024)',
    'for i in range(0,len(b),4096): b[i]=1',
    'c=used(mem())',
    'print("pread-mem", a, c)',
    'busy=subprocess.Popen(["sh","-c","while :; do :; done"])',
    'time.sleep(0.2); u0=int(subprocess.check_output(os.environ["USAGE"], shell=True)); t0=time.time(); s0=cpu()',
    'time.sleep(1)',
    's1=cpu(); u1=int(subprocess.check_output(os.environ["USAGE"], shell=True)); t1=time.time()',
    'busy.kill()',
    'd=[y-x for x,y in zip(s0,s1)]',
    'print("pread-cpu", 100*(d[0]+d[2])/max(1,sum(d)), 100*(u1-u0)/1e9/(t1-t0))',
  ].join('\n');
  const r = await runInContainer(
    box.dirs,
    daemon.mountpoint,
    [
      // free's first sample comes before the allocation (we wait for it), later ones after it.
      `free -b -s 1 -c 4 > ${out} & F=$!`,
      `until grep -q "^Mem:" ${out}; do sleep 0.05; done`,
      'python3 -c "b=bytearray(100*1024*1024)\nfor i in range(0,len(b),4096): b[i]=1\nimport time; time.sleep(4)" & P=$!',
      'wait $F; kill $P',
      `cat ${out} | grep "^Mem:" | sed "s/^/free /"`,
      `python3 -c '${python}'`,
    ].join('\n'),
    60_000,
    { env: { USAGE: usageCommand(box) } },
  );
  t.equal(r.code, 0, r.stderr);
  const used = r.stdout.split('\n').filter((l) => l.startsWith('free Mem:')).map((l) => Number(l.trim().split(/\s+/)[3]));
  t.equal(used.length, 4, 'free printed four samples');
  t.ok(Math.max(...used.slice(1)) - used[0]! >= 90 * MiB, `free -s: "used" grew by the 100 MiB allocation (${used.map((u) => (u / MiB).toFixed(1)).join(' -> ')} MiB)`);
  t.equal(Number(/^free Mem:\s+(\d+)/m.exec(r.stdout)?.[1]), 512 * MiB, 'free: the container\'s total');

  const [a, c] = (field(r.stdout, 'pread-mem') ?? '').split(' ').map(Number);
  t.ok(c! - a! >= 90 * 1024, `pread(fd, .., 0) of a kept-open /proc/meminfo: used ${a} -> ${c} kB`);
  const [shown, measured] = (field(r.stdout, 'pread-cpu') ?? '').split(' ').map(Number);
  t.ok(Math.abs(shown! - measured!) <= 25, `pread of a kept-open /proc/stat: ${shown!.toFixed(1)} % busy over 1 s, the cgroup used ${measured!.toFixed(1)} %`);
});

t.test('/proc/stat at 20 Hz while busy and idle alternate: no counter decreases, no CPU busier than the host\'s', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'sample', { memoryBytes: 256 * MiB });
  const hostStat = join(daemon.dir, 'host-stat');
  writeFileSync(hostStat, '');
  const python = [
    'import os,time,json',
    'c=os.open("/proc/stat",os.O_RDONLY); h=os.open(os.environ["HOSTSTAT"],os.O_RDONLY)',
    'def lines(fd): return {l.split()[0]: [int(x) for x in l.split()[1:]] for l in os.pread(fd,65536,0).decode().splitlines() if l.startswith("cpu")}',
    'samples=[]',
    'for i in range(200):',
    '  samples.append((lines(c), lines(h)))  # the container first, then the host: the host is read later',
    '  time.sleep(0.05)',
    'print(json.dumps(samples))',
  ].join('\n');
  const r = await runInContainer(
    box.dirs,
    daemon.mountpoint,
    [
      '(while :; do timeout 1 sh -c "while :; do :; done"; sleep 1; done) & B=$!',
      '(while :; do timeout 0.7 sh -c "while :; do :; done"; sleep 0.4; done) & C=$!',
      `python3 -c '${python}'`,
      'kill $B $C',
    ].join('\n'),
    120_000,
    { before: `mount --bind /proc/stat ${hostStat}`, env: { HOSTSTAT: hostStat } },
  );
  t.equal(r.code, 0, r.stderr);
  const samples = JSON.parse(r.stdout.trim().split('\n').pop()!) as [Record<string, number[]>, Record<string, number[]>][];
  t.equal(samples.length, 200);
  let decreases = 0;
  let overHost = 0;
  let moved = 0;
  const busy = (f: number[]) => f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  for (let i = 0; i < samples.length; i++) {
    const [ct, host] = samples[i]!;
    for (const [name, fields] of Object.entries(ct)) {
      if (name !== 'cpu' && busy(fields) > busy(host[name] ?? [])) overHost++;
      const before = samples[i - 1]?.[0][name];
      if (before && fields.some((v, f) => v < before[f]!)) decreases++;
      if (before && fields[0]! > before[0]!) moved++;
    }
  }
  t.equal(decreases, 0, 'no field of any line ever decreased over 200 samples');
  t.equal(overHost, 0, 'no cpuN line was ever busier than that host CPU');
  t.ok(moved > 20, `user time grew while busy (${moved} rises)`);
  t.same(Object.keys(samples[0]![0]).filter((k) => k !== 'cpu'), hostCpus === '0-1' ? ['cpu0', 'cpu1'] : Object.keys(samples[0]![1]).filter((k) => k !== 'cpu'), 'every CPU of its cpuset, by host id');
});

t.test('--enable-cfs: a 0.5-CPU quota on a 0-1 cpuset shows the usage of a loop pinned to either CPU', { skip: missing ?? TWO_CPUS }, async (t) => {
  const daemon = await daemonFor(t, ['--enable-cfs']);
  const box = createContainer(t, 'cfs', { cpus: '0-1', memoryBytes: 256 * MiB, quotaCpus: 0.5 });
  const measure = (cpu: string) =>
    [
      `taskset -c ${cpu} sh -c "while :; do :; done" & B=$!`,
      'sleep 0.3',
      `s0=$(head -1 /proc/stat); u0=${USAGE}; t0=$(date +%s%N)`,
      'sleep 2',
      `s1=$(head -1 /proc/stat); u1=${USAGE}; t1=$(date +%s%N)`,
      'kill $B; wait $B 2>/dev/null',
      `echo "pinned-${cpu} $s0 | $s1 | $u0 $u1 $t0 $t1"`,
    ].join('\n');
  const r = await runInContainer(box.dirs, daemon.mountpoint, `cat /sys/devices/system/cpu/online; ${measure('1')}\n${measure('0')}`, 60_000, { env: { USAGE: usageCommand(box) } });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.split('\n')[0], '0', 'ceil(0.5) = 1 CPU shown: cpu0');
  for (const cpu of ['1', '0']) {
    const line = field(r.stdout, `pinned-${cpu}`)!;
    const [a, b, u] = line.split(' | ');
    const f0 = a!.split(/\s+/).slice(1).map(Number);
    const f1 = b!.split(/\s+/).slice(1).map(Number);
    const [u0, u1, t0, t1] = u!.split(' ').map(Number);
    const shownBusy = f1[0]! + f1[2]! - f0[0]! - f0[2]!;
    const shownTotal = f1.reduce((s, v) => s + v, 0) - f0.reduce((s, v) => s + v, 0);
    const usedTicks = (u1! - u0!) / 1e7;
    const quotaShare = (u1! - u0!) / (t1! - t0!) / 0.5; // share of the quota the loop got
    t.ok(Math.abs(shownBusy - usedTicks) <= Math.max(15, usedTicks * 0.3), `pinned to cpu${cpu}: /proc/stat grew by ${shownBusy} busy ticks, the cgroup used ${usedTicks.toFixed(1)}`);
    t.ok(Math.abs(shownBusy / Math.max(1, shownTotal) - quotaShare) <= 0.3, `pinned to cpu${cpu}: ${((100 * shownBusy) / Math.max(1, shownTotal)).toFixed(0)} % busy shown, ${(100 * quotaShare).toFixed(0)} % of the quota used`);
  }
});

t.test('three containers under -l: every one\'s load moves every tick, and alike', { skip: missing ?? false }, async (t) => {
  // Short ticks (test hook): 500 ms, 1 s in the test VM. Each container reads its load for 9 ticks of its
  // own clock, by a Python loop (no process per read: a reader that forks counts in its own load): 9 ticks
  // are still the first, rising part of a 1-minute average, so with a busy loop always runnable it never
  // falls, however slow the machine.
  const tickMs = VM ? 1000 : 500;
  const daemon = await daemonFor(t, ['-l'], { LXCFS_TS_LOADAVG_INTERVAL_MS: String(tickMs) });
  const boxes = [0, 1, 2].map((i) => createContainer(t, `load${i}`, { memoryBytes: 128 * MiB }));
  const reader = ['import time', 't0=time.monotonic()', `while time.monotonic()-t0 < ${(9 * tickMs) / 1000}:`, '  print(open("/proc/loadavg").read().split()[0], flush=True)', '  time.sleep(0.1)'].join('\n');
  const script = ['(while :; do :; done) & B=$!', `python3 -c '${reader}'`, 'kill $B'].join('\n');
  const runs = await Promise.all(boxes.map((b) => runInContainer(b.dirs, daemon.mountpoint, script)));
  const finals: number[] = [];
  runs.forEach((r, i) => {
    t.equal(r.code, 0, r.stderr);
    const loads = r.stdout.trim().split('\n').map(Number);
    const distinct = new Set(loads).size;
    t.ok(distinct >= 5, `container ${i}: its 1-minute load took ${distinct} values in 9 ticks of ${tickMs} ms (${[...new Set(loads)].join(' ')})`);
    t.ok(loads.every((v, j) => j === 0 || v >= loads[j - 1]!), `container ${i}: never fell while busy`);
    finals.push(loads[loads.length - 1]!);
  });
  t.ok(Math.min(...finals) > 0 && Math.max(...finals) / Math.min(...finals) <= 1.5, `identical containers, alike loads: ${finals.join(', ')}`);
});

t.test('pinning to every CPU the files list succeeds, and every tool counts the same CPUs', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'pin', { cpus: lastCpu, memoryBytes: 256 * MiB });
  const r = await runInContainer(
    box.dirs,
    daemon.mountpoint,
    [
      'online=$(cat /sys/devices/system/cpu/online); echo "online $online"',
      'for c in $(echo $online | tr , " "); do taskset -c $c true && echo "pinned $c"; done',
      'echo "count nproc $(nproc)"',
      'echo "count nproc--all $(nproc --all)"',
      'echo "count getconf-onln $(getconf _NPROCESSORS_ONLN)"',
      'echo "count getconf-conf $(getconf _NPROCESSORS_CONF)"',
      'echo "count lscpu $(lscpu | awk -F: \'/^CPU\\(s\\)/{gsub(/ /,"",$2); print $2}\')"',
      'echo "count python $(python3 -c "import os; print(os.cpu_count())")"',
      'echo "count psutil $(/usr/bin/python3 -c "import psutil; print(psutil.cpu_count(), len(psutil.cpu_times(percpu=True)))" | tr " " ,)"',
      `echo "count node $(${process.execPath} -e "console.log(require(\\"os\\").cpus().length)")"`,
      'echo "count mpstat $(mpstat | head -1 | grep -o "([0-9]* CPU)" | tr -dc 0-9)"',
      'echo "count sar $(sar -u 1 1 | head -1 | grep -o "([0-9]* CPU)" | tr -dc 0-9)"',
      'echo "count top $(top -1 -bn1 | grep -c "^%Cpu[0-9]")"',
      'echo "top-ids $(top -1 -bn1 | grep -o "^%Cpu[0-9]*" | tr -dc "0-9 ")"',
      '(while :; do :; done) & B=$!',
      'tmux -L lxcfs-ts-test new-session -d -x 120 -y 20 "htop -d 5"; sleep 2; tmux -L lxcfs-ts-test capture-pane -p > /tmp/htop.$$; tmux -L lxcfs-ts-test kill-server',
      'echo "htop-live $(grep -E "^ *(CPU|[0-9]+)\\[" /tmp/htop.$$ | grep -vc offline)"; rm -f /tmp/htop.$$; kill $B',
    ].join('\n'),
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(field(r.stdout, 'online'), lastCpu, `online names the host id of its CPU (${lastCpu})`);
  t.equal(field(r.stdout, 'pinned'), lastCpu, 'taskset -c to that CPU succeeds inside');
  const counts = Object.fromEntries([...r.stdout.matchAll(/^count (\S+) (.*)$/gm)].map((m) => [m[1], m[2]]));
  t.same(counts, {
    nproc: '1',
    'nproc--all': '1',
    'getconf-onln': '1',
    'getconf-conf': '1',
    lscpu: '1',
    python: '1',
    psutil: '1,1',
    node: '1',
    mpstat: '1',
    sar: '1',
    top: '1',
  }, 'nproc, getconf, lscpu, Python, psutil, Node, sysstat and top count one CPU');
  t.equal(field(r.stdout, 'top-ids')?.trim(), lastCpu, 'top -1 shows it under its host id');
  // htop draws a meter per CPU id up to the highest it finds; lower ids outside the view show as
  // "offline", as on a host whose CPU 0 is offline (docs/files.md). One live meter.
  t.equal(field(r.stdout, 'htop-live'), '1', 'htop draws exactly one live CPU meter');
});

t.test('a cpuset change in the middle of sampling: no counter decreases', { skip: missing ?? TWO_CPUS }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'move', { cpus: '0', memoryBytes: 256 * MiB });
  const marks = join(daemon.dir, 'marks');
  writeFileSync(marks, '');
  const hostStat = join(daemon.dir, 'host-stat');
  writeFileSync(hostStat, '');
  const python = [
    'import os,time,json',
    'fd=os.open("/proc/stat",os.O_RDONLY); h=os.open(os.environ["HOSTSTAT"],os.O_RDONLY)',
    'def lines(): return [[l.split()[0]]+[int(x) for x in l.split()[1:]] for l in os.pread(fd,65536,0).decode().splitlines() if l.startswith("cpu")]',
    // the host's per-CPU totals (user..steal; guest time is inside user and nice)
    'def host(): return {l.split()[0]: sum(int(x) for x in l.split()[1:9]) for l in os.pread(h,65536,0).decode().splitlines() if l.startswith("cpu") and l[3] != " "}',
    // the first read of an fd gets what was rendered at its open; later reads at offset 0 render anew
    'lines(); samples=[]',
    'for i in range(120):',
    // the clocks before and after the read (the file is rendered in between): the monotonic clock, and
    // the host CPUs' tick counters, which the container's lines follow
    '  t0=time.monotonic(); h0=host(); ls=lines(); h1=host(); samples.append([["t", t0, time.monotonic(), h0, h1]] + ls)',
    '  if i in (30, 70): open(os.environ["MARKS"],"a").write(str(i)+"\\n")',
    '  if i in (30, 70):',
    '    while open(os.environ["MARKS"]).read().count("moved") < (1 if i == 30 else 2): time.sleep(0.01)',
    '  time.sleep(0.02)',
    'print(json.dumps(samples))',
  ].join('\n');
  const running = runInContainer(box.dirs, daemon.mountpoint, `(while :; do :; done) & B=$!\npython3 -c '${python}'\nkill $B`, 120_000, {
    before: `mount --bind /proc/stat ${hostStat}`,
    env: { MARKS: marks, HOSTSTAT: hostStat },
  });
  // Event order, not time: move the cpuset when the sampler says it reached sample 30, then 70.
  const waitMark = async (mark: string) => {
    for (let i = 0; i < hangGuardMs(40_000) / 20 && !readFileSync(marks, 'utf8').split('\n').includes(mark); i++) await new Promise((r) => setTimeout(r, 20));
  };
  await waitMark('30');
  box.setCpus('1');
  writeFileSync(marks, 'moved\n', { flag: 'a' });
  await waitMark('70');
  box.setCpus('0-1');
  writeFileSync(marks, 'moved\n', { flag: 'a' });
  const r = await running;
  t.equal(r.code, 0, r.stderr);
  const samples = JSON.parse(r.stdout.trim().split('\n').pop()!) as (string | number)[][][];
  t.equal(samples.length, 120);
  t.same(samples[0]!.map((l) => l[0]), ['t', 'cpu', 'cpu0'], 'cpuset {0}');
  t.same(samples[50]!.map((l) => l[0]), ['t', 'cpu', 'cpu1'], 'then {1}');
  t.same(samples[119]!.map((l) => l[0]), ['t', 'cpu', 'cpu0', 'cpu1'], 'then {0,1}');
  // Lines by name, as mpstat and psutil match them; a CPU that comes back resumes its counters.
  let decreases = 0;
  const jumps: string[] = [];
  const seen = new Map<string, number[]>();
  for (let i = 0; i < samples.length; i++) {
    for (const [name, ...fields] of samples[i]!.slice(1)) {
      const before = seen.get(name as string);
      if (before && fields.some((v, f) => (v as number) < before[f]!)) decreases++;
      seen.set(name as string, fields as number[]);
    }
    if (i > 0) {
      // What the aggregate gained in an interval: at most what the shown CPUs' host counters gained from
      // before the previous read to after this one (the two renders happened in between), plus a tick of
      // rounding per line. A CPU appearing must not add its whole history. (The host's counters, which the
      // lines follow exactly, rather than the wall clock, which tick-sampled counters only approximate.)
      const total = (k: number) => (samples[k]![1]!.slice(1) as number[]).reduce((a, b) => a + b, 0);
      const clocks = (k: number) => samples[k]![0]! as unknown as [string, number, number, Record<string, number>, Record<string, number>];
      const seconds = clocks(i)[2] - clocks(i - 1)[1];
      const shown = [...new Set([i - 1, i].flatMap((k) => samples[k]!.slice(2).map((l) => l[0] as string)))];
      const allowed = shown.reduce((sum, c) => sum + (clocks(i)[4][c] ?? 0) - (clocks(i - 1)[3][c] ?? 0), 0) + 2 * shown.length;
      if (total(i) - total(i - 1) > allowed) jumps.push(`sample ${i}: +${total(i) - total(i - 1)} ticks, the host's ${shown.join(',')} gained ${allowed - 2 * shown.length} in ${seconds.toFixed(3)} s`);
    }
  }
  t.equal(decreases, 0, 'no field of the aggregate or of any cpuN line decreased across both changes');
  t.same(jumps, [], 'and the aggregate never gained more than the shown CPUs had time for');
  const user = (s: (string | number)[][]) => s[1]![1] as number;
  t.ok(user(samples[119]!) > user(samples[0]!), 'and the busy loop\'s user time kept growing');
});

t.test('uptime after a restart into an old cgroup: idle counts only what ran since the new init', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'restart', { cpus: lastCpu, memoryBytes: 128 * MiB });
  const first = await runInContainer(box.dirs, daemon.mountpoint, 'timeout 2 sh -c "while :; do :; done"; cat /proc/uptime');
  t.equal(first.code, 0, first.stderr);
  t.ok(box.cpuUsageNs() > 0.5e9, `the first container used ${(box.cpuUsageNs() / 1e9).toFixed(2)} s of CPU in the cgroup`);
  // The cgroup's counter around the second container: all it used, its setup before its init included.
  const usedBefore = box.cpuUsageNs();
  const second = await runInContainer(box.dirs, daemon.mountpoint, 'sleep 1; cat /proc/uptime');
  const usedBySecond = (box.cpuUsageNs() - usedBefore) / 1e9;
  t.equal(second.code, 0, second.stderr);
  const [age, idle] = second.stdout.trim().split(' ').map(Number);
  t.ok(age! >= 0.9 && age! < 30, `the new init's age (${age})`);
  // idle = age x 1 CPU - what ran since the new init: at least age minus all the second container used (0.05 s
  // for the two roundings to 10 ms), whatever the machine's speed; counting the first container's CPU time
  // too would leave less.
  t.ok(idle! >= age! - usedBySecond - 0.05 && idle! <= age! + 0.05, `idle ${idle} of ${age} s on 1 CPU, the second container used ${usedBySecond.toFixed(2)} s: the old container's CPU time is not counted`);
  t.ok(age! - usedBySecond - 0.05 > 0 && usedBefore / 1e9 > usedBySecond + 0.05, 'and that bound can fail: it is above 0, and counting the first container would take idle below it');
});

t.test('diskstats lists the host\'s disks before the container did any I/O', { skip: missing ?? false }, async (t) => {
  const daemon = await daemonFor(t);
  const box = createContainer(t, 'disks', { memoryBytes: 128 * MiB });
  const r = await runInContainer(box.dirs, daemon.mountpoint, 'cat /proc/diskstats');
  t.equal(r.code, 0, r.stderr);
  const hostDisks = readFileSync('/proc/diskstats', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => !/^(loop|ram)\d/.test(f[2]!) || [3, 7, 14].some((i) => f[i] !== '0'))
    .map((f) => f[2]);
  const shown = r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/));
  t.same(shown.map((f) => f[2]), hostDisks, 'every disk the host used, in the host\'s order');
  t.ok(shown.every((f) => f.length === 20), '20 fields each');
});
