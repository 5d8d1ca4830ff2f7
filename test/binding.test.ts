// The patched fuse-native binding (vendor/fuse-native) on its own, through a tiny echo filesystem
// (helpers/echo-fs.cjs) in a child process: fuse-native answers FUSE requests on the Node main thread, so a
// process must never read its own mount; every reader here is another process. Covered: the caller
// context (pid = thread id, uid, gid) handed to each handler, whole reads of st_size-0 files under
// direct_io, file handles from JS, the reuse of per-thread state, libfuse loaded from beside the addon,
// unmount and stale-mount recovery without fusermount, the release of the native state after unmount, and
// sd_notify and flock (sd-notify.c).
// Under `npm run test:sanitize`, FUSE_NATIVE_ADDON names the sanitizer build, which echo-fs then loads.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import Fuse from 'fuse-native';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cleanup, mountsAt, ROOT, run, scratchDir } from './helpers/daemon.js';
import { startNotifySocket } from './helpers/notify-socket.js';

const ECHO_FS = join(ROOT, 'test/helpers/echo-fs.cjs');
const PKG = join(ROOT, 'node_modules/fuse-native'); // the installed copy (a link to vendor/fuse-native)
const ADDON_DIR = process.env.FUSE_NATIVE_ADDON ? dirname(process.env.FUSE_NATIVE_ADDON) : join(ROOT, 'vendor/fuse-native/build/Release');
const NODE_DIR = dirname(process.execPath);

