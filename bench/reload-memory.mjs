#!/usr/bin/env node --expose-gc
// Memory across 200 renderer reloads, each with a changed bundle (so each one really compiles), with the
// daemon's loader (vm.compileFunction of one CommonJS bundle) and, for comparison, ESM re-import under a
// fresh query string. Run: node --expose-gc bench/reload-memory.mjs   (after npm run build)

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const RELOADS = Number(process.env.RELOADS ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-reload-'));
const bundle = join(dir, 'renderers.cjs');
const original = readFileSync(join(root, 'dist/renderers.cjs'), 'utf8');
copyFileSync(join(root, 'dist/renderers.cjs'), bundle);

if (typeof gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const settle = () => {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
};
const kib = (n) => Math.round(n / 1024);

const { RendererLoader } = await import(join(root, 'dist/src/daemon/renderer-loader.js'));
const loader = new RendererLoader(bundle);
loader.load();
const before = settle();
for (let i = 0; i < RELOADS; i++) {
  writeFileSync(bundle, `${original}\n// reload ${i}\n`);
  const kept = loader.load();
  if (!kept.ok || !kept.changed) throw new Error(`reload ${i} did not compile`);
}
const after = settle();

const esmFile = join(dir, 'renderers.mjs');
writeFileSync(esmFile, `${original}\nexport default module.exports;`.replace('"use strict";', 'const module = { exports: {} };'));
await import(`${esmFile}?0`);
const esmBefore = settle();
for (let i = 1; i <= RELOADS; i++) await import(`${esmFile}?${i}`);
const esmAfter = settle();

const result = {
  reloads: RELOADS,
  bundleKiB: kib(original.length),
  vmCompileFunction: { heapUsedKiB: [kib(before.heapUsed), kib(after.heapUsed)], rssKiB: [kib(before.rss), kib(after.rss)], perReloadKiB: kib((after.heapUsed - before.heapUsed) / RELOADS) },
  esmReimport: { heapUsedKiB: [kib(esmBefore.heapUsed), kib(esmAfter.heapUsed)], rssKiB: [kib(esmBefore.rss), kib(esmAfter.rss)], perReloadKiB: kib((esmAfter.heapUsed - esmBefore.heapUsed) / RELOADS) },
};
console.log(JSON.stringify(result, null, 2));
rmSync(dir, { recursive: true, force: true });
