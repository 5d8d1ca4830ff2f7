const os = require('os')
const fs = require('fs')
const path = require('path')

const Nanoresource = require('nanoresource')
const { beforeMount, beforeUnmount, configure, unconfigure, isConfigured } = require('fuse-shared-library-linux')

const binding = loadBinding()

// lxcfs-ts: the addon is always built from source at install (no prebuilds, no node-gyp-build).
// FUSE_NATIVE_ADDON=/absolute/path/fuse.node loads another build instead (PATCHES.md 17: the sanitizer
// build of `npm run test:sanitize`, which a daemon started by the tests must load too).
function loadBinding () {
  const override = process.env.FUSE_NATIVE_ADDON
  if (override !== undefined && !path.isAbsolute(override)) throw new Error(`FUSE_NATIVE_ADDON must be an absolute path to a fuse.node (got ${JSON.stringify(override)})`)
  const file = override || path.join(__dirname, 'build', 'Release', 'fuse.node')
  if (!fs.existsSync(file)) throw new Error(`fuse-native addon not built; run npm rebuild fuse-native (no ${file})`)
  try {
    return require(file)
  } catch (err) {
    err.message = `fuse-native addon not loadable from ${file} (run npm rebuild fuse-native): ${err.message}`
    throw err
  }
}

const IS_OSX = os.platform() === 'darwin'
const OSX_FOLDER_ICON = '/System/Library/CoreServices/CoreTypes.bundle/Contents/Resources/GenericFolderIcon.icns'
const HAS_FOLDER_ICON = IS_OSX && fs.existsSync(OSX_FOLDER_ICON)
const DEFAULT_TIMEOUT = 15 * 1000
const TIMEOUT_ERRNO = IS_OSX ? -60 : -110
const ENOTCONN = IS_OSX ? -57 : -107

const OpcodesAndDefaults = new Map([
  ['init', {
    op: binding.op_init
  }],
  ['error', {
    op: binding.op_error
  }],
  ['access', {
    op: binding.op_access,
    defaults: [0]
  }],
  ['statfs', {
    op: binding.op_statfs,
    defaults: [getStatfsArray()]
  }],
  ['fgetattr', {
    op: binding.op_fgetattr,
    defaults: [getStatArray()]
  }],
  ['getattr', {
    op: binding.op_getattr,
    defaults: [getStatArray()]
  }],
  ['flush', {
    op: binding.op_flush
  }],
  ['fsync', {
    op: binding.op_fsync
  }],
  ['fsyncdir', {
    op: binding.op_fsyncdir
  }],
  ['readdir', {
    op: binding.op_readdir,
    defaults: [[], []]
  }],
  ['truncate', {
    op: binding.op_truncate
  }],
  ['ftruncate', {
    op: binding.op_ftruncate
  }],
  ['utimens', {
    op: binding.op_utimens
  }],
  ['readlink', {
    op: binding.op_readlink,
    defaults: ['']
  }],
  ['chown', {
    op: binding.op_chown
  }],
  ['chmod', {
    op: binding.op_chmod
  }],
  ['mknod', {
    op: binding.op_mknod
  }],
  ['setxattr', {
    op: binding.op_setxattr
  }],
  ['getxattr', {
    op: binding.op_getxattr
  }],
  ['listxattr', {
    op: binding.op_listxattr
  }],
  ['removexattr', {
    op: binding.op_removexattr
  }],
  ['open', {
    op: binding.op_open,
    defaults: [0]
  }],
  ['opendir', {
    op: binding.op_opendir,
    defaults: [0]
  }],
  ['read', {
    op: binding.op_read,
    defaults: [0]
  }],
  ['write', {
    op: binding.op_write,
    defaults: [0]
  }],
  ['release', {
    op: binding.op_release
  }],
  ['releasedir', {
    op: binding.op_releasedir
  }],
  ['create', {
    op: binding.op_create,
    defaults: [0]
  }],
  ['unlink', {
    op: binding.op_unlink
  }],
  ['rename', {
    op: binding.op_rename
  }],
  ['link', {
    op: binding.op_link
  }],
  ['symlink', {
    op: binding.op_symlink
  }],
  ['mkdir', {
    op: binding.op_mkdir
  }],
  ['rmdir', {
    op: binding.op_rmdir
  }]
])

