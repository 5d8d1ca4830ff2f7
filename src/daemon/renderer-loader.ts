// Loads the renderer module (everything that knows /proc semantics) from disk. The daemon reaches it only
// through here, so it can be swapped without unmounting (SIGUSR1, a later step).

import { z } from 'zod';
import type { RendererModule } from '../context/render-service.js';

export const DEFAULT_RENDERERS_URL = new URL('../renderers/index.js', import.meta.url);

// zod 4's z.function() is no longer a schema; a function field is checked with z.custom.
const fn = z.custom<(...args: unknown[]) => unknown>((v) => typeof v === 'function', 'must be a function');

const moduleShape = z.object({
  version: z.string(),
  files: z
    .array(
      z.object({
        path: z.string().regex(/^[a-z0-9_]+(\/[a-z0-9_.]+)+$/, 'a file path is relative, like proc/meminfo'),
        collect: fn,
        render: fn,
        hostPath: z.string().startsWith('/'),
        mode: z.number().int().min(0).max(0o777).optional(),
      }),
    )
    .min(1),
  mirrors: z.array(z.object({ path: z.string().min(1), hostPath: z.string().startsWith('/') })).optional(),
});

export type Loaded = { ok: true; module: RendererModule } | { ok: false; message: string };

export async function loadRenderers(url: URL = DEFAULT_RENDERERS_URL): Promise<Loaded> {
  let imported: unknown;
  try {
    imported = await import(url.href);
  } catch (err) {
    return { ok: false, message: `cannot import renderers from ${url.pathname}: ${(err as Error).message}` };
  }
  const shape = moduleShape.safeParse(imported);
  if (!shape.success) {
    return { ok: false, message: `renderers at ${url.pathname} have the wrong shape: ${shape.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  }
  return { ok: true, module: imported as RendererModule };
}
