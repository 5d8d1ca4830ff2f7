// The patched fuse-native binding (vendor/fuse-native) on its own, through a tiny echo filesystem
// (helpers/echo-fs.cjs) in a child process: caller context, whole reads of st_size-0 files under
// direct_io, libfuse loaded from beside the addon, unmount and stale-mount recovery without fusermount.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, mountsAt, ROOT, run, scratchDir } from './helpers/daemon.js';

const ECHO_FS = join(ROOT, 'test/helpers/echo-fs.cjs');
const ADDON_DIR = join(ROOT, 'vendor/fuse-native/build/Release');

async function startEchoFs(mountpoint: string, wrapper: string[] = []): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> {
  const argv = [...wrapper, process.execPath, ECHO_FS, mountpoint];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`echo-fs exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`echo-fs not ready: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, exited, output: () => out };
}

t.test('every handler gets the calling pid, uid and gid', async (t) => {
  const dir = scratchDir();
  const mnt = join(dir, 'mnt');
  const fs = await startEchoFs(mnt);
  t.teardown(async () => {
    fs.child.kill('SIGTERM');
    await fs.exited;
    cleanup(dir, mnt);
  });

  // `sh -c 'echo $$; exec cat'`: the pid printed is the pid of the cat that reads.
  const root = run('sh', ['-c', 'echo $$; exec cat "$0"', join(mnt, 'whoami')]);
  const [pid, seen] = root.stdout.trim().split('\n');
  t.equal(seen, `${pid} 0 0`, 'root reader');

  const nobody = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', 'echo $$; exec cat "$0"', join(mnt, 'whoami')]);
  const [npid, nseen] = nobody.stdout.trim().split('\n');
  t.equal(nseen, `${npid} 65534 65534`, 'non-root reader (allow_other)');

  // A thread reads: the kernel reports the thread id, not the process id.
  const py = run('python3', [
    '-c',
    'import os,threading,sys\nres={}\ndef r():\n  res["tid"]=threading.get_native_id(); res["seen"]=open(sys.argv[1]).read().split()[0]\nth=threading.Thread(target=r); th.start(); th.join()\nprint(os.getpid(), res["tid"], res["seen"])',
    join(mnt, 'whoami'),
  ]);
  const [ppid, tid, tseen] = py.stdout.trim().split(' ');
  t.equal(tseen, tid, 'a thread is reported by its thread id');
  t.not(tid, ppid);
});

t.test('st_size 0 files read whole under direct_io', async (t) => {
  const dir = scratchDir();
  const mnt = join(dir, 'mnt');
  const fs = await startEchoFs(mnt);
  t.teardown(async () => {
    fs.child.kill('SIGTERM');
    await fs.exited;
    cleanup(dir, mnt);
  });
  const big = join(mnt, 'big');
  t.equal(statSync(big).size, 0);
  const cat = run('cat', [big]);
  t.equal(cat.stdout.length, 100000, 'cat reads all 100000 bytes');
  t.equal(cat.stdout.split('\n')[9999], 'line 9999');
  t.equal(run('head', ['-c', '10', big]).stdout, 'line 0000\n', 'head -c');
  const py = run('python3', ['-c', 'import sys\nwhole=open(sys.argv[1],"rb").read()\nf=open(sys.argv[1],"rb",buffering=0)\nparts=[]\nwhile True:\n  b=f.read(1024)\n  if not b: break\n  parts.append(b)\nprint(len(whole), whole==b"".join(parts))', big]);
  t.equal(py.stdout.trim(), '100000 True', 'Python read() and 1 KiB chunks');

  // The same content handed to the binding at open: read and release never reach JavaScript.
  const native = join(mnt, 'native');
  t.equal(run('cat', [native]).stdout, cat.stdout, 'natively served content reads the same');
  t.equal(run('head', ['-c', '10', native]).stdout, 'line 0000\n');
  const chunked = run('python3', ['-c', 'import sys\nf=open(sys.argv[1],"rb",buffering=0)\nf.seek(99990)\nprint(f.read(1024))', native]);
  t.equal(chunked.stdout.trim(), "b'line 9999\\n'", 'a read at an offset');
});

t.test('libfuse comes from beside the addon', async (t) => {
  const dynamic = run('readelf', ['-d', join(ADDON_DIR, 'fuse.node')]).stdout;
  t.match(dynamic, /NEEDED.*\[libfuse\.so\.2\]/);
  t.match(dynamic, /RUNPATH.*\[\$ORIGIN\]/);
  t.ok(existsSync(join(ADDON_DIR, 'libfuse.so.2')), 'libfuse.so.2 shipped beside fuse.node');
  t.notOk(existsSync(join(ROOT, 'vendor/fuse-native/prebuilds')), 'no upstream prebuilds');

  // Hide any system libfuse (none on a fresh machine) in a private mount namespace, then mount.
  const systemCopies = ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/local/lib']
    .flatMap((d) => {
      try {
        return readdirSync(d).filter((f) => /^libfuse\.so/.test(f)).map((f) => join(d, f));
      } catch {
        return [];
      }
    });
  const hide = systemCopies.map((p) => `mount --bind /dev/null ${p};`).join(' ');
  const dir = scratchDir();
  const mnt = join(dir, 'mnt');
  const fs = await startEchoFs(mnt, ['unshare', '-m', 'sh', '-c', `${hide} exec "$@"`, 'hide-libfuse']);
  t.teardown(async () => {
    fs.child.kill('SIGTERM');
    await fs.exited;
    cleanup(dir, mnt);
  });
  t.comment(`system libfuse copies hidden: ${systemCopies.length ? systemCopies.join(' ') : 'none present'}`);
  // The mount lives in the child's private namespace; its readiness line proves the addon loaded and mounted.
  t.match(fs.output(), /ready/);
});

t.test('unmount without fusermount: SIGTERM, and a stale mount after SIGKILL', async (t) => {
  t.equal(run('sh', ['-c', 'command -v fusermount fusermount3']).stdout, '', 'no fusermount on this machine');
  const dir = scratchDir();
  const mnt = join(dir, 'mnt');
  t.teardown(() => cleanup(dir, mnt));

  const first = await startEchoFs(mnt);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'clean exit');
  t.same(mountsAt(mnt), [], 'unmounted');

  const killed = await startEchoFs(mnt);
  killed.child.kill('SIGKILL');
  await killed.exited;
  t.throws(() => statSync(mnt), { code: 'ENOTCONN' }, 'stale mount');
  // echo-fs mounts with { force: true }: the binding detaches the stale mount and mounts again.
  const again = await startEchoFs(mnt);
  t.equal(mountsAt(mnt).length, 1, 'one live mount');
  t.match(run('cat', [join(mnt, 'whoami')]).stdout, /^\d+ 0 0$/m);
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
  t.same(mountsAt(mnt), []);
});
