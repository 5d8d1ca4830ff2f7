// A tiny filesystem on the patched binding (vendor/fuse-native), for the binding's own test.
//   /whoami  content "pid uid gid" of the caller the open handler saw
//   /pidns   content: the caller's pidNs (inode of its pid namespace) the open handler saw
//   /statme  its stat answers with the getattr caller: size = pid, uid, gid (entry/attr timeouts are 0,
//            so every stat reaches getattr)
//   /big     100000 bytes of numbered lines, st_size 0, served through JS read calls
//   /native  the same content handed to the binding at open (read and release served natively)
//   /gen     native content "gen NNN" + open|rewind, 1000 lines of 16 bytes: NNN counts the renderings (opens
//            and rewinds), so a reader sees which rendering each byte came from
//   /failing native content at open; every rewind fails with EIO
//   /handle-neg, /handle-min, /handle-max   open answers the handle -1, -2^31, 2^32-1; reads (through JS)
//            return "fd=<the handle read got>"; release prints "release <path> fd=<handle>"
//   /barrier open waits until 16 (--barrier N: N) opens of it are waiting, then answers them all ("released"): that many FUSE
//            worker threads are busy at once, so libfuse starts more and retires some afterwards
//   /threads fuse.threadStats() as JSON (the per-thread state of the binding)
//   /heavy   open spins for 50 ms of this thread's time before answering "heavy": the caller's pid namespace
//            is charged with it by the fair hand-off
//   /gate    open spins until 2 requests wait for JS (fuse.dispatchStats().queued), writing the count it
//            sees to <dir of MOUNTPOINT>/gate-status whenever it changes; then answers "queued N" (N the
//            count; "timeout" after 20 s: a hang guard)
//   /mark-*  open appends the name (after "mark-") to the marks log; /marks returns the log and
//            fuse.dispatchStats() as "<names> <JSON>"
//   /hold    open writes "holding" to <dir of MOUNTPOINT>/hold-status, then spins until a new FUSE worker
//            waits for the main thread to make its state (fuse.threadStats().asking; 20 s hang guard), and
//            notes threadStats().made as it answers; /after-hold notes threadStats().made at its open;
//            /holdlog returns "<made at /hold's end> <made at /after-hold>" ("timeout" if the guard fired)
// Usage: node echo-fs.cjs MOUNTPOINT [--no-force] [--linger] [--timeouts] [--still-fair-queue] [--barrier N]
// (--timeouts: entry and attr timeouts of 60 s instead of 0, so that an open reaches JS as OPEN alone;
// --still-fair-queue: the fair queue's half-life and longest wait set to 10 minutes, so that what a test
// charged a namespace stays and nothing ages to the front while the test's steps take their time)
// Prints "ready libfuse=<path of the libfuse this process loaded>" once mounted. SIGTERM unmounts and then
// lets the process end by itself (nothing may hold the event loop after unmount); "unmounted" is printed.
// With --linger it instead stays until the binding has released its native state, then prints
// "torn down <threadStats JSON> threads <count before mount> <count now>" and exits.
'use strict'
const fs = require('fs')
const path = require('path')
const Fuse = require('fuse-native')

const mnt = process.argv[2]
const force = !process.argv.includes('--no-force')
const linger = process.argv.includes('--linger')
const big = Buffer.from(Array.from({ length: 10000 }, (_, i) => `line ${String(i).padStart(4, '0')}\n`).join(''))
const handles = new Map()
let next = 1

const FILES = new Set(['/whoami', '/statme', '/big', '/native', '/gen', '/failing', '/handle-neg', '/handle-min', '/handle-max', '/barrier', '/threads', '/heavy', '/gate', '/marks', '/mark-light', '/mark-heavy', '/mark-new', '/pidns', '/hold', '/after-hold', '/holdlog'])
const HANDLES = { '/handle-neg': -1, '/handle-min': -(2 ** 31), '/handle-max': 2 ** 32 - 1 }
const barrierAt = process.argv.indexOf('--barrier')
const BARRIER = barrierAt > 0 ? Number(process.argv[barrierAt + 1]) : 16
let waiting = []
let generation = 0
const genContent = (how) => {
  const line = `gen ${String(++generation).padStart(3, '0')} ${how.padEnd(7)}\n` // 16 bytes
  return Buffer.from(line.repeat(1000))
}

