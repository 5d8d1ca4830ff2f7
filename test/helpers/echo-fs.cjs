// A tiny filesystem on the patched binding, for the binding's own test: /whoami answers with the caller
// the handler saw ("pid uid gid"), /big is 100 KiB of numbered lines with st_size 0 served through JS
// read calls, /native the same content handed to the binding at open (read and release served natively).
// Usage: node echo-fs.cjs MOUNTPOINT   (prints "ready" when mounted; SIGTERM unmounts and exits)
'use strict'
const Fuse = require('fuse-native')

const mnt = process.argv[2]
const big = Buffer.from(Array.from({ length: 10000 }, (_, i) => `line ${String(i).padStart(4, '0')}\n`).join(''))
const handles = new Map()
let next = 1

const ops = {
  getattr (path, cb) {
    if (path === '/') return cb(0, { mode: 0o40555, size: 0, nlink: 2 })
    if (path === '/whoami' || path === '/big' || path === '/native') return cb(0, { mode: 0o100444, size: 0, nlink: 1 })
    cb(Fuse.ENOENT)
  },
  readdir (path, cb) {
    if (path === '/') return cb(0, ['whoami', 'big', 'native'])
    cb(Fuse.ENOENT)
  },
  open (path, flags, cb, caller) {
    if (path === '/native') return cb(0, 0, big)
    const content = path === '/big' ? big : Buffer.from(`${caller.pid} ${caller.uid} ${caller.gid}\n`)
    handles.set(next, content)
    cb(0, next++)
  },
  read (path, fd, buf, len, pos, cb) {
    const content = handles.get(fd)
    if (!content) return cb(Fuse.EBADF)
    if (pos >= content.length) return cb(0)
    cb(content.copy(buf, 0, pos, Math.min(content.length, pos + len)))
  },
  release (path, fd, cb) {
    handles.delete(fd)
    cb(0)
  }
}

const fuse = new Fuse(mnt, ops, { allowOther: true, directIo: true, force: true, mkdir: true })
fuse.mount(err => {
  if (err) {
    console.error('mount failed:', err.message)
    process.exit(1)
  }
  console.log('ready')
})
process.on('SIGTERM', () => fuse.unmount(err => {
  if (err) console.error('unmount failed:', err.message)
  process.exit(err ? 1 : 0)
}))
