// The running daemon: start (pid file -> mountpoint -> renderers -> mount), reload (SIGUSR1),
// togglePassthrough (SIGUSR2) and stop (SIGTERM/SIGINT). Signals are wired by run.ts; this object only
// knows what each step does, so it can be driven and tested without signals.

import type { Server } from 'node:http';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../context/containers.js';
import { DESCRIPTOR_RESERVE, keptBound, KeptFiles } from '../context/kept-files.js';
import { hostPath } from '../context/sources.js';
import { LoadavgSampler } from '../context/loadavg-sampler.js';
import { ThreadCountWorker } from '../context/thread-count-worker.js';
import { RenderService } from '../context/render-service.js';
import { MANAGED_FUSE_OPTIONS, renderOptionsOf, type DaemonOptions } from './cli.js';
import { closeFds, decide, FD_STORE_NAME, fdStoreUsable, mountDevice, mountsOfDevice, readMountinfo, takePassedFds, type StoredConnection } from './fd-store.js';
import { detachMount, FuseHost, NO_DISPATCH, reattachHelper, RENDER_CACHE_MAX_ENTRIES } from './fuse-host.js';
import type { Logger } from './logger.js';
import { Metrics, serveMetrics } from './metrics.js';
import { prepareMountpoint } from './mountpoint.js';
import { reattachAll, type ReattachResult } from './reattach.js';
import { acquirePidfile, type PidfileResult } from './pidfile.js';
import { RendererLoader, type LoadedRenderers } from './renderer-loader.js';
import { SystemdNotifier } from './systemd-notify.js';
import { removeStatus, statusPathFor, writeStatus, type DaemonStatus } from './status.js';

export type StartResult = { ok: true } | { ok: false; message: string };

export class Daemon {
  private pidfile: Extract<PidfileResult, { ok: true }> | undefined;
  private readonly loader = new RendererLoader();
  /** fds kept open between renders (src/context/kept-files.ts) */
  private readonly kept: KeptFiles;
  private readonly reader: CgroupReader;
  private readonly resolver: ContainerResolver;
  private readonly sampler: LoadavgSampler | undefined;
  private service: RenderService | undefined;
  private host: FuseHost | undefined;
  private status: DaemonStatus | undefined;
  private stopping: Promise<number> | undefined;
  private readonly logOnce: ReturnType<typeof onceLogger>;
  private readonly metrics = new Metrics();
  private metricsServer: Server | undefined;
  private reloadFailures = 0;
  private reattachedMounts = 0;
  private lastScrapeSweep = -Infinity;
  /** the FUSE connection is in systemd's descriptor store (src/daemon/fd-store.ts): SIGTERM hands it over */
  private fdStored = false;

  constructor(
    readonly options: DaemonOptions,
    private readonly log: Logger,
    private readonly systemd: SystemdNotifier = new SystemdNotifier(log),
  ) {
    // Kept files take what the descriptor limit leaves after the daemon's own needs and, when it is on, one
    // namespace descriptor per render cache entry.
    const reserve = DESCRIPTOR_RESERVE + (options.renderCacheMs > 0 ? RENDER_CACHE_MAX_ENTRIES : 0);
    this.kept = new KeptFiles({ maxKept: keptBound(reserve) });
    this.reader = new CgroupReader({ files: this.kept });
    this.resolver = new ContainerResolver(this.reader);
    this.sampler = options.enableLoadavg
      ? new LoadavgSampler(this.reader, {
          intervalMs: loadavgIntervalMs(),
          // The 5 s tick's thread reads on a thread of their own: no burst on the thread that answers opens.
          counter: new ThreadCountWorker({ procRoot: this.reader.procRoot, fsRoot: this.reader.fsRoot }),
          onCounterError: (err) => log.error({ err: err.message }, 'the loadavg thread-count worker failed: counting on the main thread from now on'),
        })
      : undefined;
    this.logOnce = onceLogger(log);
  }

