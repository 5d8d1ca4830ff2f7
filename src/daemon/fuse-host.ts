// The FUSE host: a read-only tree of virtual files whose content is produced per open by a FileProvider.
// It knows nothing of /proc. The content made at open is handed to the binding, which keeps it per open
// file and answers read and release itself: chunked reads (offset > 0) see the same snapshot as the
// first read, and one open/read/close costs one round trip to JavaScript instead of four.

import Fuse from 'fuse-native';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Mirror } from '../contract.js';
import type { Caller } from '../context/render-service.js';
import type { Logger } from './logger.js';

/** Dispatch figures when nothing is mounted: no queue, nothing served. */
export const NO_DISPATCH: Readonly<Fuse.DispatchStats> = Object.freeze({ queued: 0, flows: 0, served: 0, overtaken: 0 });
/** Entries the binding's render cache holds at most, each with a namespace descriptor (render-cache.h, RENDER_CACHE_MAX). */
export const RENDER_CACHE_MAX_ENTRIES: number = Fuse.RENDER_CACHE_MAX;

export type OpenResult = { ok: true; content: Buffer } | { ok: false; errno: 'ENOENT' | 'ESRCH' | 'EIO' };

export interface FileProvider {
  /** virtual files, paths relative to the mount root ("proc/meminfo"); the same array until it changes */
  files(): readonly { path: string; mode?: number }[];
  /** host directories served as they are, around the virtual files inside them */
  mirrors(): readonly Mirror[];
  /** names directly inside the mirror at `mirrorPath` that `caller` does not see */
  hidden(mirrorPath: string, caller: Caller): ReadonlySet<string>;
  open(path: string, caller: Caller): OpenResult;
}

interface Tree {
  source: readonly { path: string; mode?: number }[];
  dirs: Map<string, string[]>; // "/proc" -> ["meminfo"]
  files: Map<string, number>; // "/proc/meminfo" -> mode
  mirrors: { root: string; path: string; hostPath: string; filtered: boolean }[];
  /** attributes of virtual files and directories, made once per tree (every open checks them) */
  stats: Map<string, Fuse.Stat>;
}

const errnoOf = (err: unknown): number => {
  const code = (err as NodeJS.ErrnoException).code;
  return code && code in Fuse && typeof (Fuse as unknown as Record<string, unknown>)[code] === 'number' ? (Fuse as unknown as Record<string, number>)[code]! : Fuse.EIO;
};

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

export class FuseHost {
  private fuse: Fuse | undefined;
  private tree: Tree | undefined;
  private readonly mountedAt = new Date();
  /** one pending sweep of the render cache, armed by stores only: nothing runs while nothing is cached */
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastCachedAt = 0;

  constructor(
    readonly mountpoint: string,
    private readonly provider: FileProvider,
    private readonly log: Logger,
    private readonly extraOptions: readonly string[] = [],
    /** --render-cache-ms: how long the binding may serve a container's last rendering again (0: never) */
    private readonly renderCacheMs = 0,
  ) {}

  /**
   * Mount, or with `connection.resume` serve a stored connection again instead (no mount: the mountpoint
   * is that connection's own mount; vendor/fuse-native/PATCHES.md 19). `connection.resumable`: serve
   * through a channel a later daemon can take over (connection() gives what to store).
   */
  mount(connection: { resumable?: boolean; resume?: { fuseFd: number; stateFd: number } } = {}): Promise<void> {
    const fuse = new Fuse(this.mountpoint, this.operations(), {
      resumable: connection.resumable === true,
      ...(connection.resume ? { resume: connection.resume } : {}),
      allowOther: true, // containers' non-root users read these files
      directIo: true, // dynamic content: no page cache, st_size is not a limit for reads
      entryTimeout: 0.5, // LXCFS's values: a lookup is trusted for half a second
      attrTimeout: 0.5,
      // The source mountinfo shows for this mount and every bind of it: it names the mountpoint, so a
      // later daemon re-attaches only the dead binds that were this mountpoint's (reattach.ts).
      fsname: fsnameFor(this.mountpoint),
      subtype: 'lxcfs-ts',
      // Every handler answers synchronously, so fuse-native's per-request 15 s watchdog timer is pure cost.
      timeout: false,
      extraOptions: [...this.extraOptions],
    });
    this.fuse = fuse;
    return new Promise((resolve, reject) =>
      fuse.mount((err) => {
        if (err) return reject(err);
        Fuse.renderCache(this.renderCacheMs);
        resolve();
      }),
    );
  }

