// Turns "caller C opened path P" into file content: resolve C's container, let the loaded renderer module
// collect and render, keep the state a renderer hands back for the container's next render. Errors come
// back as values with a reason for the log; nothing here throws.

import type { CgroupReader } from 'node-cgroups-parser';
import { outputText, type Mirror, type RendererModule, type RenderOptions, type RenderOutput, type Sources, type VirtualFile } from '../contract.js';
import { ContainerStates } from './container-state.js';
import type { ContainerResolver } from './containers.js';
import type { LoadavgSampler } from './loadavg-sampler.js';
import { smokeSources } from './smoke.js';
import { HostFiles } from './host-files.js';
import { hostPath, sourcesFor, stateKeyOf, type Services } from './sources.js';
import { ThreadCensus } from './thread-census.js';

export interface Caller {
  /** thread id of the caller, as the kernel reports it to FUSE */
  pid: number;
  uid: number;
  gid: number;
  /** inode of its pid namespace when the binding looked it up already (fuse-native PATCHES.md 1, 20); 0 or
   * absent: unknown */
  pidNs?: number;
}

export type Rendered =
  | { ok: true; content: Buffer; initPid?: number }
  | { ok: false; errno: 'ENOENT' | 'ESRCH' | 'EIO'; reason: string };

/** State a renderer keeps per container is stored under this name plus the file's path. */
const STATE_PREFIX = 'render:';

export class RenderService {
  private byPath = new Map<string, VirtualFile>();
  private module!: RendererModule;
  /** SIGUSR2: serve every file from the host, as LXCFS's "non-virtualization mode" */
  passthrough = false;
  /** per-container state kept across renders and reloads: renderer state, thread censuses, load averages */
  readonly states: ContainerStates;
  /** thread-state counts for /proc/stat, kept across renders and reloads */
  readonly census: ThreadCensus;
  /** host files shared between renders for one USER_HZ tick (nothing per container) */
  readonly hostFiles = new HostFiles();

