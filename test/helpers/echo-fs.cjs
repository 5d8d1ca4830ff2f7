// A tiny filesystem on the patched binding (vendor/fuse-native), for the binding's own test.
//   /whoami  content "pid uid gid" of the caller the open handler saw
//   /statme  its stat answers with the getattr caller: size = pid, uid, gid (entry/attr timeouts are 0,
//            so every stat reaches getattr)
//   /big     100000 bytes of numbered lines, st_size 0, served through JS read calls
//   /native  the same content handed to the binding at open (read and release served natively)
//   /gen     native content "gen NNN" + open|rewind, 1000 lines of 16 bytes: NNN counts the renderings (opens
//            and rewinds), so a reader sees which rendering each byte came from
//   /failing native content at open; every rewind fails with EIO
// Usage: node echo-fs.cjs MOUNTPOINT [--no-force]
// Prints "ready libfuse=<path of the libfuse this process loaded>" once mounted. SIGTERM unmounts and then
// lets the process end by itself (nothing may hold the event loop after unmount); "unmounted" is printed.
'use strict'
const fs = require('fs')
const path = require('path')
const Fuse = require('fuse-native')

const mnt = process.argv[2]
const force = !process.argv.includes('--no-force')
const big = Buffer.from(Array.from({ length: 10000 }, (_, i) => `line ${String(i).padStart(4, '0')}\n`).join(''))
const handles = new Map()
let next = 1

const FILES = new Set(['/whoami', '/statme', '/big', '/native', '/gen', '/failing'])
let generation = 0
const genContent = (how) => {
  const line = `gen ${String(++generation).padStart(3, '0')} ${how.padEnd(7)}\n` // 16 bytes
  return Buffer.from(line.repeat(1000))
}

const ops = {
  getattr (p, cb, caller) {
    if (p === '/') return cb(0, { mode: 0o40555, size: 0, nlink: 2 })
    if (p === '/statme') return cb(0, { mode: 0o100444, size: caller.pid, uid: caller.uid, gid: caller.gid, nlink: 1 })
    if (FILES.has(p)) return cb(0, { mode: 0o100444, size: 0, nlink: 1 })
    cb(Fuse.ENOENT)
  },
  readdir (p, cb) {
    if (p === '/') return cb(0, [...FILES].map((f) => f.slice(1)))
    cb(Fuse.ENOENT)
  },
  open (p, flags, cb, caller) {
    if (!FILES.has(p)) return cb(Fuse.ENOENT)
    if (p === '/native') return cb(0, 0, big)
    if (p === '/gen') return cb(0, 0, genContent('open'))
    if (p === '/failing') return cb(0, 0, Buffer.from('made at open\n'))
    const content = p === '/big' ? big : Buffer.from(`${caller.pid} ${caller.uid} ${caller.gid}\n`)
    handles.set(next, content)
    cb(0, next++)
  },
  rewind (p, cb) {
    if (p === '/gen') return cb(0, 0, genContent('rewind'))
    cb(Fuse.EIO)
  },
  read (p, fd, buf, len, pos, cb) {
    const content = handles.get(fd)
    if (!content) return cb(Fuse.EBADF)
    if (pos >= content.length) return cb(0)
    cb(content.copy(buf, 0, pos, Math.min(content.length, pos + len)))
  },
  release (p, fd, cb) {
    handles.delete(fd)
    cb(0)
  }
}

const fuse = new Fuse(mnt, ops, { allowOther: true, directIo: true, entryTimeout: 0, attrTimeout: 0, force, mkdir: true })
fuse.mount((err) => {
  if (err) {
    console.error('mount failed:', err.message)
    process.exit(1)
  }
  const libfuse = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).find((f) => f && /\/libfuse\.so/.test(f))
  console.log(`ready libfuse=${libfuse ? path.resolve(libfuse) : 'none'}`)
})
process.on('SIGTERM', () => fuse.unmount((err) => {
  if (err) {
    console.error('unmount failed:', err.message)
    process.exit(1)
  }
  console.log('unmounted')
}))
