// File descriptors kept open between renders. Opening and closing a /proc or cgroup file costs most of a
// render (the profile in bench/README.md: open, read and close are three quarters of it); a kernel /proc
// or cgroup file kept open regenerates its content on every read from offset 0 (seq_file), so a kept fd
// read with pread from 0 is as fresh as a new open, for a fraction of the cost.
//
// Two kinds:
// - pinned: the host's own files (/proc/meminfo, /proc/stat, /sys/devices/system/cpu/online, …), a small
//   fixed set, kept for the daemon's life;
// - kept: a container's cgroup files and its init's /proc/<pid>/task/<pid>/stat and /proc/<pid>/cgroup.
//   Each holds its seq_file buffer (~4.4 KB of kernel memory once read, measured) and, for a removed
//   cgroup's file, its kernfs node; so these are bounded (keptBound: from the descriptor limit, minus what
//   the daemon needs otherwise), dropped when a read fails (ENODEV: the cgroup was removed; ESRCH: the
//   process exited), dropped when their directory is found gone (sweep, on SIGUSR1), and closed IDLE_MS
//   after their last read by one timer that runs only while kept fds exist: a daemon nobody reads holds
//   none and runs nothing.
//
// When the set is full, the least recently read file gives its slot to a new one only if it has not been
// read for EVICT_IDLE_MS; otherwise the new file is read once and not kept. Readers poll in cycles, and a
// cycle over more files than the bound under plain least-recently-used eviction would evict each file just
// before it is read again (every read an open, a close and an eviction); files read every second keep their
// slots, and a slot held by a file read rarely goes to one read often.
//
// Running out of descriptors (EMFILE, ENFILE) is not a missing file: it throws, so the open fails with EIO
// and the log says why, instead of the caller being told its container is gone.

import { closeSync, constants, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileSource } from 'node-cgroups-parser';

/** Kept (non-pinned) descriptors at most, whatever the descriptor limit allows (keptBound). */
export const MAX_KEPT = 4096;
/**
 * Descriptors the daemon needs besides kept files: /dev/fuse, libuv's and the FUSE threads' own, the
 * loadavg worker's module loads, metrics connections, the files a render opens once. The render cache's
 * namespace descriptors (one per entry) come on top when it is on (keptBound's `reserve`).
 */
export const DESCRIPTOR_RESERVE = 128;
/** A kept file not read for this long gives its slot to a new one when the set is full. */
export const EVICT_IDLE_MS = 2_000;

/**
 * How many descriptors to keep: half of what the soft RLIMIT_NOFILE leaves after `reserve` (Node raises
 * the soft limit to the hard one at start; systemd's default hard limit is 524288), at most MAX_KEPT (~18
 * MiB of kernel memory), 0 when nothing is left. So kept files never make an open that must succeed fail
 * with EMFILE. A node of N containers keeps about 9 N (their cgroup files and their inits' two /proc
 * files); past the bound, files are read once. `limits` is the text of /proc/self/limits (this process's,
 * read now, by default); null (unreadable) or unlimited gives MAX_KEPT.
 */
export function keptBound(reserve: number = DESCRIPTOR_RESERVE, limits: string | null = ownLimits()): number {
  const soft = Number(/^Max open files\s+(\S+)/m.exec(limits ?? '')?.[1]); // NaN for "unlimited" or none
  if (!Number.isFinite(soft)) return MAX_KEPT;
  return Math.max(0, Math.min(MAX_KEPT, Math.floor((soft - reserve) / 2)));
}

function ownLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return null;
  }
}

export const IDLE_MS = 10_000;

export interface KeptFilesOptions {
  /** paths (exact) or prefixes (ending in /) kept for the daemon's life */
  pinned?: readonly string[];
  maxKept?: number;
  idleMs?: number;
  now?: () => number;
  /** run fn after ms; returns a cancel function (default: an unref'd setTimeout) */
  schedule?: (fn: () => void, ms: number) => () => void;
}

interface Kept {
  fd: number;
  usedAt: number;
  pinned: boolean;
}

export class KeptFiles implements FileSource {
  private readonly kept = new Map<string, Kept>();
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private cancelTimer: (() => void) | undefined;
  private pinned: readonly string[];
  private readonly maxKept: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;
  /** kept (non-pinned) fds open now */
  private keptCount = 0;

  constructor(options: KeptFilesOptions = {}) {
    this.pinned = options.pinned ?? [];
    this.maxKept = options.maxKept ?? MAX_KEPT;
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.now = options.now ?? (() => performance.now());
    this.schedule =
      options.schedule ??
      ((fn, ms) => {
        const timer = setTimeout(fn, ms);
        timer.unref();
        return () => clearTimeout(timer);
      });
  }

  /** Replace the pinned paths (the renderers changed); fds of paths no longer pinned are closed. */
  setPinned(paths: readonly string[]): void {
    this.pinned = paths;
    for (const [path, entry] of this.kept) if (entry.pinned && !this.isPinned(path)) this.drop(path, entry);
  }