  constructor(
    private readonly reader: CgroupReader,
    private readonly resolver: ContainerResolver,
    private readonly options: RenderOptions,
    module: RendererModule,
    private readonly sampler?: LoadavgSampler,
  ) {
    this.states = sampler?.states ?? new ContainerStates();
    this.census = new ThreadCensus(reader, { states: this.states });
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
   * The smoke test a reload must pass: render every file of a candidate module, and the hidden entries of
   * its mirrors, for the daemon's own process (a host caller) and for a synthetic cgroup v1 and v2
   * container (src/context/smoke.ts), each twice (the second time from the state the first returned),
   * without switching to the module and without keeping any state. Returns the first failure, or undefined.
   */
  check(module: RendererModule, ownPid: number = process.pid): string | undefined {
    const resolved = this.resolver.resolve(ownPid);
    if (!resolved.ok) return `cannot resolve pid ${ownPid} for the smoke render: ${resolved.reason}`;
    const hostFile = (path: string) => this.reader.readFile(hostPath(this.reader, path));
    const worlds: [string, (previous?: unknown) => Sources][] = [
      ['the daemon itself', (previous) => sourcesFor(this.reader, resolved.container, { lastState: () => previous })],
      ['a synthetic cgroup v1 container', (previous) => smokeSources(1, ownPid, hostFile, previous)],
      ['a synthetic cgroup v2 container', (previous) => smokeSources(2, ownPid, hostFile, previous)],
    ];
    for (const [who, sources] of worlds) {
      const failure = checkFor(module, sources, this.options);
      if (failure) return `for ${who}: ${failure}`;
    }
    return undefined;
  }

  /** `path` rendered for `caller`; never throws (what would, e.g. running out of descriptors, is EIO). */
  render(path: string, caller: Caller): Rendered {
    try {
      return this.renderFor(path, caller);
    } catch (err) {
      return { ok: false, errno: 'EIO', reason: `rendering ${path} for ${caller.pid} failed: ${(err as Error)?.message ?? String(err)}` };
    }
  }

  private renderFor(path: string, caller: Caller): Rendered {
    const file = this.byPath.get(path);
    if (!file) return { ok: false, errno: 'ENOENT', reason: `no virtual file ${path}` };
    if (this.passthrough) {
      const text = this.reader.readFile(hostPath(this.reader, file.hostPath));
      return text === undefined ? { ok: false, errno: 'EIO', reason: `host file ${file.hostPath} unreadable` } : { ok: true, content: Buffer.from(text) };
    }
    const resolved = this.resolver.resolve(caller.pid, caller.pidNs);
    if (!resolved.ok) return { ok: false, errno: 'ESRCH', reason: resolved.reason };
    const container = resolved.container;
    const slot = stateKeyOf(this.reader, container);
    const name = STATE_PREFIX + path;
    try {
      const sources = sourcesFor(this.reader, container, this.services(slot ? () => this.states.get(slot.key, name) : undefined));
      const output = file.render(file.collect(sources, this.options), this.options);
      const text = outputText(output);
      if (text === undefined) return { ok: false, errno: 'EIO', reason: `renderer for ${path} returned ${describe(output)}, not text` };
      if (slot && typeof output === 'object') this.states.set(slot.key, slot.dir, name, output.state);
      return { ok: true, content: Buffer.from(text), initPid: container.initPid };
    } catch (err) {
      return { ok: false, errno: 'EIO', reason: `renderer for ${path} failed: ${(err as Error)?.stack ?? String(err)}` };
    }
  }

  /**
   * Names directly inside the mirrored directory `mirrorPath` that `caller` must not see (e.g. the cpuN
   * directories of CPUs outside its view). Empty when nothing is hidden or the caller cannot be resolved.
   */
  hidden(mirrorPath: string, caller: Caller): ReadonlySet<string> {
    const mirror = this.mirrors.find((m) => m.path === mirrorPath);
    if (!mirror?.hide || this.passthrough) return NOTHING;
    const resolved = this.resolver.resolve(caller.pid, caller.pidNs);
    if (!resolved.ok) return NOTHING;
    try {
      const names = mirror.hide.render(mirror.hide.collect(sourcesFor(this.reader, resolved.container, this.services()), this.options), this.options);
      return Array.isArray(names) ? new Set(names.filter((n) => typeof n === 'string')) : NOTHING;
    } catch {
      return NOTHING;
    }
  }

  /** Drop per-container state whose cgroup is gone, and return the sizes of what is kept. */
  prune(): { states: number; loadavgWatched: number } {
    this.states.sweep();
    this.sampler?.prune();
    return { states: this.states.size, loadavgWatched: this.sampler?.size ?? 0 };
  }

  private services(lastState?: () => unknown): Services {
    const services: Services = { census: this.census, hostFiles: this.hostFiles };
    if (this.sampler) services.sampler = this.sampler;
    if (lastState) services.lastState = lastState;
    return services;
  }
}

const NOTHING: ReadonlySet<string> = new Set();

function describe(output: unknown): string {
  return output === null ? 'null' : typeof output;
}

/**
 * Render every file of `module` twice (fresh, then from the state the first render returned) and every
 * mirror filter once, with Sources from `sources`; the first failure, or undefined.
 */
export function checkFor(module: RendererModule, sources: (previous?: unknown) => Sources, options: RenderOptions): string | undefined {
  for (const file of module.files) {
    try {
      const first: RenderOutput = file.render(file.collect(sources(), options), options);
      if (outputText(first) === undefined) return `${file.path}: render returned ${describe(first)}, not text`;
      if (typeof first === 'object') {
        const again: RenderOutput = file.render(file.collect(sources(first.state), options), options);
        if (outputText(again) === undefined) return `${file.path}: render from its own state returned ${describe(again)}, not text`;
      }
    } catch (err) {
      return `${file.path}: ${(err as Error)?.stack ?? String(err)}`;
    }
  }
  for (const mirror of module.mirrors ?? []) {
    if (!mirror.hide) continue;
    try {
      const names = mirror.hide.render(mirror.hide.collect(sources(), options), options);
      if (!Array.isArray(names)) return `${mirror.path}: hide returned ${describe(names)}, not a list`;
    } catch (err) {
      return `${mirror.path} (hide): ${(err as Error)?.stack ?? String(err)}`;
    }
  }
  return undefined;
}
