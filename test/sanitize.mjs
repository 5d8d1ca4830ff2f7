#!/usr/bin/env node
// `npm run test:sanitize`: the FUSE binding (vendor/fuse-native) under sanitizers. Fails on any report.
//   1. The binding's C unit tests (render cache, per-thread state pool) built with AddressSanitizer +
//      UndefinedBehaviorSanitizer, then with ThreadSanitizer, each run plainly and with threads hammering.
//   2. The addon built with -fsanitize=address,undefined into vendor/fuse-native/build/sanitize (the
//      normal build/Release is not touched).
//   3. A canary: a node process with the sanitizer environment below loads the sanitized addon, then a
//      small library with a deliberate heap overflow; its report must land in the report directory. This
//      proves that reports from the node processes the tests start (echo-fs, the daemon) are collected.
//   4. The binding and real-mount suites (default: test/binding.test.ts test/render-cache.test.ts
//      test/daemon.test.ts test/fdstore.test.ts, or the files given) with that environment, inherited by
//      every process they start (the descriptor-store stand-in hands LD_PRELOAD on to the daemon only): FUSE_NATIVE_ADDON makes fuse-native's index.js load the sanitized addon, LD_PRELOAD puts the
//      ASan runtime first in node (which is not built with it; test/sanitize-preload.cjs, loaded into
//      every node process, keeps it out of the other programs), ASAN_OPTIONS/UBSAN_OPTIONS write each
//      process's reports to files. Node's own allocations are not tracked for leaks (detect_leaks=0).
//   5. Any report file, or a failed suite, fails the run; reports are printed.
// Needs what npm test needs, plus the compiler's sanitizer runtimes (Debian: gcc pulls in libasan8,
// libubsan1, libtsan2). Usage: node test/sanitize.mjs [test files...]  (after npm run build)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCTests, runCTest } from '../vendor/fuse-native/test/c-tests.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'vendor/fuse-native');
const addon = join(pkg, 'build/sanitize/fuse.node');
const suites = process.argv.length > 2 ? process.argv.slice(2) : ['test/binding.test.ts', 'test/render-cache.test.ts', 'test/daemon.test.ts', 'test/fdstore.test.ts'];

const failures = [];
const say = (s) => process.stdout.write(`${s}\n`);
const scratch = mkdtempSync(join(tmpdir(), 'lxcfs-ts-sanitize-'));

function step(name, fn) {
  say(`\n# ${name}`);
  try {
    const problem = fn();
    if (problem) {
      failures.push(`${name}: ${problem}`);
      say(`not ok - ${name}: ${problem}`);
    } else {
      say(`ok - ${name}`);
    }
  } catch (err) {
    failures.push(`${name}: ${err.message}`);
    say(`not ok - ${name}: ${err.message}`);
  }
}

/** Report files written so far (ASan, UBSan: log_path prefix + ".<pid>"). */
const reportDir = join(scratch, 'reports');
const reports = () => (existsSync(reportDir) ? readdirSync(reportDir).map((f) => join(reportDir, f)) : []);

