// The daemon end to end on this machine: a real FUSE mount, real memory cgroups, readers in pid+mount
// namespaces with /proc/meminfo bind-mounted from the daemon (what a container does).

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, hangGuardMs, MAIN, mountsAt, run, scratchDir, startDaemon } from './helpers/daemon.js';
import { createContainer, liveCgroupsMissing } from './helpers/cgroups.js';

const noCgroups = liveCgroupsMissing() ?? false;
if (noCgroups) process.stderr.write(`daemon.test.ts: tests with containers skipped: ${noCgroups}\n`);

const MiB = 1024 * 1024;

function hostMemTotalKb(): number {
  return Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
}

/** Run argv as pid 1's descendant in a new pid+mount namespace inside cgroupDirs, with meminfo bind-mounted. */
function inContainer(cgroupDirs: string[], mountpoint: string, argv: string[]) {
  const script = 'for d in $CGS; do echo $$ > "$d/cgroup.procs" || exit 3; done; exec unshare -m --pid --fork sh -c \'mount --bind "$MNT/proc/meminfo" /proc/meminfo && exec "$@"\' container "$@"';
  return run('env', [`CGS=${cgroupDirs.join(' ')}`, `MNT=${mountpoint}`, 'sh', '-c', script, 'join', ...argv]);
}

function freeTotalBytes(stdout: string): number {
  const mem = stdout.split('\n').find((l) => l.startsWith('Mem:'));
  if (!mem) throw new Error(`no Mem: line in free output: ${stdout}`);
  return Number(mem.split(/\s+/)[1]);
}

