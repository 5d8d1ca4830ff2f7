// Types for fuse-native 2.2.6 as patched for lxcfs-ts (upstream ships none). See PATCHES.md.

declare namespace Fuse {
  /**
   * Who made a FUSE request (lxcfs-ts patch): read with fuse_get_context() on the FUSE thread.
   * pid is the calling *thread* id (TID) as the kernel reports it, in the daemon's pid namespace;
   * map it to its process through Tgid: in /proc/<pid>/status where that matters. 0s for init.
   */
  interface Caller {
    /** calling thread id (TID), in the daemon's pid namespace */
    pid: number;
    uid: number;
    gid: number;
    /** inode of the caller's pid namespace (/proc/<tid>/ns/pid) when the request was queued; 0 if unknown
     * (init, or a caller already gone) */
    pidNs: number;
  }

  /** A stat answer; missing fields default to 0 (nlink 1, times now). Times are Dates or ms since the epoch. */
  interface Stat {
    mode: number;
    uid?: number;
    gid?: number;
    size?: number;
    dev?: number;
    nlink?: number;
    ino?: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    atime?: Date | number;
    mtime?: Date | number;
    ctime?: Date | number;
  }

  interface Statfs {
    bsize?: number;
    frsize?: number;
    blocks?: number;
    bfree?: number;
    bavail?: number;
    files?: number;
    ffree?: number;
    favail?: number;
    fsid?: number;
    flag?: number;
    namemax?: number;
  }

  /** 0 for success or a negative errno (Fuse.ENOENT...). */
  type Done = (code: number) => void;

