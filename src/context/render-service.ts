// Turns "caller C opened path P" into file content: resolve C's container, let the loaded renderer module
// collect and render. Errors come back as values with a reason for the log; nothing here throws.

import type { CgroupReader } from 'node-cgroups-parser';
import type { RenderOptions, VirtualFile } from '../renderers/types.js';
import type { ContainerResolver } from './containers.js';
import type { LoadavgSampler } from './loadavg-sampler.js';
import { hostPath, sourcesFor } from './sources.js';
import { ThreadCensus } from './thread-census.js';

export interface Caller {
  /** thread id of the caller, as the kernel reports it to FUSE */
  pid: number;
  uid: number;
  gid: number;
}

export type Rendered =
  | { ok: true; content: Buffer; initPid?: number }
  | { ok: false; errno: 'ENOENT' | 'ESRCH' | 'EIO'; reason: string };

/** A host directory served as is under the mount (e.g. the rest of /sys/devices/system/cpu). */
export interface Mirror {
  path: string;
  hostPath: string;
}

export interface RendererModule {
  version: string;
  files: readonly VirtualFile[];
  mirrors?: readonly Mirror[];
}

export class RenderService {
  private byPath = new Map<string, VirtualFile>();
  private module!: RendererModule;
  /** SIGUSR2: serve every file from the host, as LXCFS's "non-virtualization mode" */
  passthrough = false;
  /** thread-state counts for /proc/stat, kept across renders and reloads */
  readonly census: ThreadCensus;

  constructor(
    private readonly reader: CgroupReader,
    private readonly resolver: ContainerResolver,
    private readonly options: RenderOptions,
    module: RendererModule,
    private readonly sampler?: LoadavgSampler,
  ) {
    this.census = new ThreadCensus(reader);
    this.use(module);
  }

  /** Switch to another renderer module; opens after this call use it. */
  use(module: RendererModule): void {
    this.module = module;
    this.byPath = new Map(module.files.map((f) => [f.path, f]));
  }

  get moduleVersion(): string {
    return this.module.version;
  }

  get files(): readonly VirtualFile[] {
    return this.module.files;
  }

  get mirrors(): readonly Mirror[] {
    return this.module.mirrors ?? [];
  }

  paths(): string[] {
    return [...this.byPath.keys()];
  }

  /**
   * Render every file of a candidate module for one process (the daemon itself) without switching to it:
   * the smoke test a reload must pass. Returns the first failure, or undefined.
   */
  check(module: RendererModule, pid: number): string | undefined {
    const resolved = this.resolver.resolve(pid);
    if (!resolved.ok) return `cannot resolve pid ${pid} for the smoke render: ${resolved.reason}`;
    for (const file of module.files) {
      try {
        const text = file.render(file.collect(sourcesFor(this.reader, resolved.container), this.options), this.options);
        if (typeof text !== 'string') return `${file.path}: render returned ${typeof text}, not text`;
      } catch (err) {
        return `${file.path}: ${(err as Error)?.stack ?? String(err)}`;
      }
    }
    return undefined;
  }

  render(path: string, caller: Caller): Rendered {
    const file = this.byPath.get(path);
    if (!file) return { ok: false, errno: 'ENOENT', reason: `no virtual file ${path}` };
    if (this.passthrough) {
      const text = this.reader.readFile(hostPath(this.reader, file.hostPath));
      return text === undefined ? { ok: false, errno: 'EIO', reason: `host file ${file.hostPath} unreadable` } : { ok: true, content: Buffer.from(text) };
    }
    const resolved = this.resolver.resolve(caller.pid);
    if (!resolved.ok) return { ok: false, errno: 'ESRCH', reason: resolved.reason };
    try {
      const snapshot = file.collect(sourcesFor(this.reader, resolved.container, this.sampler, this.census), this.options);
      const text = file.render(snapshot, this.options);
      if (typeof text !== 'string') return { ok: false, errno: 'EIO', reason: `renderer for ${path} returned ${typeof text}, not text` };
      return { ok: true, content: Buffer.from(text), initPid: resolved.container.initPid };
    } catch (err) {
      return { ok: false, errno: 'EIO', reason: `renderer for ${path} failed: ${(err as Error)?.stack ?? String(err)}` };
    }
  }
}
