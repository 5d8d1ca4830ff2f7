#!/usr/bin/env node
// `npm run test:vm -- --cgroup v2|v1 [test files...]`: boots a QEMU guest (Debian's kernel, TCG) on the host's
// root filesystem (virtio-9p, read-only, under a tmpfs overlay), sets up pure cgroup v2 or pure cgroup v1,
// runs each test file there (transpiled to JS here, run by plain node there) on a snapshot of the project as
// built on the host when the run starts (run `npm run build` first), prints the guest's console as it goes
// and ends with the combined "N passed, N failed" line. Exits 1 if a file failed or timed out, or the guest
// did not boot or finish; 2 on bad usage or a missing requirement.
//
// Guest side: test/vm/init.sh (initramfs), test/vm/guest.sh (setup), test/vm/guest-run.mjs (runs the files).
// Built once per kernel and cached under /var/tmp/lxcfs-ts-vm (LXCFS_TS_VM_CACHE): the initramfs (busybox-static
// plus the modules for virtio, 9p, overlay, fuse and ext4) and two disk images, a swap disk and an ext4 scratch
// disk, attached with snapshot=on so every run starts from the same clean images.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatSummary } from './summary.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** What runs when no files are given: the suites that mount the daemon and make real cgroups. */
export const LIVE_SUITES = [
  'test/daemon.test.ts',
  'test/files-mount.test.ts',
  'test/render-cache.test.ts',
  'test/reliability.test.ts',
  'test/live-view.test.ts',
  'test/reattach.test.ts',
  // the benches' quick runs: `npm run bench` and `npm run bench:fleet` make their containers on this layout
  'test/bench.test.ts',
  'test/bench-fleet.test.ts',
  // the parser's reader against the live host: which layout it detects, where memory is read from
  'vendor/node-cgroups-parser/test/reader.test.ts',
];

/** Modules the guest loads before anything else, with their dependencies (from modules.dep). */
const GUEST_MODULES = ['virtio_pci', 'virtio_blk', '9pnet_virtio', '9p', 'overlay', 'fuse', 'crc32c_generic', 'ext4'];

const CACHE = process.env.LXCFS_TS_VM_CACHE ?? '/var/tmp/lxcfs-ts-vm';
const SWAP_MIB = 1024;
const SCRATCH_MIB = 512;

const USAGE = `Usage: npm run test:vm -- --cgroup v2|v1 [options] [test files...]

Runs test files (default: ${LIVE_SUITES.join(' ')}) in a QEMU guest on pure cgroup v2 or pure cgroup v1.
Test files are named relative to the project's root (where npm runs scripts).
Needs root and the Debian packages qemu-system-x86 linux-image-amd64 busybox-static cpio (and e2fsprogs).

  --cgroup v2|v1        the guest's cgroup layout (required)
  --file-timeout SEC    limit per test file inside the guest (default 1200)
  --timeout SEC         limit for the whole run, boot included (default 300 + files x file-timeout)
  --memory MIB          guest memory (default 3072)
  --cpus N              guest vCPUs (default 2)
  -h, --help            this help
`;

