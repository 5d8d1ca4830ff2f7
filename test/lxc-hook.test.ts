// hooks/lxc.mount.hook against a scratch rootfs, in a private mount namespace, as LXC would run it.

import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, ROOT, run, scratchDir, startDaemon } from './helpers/daemon.js';

const HOOK = join(ROOT, 'hooks/lxc.mount.hook');
const TARGETS = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'swaps', 'loadavg', 'diskstats', 'pressure/cpu', 'pressure/io', 'pressure/memory'];

function scratchRootfs(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'proc/pressure'), { recursive: true });
  mkdirSync(join(rootfs, 'sys/devices/system/cpu'), { recursive: true });
  // no proc/slabinfo: a missing target is skipped
  for (const f of TARGETS) writeFileSync(join(rootfs, 'proc', f), '');
  return rootfs;
}

/** Run the hook in a new mount namespace, then report what got mounted under the rootfs. */
function runHook(rootfs: string, lxcfs: string) {
  const script = `"$HOOK"; rc=$?; echo "rc=$rc"; awk '{print $5}' /proc/self/mountinfo | grep "^$LXC_ROOTFS_MOUNT/" | sort; head -1 "$LXC_ROOTFS_MOUNT/proc/meminfo"; cat "$LXC_ROOTFS_MOUNT/sys/devices/system/cpu/online"`;
  return run('env', [`HOOK=${HOOK}`, `LXC_ROOTFS_MOUNT=${rootfs}`, `LXCFS_TS_MOUNT=${lxcfs}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script]);
}

t.test('binds every served file whose target exists', async (t) => {
  const daemon = await startDaemon();
  const rootfs = scratchRootfs(daemon.dir);
  mkdirSync(join(rootfs, daemon.mountpoint), { recursive: true }); // nesting: the tree at the same path inside
  t.teardown(async () => {
    await daemon.stop();
    cleanup(daemon.dir, daemon.mountpoint);
  });
  const r = runHook(rootfs, daemon.mountpoint);
  t.match(r.stdout, /^rc=0$/m, r.stderr);
  const mounted = r.stdout.split('\n').filter((l) => l.startsWith(rootfs)).map((l) => l.slice(rootfs.length));
  t.same(mounted.sort(), [...TARGETS.map((f) => `/proc/${f}`), '/sys/devices/system/cpu', daemon.mountpoint].sort(), 'the expected bind mounts');
  t.notOk(mounted.includes('/proc/slabinfo'), 'a missing target is skipped');
  t.match(r.stdout, /^MemTotal:\s+\d+ kB$/m, 'the container path now serves lxcfs-ts content');
  t.match(r.stdout, /^\d+(-\d+)?$/m, 'and the cpu directory');
});

t.test('does nothing when lxcfs-ts is not serving', async (t) => {
  const dir = scratchDir();
  t.teardown(() => cleanup(dir));
  const rootfs = scratchRootfs(dir);
  const r = runHook(rootfs, join(dir, 'not-served'));
  t.match(r.stdout, /^rc=0$/m);
  t.equal(r.stdout.split('\n').filter((l) => l.startsWith(rootfs)).length, 0, 'no mounts');
});

t.test('the reboot hook and the LXC config snippet', async (t) => {
  t.equal(run(join(ROOT, 'hooks/lxc.reboot.hook'), []).code, 0, 'the reboot hook runs');
  t.match(readFileSync(join(ROOT, 'hooks/lxc.reboot.hook'), 'utf8'), /^sleep 0\.5$/m, 'it outwaits the 0.5 s FUSE caches');
  const conf = readFileSync(join(ROOT, 'hooks/00-lxcfs-ts.conf'), 'utf8');
  t.match(conf, /^lxc\.hook\.mount = \/opt\/lxcfs-ts\/hooks\/lxc\.mount\.hook$/m);
  t.match(conf, /^lxc\.hook\.post-stop = \/opt\/lxcfs-ts\/hooks\/lxc\.reboot\.hook$/m);
});