class Fuse extends Nanoresource {
  constructor (mnt, ops, opts = {}) {
    super()

    this.opts = opts
    this.mnt = path.resolve(mnt)
    this._caller = null
    this.ops = withCaller(ops, this)
    this.timeout = opts.timeout === false ? 0 : (opts.timeout || DEFAULT_TIMEOUT)

    this._force = !!opts.force
    this._mkdir = !!opts.mkdir
    this._thread = null // lxcfs-ts: the native mount's handle (a napi external), set once mounted
    // lxcfs-ts (PATCHES.md 19): serve through a channel a later process can take over (resumable), or take
    // over a stored connection instead of mounting (resume: { fuseFd, stateFd }, both owned from then on).
    this._resume = opts.resume ? { fuseFd: opts.resume.fuseFd, stateFd: opts.resume.stateFd } : null
    this._mode = this._resume ? MOUNT_RESUME : (opts.resumable ? MOUNT_RESUMABLE : MOUNT_PLAIN)
    this._handlers = this._makeHandlerArray()

    const implemented = [binding.op_init, binding.op_error, binding.op_getattr]
    if (ops) {
      for (const [name, { op }] of OpcodesAndDefaults) {
        if (ops[name]) implemented.push(op)
      }
      // lxcfs-ts: content handed over at open is read and released natively, so those ops must exist
      if (ops.open) implemented.push(binding.op_read, binding.op_release)
    }
    this._implemented = new Set(implemented)

    // Used to determine if the user-defined callback needs to be nextTick'd.
    this._sync = true
  }

  _getImplementedArray () {
    const implemented = new Uint32Array(35)
    for (const impl of this._implemented) {
      implemented[impl] = 1
    }
    return implemented
  }

  _fuseOptions () {
    const options = []

    if ((/\*|(^,)fuse-bindings(,$)/.test(process.env.DEBUG)) || this.opts.debug) options.push('debug')
    if (this.opts.allowOther) options.push('allow_other')
    if (this.opts.allowRoot) options.push('allow_root')
    if (this.opts.autoUnmount) options.push('auto_unmount')
    if (this.opts.defaultPermissions) options.push('default_permissions')
    if (this.opts.blkdev) options.push('blkdev')
    if (this.opts.blksize) options.push('blksize=' + this.opts.blksize)
    if (this.opts.maxRead) options.push('max_read=' + this.opts.maxRead)
    if (this.opts.fd) options.push('fd=' + this.opts.fd)
    if (this.opts.userId) options.push('user_id=' + this.opts.userId)
    if (this.opts.fsname) options.push('fsname=' + this.opts.fsname)
    if (this.opts.subtype) options.push('subtype=' + this.opts.subtype)
    if (this.opts.kernelCache) options.push('kernel_cache')
    if (this.opts.autoCache) options.push('auto_cache')
    if (this.opts.umask) options.push('umask=' + this.opts.umask)
    if (this.opts.uid) options.push('uid=' + this.opts.uid)
    if (this.opts.gid) options.push('gid=' + this.opts.gid)
    if (typeof this.opts.entryTimeout === 'number') options.push('entry_timeout=' + this.opts.entryTimeout)
    if (typeof this.opts.attrTimeout === 'number') options.push('attr_timeout=' + this.opts.attrTimeout)
    if (typeof this.opts.acAttrTimeout === 'number') options.push('ac_attr_timeout=' + this.opts.acAttrTimeout)
    if (this.opts.noforget) options.push('noforget')
    if (this.opts.remember) options.push('remember=' + this.opts.remember)
    if (this.opts.modules) options.push('modules=' + this.opts.modules)
    if (this.opts.directIo) options.push('direct_io')
    if (this.opts.extraOptions) options.push(...this.opts.extraOptions)

    if (this.opts.displayFolder && IS_OSX) { // only works on osx
      options.push('volname=' + path.basename(this.opts.name || this.mnt))
      if (HAS_FOLDER_ICON) options.push('volicon=' + OSX_FOLDER_ICON)
    }

    return options.length ? '-o' + options.join(',') : ''
  }