  /** Open file descriptors held now (pinned and kept), for status and leak checks. */
  get size(): number {
    return this.kept.size;
  }

  /**
   * Whole text of `path`, through a kept fd when `keep` (or when the path is pinned), else open/read/close;
   * undefined when it cannot be opened or read. Throws when the process is out of descriptors.
   */
  read(path: string, keep: boolean): string | undefined {
    const pinned = this.isPinned(path);
    if (!keep && !pinned) return this.readOnce(path);
    let entry = this.kept.get(path);
    if (entry) {
      const text = this.readAt(entry.fd);
      if (text !== undefined) {
        entry.usedAt = this.now();
        if (!pinned) {
          this.kept.delete(path); // least recently read first in the map
          this.kept.set(path, entry);
        }
        return text;
      }
      this.drop(path, entry); // removed cgroup (ENODEV), exited process (ESRCH): open afresh below
    }
    if (!pinned && this.keptCount >= this.maxKept && !this.evictIdle()) return this.readOnce(path);
    const fd = this.open(path);
    if (fd === undefined) return undefined;
    const text = this.readAt(fd);
    if (text === undefined) {
      closeSync(fd);
      return undefined;
    }
    entry = { fd, usedAt: this.now(), pinned };
    this.kept.set(path, entry);
    if (!pinned) {
      this.keptCount++;
      this.armIdleTimer(this.idleMs);
    }
    return text;
  }

  /** Close the kept fds of files whose directory is gone (a removed cgroup); returns how many. */
  sweep(exists: (dir: string) => boolean = existsSync): number {
    let dropped = 0;
    for (const [path, entry] of this.kept) {
      if (entry.pinned || exists(dirname(path))) continue;
      this.drop(path, entry);
      dropped++;
    }
    return dropped;
  }

  /** Close everything (the daemon stops). */
  closeAll(): void {
    for (const [path, entry] of this.kept) this.drop(path, entry);
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private isPinned(path: string): boolean {
    for (const p of this.pinned) if (p.endsWith('/') ? path.startsWith(p) : path === p) return true;
    return false;
  }

  private drop(path: string, entry: Kept): void {
    this.kept.delete(path);
    if (!entry.pinned) this.keptCount--;
    try {
      closeSync(entry.fd);
    } catch {
      // already closed
    }
  }

  /** The least recently read kept file, if it is EVICT_IDLE_MS idle, is closed for a new one (true). */
  private evictIdle(): boolean {
    for (const [path, entry] of this.kept) {
      if (entry.pinned) continue;
      if (this.now() - entry.usedAt < EVICT_IDLE_MS) return false;
      this.drop(path, entry);
      return true;
    }
    return false;
  }

  /**
   * One timer while kept fds exist, due when the least recently read one reaches idleMs: it closes those
   * unused for idleMs and is armed again for the next one, while any remain.
   */
  private armIdleTimer(ms: number): void {
    if (this.cancelTimer) return;
    this.cancelTimer = this.schedule(() => {
      this.cancelTimer = undefined;
      const now = this.now();
      for (const [path, entry] of this.kept) {
        if (entry.pinned) continue;
        const idle = now - entry.usedAt;
        if (idle < this.idleMs) return this.armIdleTimer(this.idleMs - idle); // the rest were read later
        this.drop(path, entry);
      }
    }, Math.max(0, ms));
  }

  /** An fd of path, undefined when it cannot be opened; throws when out of descriptors. */
  private open(path: string): number | undefined {
    try {
      return openSync(path, constants.O_RDONLY);
    } catch (err) {
      throwIfOutOfDescriptors(err, path);
      return undefined;
    }
  }

  /** The whole file from offset 0 (pread: a kept /proc or cgroup fd regenerates its content). */
  private readAt(fd: number): string | undefined {
    try {
      let length = 0;
      for (;;) {
        if (length === this.buffer.length) {
          const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
          this.buffer.copy(bigger, 0, 0, length);
          this.buffer = bigger;
        }
        const n = readSync(fd, this.buffer, length, this.buffer.length - length, length);
        if (n === 0) break;
        length += n;
      }
      return this.buffer.toString('utf8', 0, length);
    } catch {
      return undefined; // ENODEV (cgroup removed), ESRCH (process exited), EISDIR
    }
  }

  private readOnce(path: string): string | undefined {
    const fd = this.open(path);
    if (fd === undefined) return undefined;
    try {
      return this.readAt(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Throws when `err` says the daemon ran out of descriptors (EMFILE, ENFILE) on `path`: an error for the log
 * that says what to raise, instead of a missing file. Every open of the daemon's context goes through this.
 */
export function throwIfOutOfDescriptors(err: unknown, path: string): void {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EMFILE' || code === 'ENFILE') {
    throw new Error(`out of file descriptors (${code}) opening ${path}: raise the daemon's RLIMIT_NOFILE (LimitNOFILE= in its unit)`, { cause: err });
  }
}
