// The FUSE hand-off floor for bench/profile.mjs: the vendored fuse-native mounted with lxcfs-ts's own
// options (allow_other, direct_io, 0.5 s entry/attr timeouts, no per-request timer), serving /empty, whose
// open handler answers with an empty buffer the way lxcfs-ts hands over rendered content (read and
// release are then answered natively). No rendering, no /proc access: one open/read/close of /empty costs
// the kernel round trips plus one hand-off to the JS thread (lookup/getattr add one each when not cached).
// Usage: node empty-fs.cjs MOUNTPOINT   (SIGTERM unmounts and exits)
'use strict'
const { createRequire } = require('node:module')
const { join } = require('node:path')
const Fuse = createRequire(join(__dirname, '..', 'package.json'))('fuse-native')

const mnt = process.argv[2]
const EMPTY = Buffer.alloc(0)
const now = new Date()
const ops = {
  getattr (path, cb) {
    const times = { atime: now, mtime: now, ctime: now }
    if (path === '/') return cb(0, { ...times, mode: 0o40555, size: 0, nlink: 2, uid: 0, gid: 0 })
    if (path === '/empty') return cb(0, { ...times, mode: 0o100444, size: 0, nlink: 1, uid: 0, gid: 0 })
    cb(Fuse.ENOENT)
  },
  readdir (path, cb) {
    if (path === '/') return cb(0, ['empty'])
    cb(Fuse.ENOENT)
  },
  open (path, flags, cb) {
    if (path !== '/empty') return cb(Fuse.ENOENT)
    cb(0, 0, EMPTY)
  }
}
const fuse = new Fuse(mnt, ops, { allowOther: true, directIo: true, entryTimeout: 0.5, attrTimeout: 0.5, timeout: false, force: true, mkdir: true })
fuse.mount(err => {
  if (err) {
    console.error('mount failed:', err.message)
    process.exit(1)
  }
})
const stop = () => fuse.unmount(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