  _makeHandlerArray () {
    const self = this
    const handlers = new Array(OpcodesAndDefaults.size)

    for (const [name, { op, defaults }] of OpcodesAndDefaults) {
      const nativeSignal = binding[`fuse_native_signal_${name}`]
      if (!nativeSignal) continue

      handlers[op] = makeHandler(name, op, defaults, nativeSignal)
    }

    return handlers

    function makeHandler (name, op, defaults, nativeSignal) {
      let to = self.timeout
      if (typeof to === 'object' && to) {
        const defaultTimeout = to.default || DEFAULT_TIMEOUT
        to = to[name]
        if (!to && to !== false) to = defaultTimeout
      }

      return function (nativeHandler, opCode, ...args) {
        // lxcfs-ts: the native side appends the caller (thread id, uid, gid, pid namespace) to every request.
        const pidNs = args.pop()
        const gid = args.pop()
        const uid = args.pop()
        const pid = args.pop()
        self._caller = { pid, uid, gid, pidNs }
        const sig = signal.bind(null, nativeHandler)
        const input = [...args]
        // lxcfs-ts (PATCHES.md 15): one answer per request. The native guard (the locals' pending flag) is
        // per worker thread, so a second answer given after that worker took its next request would answer
        // that one: the callback itself refuses to run twice.
        const boundSignal = to ? autoTimeout(sig, input) : once(sig)
        const funcName = `_op_${name}`
        if (!self[funcName] || !self._implemented.has(op)) return boundSignal(-1, ...defaults)
        try {
          return self[funcName].apply(self, [boundSignal, ...args])
        } finally {
          self._caller = null
        }
      }

      function once (fn) {
        let called = false
        return function (...args) {
          if (called) return
          called = true
          return fn(...args)
        }
      }

      function signal (nativeHandler, err, ...args) {
        var arr = [nativeHandler, err, ...args]

        if (defaults) {
          while (arr.length > 2 && arr[arr.length - 1] === undefined) arr.pop()
          if (arr.length === 2) arr = arr.concat(defaults)
        }

        // lxcfs-ts (PATCHES.md 10): answer at once instead of on the next tick. The native signal only
        // stores the result and posts the FUSE thread's semaphore, so the FUSE thread is released before
        // the rest of this tick runs.
        return nativeSignal(...arr)
      }

      function autoTimeout (cb, input) {
        let called = false
        const timeout = setTimeout(timeoutWrap, to, TIMEOUT_ERRNO)
        return timeoutWrap

        function timeoutWrap (err, ...args) {
          if (called) return
          called = true

          clearTimeout(timeout)

          if (err === TIMEOUT_ERRNO) {
            switch (name) {
              case 'write':
              case 'read':
                return cb(TIMEOUT_ERRNO, 0, input[2].buffer)
              case 'setxattr':
                return cb(TIMEOUT_ERRNO, input[2].buffer)
              case 'getxattr':
                return cb(TIMEOUT_ERRNO, input[2].buffer)
              case 'listxattr':
                return cb(TIMEOUT_ERRNO, input[1].buffer)
            }
          }

          cb(err, ...args)
        }
      }
    }
  }

  // Static methods

  // lxcfs-ts: a lazy umount2(2) instead of `fusermount -uz` (no fusermount on a fresh machine; needs root).
  static unmount (mnt, cb) {
    const errno = binding.fuse_native_umount2(path.resolve(mnt), binding.mnt_detach)
    if (errno === 0) return process.nextTick(cb, null)
    const code = ERRNO_NAMES.get(-errno) || 'E' + errno
    const err = new Error(`umount2 ${mnt} failed: ${code}`)
    err.code = code
    err.errno = -errno
    process.nextTick(cb, err)
  }

  // lxcfs-ts (PATCHES.md 13): the re-attach program built beside the addon (reattach.c).
  static get reattachHelper () {
    return path.join(__dirname, 'build', 'Release', 'lxcfs-ts-reattach')
  }

  // lxcfs-ts (PATCHES.md 18): sd_notify(3). Sends `state` ("READY=1\nSTATUS=…") to $NOTIFY_SOCKET (or
  // `socket`), with `fds` as SCM_RIGHTS. Returns 0, an errno name on failure, or null when there is no
  // notify socket (not started by systemd): callers treat null as "nothing to tell".
  static sdNotify (state, fds = [], socket = process.env.NOTIFY_SOCKET) {
    if (!socket) return null
    const buf = Buffer.from(Int32Array.from(fds).buffer)
    const errno = binding.fuse_native_sd_notify(socket, String(state), buf)
    return errno === 0 ? 0 : (ERRNO_NAMES.get(-errno) || 'E' + errno)
  }

  // lxcfs-ts (PATCHES.md 18): flock(2) on an open fd, never blocking. mode: 'exclusive' | 'shared' |
  // 'unlock'. Returns true when taken (or released), false when another open file holds a conflicting lock;
  // throws on any other error (EBADF…).
  static flock (fd, mode) {
    const op = mode === 'unlock' ? binding.lock_un : (mode === 'shared' ? binding.lock_sh : binding.lock_ex) | binding.lock_nb
    const errno = binding.fuse_native_flock(fd, op)
    if (errno === 0) return true
    const code = ERRNO_NAMES.get(-errno) || 'E' + errno
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') return false
    const err = new Error(`flock failed: ${code}`)
    err.code = code
    throw err
  }

  // lxcfs-ts (PATCHES.md 11): the render cache. ttlMs 0 = off; every call empties it.
  static renderCache (ttlMs) {
    const ms = Number.isInteger(ttlMs) && ttlMs >= 0 && ttlMs <= 60000 ? ttlMs : 0
    const [entries, hits, misses] = binding.fuse_native_render_cache(ms)
    return { entries, hits, misses }
  }

  // Drops expired entries now; returns how many remain.
  static renderCacheSweep () {
    return binding.fuse_native_render_cache_sweep()
  }

  // Entries the render cache holds at most, each with an open descriptor of its pid namespace
  // (render-cache.h RENDER_CACHE_MAX): what a process must leave free in its descriptor limit for it.
  static get RENDER_CACHE_MAX () {
    return binding.render_cache_max
  }