  /**
   * Take the pid file, take over the FUSE connection systemd kept for us (or prepare the mountpoint),
   * load the renderers and mount. Nothing is left on failure.
   */
  async start(): Promise<StartResult> {
    const { options, log } = this;
    const pidfile = acquirePidfile(options.pidfile);
    if (!pidfile.ok) return { ok: false, message: pidfile.message };
    this.pidfile = pidfile;
    const fail = (message: string): StartResult => {
      this.systemd.status(`failed: ${message.split('\n')[0]}`); // the first line: a stack trace is for the journal
      pidfile.release();
      this.pidfile = undefined;
      return { ok: false, message };
    };

    // A connection systemd kept across a restart: decided before anything touches the mountpoint (a
    // mount waiting for its daemon must not be stat()ed).
    let resume = await this.takeStoredConnection();
    for (const note of options.compatNotes) log.info(note);

    const first = this.loader.load();
    if (!first.ok) {
      // systemd keeps its copies: a start that works (Restart=, a fixed bundle) resumes the connection then.
      if (resume) closeFds([resume.fuseFd, resume.stateFd]);
      return fail(first.message);
    }
    const service = new RenderService(this.reader, this.resolver, renderOptionsOf(options), first.loaded.module, this.sampler);
    this.service = service;
    this.pinHostFiles();
    // The bundle a daemon starts with has no older one to fall back on: it serves even if it fails the
    // smoke render, but says so.
    const smoke = service.check(first.loaded.module);
    if (smoke) log.error({ path: first.loaded.path, err: smoke }, 'the renderers fail the smoke render; serving them anyway (nothing older to fall back on)');

    this.status = {
      pid: process.pid,
      mountpoint: options.mountpoint,
      startedAt: new Date().toISOString(),
      reloads: 0,
      renderers: describe(first.loaded),
      passthrough: false,
    };

    const resumed = resume ? await this.resumeStored(resume, service) : undefined;
    if (!resumed) resume = undefined;
    const mounted = resumed ?? (await this.mountFresh(service));
    if (typeof mounted === 'string') return fail(mounted);
    const host = mounted;
    this.host = host;
    await this.announce(host, service, resume !== undefined);
    if (options.reattach) void this.reattach();
    return { ok: true };
  }

  /** Serving: metrics, the status file, the "serving" log line, READY=1. */
  private async announce(host: FuseHost, service: RenderService, resumed: boolean): Promise<void> {
    const { options, log } = this;
    if (options.metrics) {
      // Metrics are for operators; the files are for every container: a busy port or a bad path costs the
      // metrics, never the mount.
      try {
        this.metricsServer = await serveMetrics(options.metrics, () => this.metricsText());
      } catch (err) {
        log.error({ metrics: options.metrics, err: (err as Error).message }, 'cannot serve metrics; serving the files without them');
      }
    }
    const stats = host.connectionStats();
    this.status!.connection = { fdStore: this.fdStored, resumed, generation: stats?.generation ?? 0 };
    this.saveStatus();
    log.info(
      {
        mountpoint: options.mountpoint,
        metrics: options.metrics,
        cgroupLayout: this.reader.layout.kind,
        renderers: this.status!.renderers,
        files: service.paths(),
        swap: !options.disableSwap,
        zswap: !options.disableZswap,
        loadavg: options.enableLoadavg,
        cfs: options.enableCfs,
        renderCacheMs: options.renderCacheMs,
        fdStore: this.fdStored,
        resumed,
      },
      'serving',
    );
    if (this.reader.layout.kind === 'none') {
      // Nothing to render from: every container would read the host's figures and look served.
      log.error({ mountpoint: options.mountpoint }, 'no cgroup hierarchy is mounted in this daemon\'s mount namespace (/sys/fs/cgroup): every file shows the host\'s figures until it is restarted with one');
    }
    this.systemd.ready(this.servingStatus());
  }

