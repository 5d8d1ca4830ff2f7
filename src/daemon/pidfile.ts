// The pid file keeps two daemons from serving at once. It is locked with flock(2) (through the binding:
// Node has none) for the daemon's whole life, so whether a daemon runs is the kernel's word, not a guess
// from a pid that may have been recycled: the lock dies with the process, however it dies.

import Fuse from 'fuse-native';
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureDir } from './ensure-dir.js';

export type PidfileResult = { ok: true; release: () => void } | { ok: false; message: string };

/**
 * Open (or create) `path`, take its exclusive lock without waiting, and write `pid` into it. Refuses when
 * another process holds the lock. A file left by a killed daemon holds no lock and is taken over, whatever
 * pid it names. `release` (a clean stop) removes the file, then drops the lock.
 */
export function acquirePidfile(path: string, pid: number = process.pid): PidfileResult {
  try {
    ensureDir(dirname(path));
  } catch (err) {
    return { ok: false, message: `cannot create the directory of pid file ${path}: ${(err as Error).message}` };
  }
  // A daemon stopping removes its file while it still holds the lock: a lock taken on a file that is no
  // longer at `path` guards nothing, so open again.
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o644); // O_CLOEXEC (libuv): helpers the daemon runs never inherit the lock
    } catch (err) {
      return { ok: false, message: `cannot open pid file ${path}: ${(err as Error).message}` };
    }
    let locked: boolean;
    try {
      locked = Fuse.flock(fd, 'exclusive');
    } catch (err) {
      closeSync(fd);
      return { ok: false, message: `cannot lock pid file ${path}: ${(err as Error).message}` };
    }
    if (!locked) {
      closeSync(fd);
      const holder = readPid(path);
      return { ok: false, message: `pid file ${path} is locked by running lxcfs-ts${holder ? ` (pid ${holder})` : ''}; is another instance running?` };
    }
    if (!sameFile(fd, path)) {
      closeSync(fd);
      continue;
    }
    try {
      ftruncateSync(fd, 0);
      writeSync(fd, `${pid}\n`, 0);
    } catch (err) {
      closeSync(fd);
      return { ok: false, message: `cannot write pid file ${path}: ${(err as Error).message}` };
    }
    return { ok: true, release: () => releasePidfile(path, fd) };
  }
  return { ok: false, message: `pid file ${path} keeps being replaced; is another instance starting?` };
}

export type PidfileHolder = { running: true; pid: number | undefined } | { running: false; pid: number | undefined; exists: boolean };

/** Who holds `path`'s lock: a running daemon (and the pid it wrote), or nobody (a stale or absent file). */
export function pidfileHolder(path: string): PidfileHolder {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { running: false, pid: undefined, exists: false };
  }
  try {
    const free = Fuse.flock(fd, 'shared');
    return free ? { running: false, pid: readPid(path), exists: true } : { running: true, pid: readPid(path) };
  } finally {
    closeSync(fd); // drops the shared lock, if taken
  }
}

function releasePidfile(path: string, fd: number): void {
  try {
    if (sameFile(fd, path)) unlinkSync(path);
  } catch {
    // already gone
  }
  try {
    closeSync(fd);
  } catch {
    // closed already (release called twice)
  }
}

function sameFile(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

function readPid(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