const marks = []
const spinFor = (ms) => {
  const end = process.hrtime.bigint() + BigInt(ms) * 1000000n
  while (process.hrtime.bigint() < end) {} // eslint-disable-line no-empty
}
const holdLog = { held: 'none', after: 'none' }
function hold () {
  fs.writeFileSync(path.join(path.dirname(mnt), 'hold-status'), 'holding\n')
  const deadline = Date.now() + 20000
  while (!fuse.threadStats().asking) {
    if (Date.now() > deadline) {
      holdLog.held = 'timeout'
      return 'timeout\n'
    }
  }
  holdLog.held = String(fuse.threadStats().made)
  return 'held\n'
}
function gate () {
  const status = path.join(path.dirname(mnt), 'gate-status')
  const deadline = Date.now() + 20000
  let seen = -1
  for (;;) {
    const { queued } = fuse.dispatchStats()
    if (queued !== seen) fs.writeFileSync(status, `${(seen = queued)}\n`)
    if (queued >= 2) return `queued ${queued}\n`
    if (Date.now() > deadline) return 'timeout\n'
  }
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
    if (p in HANDLES) return cb(0, HANDLES[p])
    if (p === '/threads') return cb(0, 0, Buffer.from(JSON.stringify(fuse.threadStats()) + '\n'))
    if (p === '/heavy') {
      spinFor(50)
      return cb(0, 0, Buffer.from('heavy\n'))
    }
    if (p === '/gate') return cb(0, 0, Buffer.from(gate()))
    if (p === '/hold') return cb(0, 0, Buffer.from(hold()))
    if (p === '/after-hold') {
      holdLog.after = String(fuse.threadStats().made)
      return cb(0, 0, Buffer.from('after\n'))
    }
    if (p === '/holdlog') return cb(0, 0, Buffer.from(`${holdLog.held} ${holdLog.after}\n`))
    if (p === '/pidns') return cb(0, 0, Buffer.from(`${caller.pidNs}\n`))
    if (p === '/marks') return cb(0, 0, Buffer.from(`${marks.join(',')} ${JSON.stringify(fuse.dispatchStats())}\n`))
    if (p.startsWith('/mark-')) {
      marks.push(p.slice(6))
      return cb(0, 0, Buffer.from('marked\n'))
    }
    if (p === '/barrier') {
      waiting.push(cb)
      if (waiting.length < BARRIER) return
      const all = waiting
      waiting = []
      for (const release of all) release(0, 0, Buffer.from('released\n'))
      return
    }
    const content = p === '/big' ? big : Buffer.from(`${caller.pid} ${caller.uid} ${caller.gid}\n`)
    handles.set(next, content)
    cb(0, next++)
  },
  rewind (p, cb) {
    if (p === '/gen') return cb(0, 0, genContent('rewind'))
    cb(Fuse.EIO)
  },
  read (p, fd, buf, len, pos, cb) {
    const content = p in HANDLES ? Buffer.from(`fd=${fd}\n`) : handles.get(fd)
    if (!content) return cb(Fuse.EBADF)
    if (pos >= content.length) return cb(0)
    cb(content.copy(buf, 0, pos, Math.min(content.length, pos + len)))
  },
  release (p, fd, cb) {
    if (p in HANDLES) console.log(`release ${p} fd=${fd}`)
    handles.delete(fd)
    cb(0)
  }
}

const timeout = process.argv.includes('--timeouts') ? 60 : 0
const fuse = new Fuse(mnt, ops, { allowOther: true, directIo: true, entryTimeout: timeout, attrTimeout: timeout, force, mkdir: true })
const taskCount = () => fs.readdirSync('/proc/self/task').length
let threadsBefore = 0
// The libuv thread pool starts with the first fs call: have it running before counting.
fs.promises.stat('/').then(() => {
  threadsBefore = taskCount()
  fuse.mount(mounted)
})
function mounted (err) {
  if (err) {
    console.error('mount failed:', err.message)
    process.exit(1)
  }
  if (process.argv.includes('--still-fair-queue')) fuse.configureFairQueue({ halfLifeMs: 600000, maxWaitMs: 600000 })
  const libfuse = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).find((f) => f && /\/libfuse\.so/.test(f))
  console.log(`ready libfuse=${libfuse ? path.resolve(libfuse) : 'none'}`)
}
process.on('SIGTERM', () => fuse.unmount((err) => {
  if (err) {
    console.error('unmount failed:', err.message)
    process.exit(1)
  }
  console.log('unmounted')
  if (!linger) return
  // The FUSE thread ends once the kernel has ended the connection; the binding then joins it and releases
  // its state on this thread. Keep the loop alive (and look) until it has.
  // A worker that retired by itself is detached: it may still be leaving the kernel's task list just
  // after giving its state back, so the thread count gets up to 2 s to settle.
  let settle = 200
  const timer = setInterval(() => {
    const stats = fuse.threadStats()
    if (!stats.tornDown || (taskCount() > threadsBefore && --settle > 0)) return
    clearInterval(timer)
    console.log(`torn down ${JSON.stringify(stats)} threads ${threadsBefore} ${taskCount()}`)
  }, 10)
}))
