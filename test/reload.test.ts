// SIGUSR1 swaps the renderer bundle under a live mount: same mount, same daemon, new output on the next
// open, old snapshots for files already open, no failed read while it happens; a broken bundle is
// refused and the previous renderers keep serving.

import t from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, MAIN, ROOT, run, startDaemon } from './helpers/daemon.js';

const BUNDLE = join(ROOT, 'dist/renderers.cjs');
const MARKER = 'LxcfsTsMarker:        1 kB';

/** The bundle plus a footer that prefixes meminfo with a marker line and renames the version. */
function markerBundle(): string {
  return `${readFileSync(BUNDLE, 'utf8')}
;(() => {
  const meminfo = module.exports.files.find((f) => f.path === 'proc/meminfo');
  const render = meminfo.render;
  meminfo.render = (snapshot, options) => ${JSON.stringify(MARKER + '\n')} + render(snapshot, options);
  module.exports = { ...module.exports, version: 'marker' }; // esbuild's exports are read-only getters
})();
`;
}

function mountIdOf(path: string): string | undefined {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === path)?.split(' ')[0];
}

const waitFor = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 200; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

t.test('reload under a live mount', async (t) => {
  const dir = (await import('./helpers/daemon.js')).scratchDir();
  const bundle = join(dir, 'renderers.cjs');
  copyFileSync(BUNDLE, bundle);
  const daemon = await startDaemon({ dir, env: { LXCFS_TS_RENDERERS: bundle } });
  t.teardown(async () => {
    await daemon.stop();
    cleanup(dir, daemon.mountpoint);
  });
  const meminfo = join(daemon.mountpoint, 'proc/meminfo');
  const mountId = mountIdOf(daemon.mountpoint);
  t.ok(mountId, 'mounted');

  // A reader that opens meminfo, reads 64 bytes, waits for "go" on stdin, then reads the rest.
  const holder = spawn('python3', ['-c', `import os,sys\nf=os.open(${JSON.stringify(meminfo)},os.O_RDONLY)\nhead=os.read(f,64)\nprint("opened",flush=True)\nsys.stdin.readline()\nrest=b""\nwhile True:\n  b=os.read(f,4096)\n  if not b: break\n  rest+=b\nsys.stdout.write((head+rest).decode())`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let held = '';
  holder.stdout.on('data', (d) => (held += d));
  const holderDone = new Promise((r) => holder.on('close', r));
  t.teardown(() => holder.kill('SIGKILL'));
  await waitFor('the held fd', () => held.includes('opened'));

  // A sampler that keeps /proc/stat open across the reload: its counters go on from where they were.
  const stat = join(daemon.mountpoint, 'proc/stat');
  const sampler = spawn('python3', ['-c', `import os,sys\nf=os.open(${JSON.stringify(stat)},os.O_RDONLY)\nprint("before", os.pread(f,65536,0).decode().splitlines()[0], flush=True)\nsys.stdin.readline()\nprint("after", os.pread(f,65536,0).decode().splitlines()[0], flush=True)`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let sampled = '';
  sampler.stdout.on('data', (d) => (sampled += d));
  const samplerDone = new Promise((r) => sampler.on('close', r));
  t.teardown(() => sampler.kill('SIGKILL'));
  await waitFor('the first /proc/stat sample', () => sampled.includes('before'));

  // 1000 reads racing the reload, from another process.
  const racer = spawn('sh', ['-c', 'fail=0; for i in $(seq 1000); do cat "$0" > /dev/null || fail=$((fail+1)); done; echo failures=$fail', meminfo]);
  let racerOut = '';
  racer.stdout.on('data', (d) => (racerOut += d));
  const racerDone = new Promise((r) => racer.on('close', r));
  t.teardown(() => racer.kill('SIGKILL'));

  writeFileSync(bundle, markerBundle());
  daemon.child.kill('SIGUSR1');
  await waitFor('the reload log line', () => daemon.logs().some((l) => l.msg === 'renderers reloaded'));
  await racerDone;

  t.equal(racerOut.trim(), 'failures=0', 'none of 1000 reads racing the reload failed');
  const after = run('cat', [meminfo]);
  t.equal(after.stdout.split('\n')[0], MARKER, 'the next open serves the new renderers');
  t.equal(mountIdOf(daemon.mountpoint), mountId, 'same mount (same mount id)');
  t.equal(daemon.child.exitCode, null, 'same daemon, still running');
  t.equal(JSON.parse(readFileSync(daemon.pidfile, 'utf8')), daemon.child.pid, 'pid file unchanged');

  sampler.stdin.end('go\n');
  await samplerDone;
  const fields = (which: string) => new RegExp(`^${which} cpu +(.*)$`, 'm').exec(sampled)![1]!.split(' ').map(Number);
  t.ok(fields('after').every((v, i) => v >= fields('before')[i]!), `/proc/stat re-read after the reload never went back (${fields('before').slice(0, 4)} -> ${fields('after').slice(0, 4)})`);

  holder.stdin.end('go\n');
  await holderDone;
  t.match(held, /^opened\nMemTotal:/, 'the fd opened before the reload reads its old snapshot');
  t.notMatch(held, /LxcfsTsMarker/);

  const status = run(process.execPath, [MAIN, 'status', '-p', daemon.pidfile]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /renderers:\s+marker /);
  t.match(status.stdout, /reloads:\s+1$/m);

  // Same bundle again: nothing to do.
  daemon.child.kill('SIGUSR1');
  await waitFor('the unchanged log line', () => daemon.logs().some((l) => /unchanged/.test(String(l.msg))));

  // Broken bundles: a syntax error, a throw at import, a wrong shape, a renderer that throws on the smoke
  // render. Each is refused, logged with its path, and the marker renderers keep serving.
  const broken: [string, string][] = [
    ['syntax error', 'module.exports = {{{'],
    ['throw at import', 'throw new Error("boom at import")'],
    ['wrong shape', 'module.exports = { version: "x", files: [] }'],
    ['smoke render throws', `${readFileSync(BUNDLE, 'utf8')}\n;module.exports.files[0].render = () => { throw new Error("smoke boom") };`],
    ['requires a module', 'require("node:fs"); module.exports = {}'],
    [
      'throws only for containers',
      `${readFileSync(BUNDLE, 'utf8')}\n;(() => { const f = module.exports.files.find((x) => x.path === 'proc/cpuinfo'); const c = f.collect; f.collect = (s, o) => { if (!s.container.host) throw new Error('container boom'); return c(s, o); }; })();`,
    ],
    ['reaches for process (no Node globals in the sandbox)', `${readFileSync(BUNDLE, 'utf8')}\n;(() => { const f = module.exports.files[0]; const r = f.render; f.render = (s, o) => { process.getBuiltinModule('node:fs'); return r(s, o); }; })();`],
    ['evaluates a string', `${readFileSync(BUNDLE, 'utf8')}\n;(() => { const f = module.exports.files[0]; const r = f.render; f.render = (s, o) => r(s, o) + eval('""'); })();`],
    ['built for a newer contract', `${readFileSync(BUNDLE, 'utf8')}\n;module.exports = { ...module.exports, contract: 99 };`],
    ['no contract (lxcfs-ts 0.1)', `${readFileSync(BUNDLE, 'utf8')}\n;module.exports = { ...module.exports, contract: undefined };`],
  ];
  for (const [what, code] of broken) {
    const errorsBefore = daemon.logs().filter((l) => l.msg === 'renderer reload failed; the previous renderers keep serving').length;
    writeFileSync(bundle, code);
    daemon.child.kill('SIGUSR1');
    await waitFor(`the failure log for ${what}`, () => daemon.logs().filter((l) => l.msg === 'renderer reload failed; the previous renderers keep serving').length > errorsBefore);
    const line = daemon.logs().filter((l) => l.msg === 'renderer reload failed; the previous renderers keep serving').pop()!;
    t.equal(line.path, bundle, `${what}: the log names the bundle`);
    t.equal(run('cat', [meminfo]).stdout.split('\n')[0], MARKER, `${what}: the previous renderers still serve`);
    if (what === 'built for a newer contract') t.match(String(line.err), /newer contract than this daemon \(2\): restart lxcfs-ts/, 'says to restart');
    if (what === 'throws only for containers') t.match(String(line.err), /smoke render: for a synthetic cgroup v1 container: proc\/cpuinfo: Error: container boom/, 'caught by the synthetic container');
    if (what.startsWith('reaches for process')) t.match(String(line.err), /process is not defined/, 'no process in the sandbox');
    if (what === 'evaluates a string') t.match(String(line.err), /EvalError: Code generation from strings disallowed/, 'no eval in the sandbox');
  }
  t.equal(mountIdOf(daemon.mountpoint), mountId, 'never unmounted');
  t.match(run(process.execPath, [MAIN, 'status', '-p', daemon.pidfile]).stdout, /last failure: .*renderers .* have the wrong shape: contract: no contract version/);

  // A missing bundle too.
  writeFileSync(bundle, '');
  (await import('node:fs')).unlinkSync(bundle);
  daemon.child.kill('SIGUSR1');
  await waitFor('the missing-file log', () => daemon.logs().some((l) => /cannot read renderers/.test(String(l.err))));
  t.equal(run('cat', [meminfo]).stdout.split('\n')[0], MARKER, 'missing bundle: still serving');
});
