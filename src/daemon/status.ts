// What a user can ask a running daemon without reading its logs: `lxcfs-ts status` reads the status file
// the daemon rewrites at start and after every reload, next to its pid file, once the pid file's lock says
// a daemon runs. A clean stop removes the status file; a killed daemon's is ignored.

import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { pidfileHolder } from './pidfile.js';

export interface DaemonStatus {
  pid: number;
  mountpoint: string;
  startedAt: string;
  reloads: number;
  renderers: { version: string; sha256: string; path: string; loadedAt: string };
  lastReloadError?: { at: string; message: string };
  passthrough: boolean;
  /** sizes of the daemon's per-container state, refreshed on SIGUSR1 (for leak checks) */
  caches?: { pidNamespaces: number; containerStates: number; loadavgContainers: number; loadavgMaxSliceMs?: number };
  /** --render-cache-ms and the binding's counters since start, refreshed on SIGUSR1 */
  renderCache?: { ms: number; entries: number; hits: number; misses: number };
  /**
   * the FUSE connection: kept in systemd's descriptor store (fdStore), taken over from a previous daemon
   * (resumed), how many daemons have served it (generation; 0 when not resumable). src/daemon/fd-store.ts
   */
  connection?: { fdStore: boolean; resumed: boolean; generation: number };
}

export function statusPathFor(pidfile: string): string {
  return `${pidfile.replace(/\.pid$/, '')}.status.json`;
}

/** Written atomically (rename), so a reader never sees half a file. Failure is logged by the caller. */
export function writeStatus(path: string, status: DaemonStatus): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Removed on a clean stop; a missing file is fine. */
export function removeStatus(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // never written, or gone
  }
}

export type StatusReport = { ok: true; text: string } | { ok: false; message: string };

export function readStatus(pidfile: string): StatusReport {
  const holder = pidfileHolder(pidfile);
  if (!holder.running) {
    if (!holder.exists) return { ok: false, message: `no pid file ${pidfile}: is lxcfs-ts running (with this --pidfile or --runtime-dir)?` };
    return { ok: false, message: `not running: no process holds the lock of pid file ${pidfile}${holder.pid ? ` (it names pid ${holder.pid}, which holds no lock: the daemon that wrote it is gone)` : ''}` };
  }
  const pid = holder.pid ?? 0;
  let status: DaemonStatus;
  try {
    status = JSON.parse(readFileSync(statusPathFor(pidfile), 'utf8')) as DaemonStatus;
  } catch (err) {
    return { ok: false, message: `cannot read ${statusPathFor(pidfile)}: ${(err as Error).message}` };
  }
  const lines = [
    `pid:          ${status.pid}${status.pid === pid ? '' : ` (pid file says ${pid})`}`,
    `mountpoint:   ${status.mountpoint}`,
    `started:      ${status.startedAt}`,
    `renderers:    ${status.renderers.version} (sha256 ${status.renderers.sha256.slice(0, 16)}…, loaded ${status.renderers.loadedAt})`,
    `bundle:       ${status.renderers.path}`,
    `reloads:      ${status.reloads}`,
    `passthrough:  ${status.passthrough ? 'on (host files served)' : 'off'}`,
    `connection:   ${!status.connection ? 'n/a' : !status.connection.fdStore ? 'not in a descriptor store (a restart breaks open files)' : `in systemd's descriptor store, ${status.connection.resumed ? `resumed (daemon ${status.connection.generation} on it)` : 'mounted by this daemon'}`}`,
    `last failure: ${status.lastReloadError ? `${status.lastReloadError.at}: ${status.lastReloadError.message.split('\n')[0]}` : 'none'}`,
    `render cache: ${status.renderCache ? (status.renderCache.ms === 0 ? 'off' : `${status.renderCache.ms} ms, ${status.renderCache.entries} entries, ${status.renderCache.hits} hits, ${status.renderCache.misses} misses (as of the last SIGUSR1)`) : 'n/a'}`,
    `caches:       ${status.caches ? `${status.caches.pidNamespaces} pid namespaces, ${status.caches.containerStates} containers with state, ${status.caches.loadavgContainers} sampled for loadavg${status.caches.loadavgMaxSliceMs !== undefined ? ` (longest sampler slice ${status.caches.loadavgMaxSliceMs} ms)` : ''} (as of the last SIGUSR1)` : 'n/a'}`,
  ];
  return { ok: true, text: lines.join('\n') + '\n' };
}
