// Command line, with LXCFS's option names: every flag of LXCFS 5.0, 6.0 and 7.0 is accepted, implemented
// where lxcfs-ts has the feature and otherwise noted in one log line at start (compatNotes). Parsing never
// exits by itself: it returns what to do, and main decides (bad input: one line on stderr, exit 2).

import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { RenderOptions } from '../contract.js';

export const DEFAULT_RUNTIME_DIR = '/run';
export const DEFAULT_PIDFILE = `${DEFAULT_RUNTIME_DIR}/lxcfs-ts.pid`;

/** Options lxcfs-ts always sets itself; a user -o naming them is ignored (as LXCFS does). */
export const MANAGED_FUSE_OPTIONS = ['allow_other', 'direct_io', 'entry_timeout', 'attr_timeout', 'fsname', 'subtype'];

export const HELP = `Usage: lxcfs-ts [options] MOUNTPOINT
       lxcfs-ts render [--pid PID] [-u] [-z] [-l] [--enable-cfs] FILE
       lxcfs-ts status [-p PIDFILE | --runtime-dir DIR]
       lxcfs-ts reattach MOUNTPOINT

Serve /proc files rendered from the cgroups of the process that reads them, so a
container that bind-mounts MOUNTPOINT/proc/meminfo over its /proc/meminfo sees
its own memory limit and usage. Runs in the foreground; stop with SIGTERM.

Served files (under MOUNTPOINT):
  proc/{meminfo,cpuinfo,stat,uptime,swaps,loadavg,diskstats,slabinfo}
  proc/pressure/{cpu,io,memory}
  sys/devices/system/cpu/ (online, present, possible computed; cpuN of other
  CPUs hidden; the rest is the host's)

render prints what process PID (default: the render command itself) would read
from FILE (e.g. proc/meminfo or /proc/meminfo), without a mount: a first read
(with -l, load averages start at 0, as for a container read the first time).
status prints the running daemon's pid, mountpoint, renderer version and hash,
reload count and last reload failure (from PIDFILE's .status.json beside it),
or says no daemon runs: whether one does is the lock on PIDFILE.
reattach replaces the bind mounts running containers hold of a dead lxcfs-ts
mount (a daemon that stopped, crashed or was killed) with binds of the live one
on MOUNTPOINT, in place (Linux 5.2+). The daemon does this once when it starts.

Options:
  -f, --foreground        accepted for LXCFS compatibility (always foreground)
  -d, --debug             log every open and re-read of a served file and
                          every refused change (JSON lines on stdout)
  -u, --disable-swap      show no swap in meminfo (SwapTotal and SwapFree 0)
  -z, --disable-zswap     show no zswap in meminfo (Zswap and Zswapped 0)
  -l, --enable-loadavg    per-container /proc/loadavg (otherwise the host's)
      --enable-cfs        also limit the CPU view by the CFS quota
      --render-cache-ms MS
                          serve a container the file it read less than MS ms
                          ago again, without rendering (0-10000; default 0:
                          every open renders). Content may then be up to MS ms
                          old; each container's own, never another's
      --metrics ADDRESS   serve Prometheus metrics at /metrics on HOST:PORT or
                          unix:PATH (off by default)
      --no-reattach       do not re-attach running containers' dead binds at start
  -p, --pidfile FILE      pid file, locked while the daemon runs; a second
                          daemon with it refuses to start
                          (default RUNTIME_DIR/lxcfs-ts.pid: ${DEFAULT_PIDFILE})
      --runtime-dir DIR   where the default pid file goes (default ${DEFAULT_RUNTIME_DIR})
  -o OPTIONS              extra FUSE mount options, comma separated
  -h, --help              show this help
  -v, --version           show the version

Accepted for LXCFS compatibility, with a note in the log at start:
  -s                      ignored (LXCFS's legacy single-threaded switch)
      --enable-pidfd      always on in effect: inits are checked by start time
      --enable-cgroup     no cgroupfs under MOUNTPOINT/cgroup (LXCFS 6.0 only)
      --enable-psi-poll   pressure files are read-only: PSI triggers are not
                          supported

Under systemd (NOTIFY_SOCKET set; Type=notify) it says READY=1 once the files
are served, keeps STATUS= current, and pings WATCHDOG=1 when WatchdogSec= is set.
On Linux 6.9+ it also keeps its FUSE connection in systemd's descriptor store
(FDSTORE=1; the unit needs FileDescriptorStoreMax=2): the next start serves the
same connection, so a restart or crash fails no read in running containers.

Signals: SIGTERM/SIGINT unmount and exit 0 (SIGTERM hands the mount over to the
next start instead when the connection is in the store); SIGUSR1 reloads the renderers
(dist/renderers.cjs) without unmounting, keeping the old ones if the new bundle
fails to load or to render; SIGUSR2 toggles host passthrough (every file shows
the host's).
`;

