// The one place where the daemon keeps state per container between renders: what a renderer asked to be
// handed back next time (/proc/stat's counters that must never decrease, /proc/uptime's idle baseline) and
// the thread census behind procs_running. It lives on the daemon's side of the renderer boundary, so it
// survives a SIGUSR1 reload.
//
// Nothing here may outlive its container: every entry names the cgroup directory it belongs to, and a
// sweep drops the entries whose directory is gone. Sweeps run when a new container's first entry is stored
// (at most once per SWEEP_INTERVAL_MS) and when the daemon refreshes its status (SIGUSR1): no timer, no
// watch and no file descriptor is held for any container. The store is bounded as well (MAX_ENTRIES): past
// it the oldest entries go first.

import { existsSync } from 'node:fs';

export const SWEEP_INTERVAL_MS = 1000;
export const MAX_ENTRIES = 65_536;

export interface ContainerStatesOptions {
  now?: () => number;
  /** whether a cgroup directory still exists (tests inject a fake) */
  exists?: (dir: string) => boolean;
  sweepIntervalMs?: number;
  maxEntries?: number;
}

interface Entry {
  /** the cgroup directory whose removal ends this entry */
  dir: string;
  values: Map<string, unknown>;
}

export class ContainerStates {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = -Infinity;
  private readonly now: () => number;
  private readonly exists: (dir: string) => boolean;
  private readonly sweepIntervalMs: number;
  private readonly maxEntries: number;

  constructor(options: ContainerStatesOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.exists = options.exists ?? existsSync;
    this.sweepIntervalMs = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    this.maxEntries = options.maxEntries ?? MAX_ENTRIES;
  }

  /** Containers with state kept (for status and leak checks). */
  get size(): number {
    return this.entries.size;
  }

  /** The value stored under `name` for the container `key`, undefined when there is none. */
  get(key: string, name: string): unknown {
    return this.entries.get(key)?.values.get(name);
  }

  /**
   * Store `value` under `name` for the container `key`, whose cgroup directory is `dir`. A new container
   * first sweeps out the containers that are gone (rate-limited), so the store follows the live ones.
   */
  set(key: string, dir: string, name: string, value: unknown): void {
    let entry = this.entries.get(key);
    if (!entry) {
      if (this.now() - this.lastSweep >= this.sweepIntervalMs) this.sweep();
      while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      entry = { dir, values: new Map() };
      this.entries.set(key, entry);
    }
    entry.values.set(name, value);
  }

  /** Forget the container `key` (its cgroup was found gone). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drop every container whose cgroup directory is gone; returns how many were dropped. */
  sweep(): number {
    this.lastSweep = this.now();
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (this.exists(entry.dir)) continue;
      this.entries.delete(key);
      dropped++;
    }
    return dropped;
  }
}
