// The renderer bundle's loader on its own (src/daemon/renderer-loader.ts): what a bundle sees of the world.
// Reloads under a live mount, refused bundles and the smoke render are test/reload.test.ts.

import t from 'tap';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RendererLoader } from '../src/daemon/renderer-loader.js';
import { ROOT, scratchDir } from './helpers/daemon.js';

const BUNDLE = join(ROOT, 'dist/renderers.cjs');

/** The built bundle plus `extra`, written to a scratch file; the loader for it. */
function loaderFor(t: { teardown: (fn: () => void) => void }, extra: string): RendererLoader {
  const dir = scratchDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'renderers.cjs');
  writeFileSync(path, `${readFileSync(BUNDLE, 'utf8')}\n;${extra}\n`);
  return new RendererLoader(path);
}

t.test('the bundle reads the built-ins of its own context; nothing of Node', async (t) => {
  // Recorded from inside the bundle: what its global names are bound to.
  const probe = `module.exports.probe = {
    mathIsTheContexts: Math === globalThis.Math,
    literalsShareItsArray: Object.getPrototypeOf([]) === Array.prototype && Object.getPrototypeOf({}) === Object.prototype,
    undefinedIs: typeof undefined,
    mapWorks: new Map([[1, 2]]).get(1),
    processIs: typeof process,
    bufferIs: typeof Buffer,
    setTimeoutIs: typeof setTimeout,
    // Built-ins are bound once, as parameters: replacing one on the global later does not reach the code.
    parseIntIsBound: (() => { const saved = globalThis.parseInt; globalThis.parseInt = () => 'replaced'; try { return parseInt('7'); } finally { globalThis.parseInt = saved; } })(),
  };`;
  const loaded = loaderFor(t, probe).load();
  t.ok(loaded.ok, loaded.ok ? 'loaded' : loaded.message);
  const probed = loaded.ok ? (loaded.loaded.module as unknown as { probe: Record<string, unknown> }).probe : {};
  t.equal(probed.mathIsTheContexts, true, "Math is the context's own");
  t.equal(probed.literalsShareItsArray, true, 'Array and Object are those its literals are made of: one realm');
  t.equal(probed.undefinedIs, 'undefined');
  t.equal(probed.mapWorks, 2);
  t.equal(probed.processIs, 'undefined', 'no process');
  t.equal(probed.bufferIs, 'undefined', 'no Buffer');
  t.equal(probed.setTimeoutIs, 'undefined', 'no timers');
  t.equal(probed.parseIntIsBound, 7, 'built-ins are the bundle\'s locals, bound at load (no interceptor on each read)');
  t.notOk(probed instanceof Object, "its objects are not the daemon realm's");
});

t.test('an unchanged bundle is not compiled again', async (t) => {
  const loader = loaderFor(t, '');
  const first = loader.load();
  const second = loader.load();
  t.ok(first.ok && first.changed, 'first load compiles');
  t.ok(second.ok && !second.changed && second.loaded === (first.ok ? first.loaded : undefined), 'second load: the same renderers');
});
