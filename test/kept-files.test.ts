// Descriptors kept open between renders (src/context/kept-files.ts), on scratch files and real /proc
// files, with an injected clock and scheduler: re-reads see new content, a kernel file kept open
// regenerates, fds are bounded, dropped when their file's directory goes or a read fails, closed when
// idle by a timer that exists only while something is kept.

import t, { type Test } from 'tap';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DESCRIPTOR_RESERVE, EVICT_IDLE_MS, keptBound, KeptFiles, MAX_KEPT } from '../src/context/kept-files.js';

const fds = () => readdirSync('/proc/self/fd').length;

function scratch(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-kept-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('kept and pinned fds re-read from offset 0; plain reads keep nothing', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'memory.current');
  writeFileSync(file, '100\n');
  const now = 0;
  const kept = new KeptFiles({ pinned: ['/proc/uptime'], now: () => now, schedule: () => () => {} });
  const base = fds();
  t.equal(kept.read(file, false), '100\n');
  t.equal(fds(), base, 'a plain read closes its fd');
  t.equal(kept.read(file, true), '100\n');
  t.equal(fds(), base + 1, 'a kept read keeps one');
  writeFileSync(file, '200000\n'); // same inode, new content
  t.equal(kept.read(file, true), '200000\n', 'read again from offset 0 through the same fd');
  t.equal(fds(), base + 1);
  // A kernel seq_file kept open regenerates at offset 0: /proc/uptime moves.
  const first = kept.read('/proc/uptime', false);
  await new Promise((r) => setTimeout(r, 30));
  const second = kept.read('/proc/uptime', false);
  t.not(second, first, `a pinned /proc/uptime re-read is fresh (${first?.trim()} -> ${second?.trim()})`);
  t.equal(kept.size, 2);
  kept.closeAll();
  t.equal(fds(), base, 'closeAll closes everything');
});

t.test('bounded: when full, only a file idle for EVICT_IDLE_MS gives its slot; else the new one is read once', async (t) => {
  const dir = scratch(t);
  let now = 0;
  const kept = new KeptFiles({ maxKept: 2, pinned: [join(dir, 'pinned')], now: () => now, schedule: () => () => {} });
  for (const name of ['a', 'b', 'c', 'pinned']) writeFileSync(join(dir, name), name);
  const base = fds();
  kept.read(join(dir, 'pinned'), false);
  kept.read(join(dir, 'a'), true);
  kept.read(join(dir, 'b'), true);
  t.equal(kept.read(join(dir, 'c'), true), 'c', 'full: c is still read');
  t.equal(kept.size, 3, 'two kept and the pinned one: c was not kept, a and b were not evicted');
  t.equal(fds(), base + 3);
  // A cycle over more files than the bound, every file read each second (a, b, c, a, b, c, ...): a and b
  // stay kept, only c is opened each time (plain least-recently-used eviction would open and close every
  // one of them on every read).
  for (const name of ['a', 'b', 'c']) {
    rmSync(join(dir, name));
    writeFileSync(join(dir, name), `new ${name}`); // a new inode: only a fresh open sees it
  }
  for (let round = 0; round < 3; round++) {
    now += 1000;
    t.equal(kept.read(join(dir, 'a'), true), 'a', `round ${round}: a is still kept (the old inode)`);
    t.equal(kept.read(join(dir, 'b'), true), 'b', `round ${round}: b too`);
    t.equal(kept.read(join(dir, 'c'), true), 'new c', `round ${round}: c is opened afresh`);
  }
  // b goes unread; after EVICT_IDLE_MS a new file takes the slot of the least recently read one (b).
  now += EVICT_IDLE_MS - 1;
  kept.read(join(dir, 'a'), true);
  now += 1;
  t.equal(kept.read(join(dir, 'c'), true), 'new c');
  t.equal(kept.read(join(dir, 'b'), true), 'new b', 'b lost its slot to c (b is read afresh, not kept: a and c are busy)');
  rmSync(join(dir, 'c'));
  writeFileSync(join(dir, 'c'), 'newer c');
  t.equal(kept.read(join(dir, 'c'), true), 'new c', 'c is kept now');
  t.equal(fds(), base + 3);
  kept.closeAll();
  t.equal(fds(), base);
});

t.test('out of descriptors is an error, not a missing file', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'x'), 'x');
  const kept = new KeptFiles({ schedule: () => () => {} });
  const held: number[] = [];
  try {
    for (;;) held.push(openSync('/dev/null', 'r')); // until EMFILE
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'EMFILE', `this process's descriptors are used up (${held.length} opened)`);
  }
  try {
    t.throws(() => kept.read(join(dir, 'x'), true), /out of file descriptors \(EMFILE\)/, 'kept read');
    t.throws(() => kept.read(join(dir, 'x'), false), /EMFILE/, 'plain read');
  } finally {
    for (const fd of held) closeSync(fd);
  }
  t.equal(kept.read(join(dir, 'missing'), true), undefined, 'a missing file is still undefined');
  t.equal(kept.read(join(dir, 'x'), true), 'x', 'and reads work again');
  kept.closeAll();
});