  static renderCacheStats () {
    const [entries, hits, misses] = binding.fuse_native_render_cache_stats()
    return { entries, hits, misses }
  }

  // lxcfs-ts (PATCHES.md 19): what a descriptor is (inherited ones are made close-on-exec on the way).
  static fdInfo (fd) {
    const [kind, live] = binding.fuse_native_fd_info(fd)
    return { kind: ['none', 'fuse', 'file', 'other'][kind] || 'other', live: live === 1 }
  }

  // The state a resumable mount keeps beside its connection, as read from a stored copy: null when fd is
  // not such a state (of this version), else what it records.
  static inspectConnectionState (fd) {
    const [errno, version, generation, nodes, initBytes, mountpoint, device] = binding.fuse_native_inspect_state(fd)
    if (errno !== 0) return { ok: false, errno, code: ERRNO_NAMES.get(-errno) || 'E' + errno }
    return { ok: true, version, generation, nodes, initBytes, mountpoint, device }
  }

  // The descriptors to store so that a later process can take the connection over: null unless resumable.
  connection () {
    if (!this._thread) return null
    const c = binding.fuse_native_connection(this._thread)
    return c && { fuseFd: c[0], stateFd: c[1], resumed: c[2] === 1 }
  }

  connectionStats () {
    if (!this._thread) return null
    const c = binding.fuse_native_connection_stats(this._thread)
    if (!c) return null
    const [resumed, generation, nodes, handles, lookupsMadeUp, reopened, answeredHere, forgetsDropped, resend, inFlight, parked] = c
    return { resumed: resumed === 1, generation, nodes, handles, lookupsMadeUp, reopened, answeredHere, forgetsDropped, resend, inFlight, parked: parked === 1 }
  }

  // Records the mount's device ("major:minor", from mountinfo) in the state, for the next process's check.
  setConnectionDevice (device) {
    const errno = this._thread ? binding.fuse_native_connection_device(this._thread, String(device)) : 22
    if (errno !== 0) throw errnoError(errno, 'setConnectionDevice')
  }

  // Hand-over: read no further request (they wait in the kernel for the next process), finish those read;
  // requests still waiting for JS when the process exits are left to the next process, never failed.
  // Returns how many requests are in flight now (connectionStats().inFlight later).
  handOver () {
    if (!this._thread) throw errnoError(22, 'handOver')
    return binding.fuse_native_hand_over(this._thread)
  }

  // Called natively when taking over a stored connection failed before it served (bad state, INIT refused).
  _onResumeError (message) {
    const err = new Error(message)
    err.code = 'EFUSERESUME'
    if (this._thread) {
      try { binding.fuse_native_unmount(this.mnt, this._thread) } catch {} // releases the native side only
    }
    if (this._openCallback) {
      const cb = this._openCallback
      this._openCallback = null
      process.nextTick(cb, err)
    }
  }

  // Debugging methods

  // lxcfs-ts (PATCHES.md 2, 15): the per-thread state of this mount. null before it is mounted.
  threadStats () {
    if (!this._thread) return null
    const [locals, threads, reused, returned, peak, inUse, finished, tornDown, asking, made] = binding.fuse_native_thread_stats(this._thread)
    return { locals, threads, reused, returned, peak, inUse, finished: finished === 1, tornDown: tornDown === 1, asking: asking === 1, made }
  }

  // lxcfs-ts (PATCHES.md 20): the fair hand-off to JS. null before it is mounted.
  dispatchStats () {
    if (!this._thread) return null
    const [queued, flows, served, overtaken] = binding.fuse_native_dispatch_stats(this._thread)
    return { queued, flows, served, overtaken }
  }

  // lxcfs-ts (PATCHES.md 20): another half-life and longest wait for the fair queue (ms; 0 keeps one).
  configureFairQueue ({ halfLifeMs = 0, maxWaitMs = 0 } = {}) {
    if (!this._thread) throw new Error('configureFairQueue: not mounted')
    binding.fuse_native_configure_fair_queue(this._thread, halfLifeMs, maxWaitMs)
  }

  // Lifecycle methods