interface EchoFs {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

interface Fixture {
  mnt: string;
  start: (opts?: { wrapper?: string[]; args?: string[]; env?: NodeJS.ProcessEnv }) => Promise<EchoFs>;
}

async function until(what: string, cond: () => boolean, fs?: EchoFs): Promise<void> {
  const deadline = Date.now() + 20_000; // a hang guard, not a timing assertion
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${fs ? `: ${fs.output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A scratch dir with a mountpoint, and echo-fs children on it. One teardown, whatever the assertions did:
 * SIGKILL the children still alive, then lazily unmount what is left and remove the dir.
 */
function fixture(t: { teardown: (fn: () => unknown) => void }): Fixture {
  const dir = scratchDir();
  const mnt = join(dir, 'mnt');
  const children: EchoFs[] = [];
  t.teardown(async () => {
    for (const fs of children) if (fs.child.exitCode === null && fs.child.signalCode === null) fs.child.kill('SIGKILL');
    await Promise.all(children.map((fs) => fs.exited));
    cleanup(dir, mnt);
  });
  const start: Fixture['start'] = async (opts = {}) => {
    const argv = [...(opts.wrapper ?? []), process.execPath, ECHO_FS, mnt, ...(opts.args ?? [])];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const fs = { child, exited, output: () => out };
    children.push(fs);
    await until('echo-fs ready', () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`echo-fs exited: ${out}`);
      return /^ready /m.test(out);
    }, fs);
    return fs;
  };
  return { mnt, start };
}

/** SIGTERM: echo-fs unmounts and must then end by itself (nothing left holding its event loop). */
async function stop(fs: EchoFs): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  fs.child.kill('SIGTERM');
  let done: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void fs.exited.then((r) => (done = r));
  await until('echo-fs to exit after SIGTERM', () => done !== undefined, fs);
  return done!;
}

/** `Fuse.unmount(path)` from a fresh node process: "ok", or the error's code and errno. */
function unmountFromChild(path: string): string {
  const r = run(process.execPath, ['-e', 'require(process.argv[1]).unmount(process.argv[2], (err) => console.log(err ? err.code + " " + err.errno : "ok"))', PKG, path]);
  return (r.stdout + r.stderr).trim();
}

/** A Python program that opens and reads argv[1] from n threads at once, then prints "done". */
const concurrentOpens = (n: number): string =>
  `import sys,threading\nts=[threading.Thread(target=lambda: open(sys.argv[1]).read()) for _ in range(${n})]\nfor th in ts: th.start()\nfor th in ts: th.join()\nprint("done")`;

/** The count of requests waiting for JS that echo-fs's /gate last wrote (-1 before it wrote any). */
const gateQueued = (mnt: string): number => {
  const status = join(dirname(mnt), 'gate-status');
  return existsSync(status) ? Number(readFileSync(status, 'utf8').trim()) : -1;
};

const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** Run cmd (optionally through a prefix such as setpriv) in a shell that first prints its pid, then execs cmd. */
function withPid(prefix: string[], cmd: string[]): { pid: string; out: string } {
  const sh = ['sh', '-c', 'echo $$; exec "$@"', 'sh', ...cmd];
  const argv = [...prefix, ...sh];
  const r = run(argv[0]!, argv.slice(1));
  const [pid = '', ...rest] = r.stdout.split('\n');
  return { pid, out: rest.join('\n').trim() + (r.stderr ? ` [stderr: ${r.stderr.trim()}]` : '') };
}

t.test('every handler gets the calling pid (thread id), uid and gid', async (t) => {
  const { mnt, start } = fixture(t);
  await start();
  const whoami = join(mnt, 'whoami');
  const statme = join(mnt, 'statme');

  // open (content made from the caller the open handler saw)
  const root = withPid([], ['cat', whoami]);
  t.equal(root.out, `${root.pid} 0 0`, 'open: root cat');
  const nobody = withPid(AS_NOBODY, ['cat', whoami]);
  t.equal(nobody.out, `${nobody.pid} 65534 65534`, 'open: non-root cat (allow_other)');

  // getattr (st_size carries the caller's pid; entry and attr timeouts 0, so each stat reaches getattr)
  const rootStat = withPid([], ['stat', '-c', '%s %u %g', statme]);
  t.equal(rootStat.out, `${rootStat.pid} 0 0`, 'getattr: root stat');
  const nobodyStat = withPid(AS_NOBODY, ['stat', '-c', '%s %u %g', statme]);
  t.equal(nobodyStat.out, `${nobodyStat.pid} 65534 65534`, 'getattr: non-root stat');

  // A thread reads: the kernel reports the thread id (TID), not the process id.
  const py = run('python3', [
    '-c',
    'import os,threading,sys\nres={}\ndef r():\n  res["tid"]=threading.get_native_id(); res["seen"]=open(sys.argv[1]).read().split()[0]\nth=threading.Thread(target=r); th.start(); th.join()\nprint(os.getpid(), res["tid"], res["seen"])',
    whoami,
  ]);
  const [ppid, tid, tseen] = py.stdout.trim().split(' ');
  t.equal(tseen, tid, 'a reading thread is reported by its thread id');
  t.not(tid, ppid, 'which is not its process id');

  // The caller's pid namespace, as the binding looked it up for its fair queue: the host's, and a new one's.
  const pidns = join(mnt, 'pidns');
  const inode = (link: string) => /^pid:\[(\d+)\]$/.exec(link.trim())?.[1];
  const ours = run('sh', ['-c', 'readlink /proc/self/ns/pid; exec cat "$1"', 'sh', pidns]).stdout.split('\n');
  t.ok(inode(ours[0]!), `a pid namespace link (${ours[0]})`);
  t.equal(ours[1], inode(ours[0]!), 'pidNs: the reader\'s pid namespace inode');
  const theirs = run('unshare', ['--pid', '--fork', 'sh', '-c', 'readlink /proc/self/ns/pid; exec cat "$1"', 'sh', pidns]).stdout.split('\n');
  t.equal(theirs[1], inode(theirs[0]!), 'pidNs in a new pid namespace: that namespace');
  t.not(theirs[1], ours[1], 'which is another one');
});

t.test('st_size 0 files read whole under direct_io', async (t) => {
  const { mnt, start } = fixture(t);
  await start();

  for (const name of ['big', 'native']) {
    // big: every read goes to JS; native: the content was handed over at open and read natively
    const file = join(mnt, name);
    t.equal(statSync(file).size, 0, `${name}: st_size 0`);
    const cat = run('cat', [file]);
    t.equal(cat.stdout.length, 100000, `${name}: cat reads all 100000 bytes`);
    t.equal(cat.stdout.split('\n')[9999], 'line 9999', `${name}: up to the last line`);
    t.equal(run('head', ['-c', '10', file]).stdout, 'line 0000\n', `${name}: head -c 10`);
    const py = run('python3', [
      '-c',
      'import sys\nwhole=open(sys.argv[1],"rb").read()\nf=open(sys.argv[1],"rb",buffering=0)\nparts=[]\nwhile True:\n  b=f.read(1024)\n  if not b: break\n  parts.append(b)\nf.seek(99990)\nprint(len(whole), len(parts), whole==b"".join(parts), f.read(1024))',
      file,
    ]);
    t.equal(py.stdout.trim(), "100000 98 True b'line 9999\\n'", `${name}: Python read(), 1 KiB chunks, a read at an offset`);
  }
});

t.test('seq_file semantics: a read at offset 0 after the first renders again, offsets > 0 continue it', async (t) => {
  const { mnt, start } = fixture(t);
  await start();
  // Each rendering of /gen is 1000 lines of 16 bytes "gen NNN how   \n" (NNN counts renderings).
  const py = run('python3', [
    '-c',
    [
      'import os,sys',
      'fd=os.open(sys.argv[1]+"/gen",os.O_RDONLY)',
      'out=[]',
      'out.append(os.pread(fd,16,0))      # the first read at 0: what open rendered',
      'out.append(os.pread(fd,16,0))      # pread at 0 again: a rewind',
      'out.append(os.pread(fd,16,4096))   # offset > 0: the same rendering',
      'os.lseek(fd,0,0); out.append(os.read(fd,16))  # lseek + read: a rewind',
      'out.append(os.read(fd,16))         # the next bytes of that rendering',
      'os.lseek(fd,0,0); whole=b""',
      'while True:',
      '  b=os.read(fd,1000)                # a rewind, then chunks of it',
      '  if not b: break',
      '  whole+=b',
      'out.append(str(len(whole)).encode()); out.append(b",".join(sorted(set(whole.splitlines()))))',
      'print("|".join(x.decode().strip() for x in out))',
    ].join('\n'),
    mnt,
  ]);
  t.equal(py.code, 0, py.stderr);
  t.equal(py.stdout.trim(), 'gen 001 open|gen 002 rewind|gen 002 rewind|gen 003 rewind|gen 003 rewind|16000|gen 004 rewind', 'each rewind a new rendering, chunks from one rendering');

  // A rewind that fails fails that read with the errno; reads past offset 0 keep the last good content.
  const failing = run('python3', [
    '-c',
    'import os,sys\nfd=os.open(sys.argv[1]+"/failing",os.O_RDONLY)\nprint(os.pread(fd,100,0))\ntry:\n  os.pread(fd,100,0)\nexcept OSError as e:\n  print("errno", e.errno)\nprint(os.pread(fd,100,5))',
    mnt,
  ]);
  t.equal(failing.stdout, "b'made at open\\n'\nerrno 5\nb'at open\\n'\n", 'EIO for the failed rewind, the old content at offset 5');

  // cat (open, read to EOF, close) renders once per open: no rewind.
  const before = run('python3', ['-c', 'import os,sys\nprint(os.pread(os.open(sys.argv[1]+"/gen",os.O_RDONLY),16,0).decode().strip())', mnt]).stdout.trim();
  const catted = run('cat', [join(mnt, 'gen')]).stdout;
  t.equal(new Set(catted.split('\n').filter(Boolean)).size, 1, 'cat sees one rendering');
  t.equal(catted.slice(0, 7), `gen ${String(Number(before.slice(4, 7)) + 1).padStart(3, '0')}`, 'the one its open made');
});

t.test('file handles from JS are kept as unsigned 32-bit values, never as native content', async (t) => {
  const { mnt, start } = fixture(t);
  const fs = await start();
  // -1 and -2^31 sign-extend to 64-bit values with bit 63 set, the binding's tag for native content: taken
  // for a pointer, a read would dereference it and the release free it. A handle that is no uint32 is none.
  t.equal(run('cat', [join(mnt, 'handle-neg')]).stdout, 'fd=0\n', 'open answered -1: read gets handle 0');
  t.equal(run('cat', [join(mnt, 'handle-min')]).stdout, 'fd=0\n', 'open answered -2^31: read gets handle 0');
  t.equal(run('cat', [join(mnt, 'handle-max')]).stdout, 'fd=4294967295\n', 'open answered 2^32 - 1: read gets it whole');
  // The kernel sends release after close returns: wait for the three.
  await until('the three releases', () => (fs.output().match(/^release /gm) ?? []).length === 3, fs);
  t.match(fs.output(), /^release \/handle-neg fd=0$/m, 'release of the -1 open: handle 0');
  t.match(fs.output(), /^release \/handle-min fd=0$/m, 'release of the -2^31 open: handle 0');
  t.match(fs.output(), /^release \/handle-max fd=4294967295$/m, 'release of the 2^32 - 1 open: that handle');
  t.match(run('cat', [join(mnt, 'whoami')]).stdout, /^\d+ 0 0\n$/, 'and the filesystem still serves');
});

t.test('per-thread state: FUSE worker threads come and go, their state is reused', async (t) => {
  const { mnt, start } = fixture(t);
  await start();
  type Stats = { locals: number; threads: number; reused: number; returned: number; peak: number; inUse: number; finished: boolean; tornDown: boolean };
  const stats = (): Stats => JSON.parse(run('cat', [join(mnt, 'threads')]).stdout) as Stats;
  // 16 threads open /barrier at once; echo-fs answers none until all 16 wait, so 16 FUSE workers are busy
  // at the same time. Once they are answered, libfuse lets the workers beyond 10 idle ones exit, and the
  // next burst starts new threads.
  const burst = [
    'import sys,threading',
    'res=[]',
    'def r(): res.append(open(sys.argv[1]).read())',
    'ts=[threading.Thread(target=r) for _ in range(16)]',
    'for th in ts: th.start()',
    'for th in ts: th.join()',
    'print(len(res), sorted(set(res)))',
  ].join('\n');
  for (let round = 1; round <= 4; round++) {
    const returned = stats().returned;
    const r = run('python3', ['-c', burst, join(mnt, 'barrier')]);
    t.equal(r.stdout.trim(), "16 ['released\\n']", `burst ${round}: 16 concurrent opens answered`);
    // Workers retire after answering; wait until one has given its state back before the next burst.
    await until(`a worker of burst ${round} to retire`, () => stats().returned > returned);
  }
  const s = stats();
  t.comment(JSON.stringify(s));
  t.ok(s.locals >= 16, `16 requests waited for JS at once, each with its own state (${s.locals} made)`);
  t.ok(s.returned > 0, `exiting workers gave their state back (${s.returned})`);
  t.ok(s.reused > 0, `new workers reused it (${s.reused})`);
  t.ok(s.threads > s.locals, `more threads served (${s.threads}) than states were made (${s.locals})`);
  t.equal(s.locals, s.peak, 'a state is made only when every one is in use');
});

t.test('fair hand-off: a request from a namespace that took less of the main thread lately goes first', async (t) => {
  const { mnt, start } = fixture(t);
  await start({ args: ['--timeouts', '--still-fair-queue'] });
  // A FUSE thread new to the binding asks the main thread for its state, which the gate will hold: have 16
  // states made first (16 concurrent opens of /barrier), so the threads below find theirs in the pool.
  t.equal(run('python3', ['-c', concurrentOpens(16), join(mnt, 'barrier')]).code, 0, '16 FUSE threads served at once');
  // Lookups are urgent (served first whoever asks): have the kernel know both marks for 60 s, so that the
  // two requests compared below are both OPENs.
  t.equal(run('stat', [join(mnt, 'mark-heavy'), join(mnt, 'mark-light')]).code, 0, 'both marks looked up');
  // "heavy": a pid namespace whose 3 opens of /heavy took 150 ms of the main thread, then waits for a line
  // on stdin before its next request (the open of /mark-heavy).
  const heavy = spawn('unshare', ['--pid', '--fork', 'python3', '-u', '-c', [
    'import sys',
    'for _ in range(3): open(sys.argv[1] + "/heavy").read()',
    'print("charged")',
    'sys.stdin.readline()',
    'print(open(sys.argv[1] + "/mark-heavy").read().strip())',
  ].join('\n'), mnt], { stdio: ['pipe', 'pipe', 'pipe'] });
  let heavyOut = '';
  heavy.stdout!.on('data', (d) => (heavyOut += d));
  heavy.stderr!.on('data', (d) => (heavyOut += d));
  const heavyExited = new Promise((resolve) => heavy.on('exit', resolve));
  const later: { gate?: ChildProcess; light?: ChildProcess } = {};
  let gateExited: Promise<unknown> = Promise.resolve(), lightExited: Promise<unknown> = Promise.resolve();
  t.teardown(async () => {
    for (const p of [heavy, later.gate, later.light]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all([heavyExited, gateExited, lightExited]);
  });
  const queued = () => gateQueued(mnt);

  await until(`the heavy namespace to be charged (${heavyOut})`, () => heavyOut.includes('charged'));
  // The gate holds the main thread until 2 requests wait for it.
  const gate = (later.gate = spawn('cat', [join(mnt, 'gate')], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let gateOut = '';
  gate.stdout!.on('data', (d) => (gateOut += d));
  gateExited = new Promise((resolve) => gate.on('exit', resolve));
  await until('the gate to hold the main thread', () => queued() === 0);
  heavy.stdin!.write('go\n');
  await until('the heavy namespace\'s request to wait', () => queued() === 1);
  // Then a new namespace asks, after the heavy one: in arrival order the heavy one would go first.
  const light = (later.light = spawn('unshare', ['--pid', '--fork', 'cat', join(mnt, 'mark-light')], { stdio: 'ignore' }));
  lightExited = new Promise((resolve) => light.on('exit', resolve));
  await gateExited;
  t.equal(gateOut, 'queued 2\n', 'the gate let go with both requests waiting');
  await lightExited;
  await heavyExited;
  t.match(heavyOut, /marked/, 'the heavy namespace was answered too');
  const [order, json] = run('cat', [join(mnt, 'marks')]).stdout.trim().split(' ');
  t.equal(order, 'light,heavy', 'the new namespace was served before the one that had taken 150 ms');
  const stats = JSON.parse(json!) as { queued: number; flows: number; served: number; overtaken: number };
  t.ok(stats.overtaken >= 1, `dispatchStats counts the overtaking (${stats.overtaken})`);
  t.equal(stats.queued, 0, 'nothing left waiting');
});

t.test('a new FUSE worker gets its state between two queued requests, not after the whole batch', async (t) => {
  // A FUSE worker libfuse starts under load asks the main thread for its state while it already holds a request
  // from the kernel. The dispatcher serves the queued requests in batches (as many as were queued when it
  // woke); the state used to be made only between batches, so under overload, when a batch is hundreds of
  // renders, that request waited one batch per new worker before it (reads waited up to 38 s in the N = 1000
  // fleet). Here: a batch of two queued opens, /hold then /after-hold; /hold answers once a new worker asks
  // for its state; /after-hold notes how many states the main thread had made by then.
  const { mnt, start } = fixture(t);
  await start({ args: ['--timeouts', '--still-fair-queue', '--barrier', '8'] });
  const dir = dirname(mnt);
  const names = ['gate', 'hold', 'after-hold', 'holdlog', 'mark-new', 'barrier'].map((n) => join(mnt, n));
  t.equal(run('stat', names).code, 0, 'every name looked up (cached for 60 s: the opens below are OPENs only)');
  // 8 workers with a state each, idle afterwards (libfuse keeps up to 10 idle ones), so that the three
  // requests queued below find theirs without the main thread, which the gate holds.
  t.equal(run('python3', ['-c', concurrentOpens(8), join(mnt, 'barrier')]).code, 0, '8 FUSE threads served at once');
  const procs: ChildProcess[] = [];
  const exits: Promise<unknown>[] = [];
  const spawnCat = (file: string): { out: () => string; exited: Promise<unknown> } => {
    const p = spawn('cat', [join(mnt, file)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => p.on('exit', resolve));
    procs.push(p);
    exits.push(exited);
    return { out: () => out, exited };
  };
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(exits);
  });
  const queued = () => gateQueued(mnt);

  const gate = spawnCat('gate');
  await until('the gate to hold the main thread', () => queued() === 0);
  const held = spawnCat('hold');
  await until('/hold to wait', () => queued() === 1);
  const after = spawnCat('after-hold');
  await gate.exited;
  t.equal(gate.out(), 'queued 2\n', 'the gate let go with /hold and /after-hold queued: the next batch is those two');
  await until('/hold to hold the main thread', () => existsSync(join(dir, 'hold-status')));
  // More concurrent opens than idle workers with a state: libfuse starts new workers, which ask for theirs.
  const readers = spawn('python3', ['-c', concurrentOpens(12), join(mnt, 'mark-new')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let readersOut = '';
  readers.stdout!.on('data', (d) => (readersOut += d));
  procs.push(readers);
  const readersExited = new Promise((resolve) => readers.on('exit', resolve));
  exits.push(readersExited);
  await Promise.all([held.exited, after.exited, readersExited]);
  t.equal(held.out(), 'held\n', '/hold saw a new worker ask for its state');
  t.equal(after.out(), 'after\n', '/after-hold answered');
  t.equal(readersOut, 'done\n', 'the 12 concurrent opens were answered');
  const [atHold, atAfter] = run('cat', [join(mnt, 'holdlog')]).stdout.trim().split(' ').map(Number);
  t.ok(Number.isInteger(atHold) && Number.isInteger(atAfter), `both noted (${atHold}, ${atAfter})`);
  t.ok(atAfter! > atHold!, `the waiting worker's state was made between /hold and /after-hold (${atHold} -> ${atAfter})`);
});

t.test('after unmount the mount serves what is still open, then the native state is released', async (t) => {
  const { mnt, start } = fixture(t);
  const fs = await start({ args: ['--linger'] });
  // A reader holds /gen open across the unmount and reads it at offset 0 on request (each such read past
  // the first renders again, in JS).
  const holder = spawn('python3', ['-u', '-c', [
    'import os,sys',
    'fd=os.open(sys.argv[1],os.O_RDONLY)',
    'for line in sys.stdin:',
    '  if line.strip()=="read": print(os.pread(fd,16,0).decode().strip())',
    '  else: os.close(fd); print("closed"); break',
  ].join('\n'), join(mnt, 'gen')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let held = '';
  holder.stdout!.on('data', (d) => (held += d));
  holder.stderr!.on('data', (d) => (held += d));
  const holderExited = new Promise((resolve) => holder.on('exit', resolve));
  t.teardown(async () => {
    if (holder.exitCode === null) holder.kill('SIGKILL');
    await holderExited;
  });
  const lines = () => held.split('\n').filter(Boolean);
  holder.stdin!.write('read\n');
  await until('the first read', () => lines().length === 1);
  t.equal(lines()[0], 'gen 001 open', 'the content made at open');

  fs.child.kill('SIGTERM');
  await until('echo-fs to unmount', () => /^unmounted$/m.test(fs.output()), fs);
  t.same(mountsAt(mnt), [], 'the mount is detached');
  holder.stdin!.write('read\n');
  await until('the read after unmount', () => lines().length === 2);
  t.equal(lines()[1], 'gen 002 rewind', 'the file still open is served, a rewind rendered by JS');
  t.notMatch(fs.output(), /torn down/, 'while a file is open, nothing is released');

  holder.stdin!.write('close\n');
  await holderExited;
  t.equal(lines()[2], 'closed');
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void fs.exited.then((r) => (exit = r));
  await until('echo-fs to release its state and exit', () => exit !== undefined, fs);
  t.same(exit, { code: 0, signal: null }, 'echo-fs exits by itself once released');
  const m = /^torn down (\{.*\}) threads (\d+) (\d+)$/m.exec(fs.output());
  t.ok(m, `released: ${fs.output()}`);
  if (!m) return;
  const s = JSON.parse(m[1]!) as { finished: boolean; inUse: number; locals: number };
  t.ok(s.finished, 'the FUSE thread left its loop');
  t.equal(s.inUse, 0, 'every worker gave its state back');
  t.equal(m[3], m[2], `no thread of the mount is left (${m[2]} threads before mounting, ${m[3]} after release)`);
});

t.test('libfuse comes from beside the addon, with any system libfuse hidden', async (t) => {
  const dynamic = run('readelf', ['-d', join(ADDON_DIR, 'fuse.node')]).stdout;
  t.match(dynamic, /\(NEEDED\).*\[libfuse\.so\.2\]/, 'the addon needs libfuse.so.2');
  t.match(dynamic, /\(RUNPATH\).*\[\$ORIGIN\]/, 'and finds it through RUNPATH $ORIGIN');
  t.ok(existsSync(join(ADDON_DIR, 'libfuse.so.2')), 'libfuse.so.2 shipped beside fuse.node');
  t.notOk(existsSync(join(ROOT, 'vendor/fuse-native/prebuilds')), 'no upstream prebuilds');

  // Hide every system libfuse 2 (none on a fresh machine) in a private mount namespace, then mount there.
  const libDirs = ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/local/lib'];
  const systemCopies = libDirs.flatMap((d) => {
    try {
      return readdirSync(d).filter((f) => /^libfuse\.so/.test(f)).map((f) => join(d, f));
    } catch {
      return [];
    }
  });
  t.comment(`system libfuse 2 copies hidden: ${systemCopies.length ? systemCopies.join(' ') : 'none present'}`);
  const hide = systemCopies.map((p) => `mount --bind /dev/null '${p}' || exit 9;`).join(' ');
  const { mnt, start } = fixture(t);
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  delete env.LD_PRELOAD; // (under test:sanitize, node children get the sanitizer runtime back: test/sanitize-preload.cjs)
  const fs = await start({ wrapper: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `${hide} exec "$@"`, 'hide-libfuse'], env });
  t.match(fs.output(), `ready libfuse=${join(ADDON_DIR, 'libfuse.so.2')}`, 'the daemon loaded the shipped libfuse');
  // The mount lives in the child's namespace: read it from there.
  const read = run('nsenter', ['-t', String(fs.child.pid), '-m', 'cat', join(mnt, 'whoami')]);
  t.match(read.stdout, /^\d+ 0 0\n$/, 'and serves from inside its namespace');
  t.same(mountsAt(mnt), [], 'nothing leaked into the test namespace');
});

t.test('unmount without fusermount: SIGTERM, Fuse.unmount of a stale mount, opts.force', async (t) => {
  const { mnt, start } = fixture(t);
  // PATH holds only node's directory: whatever the binding does, it cannot run a fusermount.
  const env = { ...process.env, PATH: NODE_DIR };

  const first = await start({ env, args: ['--no-force'] });
  t.equal(mountsAt(mnt).length, 1, 'mounted');
  t.same(await stop(first), { code: 0, signal: null }, 'SIGTERM: unmounted, then the process ended by itself');
  t.match(first.output(), /^unmounted$/m);
  t.same(mountsAt(mnt), [], 'no mountinfo line left');

  t.equal(unmountFromChild(mnt), 'EINVAL -22', 'Fuse.unmount of a path not mounted: an error with code EINVAL');

  const killed = await start({ env, args: ['--no-force'] });
  killed.child.kill('SIGKILL');
  await killed.exited;
  t.throws(() => statSync(mnt), { code: 'ENOTCONN' }, 'SIGKILL leaves a stale mount');
  t.equal(mountsAt(mnt).length, 1);
  t.equal(unmountFromChild(mnt), 'ok', 'Fuse.unmount from a fresh process');
  t.same(mountsAt(mnt), [], 'clears it');
  t.ok(statSync(mnt).isDirectory(), 'the mountpoint is a plain directory again');

  const again = await start({ env, args: ['--no-force'] });
  t.equal(mountsAt(mnt).length, 1, 'a remount works');
  t.match(run('cat', [join(mnt, 'whoami')]).stdout, /^\d+ 0 0\n$/);
  again.child.kill('SIGKILL');
  await again.exited;
  t.throws(() => statSync(mnt), { code: 'ENOTCONN' }, 'stale again');

  // opts.force: the binding stats the mountpoint, finds it stale, detaches it and mounts.
  const forced = await start({ env });
  t.equal(mountsAt(mnt).length, 1, 'force: one live mount');
  t.match(run('cat', [join(mnt, 'whoami')]).stdout, /^\d+ 0 0\n$/, 'force: serving');
  t.same(await stop(forced), { code: 0, signal: null });
  t.same(mountsAt(mnt), []);
});

t.test('sdNotify: one datagram with descriptors attached; flock: never blocks', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const socket = await startNotifySocket(join(dir, 'notify.sock'));
  t.teardown(() => socket.close());
  const file = join(dir, 'passed');
  writeFileSync(file, '');
  const fd = openSync(file, 'r');
  t.teardown(() => closeSync(fd));
  t.equal(Fuse.sdNotify('FDSTORE=1\nFDNAME=test', [fd], socket.name), 0);
  const got = await socket.waitFor((m) => m.state.FDSTORE === '1');
  t.same(got.message, { state: { FDSTORE: '1', FDNAME: 'test' }, fds: [file] }, 'the receiver got the same open file');
  t.equal(Fuse.sdNotify('READY=1', [], join(dir, 'nobody.sock')), 'ENOENT');
  t.equal(Fuse.sdNotify('READY=1', [], ''), null, 'no socket: nothing to tell');
  t.equal(Fuse.sdNotify('READY=1', [], 'vsock:2:1234'), 'EAFNOSUPPORT');
  t.equal(Fuse.sdNotify('READY=1', Array.from({ length: 17 }, () => fd), socket.name), 'E2BIG');

  const a = openSync(file, 'r');
  const b = openSync(file, 'r');
  t.teardown(() => (closeSync(a), closeSync(b)));
  t.equal(Fuse.flock(a, 'exclusive'), true);
  t.equal(Fuse.flock(b, 'shared'), false, 'another open file: refused at once, not waited for');
  t.equal(Fuse.flock(a, 'unlock'), true);
  t.equal(Fuse.flock(b, 'exclusive'), true);
  t.throws(() => Fuse.flock(-1, 'exclusive'), { code: 'EBADF' });
});