  /** The FUSE host serving `service`'s files, its opens measured and their failures logged once. */
  private makeHost(service: RenderService, extraOptions: string[]): FuseHost {
    const { options, log } = this;
    return new FuseHost(
      options.mountpoint,
      {
        files: () => service.files,
        mirrors: () => service.mirrors,
        hidden: (path, caller) => service.hidden(path, caller),
        open: (path, caller) => {
          const started = performance.now();
          const rendered = service.render(path, caller);
          this.metrics.observe(path, (performance.now() - started) / 1000, rendered.ok ? undefined : rendered.errno);
          if (rendered.ok) return rendered;
          // A caller that exited mid-request is routine; a failing renderer is not. Either is logged once
          // per distinct error, not once per read: a broken renderer read in a loop must not flood the log.
          this.logOnce(rendered.errno === 'EIO' ? 'error' : 'warn', { path, errno: rendered.errno, caller }, rendered.reason);
          return rendered;
        },
      },
      log,
      [...this.userFuseOptions(), ...extraOptions],
      options.renderCacheMs,
    );
  }

  /** Serve the connection systemd kept; undefined when it cannot be (then dropped, and a fresh mount follows). */
  private async resumeStored(resume: StoredConnection, service: RenderService): Promise<FuseHost | undefined> {
    const host = this.makeHost(service, []);
    try {
      await host.mount({ resume: { fuseFd: resume.fuseFd, stateFd: resume.stateFd } });
    } catch (err) {
      // The binding closed both descriptors; the mount they served waits for a daemon that will not come.
      await this.dropStoredConnection(resume, `cannot resume it: ${(err as Error).message}`);
      return undefined;
    }
    this.fdStored = Boolean(process.env.NOTIFY_SOCKET); // systemd passed them, and still holds them
    const stats = host.connectionStats();
    this.log.info({ mountpoint: this.options.mountpoint, generation: stats?.generation, paths: stats?.nodes, resend: stats?.resend }, 'resumed the FUSE connection systemd kept: containers and the files they hold open are served again without an error');
    return host;
  }

  /** Prepare the mountpoint and mount afresh (stored in systemd's descriptor store where it can be); a message on failure. */
  private async mountFresh(service: RenderService): Promise<FuseHost | string> {
    const { options, log } = this;
    const prepared = await prepareMountpoint(options.mountpoint, detachMount, (device) =>
      log.warn({ mountpoint: options.mountpoint, device }, 'the mountpoint held an lxcfs-ts connection nobody served (kept by systemd for a restart, but this daemon was not started by systemd): aborted it; running containers are re-attached to the new mount'),
    );
    if (!prepared.ok) return prepared.message;
    if (prepared.recoveredStale) log.warn({ mountpoint: options.mountpoint }, 'recovered a stale mount left by a previous daemon');
    if (prepared.placeholders.length > 0) log.warn({ mountpoint: options.mountpoint, placeholders: prepared.placeholders.slice(0, 20), count: prepared.placeholders.length }, 'the mountpoint holds empty placeholders a container runtime made while no daemon served: mounting over them');
    const host = this.makeHost(service, prepared.placeholders.length > 0 ? ['nonempty'] : []);
    const store = fdStoreUsable();
    if (!store.ok && process.env.NOTIFY_SOCKET) log.warn({ reason: store.reason }, 'systemd cannot keep the FUSE connection: a restart will break open files (running containers are re-attached)');
    try {
      await host.mount({ resumable: store.ok });
    } catch (err) {
      return `cannot mount ${options.mountpoint}: ${(err as Error).message}`;
    }
    if (store.ok) this.storeConnection(host);
    return host;
  }

  /**
   * The connection systemd passed back (src/daemon/fd-store.ts), when it can be resumed. Whatever else was
   * passed is closed; what cannot be used is also dropped from the store, and a mount of it left on the
   * mountpoint is detached, so the fresh mount that follows is not stacked on a connection nobody serves.
   */
  private async takeStoredConnection(): Promise<StoredConnection | undefined> {
    const passed = takePassedFds();
    if (passed.length === 0) return undefined;
    const decision = decide(passed, this.options.mountpoint, readMountinfo());
    if (decision.kind === 'resume') {
      closeFds(decision.others);
      return decision.connection;
    }
    if (decision.reason) this.log.warn({ mountpoint: this.options.mountpoint, reason: decision.reason }, 'not resuming the FUSE connection systemd kept; mounting afresh (running containers are re-attached)');
    if (decision.drop) this.systemd.removeFds(FD_STORE_NAME);
    closeFds(decision.close);
    if (decision.detach) await this.detachDevice(decision.detach);
    return undefined;
  }