  _open (cb) {
    const self = this

    if (this._resume) {
      // lxcfs-ts (PATCHES.md 19): the mountpoint is the stored connection's own mount, waiting for a daemon:
      // stat()ing it would wait for ever. cb runs once the recorded INIT has reached the new session.
      this._openCallback = cb
      try {
        this._thread = binding.fuse_native_mount(this.mnt, this._fuseOptions(), this, this._handlers, this._getImplementedArray(), MOUNT_RESUME, this._resume.fuseFd, this._resume.stateFd)
      } catch (err) {
        this._openCallback = null
        return cb(err)
      }
      return
    }

    if (this._force) {
      // lxcfs-ts: a stale mount fails stat of the mountpoint itself with ENOTCONN
      return fs.stat(this.mnt, (err, st) => {
        if (err && (err.errno === ENOTCONN || err.errno === Fuse.ENXIO)) return Fuse.unmount(this.mnt, open)
        return open()
      })
    }
    return open()

    function open () {
      // If there was an unmount error, continue attempting to mount (this is the best we can do)
      self._openCallback = cb

      const opts = self._fuseOptions()
      const implemented = self._getImplementedArray()

      return fs.stat(self.mnt, (err, stat) => {
        if (err && err.errno !== -2) return cb(err)
        if (err) {
          if (!self._mkdir) return cb(new Error('Mountpoint does not exist'))
          return fs.mkdir(self.mnt, { recursive: true }, err => {
            if (err) return cb(err)
            fs.stat(self.mnt, (err, stat) => {
              if (err) return cb(err)
              return onexists(stat)
            })
          })
        }
        if (!stat.isDirectory()) return cb(new Error('Mountpoint is not a directory'))
        return onexists(stat)
      })

      function onexists (stat) {
        fs.stat(path.join(self.mnt, '..'), (_, parent) => {
          if (parent && parent.dev !== stat.dev) return cb(new Error('Mountpoint in use'))
          try {
            // TODO: asyncify
            // lxcfs-ts: the native side allocates its own state (PATCHES.md 15) and returns its handle
            self._thread = binding.fuse_native_mount(self.mnt, opts, self, self._handlers, implemented, self._mode, -1, -1)
          } catch (err) {
            return cb(explainMountError(err, self.mnt, opts))
          }
        })
      }
    }
  }

  _close (cb) {
    const self = this

    Fuse.unmount(this.mnt, err => {
      // lxcfs-ts: EINVAL = no longer mounted (detached by someone else): still release the native side
      if (err && err.code !== 'EINVAL') {
        err.unmountFailure = true
        return cb(err)
      }
      nativeUnmount()
    })

    function nativeUnmount () {
      try {
        if (self._thread) binding.fuse_native_unmount(self.mnt, self._thread)
      } catch (err) {
        return cb(err)
      }
      return cb(null)
    }
  }

  // Handlers

  _op_init (signal) {
    if (this._openCallback) {
      process.nextTick(this._openCallback, null)
      this._openCallback = null
    }
    if (!this.ops.init) {
      signal(0)
      return
    }
    this.ops.init(err => {
      return signal(err)
    })
  }

  _op_error (signal) {
    if (!this.ops.error) {
      signal(0)
      return
    }
    this.ops.error(err => {
      return signal(err)
    })
  }

  _op_statfs (signal, path) {
    this.ops.statfs(path, (err, statfs) => {
      if (err) return signal(err)
      const arr = getStatfsArray(statfs)
      return signal(0, arr)
    })
  }

  _op_getattr (signal, path) {
    if (!this.ops.getattr) {
      if (path !== '/') {
        signal(Fuse.EPERM)
      } else {
        signal(0, getStatArray({ mtime: new Date(0), atime: new Date(0), ctime: new Date(0), mode: 16877, size: 4096 }))
      }
      return
    }

    this.ops.getattr(path, (err, stat) => {
      if (err) return signal(err, getStatArray())
      return signal(0, getStatArray(stat))
    })
  }

  _op_fgetattr (signal, path, fd) {
    if (!this.ops.fgetattr) {
      if (path !== '/') {
        signal(Fuse.EPERM)
      } else {
        signal(0, getStatArray({ mtime: new Date(0), atime: new Date(0), ctime: new Date(0), mode: 16877, size: 4096 }))
      }
      return
    }
    this.ops.getattr(path, (err, stat) => {
      if (err) return signal(err)
      return signal(0, getStatArray(stat))
    })
  }

  _op_access (signal, path, mode) {
    this.ops.access(path, mode, err => {
      return signal(err)
    })
  }

  // lxcfs-ts: cb(0, 0, buffer) hands the file's whole content to the native side, which then serves
  // read and release itself (no JS round trip); cb(0, fd) keeps upstream's behaviour.
  // A rewind (a read at offset 0 of native content already read once, PATCHES.md 12) asks for the content
  // again: ops.rewind(path, cb, caller) if defined, else ops.open with the file's flags. Its cb must give
  // content (a buffer), or an error, which the read then returns.
  _op_open (signal, path, flags, rewind) {
    const done = (err, fd, content, cacheable) => {
      if (Buffer.isBuffer(content)) return signal(err, fd || 0, content, cacheable === true)
      return signal(err, fd)
    }
    if (rewind && this.ops.rewind) this.ops.rewind(path, done)
    else this.ops.open(path, flags, done)
  }

  _op_opendir (signal, path, flags) {
    this.ops.opendir(path, flags, (err, fd) => {
      return signal(err, fd)
    })
  }

  _op_create (signal, path, mode) {
    this.ops.create(path, mode, (err, fd) => {
      return signal(err, fd)
    })
  }

