// The fixture trees (test/fixtures/{v1,hybrid,v2}) as the renderer tests use them: rendering a file for a
// caller exactly as the daemon does, and private variants of a tree with some files changed.

import type { Test } from 'tap';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CgroupReader } from 'node-cgroups-parser';
import { ContainerResolver } from '../../src/context/containers.js';
import { outputText, type RenderOptions, type VirtualFile } from '../../src/contract.js';
import type { LoadavgSampler } from '../../src/context/loadavg-sampler.js';
import { sourcesFor } from '../../src/context/sources.js';

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
export const OPTS: RenderOptions = { swap: true, cfs: false };
export const CFS: RenderOptions = { swap: true, cfs: true };
export const TREES = ['v1', 'hybrid', 'v2'] as const;
export type Tree = (typeof TREES)[number];

export const fx = (tree: Tree) => join(FIXTURES, tree);

/**
 * Render `file` for `caller` on the tree at `root`, exactly as the daemon does (100 is the daemon's pid),
 * as a first render (no state kept), or after a render that returned `previous` as its state.
 */
export function renderWithState(root: string, caller: number, file: VirtualFile<any>, options = OPTS, previous?: unknown, sampler?: LoadavgSampler): { text: string; state: unknown } {
  const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
  const resolved = new ContainerResolver(reader, 100).resolve(caller);
  if (!resolved.ok) throw new Error(resolved.reason);
  const output = file.render(file.collect(sourcesFor(reader, resolved.container, { ...(sampler ? { sampler } : {}), lastState: () => previous }), options), options);
  const text = outputText(output);
  if (text === undefined) throw new Error(`${file.path} rendered no text`);
  return { text, state: typeof output === 'object' ? output.state : undefined };
}

/** The text of a first render of `file` for `caller` (see renderWithState). */
export function render(root: string, caller: number, file: VirtualFile<any>, options = OPTS, sampler?: LoadavgSampler): string {
  return renderWithState(root, caller, file, options, undefined, sampler).text;
}

/**
 * A private version of a fixture tree with files replaced (text) or removed (null), deleted after the test.
 * Copying a whole tree (700 files) costs seconds on a slow disk, so only the directory holding each edited
 * file is copied (with everything under it, so task walks still see real subdirectories); every directory
 * above it is a real directory of symlinks to the fixture's entries, and the rest is not touched.
 */
export function variant(t: Test, tree: Tree, edits: Record<string, string | null>): string {
  const src = fx(tree);
  const dir = mkdtempSync(join(tmpdir(), `lxcfs-ts-${tree}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const linkEntries = (rel: string) => {
    for (const name of readdirSync(join(src, rel))) symlinkSync(join(src, rel, name), join(dir, rel, name));
  };
  linkEntries('');
  // Shallow edits first: a directory copied whole is never turned into symlinks by a deeper edit.
  const paths = Object.keys(edits).sort((a, b) => a.split('/').length - b.split('/').length);
  for (const path of paths) {
    const parts = dirname(path).split('/');
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (!lstatSync(join(dir, rel)).isSymbolicLink()) continue; // already real
      rmSync(join(dir, rel));
      if (i < parts.length) {
        mkdirSync(join(dir, rel));
        linkEntries(rel);
      } else cpSync(join(src, rel), join(dir, rel), { recursive: true, verbatimSymlinks: true });
    }
    // Never write through a symlink into the fixture itself.
    rmSync(join(dir, path), { force: true });
    const text = edits[path];
    if (text !== null && text !== undefined) writeFileSync(join(dir, path), text);
  }
  return dir;
}
