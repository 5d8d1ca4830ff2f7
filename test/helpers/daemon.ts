// Start lxcfs-ts as a child process on a temporary mountpoint. fuse-native answers FUSE requests on the
// daemon's main thread, so the daemon is always a separate process from the readers.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'dist/src/daemon/main.js');

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
    const deadline = Date.now() + 30_000;
    while (!logs().some((l) => l.msg === 'serving')) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon exited early: ${err}${out}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL'); // never leave a daemon behind a failed start
        throw new Error(`daemon not ready after 30 s: ${err}${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return daemon;
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
  // SIGKILL on timeout: a daemon stuck in a synchronous loop never runs a SIGTERM handler.
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: 60_000, killSignal: 'SIGKILL' });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