  _op_utimens (signal, path, atimeLow, atimeHigh, mtimeLow, mtimeHigh) {
    const atime = getDoubleArg(atimeLow, atimeHigh)
    const mtime = getDoubleArg(mtimeLow, mtimeHigh)
    this.ops.utimens(path, atime, mtime, err => {
      return signal(err)
    })
  }

  _op_release (signal, path, fd) {
    if (!this.ops.release) return signal(0)
    this.ops.release(path, fd, err => {
      return signal(err)
    })
  }

  _op_releasedir (signal, path, fd) {
    this.ops.releasedir(path, fd, err => {
      return signal(err)
    })
  }

  _op_read (signal, path, fd, buf, len, offsetLow, offsetHigh) {
    if (!this.ops.read) return signal(Fuse.EBADF, 0, buf.buffer)
    this.ops.read(path, fd, buf, len, getDoubleArg(offsetLow, offsetHigh), (err, bytesRead) => {
      return signal(err, bytesRead || 0, buf.buffer)
    })
  }

  _op_write (signal, path, fd, buf, len, offsetLow, offsetHigh) {
    this.ops.write(path, fd, buf, len, getDoubleArg(offsetLow, offsetHigh), (err, bytesWritten) => {
      return signal(err, bytesWritten || 0, buf.buffer)
    })
  }

  _op_readdir (signal, path) {
    this.ops.readdir(path, (err, names, stats) => {
      if (err) return signal(err)
      if (stats) stats = stats.map(getStatArray)
      return signal(0, names, stats || [])
    })
  }

  _op_setxattr (signal, path, name, value, position, flags) {
    this.ops.setxattr(path, name, value, position, flags, err => {
      return signal(err, value.buffer)
    })
  }

  _op_getxattr (signal, path, name, valueBuf, position) {
    this.ops.getxattr(path, name, position, (err, value) => {
      if (!err) {
        if (!value) return signal(IS_OSX ? -93 : -61, valueBuf.buffer)
        value.copy(valueBuf)
        return signal(value.length, valueBuf.buffer)
      }
      return signal(err, valueBuf.buffer)
    })
  }

  _op_listxattr (signal, path, listBuf) {
    this.ops.listxattr(path, (err, list) => {
      if (list && !err) {
        if (!listBuf.length) {
          let size = 0
          for (const name of list) size += Buffer.byteLength(name) + 1
          size += 128 // fuse yells if we do not signal room for some mac stuff also
          return signal(size, listBuf.buffer)
        }

        let ptr = 0
        for (const name of list) {
          listBuf.write(name, ptr)
          ptr += Buffer.byteLength(name)
          listBuf[ptr++] = 0
        }

        return signal(ptr, listBuf.buffer)
      }
      return signal(err, listBuf.buffer)
    })
  }

  _op_removexattr (signal, path, name) {
    this.ops.removexattr(path, name, err => {
      return signal(err)
    })
  }

  _op_flush (signal, path, fd) {
    this.ops.flush(path, fd, err => {
      return signal(err)
    })
  }

  _op_fsync (signal, path, datasync, fd) {
    this.ops.fsync(path, datasync, fd, err => {
      return signal(err)
    })
  }

  _op_fsyncdir (signal, path, datasync, fd) {
    this.ops.fsyncdir(path, datasync, fd, err => {
      return signal(err)
    })
  }

  _op_truncate (signal, path, sizeLow, sizeHigh) {
    const size = getDoubleArg(sizeLow, sizeHigh)
    this.ops.truncate(path, size, err => {
      return signal(err)
    })
  }

  _op_ftruncate (signal, path, fd, sizeLow, sizeHigh) {
    const size = getDoubleArg(sizeLow, sizeHigh)
    this.ops.ftruncate(path, fd, size, err => {
      return signal(err)
    })
  }

  _op_readlink (signal, path) {
    this.ops.readlink(path, (err, linkname) => {
      return signal(err, linkname)
    })
  }

  _op_chown (signal, path, uid, gid) {
    this.ops.chown(path, uid, gid, err => {
      return signal(err)
    })
  }

  _op_chmod (signal, path, mode) {
    this.ops.chmod(path, mode, err => {
      return signal(err)
    })
  }

  _op_mknod (signal, path, mode, dev) {
    this.ops.mknod(path, mode, dev, err => {
      return signal(err)
    })
  }

  _op_unlink (signal, path) {
    this.ops.unlink(path, err => {
      return signal(err)
    })
  }

  _op_rename (signal, src, dest) {
    this.ops.rename(src, dest, err => {
      return signal(err)
    })
  }

  _op_link (signal, src, dest) {
    this.ops.link(src, dest, err => {
      return signal(err)
    })
  }

  _op_symlink (signal, src, dest) {
    this.ops.symlink(src, dest, err => {
      return signal(err)
    })
  }

