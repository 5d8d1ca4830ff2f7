// hooks/lxc.mount.hook against a scratch rootfs, in a private mount namespace (unshare -m), as LXC would
// run it: LXC_ROOTFS_MOUNT set, the container's /proc and /sys already in place.

import t from 'tap';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';

const HOOK = join(ROOT, 'hooks/lxc.mount.hook');
// Everything served under proc/ except slabinfo: the scratch rootfs has no proc/slabinfo, so that
// target must be skipped.
const TARGETS = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'swaps', 'loadavg', 'diskstats', 'pressure/cpu', 'pressure/io', 'pressure/memory'];

function scratchRootfs(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'proc/pressure'), { recursive: true });
  mkdirSync(join(rootfs, 'sys/devices/system/cpu'), { recursive: true });
  for (const f of TARGETS) writeFileSync(join(rootfs, 'proc', f), '');
  return rootfs;
}

/** Run the hook in a new private mount namespace, then, in the same namespace, report what it mounted. */
function runHook(rootfs: string, lxcfs: string) {
  const script = [
    '"$HOOK"; echo "rc=$?"',
    // mount points (field 5 of mountinfo) under the rootfs
    `awk '{print $5}' /proc/self/mountinfo | grep "^$ROOTFS/" | sort`,
    'head -1 "$ROOTFS/proc/meminfo"',
    'echo "online=$(cat "$ROOTFS/sys/devices/system/cpu/online")"',
  ].join('\n');
  return run('env', [`HOOK=${HOOK}`, `ROOTFS=${rootfs}`, `LXC_ROOTFS_MOUNT=${rootfs}`, `LXCFS_TS_MOUNT=${lxcfs}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script]);
}

const mountsUnder = (stdout: string, rootfs: string) =>
  stdout.split('\n').filter((l) => l.startsWith(`${rootfs}/`)).map((l) => l.slice(rootfs.length)).sort();

t.test('binds every served file whose target exists, the cpu directory and the nesting dir', async (t) => {
  const daemon = await startDaemon();
  const rootfs = scratchRootfs(daemon.dir);
  mkdirSync(join(rootfs, 'var/lib/lxcfs'), { recursive: true }); // nesting
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const r = runHook(rootfs, daemon.mountpoint);
  t.match(r.stdout, /^rc=0$/m, r.stderr);
  const mounted = mountsUnder(r.stdout, rootfs);
  t.same(mounted, [...TARGETS.map((f) => `/proc/${f}`), '/sys/devices/system/cpu', '/var/lib/lxcfs'].sort(), 'the expected bind mounts');
  t.notOk(mounted.includes('/proc/slabinfo'), 'the missing proc/slabinfo target is skipped');
  t.match(r.stdout, /^MemTotal:\s+\d+ kB$/m, 'the container\'s /proc/meminfo now serves lxcfs-ts content');
  t.match(r.stdout, /^online=\d+(-\d+)?(,\d+(-\d+)?)*$/m, 'and its cpu directory');
  t.equal(statSync(join(rootfs, 'proc/meminfo')).size, 0, 'outside the namespace the rootfs is untouched');
});

t.test('a symlinked target is skipped; a symlinked LXC_ROOTFS_MOUNT is resolved', async (t) => {
  const daemon = await startDaemon();
  const rootfs = scratchRootfs(daemon.dir);
  const outside = join(daemon.dir, 'outside');
  writeFileSync(outside, 'not the container\'s\n');
  // The image controls the rootfs: a symlink there must not redirect a bind outside it.
  run('rm', ['-f', join(rootfs, 'proc/stat')]);
  symlinkSync(outside, join(rootfs, 'proc/stat'));
  mkdirSync(join(rootfs, 'var/lib'), { recursive: true });
  symlinkSync(daemon.dir, join(rootfs, 'var/lib/lxcfs'));
  const link = join(daemon.dir, 'rootfs-link');
  symlinkSync(rootfs, link);
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const r = run('env', [`HOOK=${HOOK}`, `LXC_ROOTFS_MOUNT=${link}`, `LXCFS_TS_MOUNT=${daemon.mountpoint}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c',
    `"$HOOK"; echo "rc=$?"; awk '{print $5}' /proc/self/mountinfo | grep "^${rootfs}/" | sort; cat "${outside}"`]);
  t.match(r.stdout, /^rc=0$/m, r.stderr);
  const mounted = mountsUnder(r.stdout, rootfs);
  t.notOk(mounted.includes('/proc/stat'), 'proc/stat (a symlink) skipped');
  t.notOk(mounted.includes('/var/lib/lxcfs'), 'var/lib/lxcfs (a symlink) skipped');
  t.ok(mounted.includes('/proc/meminfo'), 'the rest is bound under the resolved rootfs path');
  t.match(r.stdout, /^not the container's$/m, 'the symlink\'s target was not mounted over');
});

t.test('does nothing, and succeeds, when lxcfs-ts is not serving', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const rootfs = scratchRootfs(dir);
  mkdirSync(join(rootfs, 'var/lib/lxcfs'), { recursive: true });
  const notServed = join(dir, 'not-served');
  mkdirSync(notServed); // an empty mountpoint: the daemon is not running
  const r = runHook(rootfs, notServed);
  t.match(r.stdout, /^rc=0$/m, r.stderr);
  t.same(mountsUnder(r.stdout, rootfs), [], 'no mounts');
  t.notMatch(r.stdout, /MemTotal/, 'the container keeps its own (here: empty) files');
});

t.test('the reboot hook and the LXC config snippet', async (t) => {
  for (const hook of ['lxc.mount.hook', 'lxc.reboot.hook']) {
    t.ok(statSync(join(ROOT, 'hooks', hook)).mode & 0o111, `${hook} is executable`);
    t.match(readFileSync(join(ROOT, 'hooks', hook), 'utf8'), /^#!\/bin\/sh\n/, `${hook} is a POSIX sh script`);
  }
  t.equal(run('dash', ['-n', HOOK]).code, 0, 'the mount hook parses with dash');
  // The hook's wait, seen by a stand-in `sleep` that records what it was asked: no clock involved.
  const fake = scratchDir();
  t.teardown(() => cleanup(fake));
  writeFileSync(join(fake, 'sleep'), `#!/bin/sh\necho "$@" >> ${join(fake, 'slept')}\n`, { mode: 0o755 });
  const reboot = run('env', [`PATH=${fake}:${process.env.PATH}`, join(ROOT, 'hooks/lxc.reboot.hook')]);
  t.equal(reboot.code, 0, 'the reboot hook runs');
  const slept = readFileSync(join(fake, 'slept'), 'utf8').trim().split('\n').map(Number);
  t.ok(slept.reduce((a, b) => a + b, 0) >= 0.5, `and outwaits the 0.5 s FUSE entry/attr timeouts (sleep ${slept.join(' + ')})`);
  const conf = readFileSync(join(ROOT, 'hooks/00-lxcfs-ts.conf'), 'utf8');
  t.match(conf, /^lxc\.hook\.mount = \/opt\/lxcfs-ts\/hooks\/lxc\.mount\.hook$/m);
  t.match(conf, /^lxc\.hook\.post-stop = \/opt\/lxcfs-ts\/hooks\/lxc\.reboot\.hook$/m);
});