  /**
   * A stored connection the binding could not serve (it closed our descriptors): out of the store, its
   * mount detached.
   */
  private async dropStoredConnection(connection: StoredConnection, reason: string): Promise<void> {
    this.log.error({ mountpoint: this.options.mountpoint, reason }, 'dropping the FUSE connection systemd kept; mounting afresh (running containers are re-attached)');
    this.systemd.removeFds(FD_STORE_NAME);
    await this.detachDevice(connection.device);
  }

  /** Detach the mounts of `device` stacked on the mountpoint (umount2, no access to the filesystem). */
  private async detachDevice(device: string): Promise<void> {
    for (let n = mountsOfDevice(this.options.mountpoint, device); n > 0 && mountDevice(this.options.mountpoint) === device; n--) {
      await detachMount(this.options.mountpoint).catch((err: Error) => this.log.warn({ err: err.message }, 'cannot detach the stored connection\'s mount'));
    }
  }

  /**
   * After a fresh mount under systemd: its connection into the descriptor store (FDSTORE=1), when the
   * kernel can send a dead daemon's unanswered requests again to the next one (FUSE_NOTIFY_RESEND, Linux
   * 6.9+). Without that, a request caught in a restart would wait for ever: better to fail it.
   */
  private storeConnection(host: FuseHost): void {
    const connection = host.connection();
    const device = mountDevice(this.options.mountpoint);
    const resend = host.connectionStats()?.resend;
    if (!connection || !device) {
      this.log.warn({ mountpoint: this.options.mountpoint }, 'the FUSE connection cannot be stored (no resumable channel or no mount found in mountinfo)');
      return;
    }
    if (resend !== 0) {
      this.log.warn({ errno: resend }, 'this kernel cannot resend FUSE requests to a new daemon (FUSE_NOTIFY_RESEND, Linux 6.9+): the connection is not stored, a restart re-attaches running containers instead');
      return;
    }
    host.setConnectionDevice(device);
    const sent = this.systemd.storeFds(FD_STORE_NAME, [connection.fuseFd, connection.stateFd]);
    this.fdStored = sent === 0;
    if (sent === 0) this.log.info({ device }, 'FUSE connection stored in systemd\'s descriptor store: a restart or crash will not break running containers');
    else this.log.warn({ errno: sent }, 'FDSTORE=1 failed: a restart will break open files (running containers are re-attached)');
  }

  /**
   * Re-attach running containers' binds of a dead lxcfs-ts mount to ours (src/daemon/reattach.ts), once,
   * after the mount serves; logged per container. Resolves when the pass is done (never rejects).
   */
  async reattach(): Promise<ReattachResult[]> {
    try {
      const { results } = await reattachAll(reattachHelper(), this.options.mountpoint);
      logReattach(this.log, results);
      const mounts = results.reduce((n, r) => n + r.reattached.length, 0);
      this.reattachedMounts += mounts;
      if (mounts > 0) this.systemd.status(`${this.servingStatus()}; ${describeReattach(reattachSummary(results))}`);
      return results;
    } catch (err) {
      this.log.error({ err }, 're-attach pass failed');
      return [];
    }
  }

  /** SIGUSR1: load the renderer bundle again if it changed and passes its checks; refresh the status. */
  reload(): void {
    const { service, host, status, log } = this;
    if (!service || !host || !status) return;
    this.systemd.reloading();
    this.resolver.prune();
    this.kept.sweep();
    const kept = service.prune();
    status.caches = {
      pidNamespaces: this.resolver.cachedNamespaces,
      containerStates: kept.states,
      loadavgContainers: kept.loadavgWatched,
      ...(this.sampler ? { loadavgMaxSliceMs: Math.round(this.sampler.maxSliceMs * 100) / 100 } : {}),
    };
    status.renderCache = { ms: this.options.renderCacheMs, ...host.renderCacheStats() };
    const result = this.loader.load((candidate) => service.check(candidate));
    if (!result.ok) {
      this.reloadFailures++;
      status.lastReloadError = { at: new Date().toISOString(), message: result.message };
      log.error({ path: this.loader.path, err: result.message }, 'renderer reload failed; the previous renderers keep serving');
    } else if (!result.changed) {
      log.info({ path: this.loader.path, sha256: result.loaded.hash }, 'SIGUSR1: renderers unchanged on disk; nothing to reload');
    } else {
      service.use(result.loaded.module);
      this.pinHostFiles();
      host.flushRenderCache(); // nothing the old renderers made is served again
      status.reloads++;
      status.renderers = describe(result.loaded);
      log.info({ reloads: status.reloads, ...status.renderers }, 'renderers reloaded');
    }
    this.saveStatus();
    this.systemd.ready(this.servingStatus());
  }

