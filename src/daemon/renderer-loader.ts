// Loads the renderer bundle (everything that knows /proc semantics) from disk, at start and on SIGUSR1.
// The daemon reaches renderers only through here, so they can be replaced without unmounting.
//
// The bundle is one CommonJS file (dist/renderers.cjs, built by esbuild from src/renderers) compiled with
// vm.compileFunction: no module cache holds old copies, so a replaced bundle is garbage once no open file
// or request references it.
//
// It runs in a vm context of its own whose global holds only JavaScript's built-ins: no `process`, no
// `require` that works, no Node globals (Buffer, timers, process; V8 itself provides a console), and code generation from strings
// (eval, new Function) is off inside it. So a renderer cannot read a file, start a timer or load a module
// by mistake: its only way to the machine is the Sources object it is handed. This is a guard against
// accidents, not a security boundary: vm is not one, and objects handed in from the daemon's realm lead
// back to it for code that tries. Re-importing an ES module under a fresh query string instead keeps every copy
// alive (~228 KiB per reload of a 61 KiB module, measured on Node 20). A bundle whose sha256 did not change
// is not compiled again.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFunction, createContext, runInContext } from 'node:vm';
import { rendererModuleSchema, type RendererModule } from '../contract.js';

/** LXCFS_TS_RENDERERS overrides the bundle path (tests, packagers). */
export const DEFAULT_BUNDLE = process.env.LXCFS_TS_RENDERERS || fileURLToPath(new URL('../../renderers.cjs', import.meta.url));

export interface LoadedRenderers {
  module: RendererModule;
  path: string;
  hash: string;
  loadedAt: Date;
}

export type LoadResult =
  | { ok: true; changed: boolean; loaded: LoadedRenderers }
  | { ok: false; message: string };

/** A check run on a candidate before it replaces the current renderers; returns an error message or undefined. */
export type SmokeTest = (module: RendererModule) => string | undefined;

/** The CommonJS scaffolding, made inside the sandbox so nothing of the daemon's realm is handed in. */
const SCAFFOLD = `({
  module: { exports: {} },
  require(id) {
    throw new Error('renderers may not require modules (asked for ' + id + '): they get their inputs from Sources');
  },
})`;

/**
 * The context's own built-ins (Math, Number, Map, parseInt, undefined…), handed to the bundle as parameters.
 * A global name read inside a vm context goes through Node's contextify property interceptor on every
 * access (ContextifyContext::PropertyGetterCallback and V8's interceptor lookup: a few percent of the main
 * thread in a profile of the fleet bench); a parameter is a local. Same objects, same realm: nothing of the
 * daemon's is handed in. `eval` and `arguments` cannot be parameter names (eval is off in the context anyway).
 * Two consequences for bundle code: a built-in replaced on `globalThis` later is not seen (renderers must
 * not do that anyway), and a top-level `let`, `const` or `class` named like a built-in would not compile
 * (esbuild's CommonJS output declares its top level with `var`, which may repeat a parameter's name).
 */
const BUILTINS = `(() => {
  const names = Object.getOwnPropertyNames(globalThis).filter((n) => /^[A-Za-z_$][\\w$]*$/.test(n) && n !== 'eval' && n !== 'arguments');
  return { names, values: names.map((n) => globalThis[n]) };
})()`;

/** A fresh context with nothing but JavaScript's built-ins. */
function sandbox() {
  return createContext(Object.create(null), { name: 'lxcfs-ts renderers', codeGeneration: { strings: false, wasm: false } });
}

export class RendererLoader {
  private loaded: LoadedRenderers | undefined;

  constructor(readonly path: string = DEFAULT_BUNDLE) {}

  get current(): LoadedRenderers | undefined {
    return this.loaded;
  }

  /** Load the bundle if its content changed; the current renderers stay if anything is wrong with it. */
  load(smoke?: SmokeTest): LoadResult {
    let code: string;
    try {
      code = readFileSync(this.path, 'utf8');
    } catch (err) {
      return { ok: false, message: `cannot read renderers ${this.path}: ${(err as Error).message}` };
    }
    const hash = createHash('sha256').update(code).digest('hex');
    if (this.loaded?.hash === hash) return { ok: true, changed: false, loaded: this.loaded };

    let exported: unknown;
    try {
      const context = sandbox();
      const { module, require } = runInContext(SCAFFOLD, context) as { module: { exports: unknown }; require: unknown };
      const commonjs = ['exports', 'require', 'module', '__filename', '__dirname'];
      const builtins = runInContext(BUILTINS, context) as { names: string[]; values: unknown[] };
      const names = builtins.names.filter((n) => !commonjs.includes(n));
      const values = builtins.values.filter((_, i) => !commonjs.includes(builtins.names[i]!));
      const body = compileFunction(code, [...commonjs, ...names], { filename: this.path, parsingContext: context });
      body(module.exports, require, module, this.path, dirname(this.path), ...values);
      exported = module.exports;
    } catch (err) {
      return { ok: false, message: `renderers ${this.path} failed to load: ${(err as Error)?.stack ?? String(err)}` };
    }
    const shape = rendererModuleSchema.safeParse(exported);
    if (!shape.success) {
      return { ok: false, message: `renderers ${this.path} have the wrong shape: ${shape.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
    }
    const module = exported as RendererModule;
    const failure = smoke?.(module);
    if (failure) return { ok: false, message: `renderers ${this.path} failed the smoke render: ${failure}` };
    this.loaded = { module, path: this.path, hash, loadedAt: new Date() };
    return { ok: true, changed: true, loaded: this.loaded };
  }
}