try {
  for (const sanitize of ['address,undefined', 'thread']) {
    step(`C unit tests, -fsanitize=${sanitize}`, () => {
      const out = join(scratch, `c-${sanitize.replace(/,/g, '-')}`);
      spawnSync('mkdir', ['-p', out]);
      const bad = [];
      for (const { name, exe } of buildCTests(out, sanitize)) {
        for (const args of [[], ['--hammer']]) {
          const r = runCTest(exe, args);
          const good = r.status === 0 && r.complete && r.checks.length > 0 && r.checks.every((c) => c.ok);
          say(`${good ? 'ok' : 'not ok'} - ${name} ${args.join(' ')} (${r.checks.length} checks, exit ${r.status}${r.signal ? ` ${r.signal}` : ''})`);
          if (!good) {
            say(`${r.stdout}${r.stderr}`);
            bad.push(`${name} ${args.join(' ')}`.trim());
          }
        }
      }
      return bad.length ? `failed: ${bad.join(', ')}` : '';
    });
  }

  step('the addon built with -fsanitize=address,undefined into build/sanitize', () => {
    const r = spawnSync(process.execPath, [join(pkg, 'build.js'), '--sanitize', 'address,undefined', '--out', 'build/sanitize'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) return `build failed:\n${r.stdout}${r.stderr}`;
    return existsSync(addon) ? '' : `no ${addon}`;
  });
  if (failures.length) throw new Error('cannot go on without the sanitized addon');

  // The ASan runtime the addon was linked against, to preload into node.
  const ldd = spawnSync('ldd', [addon], { encoding: 'utf8' }).stdout ?? '';
  const asanRuntime = /libasan\.so\.\d+ => (\S+)/.exec(ldd)?.[1];
  if (!asanRuntime) throw new Error(`the sanitized addon does not link libasan (ldd: ${ldd})`);

  const preload = [asanRuntime, process.env.LD_PRELOAD].filter(Boolean).join(':');
  const env = {
    ...process.env,
    FUSE_NATIVE_ADDON: addon,
    // Node processes get the runtime preloaded, other programs not (see test/sanitize-preload.cjs).
    LD_PRELOAD: preload,
    LXCFS_TS_SANITIZE_PRELOAD: preload,
    NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require=${join(root, 'test/sanitize-preload.cjs')}`].filter(Boolean).join(' '),
    // detect_leaks=0: node is not built with ASan and keeps memory to exit on purpose.
    // The link order check stays on: a node process that loads the addon without the runtime preloaded
    // fails to load it, instead of running half-instrumented.
    ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:log_path=${join(reportDir, 'asan')}`,
    UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${join(reportDir, 'ubsan')}`,
  };
  spawnSync('mkdir', ['-p', reportDir]);

  step('canary: a report from a node process loading the sanitized addon is collected', () => {
    const canary = join(scratch, 'canary.so');
    const src = join(scratch, 'canary.c');
    writeFileSync(src, '#include <stdlib.h>\n__attribute__((constructor)) static void overflow (void) { volatile char *p = malloc(8); p[8] = 1; free((void *) p); }\n');
    const cc = spawnSync(process.env.CC || 'cc', ['-shared', '-fPIC', '-fsanitize=address', '-g', src, '-o', canary], { encoding: 'utf8' });
    if (cc.status !== 0) return `cannot build the canary: ${cc.stderr}`;
    const script = [
      `require(${JSON.stringify(pkg)})`,
      "const maps = require('fs').readFileSync('/proc/self/maps', 'utf8')",
      `if (!maps.includes(${JSON.stringify(addon)})) { console.log('sanitized addon not loaded'); process.exit(3) }`,
      "if (!/libasan\\.so/.test(maps)) { console.log('no ASan runtime'); process.exit(4) }",
      `try { process.dlopen({ exports: {} }, ${JSON.stringify(canary)}) } catch {}`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
    if (r.status === 3 || r.status === 4) return r.stdout.trim();
    const found = reports();
    const text = found.map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const f of found) rmSync(f);
    if (r.status === 0) return 'the deliberate overflow went unnoticed (node exited 0)';
    if (!/heap-buffer-overflow/.test(text)) return `no heap-buffer-overflow report collected (exit ${r.status}): ${r.stderr}`;
    return '';
  });
  if (failures.length) throw new Error('the sanitizer setup does not catch errors');

  step(`suites with the sanitized addon: ${suites.join(' ')}`, () => {
    const r = spawnSync(process.execPath, [join(root, 'test/run.mjs'), ...suites], { cwd: root, env, stdio: 'inherit' });
    return r.status === 0 ? '' : `test/run.mjs exited ${r.status ?? r.signal}`;
  });

  step('no sanitizer report from any process', () => {
    const found = reports();
    for (const f of found) say(`--- ${f}\n${readFileSync(f, 'utf8')}`);
    return found.length ? `${found.length} report(s)` : '';
  });
} catch (err) {
  failures.push(err.message);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

say(failures.length ? `\ntest:sanitize FAILED\n${failures.map((f) => `  ${f}`).join('\n')}` : '\ntest:sanitize passed: no sanitizer report');
process.exit(failures.length ? 1 : 0);
