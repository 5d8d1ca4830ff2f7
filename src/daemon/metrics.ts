// Prometheus metrics for the operators who run one daemon per node (--metrics HOST:PORT or unix:PATH):
// GET /metrics answers in the text exposition format (version 0.0.4). Counters are plain increments on
// the request path; everything else is computed when scraped. No timer, no library default metrics
// (prom-client's wake the event loop 100 times a second).

import { createServer, type Server } from 'node:http';
import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** Render time buckets, seconds: a read costs ~0.1-1 ms; the tail is what matters. */
export const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

interface FileCounters {
  requests: number;
  errors: Map<string, number>;
  buckets: number[];
  sum: number;
}

/** What is read from the daemon at scrape time. */
export interface Gauges {
  reloads: number;
  reloadFailures: number;
  passthrough: boolean;
  pidNamespaces: number;
  containerStates: number;
  loadavgContainers: number;
  reattachedMounts: number;
  renderCache: { entries: number; hits: number; misses: number };
  /** the binding's fair queue (fuse-native PATCHES.md 20): pid namespaces it accounts for, requests served,
   * and of those served ahead of an older one */
  dispatch: { flows: number; served: number; overtaken: number };
}

export class Metrics {
  private readonly files = new Map<string, FileCounters>();

  /** One open or re-read of `file` that took `seconds`; `errno` when it failed. */
  observe(file: string, seconds: number, errno?: string): void {
    let c = this.files.get(file);
    if (!c) {
      c = { requests: 0, errors: new Map(), buckets: BUCKETS.map(() => 0), sum: 0 };
      this.files.set(file, c);
    }
    c.requests++;
    c.sum += seconds;
    const i = BUCKETS.findIndex((b) => seconds <= b);
    if (i >= 0) c.buckets[i]!++;
    if (errno) c.errors.set(errno, (c.errors.get(errno) ?? 0) + 1);
  }

  /** The exposition text. */
  text(g: Gauges): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const files = [...this.files].sort(([a], [b]) => a.localeCompare(b));