function usage(message) {
  process.stderr.write(`test:vm: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function need(ok, message) {
  if (!ok) {
    process.stderr.write(`test:vm: ${message}\n`);
    process.exit(2);
  }
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      cgroup: { type: 'string' },
      'file-timeout': { type: 'string', default: '1200' },
      timeout: { type: 'string' },
      memory: { type: 'string', default: '3072' },
      cpus: { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  usage(err.message);
}
if (args.values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const cgroup = args.values.cgroup;
if (cgroup !== 'v2' && cgroup !== 'v1') usage(cgroup === undefined ? '--cgroup v2 or --cgroup v1 is required' : `--cgroup must be v2 or v1, not ${JSON.stringify(cgroup)}`);
const positive = (name) => {
  const n = Number(args.values[name]);
  if (!Number.isInteger(n) || n <= 0) usage(`--${name} needs a positive whole number`);
  return n;
};
const fileTimeout = positive('file-timeout');
const memory = positive('memory');
const cpus = positive('cpus');

// The guest sees the host's root at the same paths: files are given relative to the project (as npm runs us).
const files = (args.positionals.length > 0 ? args.positionals : LIVE_SUITES).map((f) => {
  const abs = resolve(f);
  need(existsSync(abs), `no such test file: ${f}`);
  const rel = relative(ROOT, abs);
  return rel.startsWith('..') || isAbsolute(rel) ? abs : rel;
});
const overall = args.values.timeout !== undefined ? positive('timeout') : 300 + files.length * fileTimeout;

need(process.getuid?.() === 0, 'needs root (the guest shares the host root over 9p and the tests need root inside)');
need(existsSync(join(ROOT, 'node_modules')) && existsSync(join(ROOT, 'dist/src/daemon/main.js')), 'no node_modules or dist/: run `npm ci` (or `npm run build`) first');

function which(cmd) {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'which', cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
const QEMU = which('qemu-system-x86_64');
need(QEMU, 'qemu-system-x86_64 not found: apt-get install qemu-system-x86');
need(existsSync('/bin/busybox') && /static/.test(spawnSync('file', ['-L', '/bin/busybox'], { encoding: 'utf8' }).stdout ?? 'static'),
  '/bin/busybox (static) not found: apt-get install busybox-static');
need(which('cpio'), 'cpio not found: apt-get install cpio');
const MKFS = which('mkfs.ext4');
need(MKFS, 'mkfs.ext4 not found: apt-get install e2fsprogs');

/** The newest /boot/vmlinuz-* whose modules include 9p (the Debian kernel the guest boots, not the host's). */
function findKernel() {
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`) && readFileSync(`/lib/modules/${v}/modules.dep`, 'utf8').includes('/9p.ko'))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  need(versions.length > 0, 'no kernel in /boot with 9p modules in /lib/modules: apt-get install linux-image-amd64');
  const version = versions[versions.length - 1];
  return { version, image: `/boot/vmlinuz-${version}`, modules: `/lib/modules/${version}` };
}

