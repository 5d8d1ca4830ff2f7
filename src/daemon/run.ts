// The command line's entry: help, version, status, render, or run the daemon (src/daemon/daemon.ts) and
// wire its signals: SIGUSR1 reload, SIGUSR2 passthrough, SIGTERM/SIGINT stop.

import { readFileSync } from 'node:fs';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../context/containers.js';
import { LoadavgSampler } from '../context/loadavg-sampler.js';
import { RenderService } from '../context/render-service.js';
import { HELP, parseCommandLine, renderOptionsOf, type DaemonOptions, type RenderCommandOptions } from './cli.js';
import { Daemon, describeReattach, reattachSummary } from './daemon.js';
import { reattachHelper } from './fuse-host.js';
import { mountStateOf } from './mountpoint.js';
import { reattachAll } from './reattach.js';
import { createLogger } from './logger.js';
import { RendererLoader } from './renderer-loader.js';
import { readStatus } from './status.js';

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
    case 'reattach':
      return reattachOnce(command.mountpoint);
    case 'run':
      return serve(command.options, bootstrap);
  }
}

/** `lxcfs-ts reattach MOUNTPOINT`: the daemon's start-up re-attach pass, on demand, with a report. */
async function reattachOnce(mountpoint: string): Promise<number> {
  // The top mount must be one that answers: a dead one (its daemon killed) is no source to re-attach to.
  const state = mountStateOf(mountpoint);
  const { live, results } = state.kind === 'live' ? await reattachAll(reattachHelper(), mountpoint) : { live: undefined, results: [] };
  if (!live) {
    process.stderr.write(`lxcfs-ts: no live lxcfs-ts mount on ${mountpoint} to re-attach to\n`);
    return 1;
  }
  for (const r of results) {
    const who = `pid ${r.pid} (${r.namespace}${r.kind === 'copy' ? ', not a container' : ''})`;
    for (const target of r.reattached) process.stdout.write(`${who}: re-attached ${target}\n`);
    for (const f of r.failed) process.stdout.write(`${who}: FAILED ${f.target}: ${f.error}\n`);
    for (const p of r.placeholders) process.stdout.write(`${who}: left alone ${p} (bound while no daemon served; restart that container)\n`);
  }
  const summary = reattachSummary(results);
  const failed = summary.failed;
  process.stdout.write(summary.reattached + failed === 0 ? 'nothing to re-attach\n' : `${describeReattach(summary)}\n`);
  return failed > 0 ? 1 : 0;
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
  const renderOptions = renderOptionsOf(options);
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

  const daemon = new Daemon(options, log);
  // Every signal the daemon answers is ours before it mounts: a SIGTERM between the mount and a handler
  // would otherwise kill it with the default action and leave the mount behind ("Transport endpoint is not
  // connected" for every container), e.g. a `systemctl stop` right after READY=1. Signals that come while
  // the daemon starts are kept for when it serves. main.ts counted the SIGUSR1s before this point.
  let serving = false;
  let pendingUsr1 = 0;
  let pendingUsr2 = 0;
  let pendingStop: NodeJS.Signals | undefined;
  let stopRequested: ((signal: NodeJS.Signals) => void) | undefined;
  process.on('SIGUSR1', () => (serving ? daemon.reload() : pendingUsr1++));
  process.on('SIGUSR2', () => (serving ? daemon.togglePassthrough() : pendingUsr2++));
  const onStop = (signal: NodeJS.Signals) => {
    if (stopRequested) stopRequested(signal);
    else pendingStop ??= signal;
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  bootstrap.releaseUsr1();
  const started = await daemon.start();
  if (!started.ok) {
    log.error(started.message);
    process.stderr.write(`lxcfs-ts: ${started.message}\n`);
    return 1;
  }
  serving = true;
  if (bootstrap.earlyUsr1() + pendingUsr1 > 0) daemon.reload();
  if (pendingUsr2 % 2 === 1) daemon.togglePassthrough();
  return new Promise<number>((resolve) => {
    stopRequested = (signal) => void daemon.stop(signal).then(resolve);
    if (pendingStop) {
      log.info({ signal: pendingStop }, 'stop signal received while starting: stopping now that the mount is up');
      stopRequested(pendingStop);
    }
  });
}
