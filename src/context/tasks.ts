// Thread ids of a cgroup subtree: v1 `tasks` and v2 `cgroup.threads` list only a cgroup's own members, so
// the subtree is walked. Bounded in depth and count: a container cannot make one request arbitrarily slow.

import { readdirSync, readFileSync } from 'node:fs';

export const MAX_TASK_DEPTH = 8;

export function tasksUnder(dir: string, version: 1 | 2, limit: number): number[] {
  const file = version === 1 ? 'tasks' : 'cgroup.threads';
  const tids: number[] = [];
  const walk = (path: string, depth: number): void => {
    if (tids.length >= limit) return;
    let text = '';
    try {
      text = readFileSync(`${path}/${file}`, 'utf8');
    } catch {
      return; // removed under us: what we have is the answer
    }
    for (const line of text.split('\n')) {
      if (tids.length >= limit) return;
      const tid = Number(line);
      if (line !== '' && Number.isInteger(tid) && tid > 0) tids.push(tid);
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
  return tids;
}