  /**
   * Forget every cached rendering (the renderers or the passthrough mode changed): the next open of each
   * file renders again. Returns the cache's counters (entries before the flush, hits, misses).
   */
  flushRenderCache(): Fuse.RenderCacheStats {
    return Fuse.renderCache(this.renderCacheMs);
  }

  renderCacheStats(): Fuse.RenderCacheStats {
    return Fuse.renderCacheStats();
  }

  /** The binding's fair queue of requests for the main thread (sweeps pid namespaces idle for 5 s first). */
  dispatchStats(): Fuse.DispatchStats {
    return this.fuse?.dispatchStats() ?? NO_DISPATCH;
  }

  /**
   * Every entry holds an fd of its container's pid namespace: once entries can have expired, drop them,
   * so a container that is gone is let go even if nothing reads again. One timer at a time, re-armed only
   * while entries remain (at most twice after the last store); an idle daemon with an empty cache runs none.
   */
  private armSweep(): void {
    this.lastCachedAt = Date.now();
    if (this.sweepTimer) return;
    const arm = (delayMs: number) => {
      this.sweepTimer = setTimeout(() => {
        this.sweepTimer = undefined;
        // Entries stored since this timer was armed expire by the newest one's time: wait for that.
        if (Fuse.renderCacheSweep() > 0) arm(Math.max(10, this.lastCachedAt + this.renderCacheMs + 10 - Date.now()));
      }, delayMs);
      this.sweepTimer.unref();
    };
    arm(this.renderCacheMs + 10);
  }

  /** The descriptors of a resumable connection (to store), else undefined. */
  connection(): Fuse.Connection | undefined {
    return this.fuse?.connection() ?? undefined;
  }

  connectionStats(): Fuse.ConnectionStats | undefined {
    return this.fuse?.connectionStats() ?? undefined;
  }

  /** Records the mount's device in the connection's state (the next daemon checks it before resuming). */
  setConnectionDevice(device: string): void {
    this.fuse?.setConnectionDevice(device);
  }

  /**
   * Hand the connection over to the next daemon instead of unmounting: read no further request (they
   * wait in the kernel), and resolve once the ones already read are answered (or after `maxWaits` turns
   * of ~1 ms: what is left then is sent again to the next daemon by the kernel, Linux 6.9+). Resolves
   * with the requests still in flight (0 normally).
   */
  async handOver(maxWaits = 1000): Promise<number> {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const fuse = this.fuse;
    if (!fuse) return 0;
    let inFlight = fuse.handOver();
    // Requests waiting for this thread are answered by the event loop between these turns.
    for (let i = 0; i < maxWaits && inFlight > 0; i++) {
      await new Promise((r) => setTimeout(r, 1));
      inFlight = fuse.connectionStats()?.inFlight ?? 0;
    }
    return inFlight;
  }

  unmount(): Promise<void> {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const fuse = this.fuse;
    if (!fuse) return Promise.resolve();
    this.fuse = undefined;
    return new Promise((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
  }

  private currentTree(): Tree {
    const source = this.provider.files();
    if (this.tree?.source === source) return this.tree;
    const dirs = new Map<string, string[]>([['/', []]]);
    const files = new Map<string, number>();
    const add = (rel: string, mode: number | undefined) => {
      const parts = rel.split('/');
      let dir = '/';
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i]!;
        const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
        const siblings = dirs.get(dir)!;
        if (!siblings.includes(name)) siblings.push(name);
        if (i === parts.length - 1 && mode !== undefined) files.set(path, mode);
        else if (!dirs.has(path)) dirs.set(path, []);
        dir = path;
      }
    };
    for (const f of source) add(f.path, f.mode ?? 0o444);
    const mirrors = this.provider.mirrors().map((m) => {
      add(m.path, undefined);
      return { root: `/${m.path}`, path: m.path, hostPath: m.hostPath, filtered: m.hide !== undefined };
    });
    this.tree = { source, dirs, files, mirrors, stats: new Map() };
    return this.tree;
  }

