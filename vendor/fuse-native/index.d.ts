// Types for the parts of fuse-native that lxcfs-ts uses (upstream 2.2.6 ships none).

declare namespace Fuse {
  /** Who made a FUSE request. pid is the calling *thread* id, in the daemon's pid namespace. */
  interface Caller {
    pid: number;
    uid: number;
    gid: number;
  }

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

  type Done = (code: number) => void;

  /** Every op receives the caller as its last argument, after the callback (lxcfs-ts patch). */
  interface Operations {
    init?(cb: Done, caller: Caller): void;
    getattr?(path: string, cb: (code: number, stat?: Stat) => void, caller: Caller): void;
    readlink?(path: string, cb: (code: number, target?: string) => void, caller: Caller): void;
    readdir?(path: string, cb: (code: number, names?: string[], stats?: Stat[]) => void, caller: Caller): void;
    /** cb(0, 0, content) hands the whole content over: read and release are then served natively. */
    open?(path: string, flags: number, cb: (code: number, fd?: number, content?: Buffer) => void, caller: Caller): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrCode: number) => void, caller: Caller): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrCode: number) => void, caller: Caller): void;
    release?(path: string, fd: number, cb: Done, caller: Caller): void;
    flush?(path: string, fd: number, cb: Done, caller: Caller): void;
    truncate?(path: string, size: number, cb: Done, caller: Caller): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done, caller: Caller): void;
    create?(path: string, mode: number, cb: (code: number, fd?: number) => void, caller: Caller): void;
    mknod?(path: string, mode: number, dev: number, cb: Done, caller: Caller): void;
    mkdir?(path: string, mode: number, cb: Done, caller: Caller): void;
    unlink?(path: string, cb: Done, caller: Caller): void;
    rmdir?(path: string, cb: Done, caller: Caller): void;
    rename?(src: string, dest: string, cb: Done, caller: Caller): void;
    link?(src: string, dest: string, cb: Done, caller: Caller): void;
    symlink?(src: string, dest: string, cb: Done, caller: Caller): void;
    chmod?(path: string, mode: number, cb: Done, caller: Caller): void;
    chown?(path: string, uid: number, gid: number, cb: Done, caller: Caller): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done, caller: Caller): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done, caller: Caller): void;
    removexattr?(path: string, name: string, cb: Done, caller: Caller): void;
    [op: string]: ((...args: any[]) => void) | undefined;
  }

  interface Options {
    allowOther?: boolean;
    directIo?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    fsname?: string;
    subtype?: string;
    debug?: boolean;
    force?: boolean;
    mkdir?: boolean;
    /** milliseconds before an unanswered op fails with ETIMEDOUT (default 15000), false for none */
    timeout?: number | false;
    /** mount options appended verbatim */
    extraOptions?: string[];
  }

  type Errno =
    | 'EPERM' | 'ENOENT' | 'ESRCH' | 'EINTR' | 'EIO' | 'ENXIO' | 'EBADF' | 'EAGAIN' | 'ENOMEM' | 'EACCES'
    | 'EBUSY' | 'EEXIST' | 'EXDEV' | 'ENODEV' | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'ENFILE' | 'EMFILE'
    | 'EFBIG' | 'ENOSPC' | 'ESPIPE' | 'EROFS' | 'EMLINK' | 'ENAMETOOLONG' | 'ENOSYS' | 'ENOTEMPTY'
    | 'ELOOP' | 'ENODATA' | 'EOPNOTSUPP' | 'ENOTCONN' | 'ETIMEDOUT';
}

declare class Fuse {
  constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
  readonly mnt: string;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  /** Lazy umount2(2) of a path (root only); err.code is the errno name, EINVAL = not mounted. */
  static unmount(mnt: string, cb: (err: (Error & { code?: string; errno?: number }) | null) => void): void;
  static readonly EPERM: number;
  static readonly ENOENT: number;
  static readonly ESRCH: number;
  static readonly EINTR: number;
  static readonly EIO: number;
  static readonly ENXIO: number;
  static readonly EBADF: number;
  static readonly EAGAIN: number;
  static readonly ENOMEM: number;
  static readonly EACCES: number;
  static readonly EBUSY: number;
  static readonly EEXIST: number;
  static readonly EXDEV: number;
  static readonly ENODEV: number;
  static readonly ENOTDIR: number;
  static readonly EISDIR: number;
  static readonly EINVAL: number;
  static readonly ENFILE: number;
  static readonly EMFILE: number;
  static readonly EFBIG: number;
  static readonly ENOSPC: number;
  static readonly ESPIPE: number;
  static readonly EROFS: number;
  static readonly EMLINK: number;
  static readonly ENAMETOOLONG: number;
  static readonly ENOSYS: number;
  static readonly ENOTEMPTY: number;
  static readonly ELOOP: number;
  static readonly ENODATA: number;
  static readonly EOPNOTSUPP: number;
  static readonly ENOTCONN: number;
  static readonly ETIMEDOUT: number;
}

export = Fuse;
