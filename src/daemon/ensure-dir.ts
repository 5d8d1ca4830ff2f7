import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * mkdir -p that terminates: Node's recursive mkdirSync loops forever where mkdir fails with ENOENT under
 * an existing parent (e.g. anywhere in /proc), so each level is created by hand, once.
 */
export function ensureDir(dir: string, depth = 0): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || depth > 64 || parent === dir || existsSync(parent)) throw err;
    ensureDir(parent, depth + 1);
    mkdirSync(dir);
  }
}
