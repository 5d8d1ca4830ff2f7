// The pid file keeps two daemons from serving at once. Node has no flock(), so the "lock" is the file plus
// a liveness check: a file naming a live lxcfs-ts process refuses the start; one naming a dead process (a
// SIGKILLed daemon) is stale and taken over.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureDir } from './ensure-dir.js';

export type PidfileResult = { ok: true; release: () => void } | { ok: false; message: string };

export function acquirePidfile(path: string, pid: number = process.pid): PidfileResult {
  try {
    ensureDir(dirname(path));
  } catch (err) {
    return { ok: false, message: `cannot create the directory of pid file ${path}: ${(err as Error).message}` };
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, `${pid}\n`);
      } finally {
        closeSync(fd);
      }
      return { ok: true, release: () => releasePidfile(path, pid) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') return { ok: false, message: `cannot write pid file ${path}: ${(err as Error).message}` };
      const holder = readPid(path);
      if (holder !== undefined && holder !== pid && isLiveDaemon(holder)) {
        return { ok: false, message: `pid file ${path} is held by running lxcfs-ts (pid ${holder}); is another instance running?` };
      }
      try {
        unlinkSync(path);
      } catch {
        // raced with another starter; the next attempt decides
      }
    }
  }
  return { ok: false, message: `pid file ${path} keeps reappearing; is another instance starting?` };
}

function releasePidfile(path: string, pid: number): void {
  if (readPid(path) !== pid) return; // someone else's by now
  try {
    unlinkSync(path);
  } catch {
    // already gone
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

/** Alive, and an lxcfs-ts: a pid recycled by an unrelated process does not hold the file. */
function isLiveDaemon(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /lxcfs-ts|daemon\/main\.js/.test(cmdline);
  } catch {
    return false;
  }
}
