// The daemon's per-container state store (src/context/container-state.ts), with an injected clock and
// cgroup existence: what a new container's first entry sweeps out, how often, and its bound.

import t from 'tap';
import { ContainerStates } from '../src/context/container-state.js';

t.test('entries of gone cgroups are swept when a new container arrives, at most once a second', async (t) => {
  let now = 0;
  const live = new Set(['/cg/a', '/cg/b']);
  const states = new ContainerStates({ now: () => now, exists: (dir) => live.has(dir) });
  states.set('/cg/a', '/cg/a', 'x', 1);
  states.set('/cg/a', '/cg/a', 'y', 2);
  states.set('/cg/b\n/cg/cpuset/b', '/cg/b', 'x', 3);
  t.equal(states.size, 2);
  t.same([states.get('/cg/a', 'x'), states.get('/cg/a', 'y'), states.get('/cg/b\n/cg/cpuset/b', 'x'), states.get('/cg/c', 'x')], [1, 2, 3, undefined]);
  live.delete('/cg/a');
  now += 500;
  live.add('/cg/c');
  states.set('/cg/c', '/cg/c', 'x', 4);
  t.equal(states.size, 3, 'within a second of the last sweep: not swept yet');
  now += 1000;
  live.add('/cg/d');
  states.set('/cg/d', '/cg/d', 'x', 5);
  t.equal(states.size, 3, 'a second later the next new container sweeps /cg/a out');
  t.equal(states.get('/cg/a', 'x'), undefined);
  states.set('/cg/b\n/cg/cpuset/b', '/cg/b', 'x', 6);
  t.equal(states.get('/cg/b\n/cg/cpuset/b', 'x'), 6, 'an existing container updates in place');
  live.clear();
  t.equal(states.sweep(), 3, 'an explicit sweep (SIGUSR1) drops all that are gone');
  t.equal(states.size, 0);
});

t.test('bounded: past maxEntries the oldest containers go first', async (t) => {
  const states = new ContainerStates({ exists: () => true, maxEntries: 3 });
  for (const c of ['a', 'b', 'c', 'd']) states.set(c, c, 'x', c);
  t.equal(states.size, 3);
  t.same(['a', 'b', 'c', 'd'].map((c) => states.get(c, 'x')), [undefined, 'b', 'c', 'd']);
});
