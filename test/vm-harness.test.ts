// The QEMU harness (test/vm) without booting a guest: how it reads a runner's summary, counts a file and
// combines files (what decides whether CI passes), and its command line refusing bad usage up front.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fileResult, formatSummary, parseSummary } from './vm/summary.mjs';

const RUN = fileURLToPath(new URL('./vm/run.mjs', import.meta.url));

t.test('parseSummary reads the last summary line, with or without skips', async (t) => {
  const tail = 'not ok 1 - test/x.test.ts # time=12ms\n# { total: 3, pass: 2, fail: 1 }\n# time=40ms\n\n2 passed, 1 failed\n';
  t.same(parseSummary(tail), { passed: 2, failed: 1 });
  t.same(parseSummary('7 passed, 0 failed, 2 skipped\n'), { passed: 7, failed: 0, skipped: 2 });
  t.same(parseSummary('ok 1 - 3 passed\r\n1 passed, 0 failed\r\nlxcfs-ts-vm: done\r\n4 passed, 1 failed\r\n'), { passed: 4, failed: 1 }, 'serial console line ends');
  t.equal(parseSummary('TAP version 14\nnot ok 1 - timeout!\n'), null);
  // a test file run by node directly: tap's closing comment, skips and todos counted as skipped
  const direct = 'TAP version 14\n# Subtest: a\n    1..1\n    # { total: 9, pass: 9 }\nok 1 - a\n1..4\n# { total: 5, pass: 2, fail: 1, todo: 1, skip: 1 }\n# time=33ms\n';
  t.same(parseSummary(direct), { passed: 2, failed: 1, skipped: 2 });
  t.same(parseSummary('# { total: 3, pass: 3 }\r\n'), { passed: 3, failed: 0, skipped: 0 });
  t.same(parseSummary(`${direct}\n7 passed, 0 failed\n`), { passed: 7, failed: 0 }, 'test/run.mjs\'s line wins over the comment');
  t.equal(parseSummary(''), null);
});

t.test('fileResult never counts a crashed, killed or silent runner as clean', async (t) => {
  t.same(fileResult({ file: 'a', output: '5 passed, 0 failed\n', code: 0, seconds: 3 }), { file: 'a', passed: 5, failed: 0, seconds: 3, code: 0 });
  t.equal(fileResult({ file: 'a', output: '5 passed, 0 failed\n', code: 1, seconds: 3 }).failed, 1, 'non-zero exit');
  t.equal(fileResult({ file: 'a', output: '5 passed, 2 failed\n', code: 1, seconds: 3 }).failed, 2, 'its own failures are kept');
  const killed = fileResult({ file: 'a', output: 'ok 1 - first\n', code: null, signal: 'SIGTERM', timedOut: true, seconds: 1200 });
  t.match(killed, { passed: 0, failed: 1, signal: 'SIGTERM', timedOut: true, noSummary: true });
  t.match(fileResult({ file: 'a', output: '', code: 0, seconds: 1 }), { failed: 1, noSummary: true }, 'exit 0 without a summary');
  t.equal(fileResult({ file: 'a', output: '2 passed, 0 failed, 1 skipped\n', code: 0, seconds: 1 }).skipped, 1);
});

t.test('formatSummary adds skips only when a file reported them', async (t) => {
  const a = { passed: 3, failed: 0 };
  const b = { passed: 4, failed: 2 };
  t.equal(formatSummary([a, b]), '7 passed, 2 failed');
  t.equal(formatSummary([a, { ...b, skipped: 1 }]), '7 passed, 2 failed, 1 skipped');
  t.equal(formatSummary([]), '0 passed, 0 failed');
});

t.test('bad usage exits 2 before building or booting anything', async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [RUN, ...args], { encoding: 'utf8', timeout: 30_000 });
  for (const [args, message] of [
    [[], /--cgroup v2 or --cgroup v1 is required/],
    [['--cgroup', 'v3'], /--cgroup must be v2 or v1, not "v3"/],
    [['--cgroup', 'v2', '--file-timeout', '0'], /--file-timeout needs a positive whole number/],
    [['--cgroup', 'v2', '--bogus'], /Unknown option '--bogus'/],
    [['--cgroup', 'v1', 'test/no-such.test.ts'], /no such test file: test\/no-such.test.ts/],
  ] as const) {
    const r = run(...args);
    t.equal(r.status, 2, `exit 2 for ${JSON.stringify(args)}`);
    t.match(r.stderr, message);
    t.equal(r.stdout, '', 'nothing started');
  }
  const help = run('--help');
  t.equal(help.status, 0);
  t.match(help.stdout, /^Usage: npm run test:vm -- --cgroup v2\|v1/);
  t.match(help.stdout, 'test/daemon.test.ts', 'names the default files');
});
