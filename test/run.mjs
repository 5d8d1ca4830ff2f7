#!/usr/bin/env node
// `npm test`: runs every test file with tap and ends with one plain line, "N passed, N failed", which CI
// reads (tap's own summary is a TAP comment). Exits non-zero when anything failed.
// Usage: node test/run.mjs [test files...]

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDirs = ['test', 'vendor/node-cgroups-parser/test'];

const files = process.argv.length > 2
  ? process.argv.slice(2)
  : testDirs.flatMap((dir) => {
      try {
        return readdirSync(join(root, dir)).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f));
      } catch {
        return [];
      }
    });

const tap = join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs');
const child = spawn(process.execPath, [tap, '-R', 'tap', ...files], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4096);
});

child.on('close', (code, signal) => {
  // tap's closing comment: "# { total: 12, pass: 11, fail: 1, skip: 0 }"
  const summaries = [...tail.matchAll(/^# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/gm)];
  const last = summaries[summaries.length - 1];
  const pass = last ? Number(last[2] ?? 0) : 0;
  let fail = last ? Number(last[3] ?? 0) : 0;
  if ((code !== 0 || signal) && fail === 0) fail = 1; // tap itself failed: never report a clean run
  if (!last) process.stderr.write(`test runner ended without a summary (code ${code}, signal ${signal}); files: ${files.map((f) => relative('.', f)).join(' ')}\n`);
  process.stdout.write(`\n${pass} passed, ${fail} failed\n`);
  process.exit(fail > 0 ? 1 : 0);
});
