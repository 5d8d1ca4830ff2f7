#!/usr/bin/env node
// The binding's C unit tests (render-cache-test.c, locals-pool-test.c, resume-chan-test.c, fair-queue-test.c): compiled with the system C compiler
// ($CC, else cc) and run, each once plainly and once with --hammer (threads). Used by test/binding-c.test.ts
// (npm test, no sanitizer) and by test/sanitize.mjs (AddressSanitizer + UndefinedBehaviorSanitizer, and
// ThreadSanitizer).
//
// CLI: node vendor/fuse-native/test/c-tests.mjs [--sanitize LIST]
//   builds into a temporary directory, runs everything, prints the output, exits 1 on any failure.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const PKG = join(HERE, '..');

export const C_TESTS = [
  { name: 'render-cache', sources: [join(HERE, 'render-cache-test.c'), join(PKG, 'render-cache.c')] },
  { name: 'locals-pool', sources: [join(HERE, 'locals-pool-test.c'), join(PKG, 'locals-pool.c')] },
  { name: 'resume-chan', sources: [join(HERE, 'resume-chan-test.c'), join(PKG, 'resume-chan.c')] },
  { name: 'fair-queue', sources: [join(HERE, 'fair-queue-test.c'), join(PKG, 'fair-queue.c')] },
];

// Runtime options that make any sanitizer report fatal and visible (exit code != 0, report on stderr).
export const SANITIZER_ENV = {
  ASAN_OPTIONS: 'halt_on_error=1:detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1',
};

/**
 * Compiles every C test into outDir (with -fsanitize=LIST when sanitize is set). Returns
 * [{ name, exe }]; throws with the compiler's output when one does not compile (warnings are errors).
 */
export function buildCTests(outDir, sanitize = '') {
  const cc = process.env.CC || 'cc';
  const flags = ['-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Werror', '-g', `-I${PKG}`];
  if (sanitize) flags.push(`-fsanitize=${sanitize}`, '-fno-omit-frame-pointer', '-fno-sanitize-recover=all', '-O1');
  else flags.push('-O2');
  return C_TESTS.map(({ name, sources }) => {
    const exe = join(outDir, sanitize ? `${name}-${sanitize.replace(/,/g, '-')}` : name);
    const r = spawnSync(cc, [...flags, ...sources, '-lpthread', '-lm', '-o', exe], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cc} ${flags.join(' ')} ${sources.join(' ')} failed:\n${r.stderr}${r.stdout}${r.error ?? ''}`);
    return { name, exe };
  });
}

/**
 * Runs one C test (args [] or ['--hammer']). Returns its exit status, signal, output, and its checks:
 * [{ ok, what }] from the "ok N - what" / "not ok N - what" lines, plus whether it printed its closing
 * "1..N" with N the number of checks (a crash midway does not).
 */
export function runCTest(exe, args = [], env = {}) {
  const r = spawnSync(exe, args, { encoding: 'utf8', env: { ...process.env, ...SANITIZER_ENV, ...env }, timeout: 300_000 });
  const checks = [...(r.stdout ?? '').matchAll(/^(ok|not ok) \d+ - (.*)$/gm)].map((m) => ({ ok: m[1] === 'ok', what: m[2] }));
  const plan = /^1\.\.(\d+)$/m.exec(r.stdout ?? '');
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', checks, complete: plan !== null && Number(plan[1]) === checks.length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--sanitize');
  const sanitize = i > 0 ? process.argv[i + 1] ?? '' : '';
  const dir = mkdtempSync(join(tmpdir(), 'fuse-native-c-tests-'));
  let failed = 0;
  try {
    for (const { name, exe } of buildCTests(dir, sanitize)) {
      for (const args of [[], ['--hammer']]) {
        const r = runCTest(exe, args);
        const good = r.status === 0 && r.complete && r.checks.every((c) => c.ok);
        if (!good) failed++;
        process.stdout.write(`# ${name} ${args.join(' ')}${sanitize ? ` (-fsanitize=${sanitize})` : ''}: ${good ? 'passed' : `FAILED (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`}\n${r.stdout}${r.stderr}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