  _op_mkdir (signal, path, mode) {
    this.ops.mkdir(path, mode, err => {
      return signal(err)
    })
  }

  _op_rmdir (signal, path) {
    this.ops.rmdir(path, err => {
      return signal(err)
    })
  }

  // Public API

  mount (cb) {
    return this.open(cb)
  }

  unmount (cb) {
    return this.close(cb)
  }

  errno (code) {
    return (code && Fuse[code.toUpperCase()]) || -1
  }
}

Fuse.EPERM = -1
Fuse.ENOENT = -2
Fuse.ESRCH = -3
Fuse.EINTR = -4
Fuse.EIO = -5
Fuse.ENXIO = -6
Fuse.E2BIG = -7
Fuse.ENOEXEC = -8
Fuse.EBADF = -9
Fuse.ECHILD = -10
Fuse.EAGAIN = -11
Fuse.ENOMEM = -12
Fuse.EACCES = -13
Fuse.EFAULT = -14
Fuse.ENOTBLK = -15
Fuse.EBUSY = -16
Fuse.EEXIST = -17
Fuse.EXDEV = -18
Fuse.ENODEV = -19
Fuse.ENOTDIR = -20
Fuse.EISDIR = -21
Fuse.EINVAL = -22
Fuse.ENFILE = -23
Fuse.EMFILE = -24
Fuse.ENOTTY = -25
Fuse.ETXTBSY = -26
Fuse.EFBIG = -27
Fuse.ENOSPC = -28
Fuse.ESPIPE = -29
Fuse.EROFS = -30
Fuse.EMLINK = -31
Fuse.EPIPE = -32
Fuse.EDOM = -33
Fuse.ERANGE = -34
Fuse.EDEADLK = -35
Fuse.ENAMETOOLONG = -36
Fuse.ENOLCK = -37
Fuse.ENOSYS = -38
Fuse.ENOTEMPTY = -39
Fuse.ELOOP = -40
Fuse.EWOULDBLOCK = -11
Fuse.ENOMSG = -42
Fuse.EIDRM = -43
Fuse.ECHRNG = -44
Fuse.EL2NSYNC = -45
Fuse.EL3HLT = -46
Fuse.EL3RST = -47
Fuse.ELNRNG = -48
Fuse.EUNATCH = -49
Fuse.ENOCSI = -50
Fuse.EL2HLT = -51
Fuse.EBADE = -52
Fuse.EBADR = -53
Fuse.EXFULL = -54
Fuse.ENOANO = -55
Fuse.EBADRQC = -56
Fuse.EBADSLT = -57
Fuse.EDEADLOCK = -35
Fuse.EBFONT = -59
Fuse.ENOSTR = -60
Fuse.ENODATA = -61
Fuse.ETIME = -62
Fuse.ENOSR = -63
Fuse.ENONET = -64
Fuse.ENOPKG = -65
Fuse.EREMOTE = -66
Fuse.ENOLINK = -67
Fuse.EADV = -68
Fuse.ESRMNT = -69
Fuse.ECOMM = -70
Fuse.EPROTO = -71
Fuse.EMULTIHOP = -72
Fuse.EDOTDOT = -73
Fuse.EBADMSG = -74
Fuse.EOVERFLOW = -75
Fuse.ENOTUNIQ = -76
Fuse.EBADFD = -77
Fuse.EREMCHG = -78
Fuse.ELIBACC = -79
Fuse.ELIBBAD = -80
Fuse.ELIBSCN = -81
Fuse.ELIBMAX = -82
Fuse.ELIBEXEC = -83
Fuse.EILSEQ = -84
Fuse.ERESTART = -85
Fuse.ESTRPIPE = -86
Fuse.EUSERS = -87
Fuse.ENOTSOCK = -88
Fuse.EDESTADDRREQ = -89
Fuse.EMSGSIZE = -90
Fuse.EPROTOTYPE = -91
Fuse.ENOPROTOOPT = -92
Fuse.EPROTONOSUPPORT = -93
Fuse.ESOCKTNOSUPPORT = -94
Fuse.EOPNOTSUPP = -95
Fuse.EPFNOSUPPORT = -96
Fuse.EAFNOSUPPORT = -97
Fuse.EADDRINUSE = -98
Fuse.EADDRNOTAVAIL = -99
Fuse.ENETDOWN = -100
Fuse.ENETUNREACH = -101
Fuse.ENETRESET = -102
Fuse.ECONNABORTED = -103
Fuse.ECONNRESET = -104
Fuse.ENOBUFS = -105
Fuse.EISCONN = -106
Fuse.ENOTCONN = -107
Fuse.ESHUTDOWN = -108
Fuse.ETOOMANYREFS = -109
Fuse.ETIMEDOUT = -110
Fuse.ECONNREFUSED = -111
Fuse.EHOSTDOWN = -112
Fuse.EHOSTUNREACH = -113
Fuse.EALREADY = -114
Fuse.EINPROGRESS = -115
Fuse.ESTALE = -116
Fuse.EUCLEAN = -117
Fuse.ENOTNAM = -118
Fuse.ENAVAIL = -119
Fuse.EISNAM = -120
Fuse.EREMOTEIO = -121
Fuse.EDQUOT = -122
Fuse.ENOMEDIUM = -123
Fuse.EMEDIUMTYPE = -124