  /** SIGUSR2: serve every file from the host as it is (LXCFS's "non-virtualization mode"), or stop. */
  togglePassthrough(): void {
    const { service, host, status, log } = this;
    if (!service || !host || !status) return;
    service.passthrough = !service.passthrough;
    host.flushRenderCache();
    status.passthrough = service.passthrough;
    this.saveStatus();
    this.systemd.status(this.servingStatus());
    log.warn({ passthrough: service.passthrough }, service.passthrough ? 'SIGUSR2: serving host files (virtualization off)' : 'SIGUSR2: virtualization back on');
  }

  /**
   * SIGTERM with the connection in systemd's descriptor store: hand it over (the mount stays; requests wait
   * in the kernel for the next start, which resumes it). Otherwise (SIGINT, or not stored): unmount, drop
   * the stored connection, release the pid file. Resolves with the exit code (once, however often called).
   */
  stop(signal?: NodeJS.Signals): Promise<number> {
    if (signal === 'SIGTERM' && this.fdStored && this.host?.connection()) this.stopping ??= this.handOver(signal);
    this.stopping ??= (async () => {
      this.log.info({ signal }, 'unmounting');
      this.systemd.stopping();
      this.sampler?.stop();
      this.metricsServer?.close();
      let code = 0;
      try {
        await this.host?.unmount();
      } catch (err) {
        this.log.error({ err }, 'unmount failed');
        code = 1;
      }
      // systemd's copy would keep the connection, and with it every container's binds, waiting for ever.
      if (this.fdStored) this.systemd.removeFds(FD_STORE_NAME);
      this.kept.closeAll();
      if (this.status) removeStatus(statusPathFor(this.options.pidfile));
      this.pidfile?.release();
      this.log.info({ code }, 'stopped');
      return code;
    })();
    return this.stopping;
  }

  private async handOver(signal: NodeJS.Signals): Promise<number> {
    this.log.info({ signal, mountpoint: this.options.mountpoint }, 'handing the FUSE connection over to the next start (systemd keeps it; the mount stays)');
    this.systemd.stopping();
    this.sampler?.stop();
    this.metricsServer?.close();
    const inFlight = await this.host!.handOver();
    this.kept.closeAll();
    if (this.status) removeStatus(statusPathFor(this.options.pidfile));
    this.pidfile?.release();
    this.log.info({ code: 0, inFlight }, inFlight === 0 ? 'stopped; requests wait in the kernel for the next start' : 'stopped; requests still in flight are sent again to the next start by the kernel');
    return 0;
  }

  /** systemd's STATUS= line: what is served, by which renderers, and the last reload failure if any. */
  private servingStatus(): string {
    const { status } = this;
    if (!status) return 'starting';
    return [
      `serving ${this.options.mountpoint} (cgroup ${this.reader.layout.kind}, renderers ${status.renderers.version})`,
      ...(status.passthrough ? ['passthrough: host files'] : []),
      ...(status.lastReloadError ? [`last reload failed: ${status.lastReloadError.message.split('\n')[0]}`] : []),
    ].join('; ');
  }

  /** The host files the renderers serve stay open for the daemon's life (re-read with pread). */
  private pinHostFiles(): void {
    this.kept.setPinned((this.service?.files ?? []).map((f) => hostPath(this.reader, f.hostPath)));
  }

