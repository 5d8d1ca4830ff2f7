// The benchmark harness runs end to end in quick mode (tiny counts): exit 0, the table, a JSON with every
// metric for lxcfs-ts and no failed read. Passes with or without Debian's lxcfs installed (its columns are
// then empty). Nothing timed is asserted: the numbers of a quick run mean nothing.

import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cleanup, ROOT, scratchDir } from './helpers/daemon.js';

interface Row {
  metric: string;
  file: string;
  unit: string;
  'lxcfs-ts'?: number;
  'lxcfs-ts cached'?: number;
  LXCFS?: number;
  host?: number;
}

const FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg'];

t.test('npm run bench --help, and an unknown option', async (t) => {
  const help = spawnSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--help'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /^usage: npm run bench -- \[options\]/, 'usage first');
  for (const option of ['--only', '--files', 'BENCH_RESULTS', 'BENCH_QUICK']) t.match(help.stdout, option, `documents ${option}`);
  const bad = spawnSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--bogus'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(bad.status, 2, 'exit 2');
  t.match(bad.stderr, /^bench: .*--bogus.*\(--help\)$/m, 'one line naming the option, no stack trace');
  t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

t.test('bench/cpu-profile-summary.mjs: self and inclusive shares of the busy time', async (t) => {
  const dir = scratchDir('lxcfs-ts-cpuprof-test-');
  t.teardown(() => cleanup(dir));
  const frame = (functionName: string, lineNumber: number) => ({ functionName, url: 'file:///x/dist/src/a.js', lineNumber, columnNumber: 0, scriptId: '1' });
  // root -> outer -> inner; samples: inner 3 ms, outer 1 ms, idle 6 ms.
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', -1), children: [2, 4] },
      { id: 2, callFrame: frame('outer', 9), children: [3] },
      { id: 3, callFrame: frame('inner', 19) },
      { id: 4, callFrame: frame('(idle)', -1) },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [3, 3, 3, 2, 4, 4, 4, 4, 4, 4, 3],
    timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };
  const file = join(dir, 'p.cpuprofile');
  writeFileSync(file, JSON.stringify(profile));
  const r = spawnSync(process.execPath, [join(ROOT, 'bench/cpu-profile-summary.mjs'), file], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^profile 0\.0 s, busy 0\.00 s$/m);
  t.match(r.stdout, /--- self\n\s+75\.0 %\s+3 ms {2}inner dist\/src\/a\.js:20\n\s+25\.0 %\s+1 ms {2}outer dist\/src\/a\.js:10\n/, 'self: inner 3 of 4 busy ms, outer 1');
  const inclusive = r.stdout.split('--- inclusive\n')[1] ?? '';
  t.match(inclusive, /^\s*100\.0 %\s+4 ms {2}outer dist\/src\/a\.js:10$/m, 'inclusive: outer holds inner');
  t.match(inclusive, /^\s*75\.0 %\s+3 ms {2}inner dist\/src\/a\.js:20$/m);
  const usage = spawnSync(process.execPath, [join(ROOT, 'bench/cpu-profile-summary.mjs')], { encoding: 'utf8', timeout: 30_000 });
  t.equal(usage.status, 2, 'no file: usage, exit 2');
});

t.test('npm run bench, quick mode', async (t) => {
  const dir = scratchDir('lxcfs-ts-bench-test-');
  t.teardown(() => cleanup(dir));
  const out = join(dir, 'results.json');
  const r = spawnSync(process.execPath, ['--expose-gc', join(ROOT, 'bench/run.mjs')], {
    env: { ...process.env, BENCH_QUICK: '1', BENCH_RESULTS: out },
    encoding: 'utf8',
    timeout: 240_000,
  });
  t.equal(r.status, 0, `exit 0\n${r.stderr}`);
  t.match(r.stdout, /^metric\s+file\s+unit\s+lxcfs-ts\s+lxcfs-ts cached\s+LXCFS\s+host\s+lxcfs-ts\/LXCFS\s+cached\/LXCFS\s+lxcfs-ts\/host$/m, 'the table header');
  t.match(r.stdout, /^read failures: lxcfs-ts 0, lxcfs-ts cached 0\b/m, 'failures line');

  const results = JSON.parse(readFileSync(out, 'utf8')) as { quick: boolean; lxcfs: { measured: boolean } | null; readFailures: Record<string, number>; rows: Row[] };
  t.equal(results.quick, true);
  t.same(Object.values(results.readFailures).filter((n) => n !== 0), [], 'no failed read for any target');

  const find = (prefix: string, file: string) => results.rows.filter((row) => row.metric.startsWith(prefix) && row.file === file);
  const expectOne = (prefix: string, file: string, positive: boolean) => {
    const rows = find(prefix, file);
    t.equal(rows.length, 1, `one row: ${prefix} ${file}`);
    const v = rows[0]?.['lxcfs-ts'];
    t.equal(typeof v, 'number', `${prefix} ${file}: lxcfs-ts measured`);
    t.equal(typeof rows[0]?.['lxcfs-ts cached'], 'number', `${prefix} ${file}: lxcfs-ts with the render cache measured`);
    // CPU time is sampled in 10 ms clock ticks: a quick run may honestly measure 0 of it, so only the
    // metrics that cannot be 0 are checked for a value.
    if (positive) t.ok((v as number) > 0, `${prefix} ${file}: lxcfs-ts ${v} > 0`);
    return rows[0]!;
  };
  for (const file of FILES) {
    for (const p of ['median', 'p90', 'p99']) {
      const row = expectOne(`latency ${p}`, file, true);
      t.ok((row.host as number) > 0, `latency ${p} ${file}: host measured`);
    }
    expectOne('cold latency p99 (first pass after start)', file, true);
    expectOne('daemon CPU per read', file, false);
    expectOne('throughput, 2 readers', file, true);
    expectOne('throughput, 8 readers', file, true);
  }
  expectOne('first read in a fresh pid ns', 'meminfo', true);
  expectOne('daemon RSS before', 'meminfo', true);
  expectOne('daemon RSS after', 'meminfo', true);
  expectOne('daemon CPU over 2 s idle, before any loadavg read', '-', false);
  expectOne('daemon CPU over 2 s idle, container tracked for loadavg', '-', false);

  const lxcfsColumn = results.rows.filter((row) => row.LXCFS !== undefined);
  if (results.lxcfs?.measured) t.ok(lxcfsColumn.length > 0, 'LXCFS installed: its column is filled');
  else t.equal(lxcfsColumn.length, 0, 'LXCFS absent: its column is empty');
});
