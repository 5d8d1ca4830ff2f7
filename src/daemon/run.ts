// The daemon's lifecycle: options -> pid file -> mountpoint -> renderers -> mount -> serve until a signal.

import { readFileSync } from 'node:fs';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../context/containers.js';
import { LoadavgSampler } from '../context/loadavg-sampler.js';
import { RenderService } from '../context/render-service.js';
import { HELP, MANAGED_FUSE_OPTIONS, parseCommandLine, type DaemonOptions, type RenderCommandOptions } from './cli.js';
import { detachMount, FuseHost } from './fuse-host.js';
import { createLogger, type Logger } from './logger.js';
import { prepareMountpoint } from './mountpoint.js';
import { acquirePidfile } from './pidfile.js';
import { RendererLoader } from './renderer-loader.js';
import { readStatus, statusPathFor, writeStatus, type DaemonStatus } from './status.js';

export interface Bootstrap {
  /** SIGUSR1s received before the real handler existed */
  earlyUsr1: () => number;
  /** drop the bootstrap SIGUSR1 listener once ours is in place */
  releaseUsr1: () => void;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[], bootstrap: Bootstrap): Promise<number> {
  const command = parseCommandLine(argv);
  switch (command.kind) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      process.stdout.write(`lxcfs-ts ${packageVersion()}\n`);
      return 0;
    case 'error':
      process.stderr.write(`lxcfs-ts: ${command.message} (see lxcfs-ts --help)\n`);
      return 2;
    case 'status': {
      const report = readStatus(command.pidfile);
      if (report.ok) process.stdout.write(report.text);
      else process.stderr.write(`lxcfs-ts: ${report.message}\n`);
      return report.ok ? 0 : 1;
    }
    case 'render':
      return renderOnce(command.options);
    case 'run':
      return serve(command.options, bootstrap);
  }
}

/** `lxcfs-ts render`: what a process would read, without a mount. */
function renderOnce(options: RenderCommandOptions): number {
  const loader = new RendererLoader();
  const loaded = loader.load();
  if (!loaded.ok) {
    process.stderr.write(`lxcfs-ts: ${loaded.message}\n`);
    return 1;
  }
  const reader = new CgroupReader();
  const sampler = options.enableLoadavg ? new LoadavgSampler(reader) : undefined;
  const renderOptions = { swap: !options.disableSwap, cfs: options.enableCfs };
  const service = new RenderService(reader, new ContainerResolver(reader), renderOptions, loaded.loaded.module, sampler);
  if (!service.paths().includes(options.file)) {
    process.stderr.write(`lxcfs-ts: no such file ${options.file}; files: ${service.paths().join(' ')}\n`);
    return 2;
  }
  const rendered = service.render(options.file, { pid: options.pid, uid: 0, gid: 0 });
  sampler?.stop();
  if (!rendered.ok) {
    process.stderr.write(`lxcfs-ts: ${rendered.reason}\n`);
    return 1;
  }
  process.stdout.write(rendered.content);
  return 0;
}

