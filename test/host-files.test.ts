// Host files shared between renders for one USER_HZ tick (src/context/host-files.ts), with an injected clock:
// what is served again, for how long, what is never shared, and, through the renderers' own sources on a
// fixture tree, that two containers' renders in one tick read the host's /proc/stat once and a render a
// tick later sees the host's new figures.

import t from 'tap';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { CgroupReader, type FileSource } from 'node-cgroups-parser';
import { ContainerResolver } from '../src/context/containers.js';
import { HostFiles } from '../src/context/host-files.js';
import { MS_PER_TICK } from '../src/kernel.js';
import { sourcesFor } from '../src/context/sources.js';
import { files as rendererFiles } from '../src/renderers/index.js';
import { outputText } from '../src/contract.js';
import { fx, OPTS, variant } from './helpers/fixture-trees.js';

t.test('one read per host file per tick, a new read after it', async (t) => {
  t.equal(MS_PER_TICK, 10, 'one tick of USER_HZ = 100');
  let now = 1000;
  const files = new HostFiles({ now: () => now });
  let reads = 0;
  const read = () => `text ${++reads}`;
  t.equal(files.get('/proc/stat', read), 'text 1');
  now += MS_PER_TICK - 0.5;
  t.equal(files.get('/proc/stat', read), 'text 1', 'within the tick: served again');
  t.equal(files.get('/proc/meminfo', read), 'text 2', 'another file is its own entry');
  now += 0.5;
  t.equal(files.get('/proc/stat', read), 'text 3', 'a tick after the read: read again');
  t.equal(reads, 3);
  t.equal(files.size, 2);
});

t.test('never shared: per-process files, failed reads, a clock that went back', async (t) => {
  let now = 0;
  const files = new HostFiles({ now: () => now });
  let reads = 0;
  const read = () => `r${++reads}`;
  for (const path of ['/proc/123/stat', '/proc/123/task/123/stat', '/proc/self/mountinfo', '/proc/thread-self/stat']) {
    const before = reads;
    files.get(path, read);
    files.get(path, read);
    t.equal(reads, before + 2, `${path} is read every time`);
  }
  t.equal(files.size, 0, 'and never kept');
  let missing = 0;
  t.equal(files.get('/proc/pressure/cpu', () => (missing++, undefined)), undefined);
  t.equal(files.get('/proc/pressure/cpu', () => (missing++, undefined)), undefined);
  t.equal(missing, 2, 'a failed read is tried again at the next render');
  files.get('/proc/uptime', read);
  now -= 1;
  const again = reads;
  files.get('/proc/uptime', read);
  t.equal(reads, again + 1, 'a clock earlier than the read (cannot happen with performance.now) reads again');
});

t.test('two containers in one tick: host /proc/stat read once; a tick later, the host\'s new figures', async (t) => {
  const statFile = rendererFiles.find((f) => f.path === 'proc/stat')!;
  const root = variant(t, 'v2', { 'proc/stat': readFileSync(join(fx('v2'), 'proc/stat'), 'utf8') }); // a copy this test may change
  const hostStat = join(root, 'proc/stat');
  const plain = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root });
  const reads = new Map<string, number>();
  const counting: FileSource = {
    read(path) {
      reads.set(path, (reads.get(path) ?? 0) + 1);
      return plain.readFile(path);
    },
  };
  const reader = new CgroupReader({ procRoot: join(root, 'proc'), fsRoot: root, files: counting });
  const resolver = new ContainerResolver(reader, 100);
  let now = 0;
  const hostFiles = new HostFiles({ now: () => now });
  const renderFor = (pid: number) => {
    const resolved = resolver.resolve(pid);
    if (!resolved.ok) throw new Error(resolved.reason);
    const sources = sourcesFor(reader, resolved.container, { hostFiles });
    return outputText(statFile.render(statFile.collect(sources, OPTS), OPTS))!;
  };
  const ctxt = (text: string) => /^ctxt (\d+)$/m.exec(text)?.[1];
  const first = renderFor(202);
  const other = renderFor(300);
  t.equal(reads.get(hostStat), 1, 'the second container\'s render shared the first one\'s host /proc/stat');
  t.equal(ctxt(first), ctxt(other));
  const original = ctxt(first);
  t.ok(original, 'the host line is passed through');
  writeFileSync(hostStat, plain.readFile(hostStat)!.replace(/^ctxt \d+$/m, 'ctxt 999999999'));
  now += MS_PER_TICK / 2;
  t.equal(ctxt(renderFor(202)), original, 'half a tick later: the shared copy');
  now += MS_PER_TICK / 2;
  t.equal(ctxt(renderFor(202)), '999999999', 'a tick after the read: the host file is read again');
  t.equal(reads.get(hostStat), 2);
});