t.test('command line', async (t) => {
  const help = run(process.execPath, [MAIN, '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: lxcfs-ts \[options\] MOUNTPOINT/);
  for (const flag of ['--disable-swap', '--disable-zswap', '--pidfile', '--runtime-dir', '--enable-loadavg', '--enable-cfs', '--enable-pidfd', '--enable-cgroup', '--enable-psi-poll', '--metrics', '--no-reattach', '--debug', '--foreground', '-o OPTIONS']) t.match(help.stdout, flag);

  const version = run(process.execPath, [MAIN, '--version']);
  t.equal(version.code, 0);
  t.equal(version.stdout, `lxcfs-ts ${JSON.parse(readFileSync(join(MAIN, '../../../../package.json'), 'utf8')).version}\n`);

  for (const bad of [['--bogus', '/tmp/x'], [], ['/a', '/b'], ['-o', 'allow_other;rm', '/tmp/x'], ['--pidfile=', '/tmp/x']]) {
    const r = run(process.execPath, [MAIN, ...bad]);
    t.equal(r.code, 2, `exit 2 for ${JSON.stringify(bad)}`);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr');
    t.match(r.stderr, /^lxcfs-ts: .*\(see lxcfs-ts --help\)$/m);
  }
});

t.test('every LXCFS 5.0, 6.0 and 7.0 flag is accepted; the ones without an effect say so', async (t) => {
  // The flags of lxc/lxcfs src/lxcfs.c (long_options and getopt's "dulfhvso:p:") in those releases.
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  const runtime = join(dir, 'run');
  const flags = ['-f', '-d', '-u', '-z', '--disable-zswap', '-l', '--enable-cfs', '-s', '--enable-pidfd', '--enable-cgroup', '--enable-psi-poll', '--runtime-dir', runtime, '-o', 'default_permissions'];
  const child = (await import('node:child_process')).spawn(process.execPath, [MAIN, ...flags, mountpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', r));
  t.teardown(() => void child.kill('SIGKILL'));
  for (let i = 0; i < 1200 && !out.includes('"msg":"serving"'); i++) await new Promise((r) => setTimeout(r, 25));
  t.match(out, /"msg":"serving"/, 'it starts with all of them');
  t.equal(readFileSync(join(runtime, 'lxcfs-ts.pid'), 'utf8').trim(), String(child.pid), '--runtime-dir holds the pid file');
  const status = run(process.execPath, [MAIN, 'status', '--runtime-dir', runtime]);
  t.equal(status.code, 0, 'status --runtime-dir finds the daemon started with it');
  t.match(status.stdout, new RegExp(`pid:?\\s+${child.pid}\\b`), 'and names its pid');
  for (const note of ['-s is ignored', '--enable-pidfd has no effect', '--enable-cgroup has no effect', '--enable-psi-poll has no effect']) t.match(out, note, `logged: ${note}`);
  t.match(out, /"zswap":false/, '-z/--disable-zswap is in effect');
  t.match(run('cat', [join(mountpoint, 'proc/meminfo')]).stdout, /^Zswap:\s+0 kB$/m);
  child.kill('SIGTERM');
  await exited;
  t.same(mountsAt(mountpoint), [], 'unmounted');
});

t.test('meminfo per container over a real mount', { skip: noCgroups }, async (t) => {
  const daemon = await startDaemon();
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const big = createContainer(t, '512m', { memoryBytes: 512 * MiB });
  const small = createContainer(t, '256m', { memoryBytes: 256 * MiB });
  const meminfo = join(daemon.mountpoint, 'proc/meminfo');

  const listing = run('ls', ['-la', join(daemon.mountpoint, 'proc')]);
  t.match(listing.stdout, /-r--r--r-- .* meminfo/, 'proc/meminfo listed, read-only');
  t.equal(statSync(meminfo).size, 0, 'st_size 0, like the kernel\'s /proc files');

  const hostView = run('cat', [meminfo]);
  t.equal(hostView.code, 0);
  t.match(hostView.stdout, new RegExp(`^MemTotal:\\s+${hostMemTotalKb()} kB$`, 'm'), 'a host process sees the host MemTotal');

  const freeBig = inContainer(big.dirs, daemon.mountpoint, ['free', '-b']);
  t.equal(freeBig.code, 0, freeBig.stderr);
  t.equal(freeTotalBytes(freeBig.stdout), 512 * MiB, 'free -b in the 512 MiB container');

  const freeSmall = inContainer(small.dirs, daemon.mountpoint, ['free', '-b']);
  t.equal(freeSmall.code, 0, freeSmall.stderr);
  t.equal(freeTotalBytes(freeSmall.stdout), 256 * MiB, 'free -b in the 256 MiB container');

  // A process moved into a tighter child cgroup still sees its container (the pid namespace's init).
  const py = inContainer(small.dirs, daemon.mountpoint, [
    'python3',
    '-c',
    // Two opens are two renders: usage lines (MemFree, Cached...) may move between them, so compare the
    // file's shape (same keys in the same order, every line complete) and the fixed MemTotal.
    'import os\nwhole=open("/proc/meminfo","rb").read()\nf=os.open("/proc/meminfo",os.O_RDONLY)\nparts=[]\nwhile True:\n  b=os.read(f,1024)\n  if not b: break\n  parts.append(b)\nchunked=b"".join(parts)\nkeys=lambda t: [l.split(b":")[0] for l in t.splitlines()]\nprint(len(parts)>1, keys(whole)==keys(chunked), chunked.endswith(b"\\n"), whole.decode().splitlines()[0], chunked.decode().splitlines()[0])',
  ]);
  t.equal(py.code, 0, py.stderr);
  t.match(py.stdout, /^True True True MemTotal:\s+262144 kB MemTotal:\s+262144 kB$/m, 'Python read() and 1 KiB chunks agree');

  const head = inContainer(big.dirs, daemon.mountpoint, ['head', '-c', '24', '/proc/meminfo']);
  t.equal(head.stdout, 'MemTotal:         524288', 'head -c');

  const nobody = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', meminfo]);
  t.equal(nobody.code, 0, `non-root reader: ${nobody.stderr}`);
  t.match(nobody.stdout, /^MemTotal:/);

  // Root-only slabinfo: a non-root open is refused; an fd opened as root still reads from offset 0 after
  // the process drops to nobody (permission is checked at open, as the kernel does).
  const slabinfo = join(daemon.mountpoint, 'proc/slabinfo');
  t.not(run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', slabinfo]).code, 0, 'non-root open of slabinfo refused');
  const dropped = run('python3', ['-c', `import os\nf=os.open("${slabinfo}",os.O_RDONLY)\nos.setgid(65534)\nos.setuid(65534)\nprint(len(os.pread(f,65536,0))>0)`]);
  t.equal(dropped.stdout.trim(), 'True', `opened as root, re-read at 0 as nobody: ${dropped.stderr}`);

  const write = run('sh', ['-c', 'echo 1 > "$0"', meminfo]);
  t.not(write.code, 0, 'write refused');
  t.match(write.stderr, /Read-only file system/);
  for (const [cmd, args] of [
    ['mkdir', [join(daemon.mountpoint, 'proc/x')]],
    ['rm', ['-f', meminfo]],
    ['touch', [join(daemon.mountpoint, 'proc/new')]],
    ['chmod', ['666', meminfo]],
    ['mv', [meminfo, join(daemon.mountpoint, 'proc/m2')]],
  ] as const) {
    const r = run(cmd, [...args]);
    t.not(r.code, 0, `${cmd} refused`);
    t.match(r.stderr, /Read-only file system/, `${cmd}: EROFS`);
  }
  const missing = run('cat', [join(daemon.mountpoint, 'proc/nonexistent')]);
  t.match(missing.stderr, /No such file or directory/, 'unknown files do not exist');

  t.notOk(daemon.logs().some((l) => (l.level as number) >= 50), 'no error logged');
});

t.test('lifecycle: SIGTERM unmounts, SIGKILL leaves a stale mount the next start recovers', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));

  const first = await startDaemon({ dir, mountpoint });
  t.ok(existsSync(first.pidfile), 'pid file written');
  t.equal(readFileSync(first.pidfile, 'utf8').trim(), String(first.child.pid));

  // SIGUSR1 must not open Node's inspector (a root daemon listening on 127.0.0.1:9229).
  first.child.kill('SIGUSR1');
  for (let i = 0; i < 400 && !first.logs().some((l) => /SIGUSR1/.test(String(l.msg))); i++) await new Promise((r) => setTimeout(r, 25));
  t.ok(first.logs().some((l) => /SIGUSR1/.test(String(l.msg))), 'SIGUSR1 handled and logged');
  t.notOk(first.child.exitCode !== null, 'still running after SIGUSR1');
  t.notMatch(readFileSync('/proc/net/tcp', 'utf8'), /:2405 [0-9A-F]{8}:0000 0A/, 'nothing listens on 9229');

  const second = await startDaemon({ dir, mountpoint: join(dir, 'other'), waitReady: false });
  const refused = await second.exited;
  t.equal(refused.code, 1, 'a second daemon with the same pid file refuses to start');
  t.match(second.stderr(), /is locked by running lxcfs-ts \(pid \d+\)/);

  const stopped = await first.stop();
  t.equal(stopped.code, 0, 'exit 0 on SIGTERM');
  t.same(mountsAt(mountpoint), [], 'no mount left');
  t.notOk(existsSync(first.pidfile), 'pid file removed');
  t.notOk(existsSync(first.pidfile.replace(/\.pid$/, '.status.json')), 'status file removed');
  t.match(run(process.execPath, [MAIN, 'status', '-p', first.pidfile]).stderr, /no pid file/);

  const killed = await startDaemon({ dir, mountpoint });
  killed.child.kill('SIGKILL');
  await killed.exited;
  t.equal(mountsAt(mountpoint).length, 1, 'SIGKILL leaves the mount');
  t.throws(() => statSync(mountpoint), { code: 'ENOTCONN' }, 'stale: Transport endpoint is not connected');
  const nothingLive = run(process.execPath, [MAIN, 'reattach', mountpoint]);
  t.equal(nothingLive.code, 1, 'reattach onto a dead mount: an error, not "nothing to re-attach"');
  t.match(nothingLive.stderr, /no live lxcfs-ts mount on/);
  const dead = run(process.execPath, [MAIN, 'status', '-p', killed.pidfile]);
  t.equal(dead.code, 1, 'status: a killed daemon is not running');
  t.match(dead.stderr, new RegExp(`not running: no process holds the lock of pid file .* \\(it names pid ${killed.child.pid}, which holds no lock`));

  const recovered = await startDaemon({ dir, mountpoint });
  t.ok(recovered.logs().some((l) => /stale mount/.test(String(l.msg))), 'recovery logged');
  t.equal(mountsAt(mountpoint).length, 1, 'exactly one mount after recovery');
  t.match(run('cat', [join(mountpoint, 'proc/meminfo')]).stdout, /^MemTotal:/, 'serving again');

  const twice = await startDaemon({ dir: scratchDir(), mountpoint, waitReady: false });
  t.equal((await twice.exited).code, 1, 'a second daemon on a live mountpoint refuses');
  t.match(twice.stderr(), /already a live fuse/);
  cleanup(twice.dir);

  t.equal((await recovered.stop()).code, 0);
  t.same(mountsAt(mountpoint), []);
});

t.test('mountpoint hygiene: a runtime\'s empty placeholders are mounted over, anything else refuses', async (t) => {
  const dir = scratchDir();
  const mountpoint = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mountpoint));
  // What Docker leaves when asked to bind /var/lib/lxcfs/proc/meminfo and the cpu directory while no
  // daemon serves: empty files and directories.
  mkdirSync(join(mountpoint, 'proc'), { recursive: true });
  mkdirSync(join(mountpoint, 'sys/devices/system/cpu'), { recursive: true });
  writeFileSync(join(mountpoint, 'proc/meminfo'), '');
  const daemon = await startDaemon({ dir, mountpoint });
  t.ok(daemon.logs().some((l) => /empty placeholders/.test(String(l.msg)) && l.count === 6), 'started, and said so');
  t.match(run('cat', [join(mountpoint, 'proc/meminfo')]).stdout, /^MemTotal:/, 'serving over them');
  t.equal((await daemon.stop()).code, 0);
  t.equal(readFileSync(join(mountpoint, 'proc/meminfo'), 'utf8'), '', 'the placeholders are still there after the unmount');

  writeFileSync(join(mountpoint, 'proc/notes'), 'somebody\'s data\n');
  const refused = await startDaemon({ dir, mountpoint, waitReady: false });
  t.equal((await refused.exited).code, 1, 'a mountpoint with data refuses');
  t.match(refused.stderr(), new RegExp(`is not empty: ${join(mountpoint, 'proc/notes')} is not an empty directory or file`));
  t.same(mountsAt(mountpoint), [], 'nothing mounted');
});