// lxcfs-ts: libfuse 2 prints why fuse_mount failed on stderr and leaves errno unset for its own checks;
// name the most common one (a non-empty mountpoint) in the error itself.
function explainMountError (err, mnt, opts) {
  if (err.code !== 'EFUSEMOUNT' || /(^-o|,)nonempty(,|$)/.test(opts)) return err
  try {
    if (fs.readdirSync(mnt).length > 0) err.message += '; the mountpoint is not empty (libfuse 2 refuses that without the nonempty option)'
  } catch {}
  return err
}

// lxcfs-ts (PATCHES.md 19): how fuse_native_mount serves (fuse-native.c MOUNT_*).
const MOUNT_PLAIN = 0
const MOUNT_RESUMABLE = 1
const MOUNT_RESUME = 2

function errnoError (errno, what) {
  const code = ERRNO_NAMES.get(-errno) || 'E' + errno
  const err = new Error(`${what} failed: ${code}`)
  err.code = code
  err.errno = -errno
  return err
}

// lxcfs-ts: errno number -> name, for errors raised by Fuse.unmount
// (first name wins: EAGAIN over its alias EWOULDBLOCK, EDEADLK over EDEADLOCK)
const ERRNO_NAMES = new Map()
for (const key of Object.keys(Fuse)) if (/^E[A-Z0-9]+$/.test(key) && !ERRNO_NAMES.has(Fuse[key])) ERRNO_NAMES.set(Fuse[key], key)

// lxcfs-ts: every user op receives the caller { pid, uid, gid, pidNs } as an extra last argument, after its
// callback. The op is called synchronously from the native dispatch, while fuse._caller is set.
// Ops may be own properties or methods of a class instance (looked up through the prototype, as upstream does).
function withCaller (ops, fuse) {
  if (!ops) return ops
  const wrapped = {}
  for (const name of new Set([...OpcodesAndDefaults.keys(), ...Object.keys(ops)])) {
    const op = ops[name]
    if (op === undefined) continue
    wrapped[name] = typeof op !== 'function' ? op : function (...args) { return op.call(ops, ...args, fuse._caller) }
  }
  return wrapped
}

// Forward configuration functions through the exported class.
Fuse.beforeMount = beforeMount
Fuse.beforeUnmount = beforeUnmount
Fuse.configure = configure
Fuse.unconfigure = unconfigure
Fuse.isConfigured = isConfigured

module.exports = Fuse

function getStatfsArray (statfs) {
  const ints = new Uint32Array(11)

  ints[0] = (statfs && statfs.bsize) || 0
  ints[1] = (statfs && statfs.frsize) || 0
  ints[2] = (statfs && statfs.blocks) || 0
  ints[3] = (statfs && statfs.bfree) || 0
  ints[4] = (statfs && statfs.bavail) || 0
  ints[5] = (statfs && statfs.files) || 0
  ints[6] = (statfs && statfs.ffree) || 0
  ints[7] = (statfs && statfs.favail) || 0
  ints[8] = (statfs && statfs.fsid) || 0
  ints[9] = (statfs && statfs.flag) || 0
  ints[10] = (statfs && statfs.namemax) || 0

  return ints
}

function setDoubleInt (arr, idx, num) {
  arr[idx] = num % 4294967296
  arr[idx + 1] = (num - arr[idx]) / 4294967296
}

function getDoubleArg (a, b) {
  return a + b * 4294967296
}

function toDateMS (st) {
  if (typeof st === 'number') return st
  if (!st) return Date.now()
  return st.getTime()
}

function getStatArray (stat) {
  const ints = new Uint32Array(18)

  ints[0] = (stat && stat.mode) || 0
  ints[1] = (stat && stat.uid) || 0
  ints[2] = (stat && stat.gid) || 0
  setDoubleInt(ints, 3, (stat && stat.size) || 0)
  ints[5] = (stat && stat.dev) || 0
  ints[6] = (stat && stat.nlink) || 1
  ints[7] = (stat && stat.ino) || 0
  ints[8] = (stat && stat.rdev) || 0
  ints[9] = (stat && stat.blksize) || 0
  setDoubleInt(ints, 10, (stat && stat.blocks) || 0)
  setDoubleInt(ints, 12, toDateMS(stat && stat.atime))
  setDoubleInt(ints, 14, toDateMS(stat && stat.mtime))
  setDoubleInt(ints, 16, toDateMS(stat && stat.ctime))

  return ints
}