const optionsSchema = z.object({
  foreground: z.boolean(),
  debug: z.boolean(),
  disableSwap: z.boolean(),
  disableZswap: z.boolean(),
  enableLoadavg: z.boolean(),
  enableCfs: z.boolean(),
  reattach: z.boolean(),
  renderCacheMs: z.number({ message: '--render-cache-ms needs a number of milliseconds' }).int('--render-cache-ms needs whole milliseconds').min(0, '--render-cache-ms cannot be negative').max(10_000, '--render-cache-ms is at most 10000 (10 s)'),
  metrics: z
    .string()
    .regex(/^(unix:\/.+|(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5})$/, '--metrics needs HOST:PORT or unix:/PATH')
    // TCP ports are 16 bits; 0 would be a random port nobody could scrape.
    .refine((address) => address.startsWith('unix:') || inPortRange(Number(address.slice(address.lastIndexOf(':') + 1))), '--metrics PORT must be 1-65535')
    .optional(),
  pidfile: z.string().min(1, '--pidfile needs a path'),
  fuseOptions: z.array(
    z.string().regex(/^[A-Za-z0-9_]+(=[A-Za-z0-9_.:/-]+)?$/, 'a -o option must look like name or name=value'),
  ),
  /** LXCFS flags accepted without their effect: one log line each at start */
  compatNotes: z.array(z.string()),
  mountpoint: z.string().min(1),
});

function inPortRange(port: number): boolean {
  return port >= 1 && port <= 65535;
}

export type DaemonOptions = z.infer<typeof optionsSchema>;

export interface RenderCommandOptions {
  pid: number;
  file: string;
  disableSwap: boolean;
  disableZswap: boolean;
  enableLoadavg: boolean;
  enableCfs: boolean;
}

export type Command =
  | { kind: 'run'; options: DaemonOptions }
  | { kind: 'render'; options: RenderCommandOptions }
  | { kind: 'status'; pidfile: string }
  | { kind: 'reattach'; mountpoint: string }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string };

/** Options that change what the renderers produce: the daemon and `render` take the same ones. */
const RENDER_OPTIONS = {
  'disable-swap': { type: 'boolean', short: 'u', default: false },
  'disable-zswap': { type: 'boolean', short: 'z', default: false },
  'enable-loadavg': { type: 'boolean', short: 'l', default: false },
  'enable-cfs': { type: 'boolean', default: false },
} as const;

/** The renderers' options from either command's. */
export function renderOptionsOf(options: { disableSwap: boolean; disableZswap: boolean; enableCfs: boolean }): RenderOptions {
  return { swap: !options.disableSwap, zswap: !options.disableZswap, cfs: options.enableCfs };
}

/** LXCFS flags lxcfs-ts accepts without their effect, and what it does instead (logged at start). */
const COMPAT_FLAGS = {
  s: { type: 'boolean', short: 's', default: false },
  'enable-pidfd': { type: 'boolean', default: false },
  'enable-cgroup': { type: 'boolean', default: false },
  'enable-psi-poll': { type: 'boolean', default: false },
} as const;
const COMPAT_NOTES: Record<keyof typeof COMPAT_FLAGS, string> = {
  s: '-s is ignored: it is a legacy LXCFS switch with no effect in LXCFS 5.0 and later either',
  'enable-pidfd': '--enable-pidfd has no effect: lxcfs-ts always checks a cached container init by its start time, which a recycled pid cannot match',
  'enable-cgroup': '--enable-cgroup has no effect: lxcfs-ts does not emulate cgroupfs under MOUNTPOINT/cgroup (LXCFS 6.0 only; gone in 7.0); containers use their runtime\'s cgroup mount',
  'enable-psi-poll': '--enable-psi-poll has no effect: lxcfs-ts serves /proc/pressure files read-only; PSI triggers (writes, poll) are not forwarded',
};

function parseRenderCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        pid: { type: 'string' },
        ...RENDER_OPTIONS,
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (positionals.length !== 1) return { kind: 'error', message: 'render needs exactly one FILE, e.g. proc/meminfo' };
  const pid = values.pid === undefined ? process.pid : Number(values.pid);
  const result = z.number().int().positive('--pid needs a positive integer').safeParse(pid);
  if (!result.success) return { kind: 'error', message: '--pid needs a positive integer' };
  return {
    kind: 'render',
    options: {
      pid,
      file: positionals[0]!.replace(/^\/+/, ''),
      disableSwap: values['disable-swap'],
      disableZswap: values['disable-zswap'],
      enableLoadavg: values['enable-loadavg'],
      enableCfs: values['enable-cfs'],
    },
  };
}

/** RUNTIME_DIR/lxcfs-ts.pid, as the daemon and `status` agree on it. */
function defaultPidfile(runtimeDir: string): string {
  const dir = runtimeDir.replace(/\/+$/, '');
  return `${dir}/lxcfs-ts.pid`;
}

function parseStatusCommand(argv: string[]): Command {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: { pidfile: { type: 'string', short: 'p' }, 'runtime-dir': { type: 'string', default: DEFAULT_RUNTIME_DIR } },
    });
    const pidfile = values.pidfile ?? defaultPidfile(values['runtime-dir']);
    return pidfile ? { kind: 'status', pidfile } : { kind: 'error', message: '--pidfile needs a path' };
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
}

function parseReattachCommand(argv: string[]): Command {
  try {
    const { positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: {} });
    if (positionals.length !== 1) return { kind: 'error', message: 'reattach needs the MOUNTPOINT the daemon serves' };
    return { kind: 'reattach', mountpoint: positionals[0]! };
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
}

export function parseCommandLine(argv: string[]): Command {
  if (argv[0] === 'render') return parseRenderCommand(argv.slice(1));
  if (argv[0] === 'status') return parseStatusCommand(argv.slice(1));
  if (argv[0] === 'reattach') return parseReattachCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        foreground: { type: 'boolean', short: 'f', default: false },
        debug: { type: 'boolean', short: 'd', default: false },
        ...RENDER_OPTIONS,
        ...COMPAT_FLAGS,
        'render-cache-ms': { type: 'string', default: '0' },
        metrics: { type: 'string' },
        'no-reattach': { type: 'boolean', default: false },
        pidfile: { type: 'string', short: 'p' },
        'runtime-dir': { type: 'string', default: DEFAULT_RUNTIME_DIR },
        o: { type: 'string', short: 'o', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positionals.length !== 1) {
    return { kind: 'error', message: positionals.length === 0 ? 'missing MOUNTPOINT' : `expected one MOUNTPOINT, got ${positionals.length} arguments` };
  }

  const result = optionsSchema.safeParse({
    foreground: values.foreground,
    debug: values.debug,
    disableSwap: values['disable-swap'],
    disableZswap: values['disable-zswap'],
    enableLoadavg: values['enable-loadavg'],
    enableCfs: values['enable-cfs'],
    renderCacheMs: /^\d+$/.test(values['render-cache-ms']) ? Number(values['render-cache-ms']) : Number.NaN,
    metrics: values.metrics,
    reattach: !values['no-reattach'],
    pidfile: values.pidfile ?? defaultPidfile(values['runtime-dir']),
    fuseOptions: (values.o ?? []).flatMap((o) => o.split(',')).filter((o) => o !== ''),
    compatNotes: (Object.keys(COMPAT_FLAGS) as (keyof typeof COMPAT_FLAGS)[]).filter((k) => values[k]).map((k) => COMPAT_NOTES[k]),
    mountpoint: positionals[0],
  });
  if (!result.success) {
    const issue = result.error.issues[0];
    return { kind: 'error', message: issue ? issue.message : 'invalid options' };
  }
  return { kind: 'run', options: result.data };
}