t.test('a removed directory or a failing read drops the fd; idle fds close, and then no timer remains', async (t) => {
  const dir = scratch(t);
  const cg = join(dir, 'cg');
  mkdirSync(cg);
  writeFileSync(join(cg, 'cpu.stat'), 'usage_usec 1\n');
  let now = 0;
  let armed = 0;
  let fire: (() => void) | undefined;
  const kept = new KeptFiles({ idleMs: 1000, now: () => now, schedule: (fn) => ((armed++, (fire = fn)), () => armed--) });
  kept.read(join(cg, 'cpu.stat'), true);
  t.equal(armed, 1, 'a timer once something is kept');
  rmSync(cg, { recursive: true });
  t.equal(kept.sweep(), 1, 'sweep: its directory is gone');
  t.equal(kept.size, 0);
  t.equal(kept.read(join(cg, 'cpu.stat'), true), undefined, 'gone: undefined, nothing kept');

  writeFileSync(join(dir, 'x'), 'x');
  let due = 0;
  const timed = new KeptFiles({ idleMs: 1000, now: () => now, schedule: (fn, ms) => ((armed++, (fire = fn), (due = now + ms)), () => armed--) });
  armed = 0;
  timed.read(join(dir, 'x'), true);
  t.equal(due, now + 1000, 'due when x has been idle 1 s');
  now += 500;
  timed.read(join(dir, 'x'), true); // read again: x is now due 500 ms later than the timer
  now += 500;
  armed = 0;
  fire!(); // x is only 500 ms idle: kept, and the timer armed for when it will be idle 1 s
  t.equal(timed.size, 1);
  t.equal(armed, 1, 're-armed while something is kept');
  t.equal(due, now + 500, 'for the moment x reaches 1 s idle, not a whole period later');
  now += 500;
  armed = 0;
  fire!();
  t.equal(timed.size, 0, 'closed 1 s after its last read');
  t.equal(armed, 0, 'and no timer is left');
  // A directory read fails (EISDIR): never kept.
  t.equal(timed.read(dir, true), undefined);
  t.equal(timed.size, 0);
});

t.test('the bound comes from the descriptor limit: half of what the reserve leaves, at most MAX_KEPT', async (t) => {
  const limits = (soft: string, hard: string) =>
    `Limit                     Soft Limit           Hard Limit           Units     \nMax processes             7823                 7823                 processes \nMax open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     \n`;
  t.equal(keptBound(DESCRIPTOR_RESERVE, limits('6000', '20000')), (6000 - DESCRIPTOR_RESERVE) / 2);
  t.equal(keptBound(DESCRIPTOR_RESERVE, limits('1024', '524288')), (1024 - DESCRIPTOR_RESERVE) / 2, 'the soft limit decides (the daemon cannot open more than it)');
  t.equal(keptBound(DESCRIPTOR_RESERVE + 1024, limits('1024', '1024')), 0, 'the render cache\'s 1024 namespace descriptors leave nothing to keep');
  t.equal(keptBound(DESCRIPTOR_RESERVE + 1024, limits('3000', '3000')), Math.floor((3000 - DESCRIPTOR_RESERVE - 1024) / 2));
  t.equal(keptBound(DESCRIPTOR_RESERVE, limits('100', '100')), 0, 'nothing kept when the limit is below the reserve');
  t.equal(keptBound(DESCRIPTOR_RESERVE, limits('524288', '524288')), MAX_KEPT);
  t.equal(keptBound(DESCRIPTOR_RESERVE, limits('unlimited', 'unlimited')), MAX_KEPT);
  t.equal(keptBound(DESCRIPTOR_RESERVE, null), MAX_KEPT, '/proc/self/limits unreadable');
  t.equal(keptBound(DESCRIPTOR_RESERVE, 'garbage'), MAX_KEPT);
  // This process's own limit: what the daemon computes at start.
  const own = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]);
  if (Number.isFinite(own)) t.ok(keptBound() <= (own - DESCRIPTOR_RESERVE) / 2, 'by default from this process\'s own limit: leaves the reserve and half of the rest');
});

t.test('maxKept 0: everything is read once, nothing kept', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'a'), 'a');
  const kept = new KeptFiles({ maxKept: 0, schedule: () => () => {} });
  t.equal(kept.read(join(dir, 'a'), true), 'a');
  t.equal(kept.size, 0);
});