async function serve(options: DaemonOptions, bootstrap: Bootstrap): Promise<number> {
  const log = createLogger(options.debug);
  // A bug must cost one request, not every container's mount.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception; still serving'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection; still serving'));

  const pidfile = acquirePidfile(options.pidfile);
  if (!pidfile.ok) {
    log.error(pidfile.message);
    process.stderr.write(`lxcfs-ts: ${pidfile.message}\n`);
    return 1;
  }
  const fail = (message: string): number => {
    log.error(message);
    process.stderr.write(`lxcfs-ts: ${message}\n`);
    pidfile.release();
    return 1;
  };

  const prepared = await prepareMountpoint(options.mountpoint, detachMount);
  if (!prepared.ok) return fail(prepared.message);
  if (prepared.recoveredStale) log.warn({ mountpoint: options.mountpoint }, 'recovered a stale mount left by a previous daemon');

  const loader = new RendererLoader();
  const first = loader.load();
  if (!first.ok) return fail(first.message);

  const reader = new CgroupReader();
  const resolver = new ContainerResolver(reader);
  const sampler = options.enableLoadavg ? new LoadavgSampler(reader, { intervalMs: loadavgIntervalMs() }) : undefined;
  const service = new RenderService(reader, resolver, { swap: !options.disableSwap, cfs: options.enableCfs }, first.loaded.module, sampler);

  const status: DaemonStatus = {
    pid: process.pid,
    mountpoint: options.mountpoint,
    startedAt: new Date().toISOString(),
    reloads: 0,
    renderers: describe(first.loaded),
    passthrough: false,
  };
  const statusPath = statusPathFor(options.pidfile);
  const saveStatus = () => {
    try {
      writeStatus(statusPath, status);
    } catch (err) {
      log.warn({ err, path: statusPath }, 'cannot write the status file; lxcfs-ts status will not see this daemon');
    }
  };

  const reload = () => {
    resolver.prune();
    const kept = service.prune();
    status.caches = { pidNamespaces: resolver.cachedNamespaces, containerStates: kept.states, loadavgContainers: kept.loadavgWatched, ...(sampler ? { loadavgMaxSliceMs: Math.round(sampler.maxSliceMs * 100) / 100 } : {}) };
    status.renderCache = { ms: options.renderCacheMs, ...host.renderCacheStats() };
    const result = loader.load((candidate) => service.check(candidate, [process.pid]));
    if (!result.ok) {
      status.lastReloadError = { at: new Date().toISOString(), message: result.message };
      log.error({ path: loader.path, err: result.message }, 'renderer reload failed; the previous renderers keep serving');
    } else if (!result.changed) {
      log.info({ path: loader.path, sha256: result.loaded.hash }, 'SIGUSR1: renderers unchanged on disk; nothing to reload');
    } else {
      service.use(result.loaded.module);
      host.flushRenderCache(); // nothing the old renderers made is served again
      status.reloads++;
      status.renderers = describe(result.loaded);
      log.info({ reloads: status.reloads, ...status.renderers }, 'renderers reloaded');
    }
    saveStatus();
  };
  process.on('SIGUSR1', reload);
  bootstrap.releaseUsr1();

  process.on('SIGUSR2', () => {
    service.passthrough = !service.passthrough;
    host.flushRenderCache();
    status.passthrough = service.passthrough;
    saveStatus();
    log.warn({ passthrough: service.passthrough }, service.passthrough ? 'SIGUSR2: serving host files (virtualization off)' : 'SIGUSR2: virtualization back on');
  });

  const logOnce = onceLogger(log);
  const host = new FuseHost(
    options.mountpoint,
    {
      files: () => service.files,
      mirrors: () => service.mirrors,
      hidden: (path, caller) => service.hidden(path, caller),
      open: (path, caller) => {
        const rendered = service.render(path, caller);
        if (rendered.ok) return rendered;
        // A caller that exited mid-request is routine; a failing renderer is not. Either is logged once
        // per distinct error, not once per read: a broken renderer read in a loop must not flood the log.
        logOnce(rendered.errno === 'EIO' ? 'error' : 'warn', { path, errno: rendered.errno, caller }, rendered.reason);
        return rendered;
      },
    },
    log,
    userFuseOptions(options, log),
    options.renderCacheMs,
  );

  try {
    await host.mount();
  } catch (err) {
    return fail(`cannot mount ${options.mountpoint}: ${(err as Error).message}`);
  }
  status.renderCache = { ms: options.renderCacheMs, ...host.renderCacheStats() };
  saveStatus();
  log.info(
    {
      mountpoint: options.mountpoint,
      cgroupLayout: reader.layout.kind,
      renderers: status.renderers,
      files: service.paths(),
      swap: !options.disableSwap,
      loadavg: options.enableLoadavg,
      cfs: options.enableCfs,
      renderCacheMs: options.renderCacheMs,
    },
    'serving',
  );
  if (bootstrap.earlyUsr1() > 0) reload();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'unmounting');
      sampler?.stop();
      host
        .unmount()
        .then(() => 0)
        .catch((err: Error) => {
          log.error({ err }, 'unmount failed');
          return 1;
        })
        .then((code) => {
          pidfile.release();
          log.info({ code }, 'stopped');
          resolve(code);
        });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** Log a message the first time its (level, path, first line) is seen; later repeats are counted. */
function onceLogger(log: Logger) {
  const seen = new Map<string, number>();
  return (level: 'error' | 'warn', fields: Record<string, unknown>, message: string) => {
    const firstLine = message.split('\n')[0]!.replace(/\b\d+\b/g, 'N'); // "caller 1234 has exited" is one error
    const key = `${level} ${String(fields.path)} ${firstLine}`;
    const count = (seen.get(key) ?? 0) + 1;
    if (seen.size > 10_000) seen.clear(); // bounded: a flood of distinct errors logs again, never grows memory
    seen.set(key, count);
    if (count === 1) log[level](fields, message);
    else if (Number.isInteger(Math.log10(count))) log[level]({ ...fields, repeats: count }, `${firstLine} (repeated ${count} times)`);
  };
}

function describe(loaded: { module: { version: string }; hash: string; path: string; loadedAt: Date }) {
  return { version: loaded.module.version, sha256: loaded.hash, path: loaded.path, loadedAt: loaded.loadedAt.toISOString() };
}

/** LXCFS_TS_LOADAVG_INTERVAL_MS shortens the 5 s sampling period (tests watch loads rise and decay). */
function loadavgIntervalMs(): number | undefined {
  const ms = Number(process.env.LXCFS_TS_LOADAVG_INTERVAL_MS);
  return Number.isInteger(ms) && ms >= 100 ? ms : undefined;
}

function userFuseOptions(options: DaemonOptions, log: Logger): string[] {
  return options.fuseOptions.filter((o) => {
    const managed = MANAGED_FUSE_OPTIONS.includes(o.split('=')[0]!);
    if (managed) log.warn({ option: o }, '-o option ignored: lxcfs-ts sets it itself');
    return !managed;
  });
}
