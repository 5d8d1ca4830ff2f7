// The renderer module as the daemon loads it (src/renderers/index.ts): which files and mirrors it serves,
// the contract it declares, and that every file renders text for every caller of every fixture tree, the
// first time and again from the state the previous render kept. Each renderer's exact output is tested in
// renderer-cpu.test.ts, renderer-files.test.ts and meminfo.test.ts.

import t from 'tap';
import { CONTRACT_VERSION, MIN_CONTRACT_VERSION, rendererModuleSchema } from '../src/contract.js';
import * as module from '../src/renderers/index.js';
import { fx, OPTS, CFS, renderWithState, TREES } from './helpers/fixture-trees.js';

t.test('the module: contract, files, mirrors', async (t) => {
  t.equal(module.contract, CONTRACT_VERSION, 'built against the daemon\'s contract');
  t.ok(module.contract >= MIN_CONTRACT_VERSION);
  t.ok(rendererModuleSchema.safeParse(module).success, 'passes the loader\'s schema');
  t.same(
    module.files.map((f) => f.path),
    [
      'proc/meminfo',
      'proc/cpuinfo',
      'proc/stat',
      'proc/uptime',
      'proc/swaps',
      'proc/loadavg',
      'proc/diskstats',
      'proc/slabinfo',
      'proc/pressure/cpu',
      'proc/pressure/io',
      'proc/pressure/memory',
      'sys/devices/system/cpu/online',
      'sys/devices/system/cpu/present',
      'sys/devices/system/cpu/possible',
    ],
    'the files LXCFS serves, plus present and possible',
  );
  for (const f of module.files) t.equal(f.hostPath, `/${f.path}`, `${f.path} stands for the host's ${f.hostPath}`);
  t.same(module.mirrors.map((m) => [m.path, m.hostPath, typeof m.hide?.render]), [['sys/devices/system/cpu', '/sys/devices/system/cpu', 'function']], 'the cpu directory, filtered per caller');
});

t.test('every file renders text for every caller, first and again from its kept state', async (t) => {
  // 100 the daemon (a host caller), 1 the host's init, 201/202 container c1, 300 container c2.
  for (const tree of TREES) {
    for (const caller of [100, 1, 201, 202, 300]) {
      for (const options of [OPTS, CFS]) {
        for (const file of module.files) {
          const first = renderWithState(fx(tree), caller, file, options);
          t.type(first.text, 'string');
          const again = renderWithState(fx(tree), caller, file, options, first.state);
          // Nothing moved between the two renders (a fixture), so the second render is the first one.
          t.equal(again.text, first.text, `${tree} caller ${caller} ${file.path}${options.cfs ? ' --enable-cfs' : ''}: the same text from its state`);
        }
      }
    }
  }
});
