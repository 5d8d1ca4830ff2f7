// Thread and process ids of a cgroup subtree: v1 `tasks` / v2 `cgroup.threads` (threads) and
// `cgroup.procs` (processes) list only a cgroup's own members, so the subtree is walked. Bounded in depth
// and count: a container cannot make one request arbitrarily slow.

import { readdirSync, readFileSync } from 'node:fs';

export const MAX_TASK_DEPTH = 8;

/** The file listing a cgroup's own threads or processes. */
function listFile(version: 1 | 2, what: 'threads' | 'processes'): string {
  if (what === 'processes') return 'cgroup.procs';
  return version === 1 ? 'tasks' : 'cgroup.threads';
}

/** Thread ids (or with `what: 'processes'`, process ids) of `dir` and its descendants, at most `limit`. */
export function tasksUnder(dir: string, version: 1 | 2, limit: number, what: 'threads' | 'processes' = 'threads'): number[] {
  const file = listFile(version, what);
  const ids: number[] = [];
  const walk = (path: string, depth: number): void => {
    if (ids.length >= limit) return;
    let text: string;
    try {
      text = readFileSync(`${path}/${file}`, 'utf8');
    } catch {
      return; // removed under us: what we have is the answer
    }
    for (const line of text.split('\n')) {
      if (ids.length >= limit) return;
      const id = Number(line);
      if (line !== '' && Number.isInteger(id) && id > 0) ids.push(id);
    }
    if (depth >= MAX_TASK_DEPTH) return;
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(`${path}/${e.name}`, depth + 1);
  };
  walk(dir, 0);
  return ids;
}

/** A thread of a cgroup subtree and the file that has its own state. */
export interface ThreadRef {
  tid: number;
  /** /proc/<pid>/task/<tid>/stat: that thread alone (/proc/<tid>/stat of a non-leader thread makes the
   * kernel sum the whole thread group on every read: O(threads) each, O(threads²) for a census) */
  stat: string;
}

/**
 * Threads of `dir` and its descendants, at most `limit`, found through their processes (cgroup.procs)
 * and each process's task directory. A process whose task directory cannot be listed counts as its
 * main thread alone.
 */
export function threadsUnder(dir: string, version: 1 | 2, limit: number, procRoot = '/proc'): ThreadRef[] {
  const threads: ThreadRef[] = [];
  for (const pid of tasksUnder(dir, version, limit, 'processes')) {
    if (threads.length >= limit) break;
    let tids: string[];
    try {
      tids = readdirSync(`${procRoot}/${pid}/task`);
    } catch {
      threads.push({ tid: pid, stat: `${procRoot}/${pid}/stat` });
      continue;
    }
    for (const name of tids) {
      if (threads.length >= limit) break;
      const tid = Number(name);
      if (Number.isInteger(tid) && tid > 0) threads.push({ tid, stat: `${procRoot}/${pid}/task/${name}/stat` });
    }
  }
  return threads;
}