  /**
   * Whether `path` is an entry directly inside a filtered mirror that this caller must not see (a lookup
   * of it fails with ENOENT and readdir leaves it out).
   */
  private hiddenFrom(path: string, caller: Caller | undefined): boolean {
    if (!caller) return false;
    for (const m of this.currentTree().mirrors) {
      if (!m.filtered || !path.startsWith(m.root + '/')) continue;
      const name = path.slice(m.root.length + 1);
      if (name.includes('/')) return false;
      return this.provider.hidden(m.path, caller).has(name);
    }
    return false;
  }

  /** The host path behind a mirrored path, undefined outside every mirror. */
  private hostPathOf(path: string): string | undefined {
    for (const m of this.currentTree().mirrors) {
      if (path === m.root) return m.hostPath;
      if (path.startsWith(m.root + '/')) return m.hostPath + path.slice(m.root.length);
    }
    return undefined;
  }

  private stat(path: string): Fuse.Stat | number {
    const tree = this.currentTree();
    const known = tree.stats.get(path);
    if (known) return known;
    const times = { atime: this.mountedAt, mtime: this.mountedAt, ctime: this.mountedAt };
    // Size 0 like the kernel's own /proc files: the content is made at open, and direct_io makes the
    // kernel read until EOF whatever st_size says.
    const mode = tree.files.get(path);
    if (mode !== undefined) {
      const st = { ...times, mode: 0o100000 | mode, size: 0, nlink: 1, uid: 0, gid: 0 };
      tree.stats.set(path, st);
      return st;
    }
    const host = this.hostPathOf(path);
    if (host !== undefined) {
      try {
        return mirroredStat(lstatSync(host));
      } catch (err) {
        return errnoOf(err);
      }
    }
    if (tree.dirs.has(path)) {
      const st = { ...times, mode: 0o040555, size: 0, nlink: 2, uid: 0, gid: 0 };
      tree.stats.set(path, st);
      return st;
    }
    return Fuse.ENOENT;
  }

