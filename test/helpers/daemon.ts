// Start lxcfs-ts as a child process on a temporary mountpoint. fuse-native answers FUSE requests on the
// daemon's main thread, so the daemon is always a separate process from the readers.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'dist/src/daemon/main.js');

/**
 * How much slower than a host this machine runs: 20 in the QEMU guests of `npm run test:vm` (LXCFS_TS_VM
 * set; TCG emulation runs ~17x slower than the host), else 1. Scales hang guards only (how long to wait
 * before giving up on something that should happen), never what a test asserts.
 */
export const SLOWDOWN = process.env.LXCFS_TS_VM ? 20 : 1;

/** A hang guard's limit: ms on a host, SLOWDOWN times that in the test VM. */
export function hangGuardMs(ms: number): number {
  return ms * SLOWDOWN;
}

export interface Daemon {
  child: ChildProcess;
  mountpoint: string;
  pidfile: string;
  dir: string;
  /** every JSON log line so far */
  logs: () => Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for exit */
  stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function scratchDir(prefix = 'lxcfs-ts-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // non-root readers must traverse it
  return dir;
}

export async function startDaemon(opts: { args?: string[]; dir?: string; mountpoint?: string; waitReady?: boolean; env?: Record<string, string> } = {}): Promise<Daemon> {
  const dir = opts.dir ?? scratchDir();
  const mountpoint = opts.mountpoint ?? join(dir, 'mnt');
  const pidfile = join(dir, 'lxcfs-ts.pid');
  const child = spawn(process.execPath, [MAIN, '-p', pidfile, ...(opts.args ?? []), mountpoint], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const daemon: Daemon = {
    child,
    mountpoint,
    pidfile,
    dir,
    logs,
    stderr: () => err,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  if (opts.waitReady !== false) {
    // a hang guard: the daemon says "serving" or exits; 30 s on a host, 10 min under TCG
    const limit = hangGuardMs(30_000);
    const deadline = Date.now() + limit;
    while (!logs().some((l) => l.msg === 'serving')) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon exited early: ${err}${out}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL'); // never leave a daemon behind a failed start
        throw new Error(`daemon not ready after ${limit / 1000} s: ${err}${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return daemon;
}

/**
 * SIGUSR1 (reload, refresh the status) and wait until the daemon has handled it (its log line) and
 * rewritten its status file (the line comes just before the write, which renames a new file into place: a
 * file with another inode or times); returns the status file's JSON. Throws if that does not happen within
 * a hang guard (5 s on a host), rather than hand back the status from before.
 */
export async function refreshStatus(d: Daemon): Promise<Record<string, unknown>> {
  const path = d.pidfile.replace(/\.pid$/, '.status.json');
  // an inode number alone may be reused at once (ext4): with the times, it names one write
  const inode = () => {
    try {
      const st = statSync(path, { bigint: true });
      return `${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch {
      return 'none';
    }
  };
  const handled = () => d.logs().filter((l) => /^(SIGUSR1|renderers reloaded|renderer reload failed)/.test(String(l.msg))).length;
  const [handledBefore, inodeBefore] = [handled(), inode()];
  d.child.kill('SIGUSR1');
  const deadline = Date.now() + hangGuardMs(5_000);
  while ((handled() === handledBefore || inode() === inodeBefore) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (handled() === handledBefore || inode() === inodeBefore) throw new Error(`SIGUSR1 not handled, or the status file not rewritten, within ${hangGuardMs(5_000) / 1000} s`);
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** Lines of /proc/self/mountinfo whose mount point is path. */
export function mountsAt(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === path);
}

/** Best-effort cleanup: lazy-unmount whatever is left on path, then remove the scratch dir. */
export function cleanup(dir: string, mountpoint?: string): void {
  if (mountpoint) for (let i = 0; i < 8 && mountsAt(mountpoint).length > 0; i++) spawnSync('umount', ['-l', mountpoint]);
  rmSync(dir, { recursive: true, force: true });
}

/** Run a command to completion and capture its output (never through a shell string the test built). */
export function run(cmd: string, args: string[], opts: { input?: string } = {}): { code: number | null; stdout: string; stderr: string } {
  // SIGKILL on timeout (a hang guard): a daemon stuck in a synchronous loop never runs a SIGTERM handler.
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: hangGuardMs(60_000), killSignal: 'SIGKILL' });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
