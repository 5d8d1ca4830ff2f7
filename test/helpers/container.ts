// A "container" for tests: a shell that joins scratch cgroups, then runs a command as the init of a new
// pid + mount namespace (with its own /proc) where the daemon's files are bind-mounted over the real ones.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { hangGuardMs } from './daemon.js';

export const PROC_FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'swaps', 'loadavg', 'diskstats', 'slabinfo'];

export interface ContainerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ContainerOptions {
  /** shell run inside the new namespaces before the daemon's files are bound (e.g. to keep the real
   * /proc/stat reachable at another path) */
  before?: string;
  /** extra environment for the script */
  env?: Record<string, string>;
}

/**
 * Run `script` (sh) in a container made of cgroupDirs; /proc files and /sys/devices/system/cpu come from
 * mountpoint. timeoutMs is a hang guard (scaled by hangGuardMs): the container is killed after it.
 */
export function runInContainer(cgroupDirs: string[], mountpoint: string, script: string, timeoutMs = 60_000, options: ContainerOptions = {}): Promise<ContainerRun> {
  const binds = [
    ...PROC_FILES.map((f) => `mount --bind "$MNT/proc/${f}" /proc/${f}`),
    // A kernel without PSI (or booted with psi=0) has no /proc/pressure to bind over.
    ...['cpu', 'io', 'memory'].map((f) => `{ [ ! -e /proc/pressure/${f} ] || mount --bind "$MNT/proc/pressure/${f}" /proc/pressure/${f}; }`),
    'mount --bind "$MNT/sys/devices/system/cpu" /sys/devices/system/cpu',
  ].join(' && ');
  const join_ = cgroupDirs.map((d) => `echo $$ > ${JSON.stringify(join(d, 'cgroup.procs'))}`).join(' && ');
  // The script in braces: a script that starts with "cmd &" must not put the binds in the background.
  const inner = `${options.before ? `${options.before} && ` : ''}${binds} && {\n${script}\n}`;
  const outer = `${join_} && exec unshare -m --pid --fork --mount-proc sh -c "$INNER"`;
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', outer], { env: { ...process.env, ...options.env, MNT: mountpoint, INNER: inner }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), hangGuardMs(timeoutMs));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