  /** Content for an open (or a rewind of an open file): permission check, then the provider's rendering. */
  private serve(op: 'open' | 'rewind', path: string, caller: Caller, cb: (code: number, fd?: number, content?: Buffer, cacheable?: boolean) => void): void {
    try {
      const tree = this.currentTree();
      // Without default_permissions the kernel leaves permission checks to us: honour the modes shown, at
      // open only. A rewind reads an fd that was opened already, as the kernel checks at open and never
      // at read: an fd opened as root keeps reading after a setuid().
      const st = this.stat(path);
      if (typeof st === 'number') return cb(st);
      if (op === 'open' && !mayRead(st, caller)) return cb(Fuse.EACCES);
      if (!tree.files.has(path)) {
        const host = this.hostPathOf(path);
        if (host === undefined) return cb(tree.dirs.has(path) ? Fuse.EISDIR : Fuse.ENOENT);
        return cb(0, 0, readFileSync(host));
      }
      const result = this.provider.open(path.slice(1), caller);
      if (!result.ok) return cb(Fuse[result.errno]);
      this.log.debug({ op, path, caller, bytes: result.content.length }, op);
      // Only world-readable files may be answered from the render cache: it is keyed by pid namespace,
      // and the permission check above is per caller.
      const cacheable = this.renderCacheMs > 0 && (tree.files.get(path)! & 0o004) !== 0;
      cb(0, 0, result.content, cacheable);
      if (cacheable) this.armSweep();
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === Fuse.EIO) this.log.error({ op, path, caller, err }, `${op} failed`);
      cb(errno);
    }
  }

  private operations(): Fuse.Operations {
    const refuse = (op: string) => (...args: unknown[]) => {
      const cb = args.find((a): a is (code: number) => void => typeof a === 'function');
      const caller = args[args.length - 1] as Caller | undefined;
      this.log.debug({ op, path: args[0], caller }, 'refused: read-only filesystem');
      cb?.(Fuse.EROFS);
    };

    return {
      getattr: (path, cb, caller) => {
        if (this.hiddenFrom(path, caller)) return cb(Fuse.ENOENT);
        const st = this.stat(path);
        if (typeof st === 'number') cb(st);
        else cb(0, st);
      },
      readdir: (path, cb, caller) => {
        const virtual = this.currentTree().dirs.get(path) ?? [];
        const host = this.hostPathOf(path);
        let names = virtual;
        if (host !== undefined) {
          try {
            // Virtual files inside a mirror replace the host's entry of the same name (no duplicates,
            // unlike LXCFS 5.0's doubled "online": lxc/lxcfs#685).
            names = [...new Set([...readdirSync(host), ...virtual])];
          } catch (err) {
            if (virtual.length === 0) return cb(errnoOf(err));
          }
          const mirror = this.currentTree().mirrors.find((m) => m.root === path && m.filtered);
          if (mirror) {
            const hidden = this.provider.hidden(mirror.path, caller);
            names = names.filter((n) => !hidden.has(n));
          }
        } else if (!this.currentTree().dirs.has(path)) {
          return cb(typeof this.stat(path) === 'number' ? Fuse.ENOENT : Fuse.ENOTDIR);
        }
        cb(0, ['.', '..', ...names]);
      },
      readlink: (path, cb) => {
        const host = this.hostPathOf(path);
        if (host === undefined) return cb(Fuse.EINVAL);
        try {
          cb(0, readlinkSync(host));
        } catch (err) {
          cb(errnoOf(err));
        }
      },
      open: (path, flags, cb, caller) => {
        if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) {
          this.log.debug({ op: 'open', path, flags, caller }, 'refused: read-only filesystem');
          return cb(Fuse.EROFS);
        }
        this.serve('open', path, caller, cb);
      },
      // A reader rewound to offset 0 (lseek + read, pread at 0): render again, as the kernel's seq_files do.
      rewind: (path, cb, caller) => this.serve('rewind', path, caller, cb),
      write: refuse('write'),
      truncate: refuse('truncate'),
      ftruncate: refuse('ftruncate'),
      create: refuse('create'),
      mknod: refuse('mknod'),
      mkdir: refuse('mkdir'),
      unlink: refuse('unlink'),
      rmdir: refuse('rmdir'),
      rename: refuse('rename'),
      link: refuse('link'),
      symlink: refuse('symlink'),
      chmod: refuse('chmod'),
      chown: refuse('chown'),
      utimens: refuse('utimens'),
      setxattr: refuse('setxattr'),
      removexattr: refuse('removexattr'),
    };
  }
}

function mayRead(st: Fuse.Stat, caller: Caller): boolean {
  if (caller.uid === 0) return true;
  if (caller.uid === st.uid) return (st.mode & 0o400) !== 0;
  if (caller.gid === st.gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/** A host entry as the mount shows it: read-only, size 0 for regular files (content is read at open). */
function mirroredStat(st: Stats): Fuse.Stat {
  const isFile = (st.mode & 0o170000) === 0o100000;
  return {
    mode: st.mode & ~0o222,
    uid: st.uid,
    gid: st.gid,
    size: isFile ? 0 : st.size,
    nlink: st.nlink,
    atime: st.atime,
    mtime: st.mtime,
    ctime: st.ctime,
  };
}

/**
 * "lxcfs-ts:<absolute mountpoint>", with the characters libfuse's option parser treats specially (comma,
 * backslash) escaped with a backslash.
 */
export function fsnameFor(mountpoint: string): string {
  return `lxcfs-ts:${resolvePath(mountpoint)}`.replace(/[\\,]/g, (c) => `\\${c}`);
}

/** The binding's native re-attach program (vendor/fuse-native/reattach.c, built with the addon). */
export function reattachHelper(): string {
  return Fuse.reattachHelper;
}

/** Detach a mount without fusermount (root only): used to recover a stale mount before mounting. */
export function detachMount(path: string): Promise<void> {
  return new Promise((resolve, reject) => Fuse.unmount(path, (err) => (err ? reject(err) : resolve())));
}