  /** The metrics exposition, computed now (a scrape). */
  private metricsText(): string {
    // A scrape is also when state of containers that are gone is dropped (at most every 10 s): the
    // figures say what is tracked now, with no timer of our own.
    if (this.service && performance.now() - this.lastScrapeSweep >= 10_000) {
      this.lastScrapeSweep = performance.now();
      this.resolver.prune();
      this.service.prune();
    }
    const stats = this.host?.renderCacheStats() ?? { entries: 0, hits: 0, misses: 0 };
    return this.metrics.text({
      reloads: this.status?.reloads ?? 0,
      reloadFailures: this.reloadFailures,
      passthrough: this.service?.passthrough ?? false,
      pidNamespaces: this.resolver.cachedNamespaces,
      containerStates: this.service?.states.size ?? 0,
      loadavgContainers: this.sampler?.size ?? 0,
      reattachedMounts: this.reattachedMounts,
      renderCache: stats,
      dispatch: this.host?.dispatchStats() ?? NO_DISPATCH,
    });
  }

  private saveStatus(): void {
    if (!this.status) return;
    const path = statusPathFor(this.options.pidfile);
    try {
      writeStatus(path, this.status);
    } catch (err) {
      this.log.warn({ err, path }, 'cannot write the status file; lxcfs-ts status will not see this daemon');
    }
  }

  private userFuseOptions(): string[] {
    return this.options.fuseOptions.filter((o) => {
      const managed = MANAGED_FUSE_OPTIONS.includes(o.split('=')[0]!);
      if (managed) this.log.warn({ option: o }, '-o option ignored: lxcfs-ts sets it itself');
      return !managed;
    });
  }
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

/**
 * One line per namespace that had something to re-attach or left alone, then a summary line. The
 * namespace's process is `containerPid` (pino's own `pid` field is the daemon's).
 */
export function logReattach(log: Logger, results: ReattachResult[]): void {
  for (const r of results) {
    const fields = { containerPid: r.pid, namespace: r.namespace, kind: r.kind };
    if (r.reattached.length > 0 || r.failed.length > 0) {
      const what = r.kind === 'container' ? 'container' : 'mount namespace (a copy of the mount, no container binds)';
      const level = r.failed.length > 0 ? 'error' : 'info';
      log[level]({ ...fields, reattached: r.reattached, failed: r.failed }, r.failed.length > 0 ? `${what} re-attached in part` : `${what} re-attached`);
    }
    if (r.placeholders.length > 0) {
      log.warn({ ...fields, placeholders: r.placeholders }, 'container started while no daemon served: its binds are placeholders, left alone (restart it to get the files)');
    }
  }
  const summary = reattachSummary(results);
  log.info(summary, 're-attach pass done');
}

/** Counts of a re-attach pass: mounts re-attached and failed, containers and other namespaces repaired, placeholders left. */
export function reattachSummary(results: ReattachResult[]) {
  const count = (f: (r: ReattachResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const repaired = results.filter((r) => r.reattached.length > 0);
  return {
    containers: repaired.filter((r) => r.kind === 'container').length,
    namespaces: repaired.filter((r) => r.kind === 'copy').length,
    reattached: count((r) => r.reattached.length),
    failed: count((r) => r.failed.length),
    placeholders: count((r) => r.placeholders.length),
  };
}

/** "re-attached 20 mounts in 2 containers and 1 other mount namespace" */
export function describeReattach(s: ReturnType<typeof reattachSummary>): string {
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  const where = [s.containers > 0 || s.namespaces === 0 ? n(s.containers, 'container', 'containers') : '', s.namespaces > 0 ? n(s.namespaces, 'other mount namespace', 'other mount namespaces') : ''].filter(Boolean).join(' and ');
  return `re-attached ${n(s.reattached, 'mount', 'mounts')} in ${where}${s.failed > 0 ? `, ${s.failed} failed` : ''}`;
}

function describe(loaded: LoadedRenderers) {
  return { version: loaded.module.version, sha256: loaded.hash, path: loaded.path, loadedAt: loaded.loadedAt.toISOString() };
}

/** LXCFS_TS_LOADAVG_INTERVAL_MS shortens the 5 s sampling period (tests watch loads rise and decay). */
function loadavgIntervalMs(): number | undefined {
  const ms = Number(process.env.LXCFS_TS_LOADAVG_INTERVAL_MS);
  return Number.isInteger(ms) && ms >= 100 ? ms : undefined;
}
