#!/usr/bin/env node
// `npm test`: type-checks and lints the project, runs every test file with tap (with coverage), and ends
// with one plain line, "N passed, N failed, N skipped", which CI reads (tap's own summary is a TAP
// comment). The type check and the lint count as one test each. Exits non-zero when anything failed.
// Usage: node test/run.mjs [test files...]   (with files: only those, no type check, lint or coverage)

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDirs = ['test', 'vendor/node-cgroups-parser/test'];
const chosen = process.argv.length > 2;

const files = chosen
  ? process.argv.slice(2)
  : testDirs.flatMap((dir) => {
      try {
        return readdirSync(join(root, dir)).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f));
      } catch {
        return [];
      }
    });

let checksPassed = 0;
let checksFailed = 0;
/** A whole-project check run before the tests: its output is shown, its result counted as one test. */
function check(name, cmd, args) {
  process.stdout.write(`# ${name}: ${[cmd, ...args].join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.status === 0) {
    checksPassed++;
    process.stdout.write(`ok - ${name}\n`);
  } else {
    checksFailed++;
    process.stdout.write(`not ok - ${name}\n${out.split('\n').map((l) => `  ${l}`).join('\n')}\n`);
  }
}

if (!chosen) {
  const bin = (name) => join(root, 'node_modules', '.bin', name);
  check('type check (src and tests)', bin('tsc'), ['-p', 'tsconfig.test.json']);
  check('lint', bin('eslint'), ['.']);
}

const tap = join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs');
const coverage = chosen ? ['--disable-coverage'] : ['--allow-incomplete-coverage', '--coverage-report=text-summary'];
const child = spawn(process.execPath, [tap, '-R', 'tap', ...coverage, ...files], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let tail = '';
// Every failed assertion with the subtests it sits in, repeated just above the summary line: a CI log
// that keeps only its last lines still says what failed.
const failures = [];
const subtests = [];
let partial = '';
function scan(line) {
  const sub = /^(\s*)# Subtest: (.*)$/.exec(line);
  if (sub) {
    const depth = sub[1].length / 4;
    subtests.length = depth;
    subtests[depth] = sub[2];
    return;
  }
  const bad = /^(\s*)not ok \d+ - (.*)$/.exec(line);
  if (bad) {
    const depth = bad[1].length / 4;
    const text = [...subtests.slice(0, depth), bad[2].replace(/ # time=.*$/, '')].join(' > ');
    // A failed subtest's own "not ok" line repeats its name: report each failure once, at its leaf.
    if (failures.some((f) => f.startsWith(`${text} > `))) return;
    failures.push(text);
  }
}
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const text = chunk.toString();
  tail = (tail + text).slice(-8192);
  const lines = (partial + text).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) scan(line);
});

child.on('close', (code, signal) => {
  // tap's closing comment: "# { total: 12, pass: 10, fail: 1, skip: 1, todo: 0 }"
  const summaries = [...tail.matchAll(/^# \{ total: (\d+)([^}]*)\}/gm)];
  const last = summaries[summaries.length - 1];
  const count = (key) => Number(new RegExp(`${key}: (\\d+)`).exec(last?.[2] ?? '')?.[1] ?? 0);
  const pass = count('pass') + checksPassed;
  let fail = count('fail') + checksFailed;
  const skip = count('skip') + count('todo');
  if ((code !== 0 || signal) && count('fail') === 0) fail++; // tap itself failed: never report a clean run
  if (!last) process.stderr.write(`test runner ended without a summary (code ${code}, signal ${signal}); files: ${files.map((f) => relative('.', f)).join(' ')}\n`);
  // istanbul's text-summary: "Lines        : 87.5% ( 700/800 )"
  const lines = /^Lines\s*:\s*([\d.]+)%/m.exec(tail)?.[1];
  if (lines !== undefined) process.stdout.write(`\ncoverage: ${lines}% of lines (tap's c8, src and vendor)\n`);
  if (partial) scan(partial);
  if (checksFailed > 0 || failures.length > 0) {
    process.stdout.write('\nfailed:\n');
    if (checksFailed > 0) process.stdout.write('  a whole-project check (type check or lint): see "not ok -" above\n');
    for (const f of failures) process.stdout.write(`  ${f}\n`);
  }
  process.stdout.write(`\n${pass} passed, ${fail} failed, ${skip} skipped\n`);
  process.exit(fail > 0 ? 1 : 0);
});