t.test('a daemon that sees no cgroup hierarchy says so as an error (every file would show the host\'s figures)', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  // Its own mount namespace (private: nothing of this leaks to the host) without /sys/fs/cgroup.
  // (node is its own argument, not inside the script: test:sanitize preloads its runtime by that path.)
  const r = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'umount -R /sys/fs/cgroup && mount -t tmpfs none /sys/fs/cgroup && exec "$@"', 'sh', process.execPath, MAIN, '-p', join(dir, 'pid'), join(dir, 'mnt')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  r.stdout.on('data', (d) => (out += d));
  const serving = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  // Until the error line is there (it follows "serving", possibly in a later chunk of the pipe) or the
  // daemon exited; a hang guard bounds the wait.
  const errorLogged = () => serving().some((l) => l.level === 50 && /no cgroup hierarchy is mounted/.test(String(l.msg)));
  for (let i = 0; i < hangGuardMs(30_000) / 25 && !errorLogged() && r.exitCode === null; i++) await new Promise((res) => setTimeout(res, 25));
  const logs = serving();
  t.equal(logs.find((l) => l.msg === 'serving')?.cgroupLayout, 'none');
  t.ok(logs.some((l) => l.level === 50 && /no cgroup hierarchy is mounted/.test(String(l.msg))), 'logged at error level');
  r.kill('SIGTERM');
  await new Promise((res) => r.on('exit', res));
});
