// The binding's C units on their own (vendor/fuse-native/test/*.c): the render cache (store, lookup,
// expiry, sweep, the 1024-entry and 16 MiB bounds, replacement, namespace fds closed when entries go), the
// pool of per-thread state, and the resumable channel (a restart on a fake kernel: node ids and handles
// translated, INIT replayed, old handles opened again once, the state memfd checked), each built with the
// system C compiler and run once plainly and once with threads hammering it. `npm run test:sanitize` runs the same programs under AddressSanitizer,
// UndefinedBehaviorSanitizer and ThreadSanitizer.

import t from 'tap';
import { rmSync } from 'node:fs';
import { buildCTests, runCTest } from '../vendor/fuse-native/test/c-tests.mjs';
import { scratchDir } from './helpers/daemon.js';

const dir = scratchDir('fuse-native-c-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const programs = buildCTests(dir);

for (const { name, exe } of programs) {
  for (const args of [[], ['--hammer']]) {
    t.test(`${name}${args.length ? ' ' + args.join(' ') : ''}`, async (t) => {
      const r = runCTest(exe, args);
      for (const c of r.checks) t.ok(c.ok, c.what);
      t.ok(r.checks.length > 0 && r.complete, `ran to its end (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})${r.stderr ? `: ${r.stderr}` : ''}`);
      t.equal(r.status, 0, 'exit status 0');
    });
  }
}