/** Module files for GUEST_MODULES, dependencies first; built-in modules need no file. */
function moduleFiles(kernel) {
  const deps = new Map();
  for (const line of readFileSync(join(kernel.modules, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    deps.set(basename(file).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'), { file, deps: rest.trim().split(/\s+/).filter(Boolean) });
  }
  const builtinFile = join(kernel.modules, 'modules.builtin');
  const builtin = existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8') : '';
  const order = [];
  const visit = (file) => {
    if (order.includes(file)) return;
    const name = basename(file).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');
    for (const dep of deps.get(name)?.deps ?? []) visit(dep);
    order.push(file);
  };
  for (const name of GUEST_MODULES) {
    const entry = deps.get(name);
    if (entry) visit(entry.file);
    else need(new RegExp(`/${name}\\.ko`).test(builtin), `kernel ${kernel.version} has no module ${name}`);
  }
  for (const file of order) need(file.endsWith('.ko'), `compressed module ${file}: not supported (busybox insmod needs .ko)`);
  return order;
}

/** The cached initramfs for this kernel, built when missing (its name hashes everything that goes in). */
function initramfs(kernel) {
  const modules = moduleFiles(kernel);
  const init = readFileSync(join(ROOT, 'test/vm/init.sh'));
  const hash = createHash('sha256').update(init).update(modules.join('\n')).update(String(statSync('/bin/busybox').mtimeMs)).digest('hex').slice(0, 16);
  const dir = join(CACHE, kernel.version);
  const out = join(dir, `initramfs-${hash}.cpio`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const staging = mkdtempSync(join(dir, 'staging-'));
  try {
    mkdirSync(join(staging, 'bin'));
    mkdirSync(join(staging, 'modules'));
    copyFileSync('/bin/busybox', join(staging, 'bin/busybox'));
    writeFileSync(join(staging, 'init'), init, { mode: 0o755 });
    for (const file of modules) copyFileSync(join(kernel.modules, file), join(staging, 'modules', basename(file)));
    writeFileSync(join(staging, 'modules/order'), modules.map((f) => basename(f)).join('\n') + '\n');
    const r = spawnSync('sh', ['-c', 'find . | cpio -o -H newc -R 0:0 --quiet > "$1"', 'cpio', `${out}.tmp`], { cwd: staging, encoding: 'utf8' });
    need(r.status === 0, `building the initramfs failed: ${r.stderr}`);
    for (const old of readdirSync(dir)) if (old.startsWith('initramfs-') && old.endsWith('.cpio')) rmSync(join(dir, old));
    renameSync(`${out}.tmp`, out);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return out;
}

/** A cached raw disk image (sparse), made once by `make(tmpPath)`. */
function diskImage(name, mib, make) {
  const out = join(CACHE, name);
  if (existsSync(out)) return out;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, '');
  spawnSync('truncate', ['-s', `${mib}M`, tmp]);
  make(tmp);
  renameSync(tmp, out);
  return out;
}

/** .ts files under dir (relative to ROOT), declaration files and node_modules excepted. */
function tsFiles(dir) {
  if (!existsSync(join(ROOT, dir))) return [];
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : tsFiles(rel);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** esbuild (a dev dependency, no bundling: imports stay as written) of src, test and the vendored parser. */
async function transpile(outdir) {
  const { build } = await import('esbuild');
  const entryPoints = ['src', 'test', 'vendor/node-cgroups-parser/src', 'vendor/node-cgroups-parser/test'].flatMap(tsFiles).map((f) => join(ROOT, f));
  await build({ entryPoints, outbase: ROOT, outdir, format: 'esm', platform: 'node', target: 'node20', sourcemap: 'inline', logLevel: 'error' });
}

const kernel = findKernel();
const initrd = initramfs(kernel);
const swapImage = diskImage('swap.img', SWAP_MIB, () => {}); // mkswap runs in the guest
const scratchImage = diskImage('scratch-ext4.img', SCRATCH_MIB, (tmp) => {
  const r = spawnSync(MKFS, ['-q', '-F', '-L', 'lxcfs-ts-scratch', tmp], { encoding: 'utf8' });
  need(r.status === 0, `mkfs.ext4 failed: ${r.stderr}`);
});

// The run directory: the job in (job.env, files.txt), results out (results.json, layout.txt), shared read-write.
mkdirSync(CACHE, { recursive: true });
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};
for (const old of readdirSync(CACHE)) {
  const pid = /^run-(\d+)-/.exec(old)?.[1];
  if (pid && !alive(Number(pid))) rmSync(join(CACHE, old), { recursive: true, force: true }); // a killed run's
}
const runDir = mkdtempSync(join(CACHE, `run-${process.pid}-`));
const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
writeFileSync(join(runDir, 'job.env'), [
  `export LXCFS_TS_VM_CGROUP=${quote(cgroup)}`,
  `export LXCFS_TS_VM_PROJECT=${quote(ROOT.replace(/\/$/, ''))}`,
  `export LXCFS_TS_VM_FILE_TIMEOUT=${quote(fileTimeout)}`,
  '',
].join('\n'));
writeFileSync(join(runDir, 'files.txt'), files.join('\n') + '\n');
// The guest tests the checkout as it is now, not as others edit and rebuild it during the run (node_modules
// excepted: the guest binds the host's). Exit 1 is GNU tar's "a file changed as we read it".
const tar = spawnSync('tar', ['-C', ROOT, '--exclude=./node_modules', '--exclude=./.git', '--exclude=./.tap', '-cf', join(runDir, 'project.tar'), '.'], { encoding: 'utf8' });
if (tar.status !== 0 && tar.status !== 1) {
  rmSync(runDir, { recursive: true, force: true });
  need(false, `could not snapshot the project: ${tar.stderr}`);
}
// Every .ts of the snapshot transpiled to a .js beside it (in the snapshot only), so the guest runs test
// files with plain node: tap's runner and TypeScript loader cost most of a minute per file under TCG. Types
// are checked by `npm test` (tsc), not here; paths and import.meta.url stay what they are for the .ts.
const transpiled = join(runDir, 'transpiled');
try {
  await transpile(transpiled);
  const appended = spawnSync('tar', ['-C', transpiled, '-rf', join(runDir, 'project.tar'), '.'], { encoding: 'utf8' });
  if (appended.status !== 0) throw new Error(appended.stderr);
} catch (err) {
  rmSync(runDir, { recursive: true, force: true });
  need(false, `could not transpile the tests: ${err.message}`);
}
rmSync(transpiled, { recursive: true, force: true });

const cmdline = [
  'console=ttyS0', 'quiet', 'panic=-1',
  // no Meltdown/Spectre work-arounds: under TCG, page-table isolation makes every syscall flush QEMU's TLB
  'mitigations=off',
  ...(cgroup === 'v2' ? ['cgroup_no_v1=all'] : []),
].join(' ');

const opt = (path) => path.replace(/,/g, ',,'); // QEMU's escape for a comma inside an option value
const qemuArgs = [
  '-nodefaults', '-no-user-config', '-no-reboot',
  // this machine's /dev/kvm cannot run a guest: TCG, one host thread per vCPU
  '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', String(cpus), '-m', String(memory),
  '-display', 'none', '-serial', 'stdio', '-nic', 'none',
  '-kernel', kernel.image, '-initrd', initrd, '-append', cmdline,
  '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
  '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
  '-fsdev', `local,id=run,path=${opt(runDir)},security_model=none`,
  '-device', 'virtio-9p-pci,fsdev=run,mount_tag=lxcfs_ts_run',
  '-drive', `if=none,id=swap,file=${opt(swapImage)},format=raw,snapshot=on`,
  '-device', 'virtio-blk-pci,drive=swap,serial=lxcfs-ts-swap',
  '-drive', `if=none,id=scratch,file=${opt(scratchImage)},format=raw,snapshot=on`,
  '-device', 'virtio-blk-pci,drive=scratch,serial=lxcfs-ts-scratch',
];

const BOOT_LIMIT_SEC = 300;
const started = Date.now();
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
process.stdout.write(`test:vm: cgroup ${cgroup}, kernel ${kernel.version}, ${files.length} file(s), limits ${fileTimeout} s per file, ${overall} s in all\n`);

const qemu = spawn(QEMU, qemuArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
let bootSeconds = null;
let problem = null;
let line = '';
qemu.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  for (const l of (line + chunk.toString()).replace(/\r/g, '').split('\n').slice(0, -1)) {
    if (l === 'lxcfs-ts-vm: guest up' && bootSeconds === null) {
      bootSeconds = elapsed();
      process.stdout.write(`test:vm: guest up after ${bootSeconds} s\n`);
    }
  }
  line = (line + chunk.toString()).replace(/\r/g, '').split('\n').pop();
});
qemu.stderr.pipe(process.stderr);

const stop = (reason) => {
  problem ??= reason;
  qemu.kill('SIGTERM');
  setTimeout(() => qemu.kill('SIGKILL'), 5_000).unref();
};
const bootTimer = setTimeout(() => bootSeconds === null && stop(`guest did not boot within ${BOOT_LIMIT_SEC} s`), BOOT_LIMIT_SEC * 1000);
const overallTimer = setTimeout(() => stop(`run not finished after ${overall} s: qemu killed`), overall * 1000);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(`interrupted (${signal})`));
// `npm run test:vm` stopped with SIGTERM: npm forwards it to its `sh -c`, which dies without passing it on,
// and this process is re-parented. Its parent gone, nobody waits for the run: stop the guest.
const parent = process.ppid;
const orphanWatch = setInterval(() => process.ppid !== parent && stop(`its parent (pid ${parent}) is gone`), 1_000);
orphanWatch.unref();

// 'close': after qemu exited and its console output is all printed
const exit = await new Promise((resolve) => qemu.on('close', (code, signal) => resolve({ code, signal })));
clearTimeout(bootTimer);
clearTimeout(overallTimer);
clearInterval(orphanWatch);

const readJson = (name) => {
  try {
    return JSON.parse(readFileSync(join(runDir, name), 'utf8'));
  } catch {
    return null;
  }
};
const results = readJson('results.json') ?? [];
const setupFailed = existsSync(join(runDir, 'setup-failed')) ? readFileSync(join(runDir, 'setup-failed'), 'utf8').trim() : null;
rmSync(runDir, { recursive: true, force: true });

if (exit.code !== 0 && !problem) problem = `qemu exited with ${exit.signal ?? `code ${exit.code}`}`;
if (setupFailed) problem = `guest setup failed: ${setupFailed}`;
else if (bootSeconds === null) problem ??= 'guest did not boot (see the console output above)';

// a file the guest never finished counts as one failure
const all = files.map((file, i) => (results[i]?.file === file ? results[i] : { file, passed: 0, failed: 1, missing: true }));
process.stdout.write(`\ntest:vm: cgroup ${cgroup}: guest up after ${bootSeconds ?? '-'} s, ${elapsed()} s in all\n`);
for (const r of all) {
  const how = r.missing ? 'not run or not finished' : `${formatSummary([r])} in ${r.seconds} s${r.timedOut ? ', timed out' : ''}${r.noSummary ? ', no summary' : ''}`;
  process.stdout.write(`test:vm:   ${r.file}: ${how}\n`);
}
if (problem) process.stdout.write(`test:vm: ${problem}\n`);
const failed = all.reduce((n, r) => n + r.failed, 0);
process.stdout.write(`${formatSummary(all)}\n`);
process.exit(problem || failed > 0 ? 1 : 0);