    family('lxcfs_ts_requests_total', 'counter', 'Opens and re-reads (seq_file rewinds) of served files answered by rendering, by file.');
    for (const [file, c] of files) out.push(`lxcfs_ts_requests_total{file="${label(file)}"} ${c.requests}`);
    family('lxcfs_ts_request_errors_total', 'counter', 'Opens and re-reads that failed, by file and errno.');
    for (const [file, c] of files) for (const [errno, n] of c.errors) out.push(`lxcfs_ts_request_errors_total{file="${label(file)}",errno="${label(errno)}"} ${n}`);
    family('lxcfs_ts_render_seconds', 'histogram', 'Time to resolve the caller\'s container and render a file, by file.');
    for (const [file, c] of files) {
      let cumulative = 0;
      BUCKETS.forEach((b, i) => {
        cumulative += c.buckets[i]!;
        out.push(`lxcfs_ts_render_seconds_bucket{file="${label(file)}",le="${b}"} ${cumulative}`);
      });
      out.push(`lxcfs_ts_render_seconds_bucket{file="${label(file)}",le="+Inf"} ${c.requests}`);
      out.push(`lxcfs_ts_render_seconds_sum{file="${label(file)}"} ${c.sum}`);
      out.push(`lxcfs_ts_render_seconds_count{file="${label(file)}"} ${c.requests}`);
    }
    family('lxcfs_ts_render_cache_hits_total', 'counter', 'Opens answered from the render cache by the FUSE binding, without rendering (--render-cache-ms).');
    out.push(`lxcfs_ts_render_cache_hits_total ${g.renderCache.hits}`);
    family('lxcfs_ts_render_cache_entries', 'gauge', 'Renderings kept by the render cache.');
    out.push(`lxcfs_ts_render_cache_entries ${g.renderCache.entries}`);
    family('lxcfs_ts_dispatch_pid_namespaces', 'gauge', 'Pid namespaces the fair queue to the main thread accounts for (a request in the last 5 s).');
    out.push(`lxcfs_ts_dispatch_pid_namespaces ${g.dispatch.flows}`);
    family('lxcfs_ts_dispatch_requests_total', 'counter', 'FUSE requests handed to the main thread (opens, rewinds, lookups, directory reads).');
    out.push(`lxcfs_ts_dispatch_requests_total ${g.dispatch.served}`);
    family('lxcfs_ts_dispatch_overtaken_total', 'counter', 'Requests served while an older one waited: a lookup, a lighter pid namespace, or one that had waited longest went first.');
    out.push(`lxcfs_ts_dispatch_overtaken_total ${g.dispatch.overtaken}`);
    family('lxcfs_ts_reloads_total', 'counter', 'Renderer bundles loaded by SIGUSR1.');
    out.push(`lxcfs_ts_reloads_total ${g.reloads}`);
    family('lxcfs_ts_reload_failures_total', 'counter', 'Renderer reloads refused (the previous renderers kept serving).');
    out.push(`lxcfs_ts_reload_failures_total ${g.reloadFailures}`);
    family('lxcfs_ts_passthrough', 'gauge', '1 while every file is served from the host as it is (SIGUSR2).');
    out.push(`lxcfs_ts_passthrough ${g.passthrough ? 1 : 0}`);
    family('lxcfs_ts_pid_namespaces', 'gauge', 'Pid namespaces whose init is cached.');
    out.push(`lxcfs_ts_pid_namespaces ${g.pidNamespaces}`);
    family('lxcfs_ts_tracked_containers', 'gauge', 'Containers with state kept between renders (counters, thread census, load averages).');
    out.push(`lxcfs_ts_tracked_containers ${g.containerStates}`);
    family('lxcfs_ts_loadavg_containers', 'gauge', 'Containers whose load average is being sampled (-l).');
    out.push(`lxcfs_ts_loadavg_containers ${g.loadavgContainers}`);
    family('lxcfs_ts_reattached_mounts_total', 'counter', 'Container bind mounts of a dead lxcfs-ts mount re-attached to this one.');
    out.push(`lxcfs_ts_reattached_mounts_total ${g.reattachedMounts}`);
    return out.join('\n') + '\n';
  }
}

/**
 * Serve `text()` at GET /metrics on `address` (HOST:PORT or unix:PATH); resolves once listening, rejects
 * (EADDRINUSE, EEXIST for a unix path that is not a stale socket, …) otherwise. No timer: Node's
 * per-server connection check (every 30 s by default) is pushed out of reach, so an idle daemon with
 * --metrics never wakes.
 */
export async function serveMetrics(address: string, text: () => string): Promise<Server> {
  if (address.startsWith('unix:')) await clearStaleSocket(address.slice('unix:'.length));
  const server = createServer({ connectionsCheckingInterval: 2 ** 31 - 1 }, (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('lxcfs-ts serves only GET /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve(server);
    };
    if (address.startsWith('unix:')) {
      server.listen(address.slice('unix:'.length), listening);
    } else {
      const colon = address.lastIndexOf(':');
      server.listen(Number(address.slice(colon + 1)), address.slice(0, colon).replace(/^\[|\]$/g, ''), listening);
    }
  });
}

/**
 * A socket left at `path` by a daemon that was killed is removed; a socket something still listens on,
 * or anything that is not a socket, is an error (never deleted).
 */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  const error = (message: string, code: string) => Object.assign(new Error(message), { code });
  if (!isSocket) throw error(`${path} exists and is not a socket`, 'EEXIST');
  const listened = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => (probe.destroy(), resolve(true)));
    probe.once('error', () => resolve(false));
  });
  if (listened) throw error(`something already serves on ${path}`, 'EADDRINUSE');
  unlinkSync(path);
}