  /**
   * FUSE operations. Every op receives the caller as an extra last argument, after its callback
   * (lxcfs-ts patch); otherwise upstream's signatures. read/write answer with the byte count (>= 0)
   * or a negative errno.
   */
  interface Operations {
    init?(cb: Done, caller: Caller): void;
    error?(cb: Done, caller: Caller): void;
    access?(path: string, mode: number, cb: Done, caller: Caller): void;
    statfs?(path: string, cb: (code: number, statfs?: Statfs) => void, caller: Caller): void;
    getattr?(path: string, cb: (code: number, stat?: Stat) => void, caller: Caller): void;
    /** Only its presence counts: upstream answers fgetattr by calling getattr(path, cb, caller). */
    fgetattr?(path: string, fd: number, cb: (code: number, stat?: Stat) => void, caller: Caller): void;
    flush?(path: string, fd: number, cb: Done, caller: Caller): void;
    fsync?(path: string, datasync: number, fd: number, cb: Done, caller: Caller): void;
    fsyncdir?(path: string, datasync: number, fd: number, cb: Done, caller: Caller): void;
    readdir?(path: string, cb: (code: number, names?: string[], stats?: Stat[]) => void, caller: Caller): void;
    truncate?(path: string, size: number, cb: Done, caller: Caller): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done, caller: Caller): void;
    readlink?(path: string, cb: (code: number, target?: string) => void, caller: Caller): void;
    chown?(path: string, uid: number, gid: number, cb: Done, caller: Caller): void;
    chmod?(path: string, mode: number, cb: Done, caller: Caller): void;
    mknod?(path: string, mode: number, dev: number, cb: Done, caller: Caller): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done, caller: Caller): void;
    getxattr?(path: string, name: string, position: number, cb: (code: number, value?: Buffer | null) => void, caller: Caller): void;
    listxattr?(path: string, cb: (code: number, names?: string[]) => void, caller: Caller): void;
    removexattr?(path: string, name: string, cb: Done, caller: Caller): void;
    /**
     * cb(0, fd) as upstream, or cb(0, 0, content) (lxcfs-ts patch): the binding copies the whole content
     * and serves read and release for this open natively, without calling JS. `cacheable`: with the render
     * cache on (Fuse.renderCache), later opens of this path from the caller's pid namespace may be answered
     * with this content, natively, until it expires (lxcfs-ts patch).
     */
    open?(path: string, flags: number, cb: (code: number, fd?: number, content?: Buffer, cacheable?: boolean) => void, caller: Caller): void;
    /**
     * lxcfs-ts patch (PATCHES.md 12): a read at offset 0 of content given by `open`, after an earlier read
     * at offset 0 (a reader that rewinds, like top and vmstat). cb(0, 0, content[, cacheable]) replaces the
     * content the handle serves; cb(errno) fails that read. Without this op, `open` is called instead.
     */
    rewind?(path: string, cb: (code: number, fd?: number, content?: Buffer, cacheable?: boolean) => void, caller: Caller): void;
    opendir?(path: string, flags: number, cb: (code: number, fd?: number) => void, caller: Caller): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrCode: number) => void, caller: Caller): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrCode: number) => void, caller: Caller): void;
    release?(path: string, fd: number, cb: Done, caller: Caller): void;
    releasedir?(path: string, fd: number, cb: Done, caller: Caller): void;
    create?(path: string, mode: number, cb: (code: number, fd?: number) => void, caller: Caller): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done, caller: Caller): void;
    unlink?(path: string, cb: Done, caller: Caller): void;
    rename?(src: string, dest: string, cb: Done, caller: Caller): void;
    link?(src: string, dest: string, cb: Done, caller: Caller): void;
    symlink?(src: string, dest: string, cb: Done, caller: Caller): void;
    mkdir?(path: string, mode: number, cb: Done, caller: Caller): void;
    rmdir?(path: string, cb: Done, caller: Caller): void;
    [op: string]: ((...args: any[]) => void) | undefined;
  }

  /** Mount options; each maps to a libfuse -o option. */
  interface Options {
    /** allow_other: users other than the mounting one may access the mount */
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    /** direct_io (lxcfs-ts patch): no page cache; reads ignore st_size (whole reads of st_size 0 files) */
    directIo?: boolean;
    /** entry_timeout in seconds (0.5 is fine; 0 is passed too) */
    entryTimeout?: number;
    /** attr_timeout in seconds */
    attrTimeout?: number;
    acAttrTimeout?: number;
    blkdev?: boolean;
    blksize?: number;
    maxRead?: number;
    fd?: number;
    userId?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    umask?: number | string;
    uid?: number;
    gid?: number;
    noforget?: boolean;
    remember?: number;
    modules?: string;
    /** libfuse's debug output on stderr (also DEBUG=fuse-bindings) */
    debug?: boolean;
    /** before mounting, detach a stale mount (ENOTCONN) at the mountpoint */
    force?: boolean;
    /** create the mountpoint if missing */
    mkdir?: boolean;
    /** ms before an unanswered op fails with ETIMEDOUT (default 15000); false for none; per-op object */
    timeout?: number | false | ({ default?: number } & Record<string, number | false | undefined>);
    /** -o options appended verbatim (lxcfs-ts patch) */
    extraOptions?: string[];
    /**
     * lxcfs-ts patch (PATCHES.md 19): serve through a channel that a later process can take over
     * (connection() gives the descriptors to keep, e.g. in systemd's descriptor store).
     */
    resumable?: boolean;
    /**
     * lxcfs-ts patch (PATCHES.md 19): take over a stored connection instead of mounting: its /dev/fuse
     * descriptor and its state (both owned by the mount from then on, closed if it fails). The mountpoint
     * is not touched (no stat, no mkdir, no mount). A failure after the call (the state refused, INIT not
     * accepted) reaches mount's callback with code EFUSERESUME. The mount is resumable in turn.
     */
    resume?: { fuseFd: number; stateFd: number };
  }

  /** What connection() reports of a resumable mount. */
  interface Connection {
    /** the /dev/fuse descriptor the mount is served through */
    fuseFd: number;
    /** the state memfd beside it (node ids by path, the kernel's INIT request, the mount's device) */
    stateFd: number;
    /** this mount took over a stored connection */
    resumed: boolean;
  }

  interface ConnectionStats {
    resumed: boolean;
    /** 1 for a new connection, +1 at each take-over; file handles carry it */
    generation: number;
    /** paths with a node id */
    nodes: number;
    /** file and directory handles the kernel holds that map to this process */
    handles: number;
    /** LOOKUPs made up to learn this process's node of a path an earlier one gave the kernel */
    lookupsMadeUp: number;
    /** handles of an earlier process opened again on their first use */
    reopened: number;
    /** their RELEASE, FLUSH or FSYNC answered without reopening */
    answeredHere: number;
    forgetsDropped: number;
    /** the kernel's answer to the resend request after a take-over: 0, an errno (EINVAL: Linux < 6.9), -1 not sent */
    resend: number;
    /** requests handed to libfuse and not answered yet */
    inFlight: number;
    /** handOver() was called */
    parked: boolean;
  }

  type ConnectionState =
    | { ok: true; version: number; generation: number; nodes: number; initBytes: number; mountpoint: string; device: string }
    | { ok: false; errno: number; code: string };

  type FuseOps = Operations;
  type FuseOptions = Options;
  type UnmountError = Error & { code?: string; errno?: number };
  /** entries kept now; opens answered from the cache and opens it could not answer, since process start */
  interface RenderCacheStats { entries: number; hits: number; misses: number }
  /** The fair hand-off of requests to JS (lxcfs-ts patch, PATCHES.md 20). */
  interface DispatchStats {
    /** requests waiting for the main thread now (each holds a FUSE thread) */
    queued: number;
    /** pid namespaces with requests waiting or served in the last 5 s (idle ones are swept first) */
    flows: number;
    /** requests handed to JS since the mount */
    served: number;
    /** of those, requests served while an older one waited (a lookup's, a lighter namespace's, or one that
     * had waited longest) */
    overtaken: number;
  }

  /** The per-thread state of a mount (lxcfs-ts patch, PATCHES.md 2 and 15). */
  interface ThreadStats {
    /** thread locals allocated (each a semaphore and a libuv async handle) */
    locals: number;
    /** FUSE worker threads that served a request, each with new or reused locals */
    threads: number;
    /** of those, threads that got the locals of an exited thread */
    reused: number;
    /** locals given back by exiting threads */
    returned: number;
    /** most locals held by live threads at once */
    peak: number;
    /** locals held by live threads now */
    inUse: number;
    /** the FUSE thread has left its loop (the kernel ended the connection) */
    finished: boolean;
    /** the native state was released: FUSE thread joined, every worker gone, handles closed */
    tornDown: boolean;
    /** a new worker thread waits for the main thread to make its locals (none in the pool) */
    asking: boolean;
    /** locals the main thread has made (counted there, when made: `locals` is counted once a worker took them) */
    made: number;
  }
}

declare class Fuse {
  constructor(mnt: string, ops: Fuse.FuseOps, opts?: Fuse.FuseOptions);
  readonly mnt: string;
  readonly opts: Fuse.FuseOptions;
  /** Mounts; cb runs once the kernel has sent init. Errors say why (errno text, bad options). */
  mount(cb: (err: Error | null) => void): void;
  /** Detaches the mount (umount2 MNT_DETACH, no fusermount) and releases the native side. */
  unmount(cb: (err: Error | null) => void): void;
  /** Per-thread state of this mount (lxcfs-ts patch); null before it is mounted. */
  threadStats(): Fuse.ThreadStats | null;
  /** The fair hand-off's queue and counters (lxcfs-ts patch, PATCHES.md 20); null before it is mounted. */
  dispatchStats(): Fuse.DispatchStats | null;
  /** Another half-life (default 500 ms) and longest wait (default 100 ms) for the fair queue; 0 keeps one.
   * For tests that must not depend on how long their steps take. Throws before mount. */
  configureFairQueue(opts: { halfLifeMs?: number; maxWaitMs?: number }): void;
  /** lxcfs-ts patch (PATCHES.md 19): the descriptors of a resumable mount's connection, else null. */
  connection(): Fuse.Connection | null;
  connectionStats(): Fuse.ConnectionStats | null;
  /** Records the mount's device ("major:minor" as mountinfo shows it) in the connection's state. */
  setConnectionDevice(device: string): void;
  /**
   * Hand-over to a later process: no further request is read from the kernel (they wait there), those read
   * are finished, and requests still waiting for JS when the process exits are left unanswered (the next
   * process gets them again) instead of failing with EIO. Irreversible. Returns the requests in flight.
   */
  handOver(): number;
  /** The negative errno for a code name ('ENOENT' -> -2), -1 when unknown. */
  errno(code: string): number;
  /**
   * Lazy umount2(2) of a path (root only), no fusermount (lxcfs-ts patch). err.code is the errno
   * name: EINVAL = not a mount point (not mounted), EPERM = not root, ENOENT = no such path.
   */
  static unmount(mnt: string, cb: (err: Fuse.UnmountError | null) => void): void;
  /**
   * The render cache (lxcfs-ts patch, PATCHES.md 11): content an open handler answered with `cacheable`
   * is served again natively to opens of the same path from the same pid namespace (never the process's
   * own) for `ttlMs`. 0 turns it off. Every call empties the cache; returns the counters from before.
   */
  /**
   * lxcfs-ts patch (PATCHES.md 13): the path of the `lxcfs-ts-reattach` program built with the addon
   * (reattach.c): `lxcfs-ts-reattach PID MOUNTPOINT` re-attaches PID's mount namespace's binds of a dead
   * lxcfs-ts mount, read as "ROOT\tTARGET" lines on stdin, to the live mount on MOUNTPOINT.
   */
  static readonly reattachHelper: string;
  /**
   * lxcfs-ts patch (PATCHES.md 18): sd_notify(3). Sends `state` (newline-separated KEY=VALUE lines) as one
   * datagram to `socket` (default $NOTIFY_SOCKET: a path or "@abstract"), `fds` attached as SCM_RIGHTS.
   * Returns 0 when sent, an errno name ("ECONNREFUSED"…) when not, null when there is no socket.
   */
  static sdNotify(state: string, fds?: readonly number[], socket?: string): 0 | string | null;
  /**
   * lxcfs-ts patch (PATCHES.md 18): flock(2) on `fd`, never blocking. Returns true when the lock was taken
   * (or released), false when another open file description holds a conflicting one. Throws (with `code`)
   * on any other error.
   */
  static flock(fd: number, mode: 'exclusive' | 'shared' | 'unlock'): boolean;
  /**
   * lxcfs-ts patch (PATCHES.md 19): what descriptor fd is: 'fuse' (/dev/fuse; live while its connection
   * stands), 'file' (a regular file or memfd), 'other', 'none' (not open). Marks it close-on-exec.
   */
  static fdInfo(fd: number): { kind: 'none' | 'fuse' | 'file' | 'other'; live: boolean };
  /** The state of a stored connection (ok), or why fd is not one (EPROTO: not a state of this version). */
  static inspectConnectionState(fd: number): Fuse.ConnectionState;
  static renderCache(ttlMs: number): Fuse.RenderCacheStats;
  static renderCacheStats(): Fuse.RenderCacheStats;
  /** Entries the render cache holds at most, each with an open descriptor of its pid namespace. */
  static readonly RENDER_CACHE_MAX: number;
  /** Drop expired render-cache entries now (each holds a namespace fd); returns how many remain. */
  static renderCacheSweep(): number;
  static readonly EPERM: number;
  static readonly ENOENT: number;
  static readonly ESRCH: number;
  static readonly EINTR: number;
  static readonly EIO: number;
  static readonly ENXIO: number;
  static readonly E2BIG: number;
  static readonly ENOEXEC: number;
  static readonly EBADF: number;
  static readonly ECHILD: number;
  static readonly EAGAIN: number;
  static readonly ENOMEM: number;
  static readonly EACCES: number;
  static readonly EFAULT: number;
  static readonly ENOTBLK: number;
  static readonly EBUSY: number;
  static readonly EEXIST: number;
  static readonly EXDEV: number;
  static readonly ENODEV: number;
  static readonly ENOTDIR: number;
  static readonly EISDIR: number;
  static readonly EINVAL: number;
  static readonly ENFILE: number;
  static readonly EMFILE: number;
  static readonly ENOTTY: number;
  static readonly ETXTBSY: number;
  static readonly EFBIG: number;
  static readonly ENOSPC: number;
  static readonly ESPIPE: number;
  static readonly EROFS: number;
  static readonly EMLINK: number;
  static readonly EPIPE: number;
  static readonly EDOM: number;
  static readonly ERANGE: number;
  static readonly EDEADLK: number;
  static readonly ENAMETOOLONG: number;
  static readonly ENOLCK: number;
  static readonly ENOSYS: number;
  static readonly ENOTEMPTY: number;
  static readonly ELOOP: number;
  static readonly EWOULDBLOCK: number;
  static readonly ENOMSG: number;
  static readonly EIDRM: number;
  static readonly ECHRNG: number;
  static readonly EL2NSYNC: number;
  static readonly EL3HLT: number;
  static readonly EL3RST: number;
  static readonly ELNRNG: number;
  static readonly EUNATCH: number;
  static readonly ENOCSI: number;
  static readonly EL2HLT: number;
  static readonly EBADE: number;
  static readonly EBADR: number;
  static readonly EXFULL: number;
  static readonly ENOANO: number;
  static readonly EBADRQC: number;
  static readonly EBADSLT: number;
  static readonly EDEADLOCK: number;
  static readonly EBFONT: number;
  static readonly ENOSTR: number;
  static readonly ENODATA: number;
  static readonly ETIME: number;
  static readonly ENOSR: number;
  static readonly ENONET: number;
  static readonly ENOPKG: number;
  static readonly EREMOTE: number;
  static readonly ENOLINK: number;
  static readonly EADV: number;
  static readonly ESRMNT: number;
  static readonly ECOMM: number;
  static readonly EPROTO: number;
  static readonly EMULTIHOP: number;
  static readonly EDOTDOT: number;
  static readonly EBADMSG: number;
  static readonly EOVERFLOW: number;
  static readonly ENOTUNIQ: number;
  static readonly EBADFD: number;
  static readonly EREMCHG: number;
  static readonly ELIBACC: number;
  static readonly ELIBBAD: number;
  static readonly ELIBSCN: number;
  static readonly ELIBMAX: number;
  static readonly ELIBEXEC: number;
  static readonly EILSEQ: number;
  static readonly ERESTART: number;
  static readonly ESTRPIPE: number;
  static readonly EUSERS: number;
  static readonly ENOTSOCK: number;
  static readonly EDESTADDRREQ: number;
  static readonly EMSGSIZE: number;
  static readonly EPROTOTYPE: number;
  static readonly ENOPROTOOPT: number;
  static readonly EPROTONOSUPPORT: number;
  static readonly ESOCKTNOSUPPORT: number;
  static readonly EOPNOTSUPP: number;
  static readonly EPFNOSUPPORT: number;
  static readonly EAFNOSUPPORT: number;
  static readonly EADDRINUSE: number;
  static readonly EADDRNOTAVAIL: number;
  static readonly ENETDOWN: number;
  static readonly ENETUNREACH: number;
  static readonly ENETRESET: number;
  static readonly ECONNABORTED: number;
  static readonly ECONNRESET: number;
  static readonly ENOBUFS: number;
  static readonly EISCONN: number;
  static readonly ENOTCONN: number;
  static readonly ESHUTDOWN: number;
  static readonly ETOOMANYREFS: number;
  static readonly ETIMEDOUT: number;
  static readonly ECONNREFUSED: number;
  static readonly EHOSTDOWN: number;
  static readonly EHOSTUNREACH: number;
  static readonly EALREADY: number;
  static readonly EINPROGRESS: number;
  static readonly ESTALE: number;
  static readonly EUCLEAN: number;
  static readonly ENOTNAM: number;
  static readonly ENAVAIL: number;
  static readonly EISNAM: number;
  static readonly EREMOTEIO: number;
  static readonly EDQUOT: number;
  static readonly ENOMEDIUM: number;
  static readonly EMEDIUMTYPE: number;
}

export = Fuse;
