// The I/O side: reads /proc and cgroup files below configurable roots (so tests can point it at fixture trees).
// Synchronous on purpose: every call is a handful of small pseudo-file reads on the daemon's request path.
// Nothing here throws for a missing file, pid or controller: those come back as undefined.

import { closeSync, constants, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { detectLayout, type CgroupLayout, type Hierarchy } from './layout.js';
import {
  parseCount,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parseProcStat,
  parseProcStatus,
  type ProcStat,
  type ProcStatus,
} from './parse.js';

/**
 * Where file contents come from, when not from a plain open/read/close: `keep` marks a file worth keeping
 * open between reads (a cgroup file, an init's /proc/<pid>/stat); the daemon's implementation keeps
 * descriptors and re-reads them with pread from offset 0.
 */
export interface FileSource {
  read(path: string, keep: boolean): string | undefined;
}

export interface ReaderOptions {
  /** file contents (default: open, read to EOF, close for every read) */
  files?: FileSource;
  /** default '/proc' */
  procRoot?: string;
  /** prefix joined before every mount point from mountinfo when reading cgroup files; default '' */
  fsRoot?: string;
  /** mountinfo text; default: read `${procRoot}/self/mountinfo` */
  mountinfo?: string;
}

export interface PidCgroups {
  /** controller (and "name=...") -> cgroup path as /proc/<pid>/cgroup shows it */
  v1: Map<string, string>;
  /** the "0::" path, null when the process has no v2 line */
  unified: string | null;
}

export interface CgroupDir {
  /** the controller asked for, or 'unified' from unifiedDirOf */
  controller: string;
  version: 1 | 2;
  /** the cgroup path, e.g. /lxc/c1 */
  cgroup: string;
  /** absolute path to read this cgroup's files from */
  dir: string;
  hierarchy: Hierarchy;
}

/** One cgroup directory's raw values; undefined = file missing, unreadable or garbage. */
export interface MemoryReading {
  version: 1 | 2;
  /** v1 memory.limit_in_bytes, v2 memory.max (Infinity = unlimited) */
  limit?: number;
  /** v1 memory.usage_in_bytes, v2 memory.current */
  usage?: number;
  /** v1 memory.memsw.limit_in_bytes (RAM+swap!), v2 memory.swap.max (swap only) */
  swapLimit?: number;
  /** v1 memory.memsw.usage_in_bytes (RAM+swap!), v2 memory.swap.current */
  swapUsage?: number;
  /** v1 memory.swappiness (v2 has none) */
  swappiness?: number;
  stat?: Map<string, number>;
  /** true when limit and swapLimit are already the tightest over the cgroup and its ancestors (v1 with
   * `{ effectiveLimits: true }`: memory.stat's hierarchical_memory_limit / hierarchical_memsw_limit) */
  effectiveLimits?: boolean;
}

function stripTrailingSlashes(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

function parentCgroup(cgroup: string): string {
  const slash = cgroup.lastIndexOf('/');
  return slash <= 0 ? '/' : cgroup.slice(0, slash);
}

export class CgroupReader {
  readonly layout: CgroupLayout;
  readonly procRoot: string;
  readonly fsRoot: string;
  private unifiedControllers: Set<string> | undefined;
  /** one buffer reused by every read (grows to the largest file seen): no allocation per file */
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private readonly files: FileSource | undefined;

  constructor(opts: ReaderOptions = {}) {
    this.files = opts.files;
    this.procRoot = stripTrailingSlashes(opts.procRoot ?? '/proc');
    this.fsRoot = opts.fsRoot === undefined || opts.fsRoot === '/' ? '' : stripTrailingSlashes(opts.fsRoot);
    const mountinfo = opts.mountinfo ?? this.readFile(`${this.procRoot}/self/mountinfo`) ?? '';
    this.layout = detectLayout(parseMountinfo(mountinfo));
  }

  /**
   * Whole text of a file, undefined when it cannot be opened or read. open + read until EOF + close into
   * a reused buffer: pseudo-files report size 0, so readFileSync's fstat buys nothing, and its option
   * parsing and per-call buffer cost ~2 µs a file on the request path (8 files per meminfo).
   */
  readFile(path: string): string | undefined {
    return this.files ? this.files.read(path, false) : this.readDirect(path);
  }

  /** Like readFile, for a file read again and again (a cgroup file, an init's stat): the FileSource may keep it open. */
  readKept(path: string): string | undefined {
    return this.files ? this.files.read(path, true) : this.readDirect(path);
  }

  private readDirect(path: string): string | undefined {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY); // libuv adds O_CLOEXEC
    } catch {
      return undefined;
    }
    try {
      let length = 0;
      for (;;) {
        if (length === this.buffer.length) {
          const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
          this.buffer.copy(bigger, 0, 0, length);
          this.buffer = bigger;
        }
        const n = readSync(fd, this.buffer, length, this.buffer.length - length, null);
        if (n === 0) break;
        length += n;
      }
      return this.buffer.toString('utf8', 0, length);
    } catch {
      return undefined; // EISDIR, or a cgroup removed mid-read (ENODEV)
    } finally {
      closeSync(fd);
    }
  }

  /** `keep`: the pid is read again and again (a container's init): the FileSource may keep its file open. */
  cgroupsOf(pid: number, keep = false): PidCgroups | undefined {
    const text = keep ? this.readKept(`${this.procRoot}/${pid}/cgroup`) : this.readFile(`${this.procRoot}/${pid}/cgroup`);
    if (text === undefined) return undefined;
    const v1 = new Map<string, string>();
    let unified: string | null = null;
    for (const entry of parseProcCgroup(text)) {
      if (entry.hierarchyId === 0 && entry.controllers.length === 0) unified ??= entry.path;
      else for (const controller of entry.controllers) v1.set(controller, entry.path);
    }
    return { v1, unified };
  }

  dirOf(cgroups: PidCgroups, controller: string): CgroupDir | undefined {
    const hierarchy = this.layout.v1.get(controller);
    if (hierarchy) {
      const cgroup = cgroups.v1.get(controller);
      return cgroup === undefined ? undefined : this.resolve(hierarchy, controller, cgroup);
    }
    const unified = this.layout.unified;
    if (!unified || cgroups.unified === null || !this.unifiedControllerSet().has(controller)) return undefined;
    return this.resolve(unified, controller, cgroups.unified);
  }

  unifiedDirOf(cgroups: PidCgroups): CgroupDir | undefined {
    const unified = this.layout.unified;
    if (!unified || cgroups.unified === null) return undefined;
    return this.resolve(unified, 'unified', cgroups.unified);
  }

  ancestorsOf(dir: CgroupDir): CgroupDir[] {
    const chain: CgroupDir[] = [dir];
    const root = dir.hierarchy.root;
    let cgroup = dir.cgroup;
    while (cgroup !== root && cgroup !== '/') {
      cgroup = parentCgroup(cgroup);
      const ancestor = this.resolve(dir.hierarchy, dir.controller, cgroup);
      if (!ancestor) break;
      chain.push(ancestor);
    }
    return chain;
  }

  /**
   * A memory cgroup's values. With `effectiveLimits` on v1, the limits come from memory.stat's
   * hierarchical_* lines (the kernel's min over the cgroup and its ancestors) and the two limit files are
   * not read at all: callers that want the effective limit need no ancestor walk.
   */
  readMemory(dir: CgroupDir, options: { effectiveLimits?: boolean } = {}): MemoryReading {
    const read = (name: string) => this.readKept(`${dir.dir}/${name}`);
    const reading: MemoryReading = { version: dir.version };
    const statText = read('memory.stat');
    if (statText !== undefined) reading.stat = parseFlatKeyed(statText);
    const assign = (key: 'limit' | 'usage' | 'swapLimit' | 'swapUsage' | 'swappiness', value: number | undefined) => {
      if (value !== undefined) reading[key] = value;
    };
    const limitOf = (name: string) => {
      const text = read(name);
      return text === undefined ? undefined : parseLimit(text);
    };
    const countOf = (name: string) => {
      const text = read(name);
      return text === undefined ? undefined : parseCount(text);
    };
    if (dir.version === 1) {
      // v1 prints "no limit" as PAGE_COUNTER_MAX pages in bytes, 2^63 rounded down to a page.
      const fromStat = (key: string) => {
        const v = options.effectiveLimits ? reading.stat?.get(key) : undefined;
        return v === undefined || !Number.isFinite(v) || v < 0 ? undefined : v >= 2 ** 62 ? Infinity : v;
      };
      const effective = fromStat('hierarchical_memory_limit');
      if (effective !== undefined) reading.effectiveLimits = true;
      assign('limit', effective ?? limitOf('memory.limit_in_bytes'));
      assign('usage', countOf('memory.usage_in_bytes'));
      // memsw files exist only with swap accounting on (CONFIG_MEMCG_SWAP and no swapaccount=0); so does
      // hierarchical_memsw_limit.
      assign('swapLimit', effective === undefined ? limitOf('memory.memsw.limit_in_bytes') : fromStat('hierarchical_memsw_limit'));
      assign('swapUsage', countOf('memory.memsw.usage_in_bytes'));
      assign('swappiness', countOf('memory.swappiness'));
    } else {
      // The v2 root cgroup has no memory.max/current/swap.* (CFTYPE_NOT_ON_ROOT): those stay undefined.
      assign('limit', limitOf('memory.max'));
      assign('usage', countOf('memory.current'));
      assign('swapLimit', limitOf('memory.swap.max'));
      assign('swapUsage', countOf('memory.swap.current'));
    }
    return reading;
  }

  readProcStatus(pid: number): ProcStatus | undefined {
    const text = this.readFile(`${this.procRoot}/${pid}/status`);
    return text === undefined ? undefined : parseProcStatus(text);
  }

  readProcStat(pid: number): ProcStat | undefined {
    const text = this.readFile(`${this.procRoot}/${pid}/stat`);
    return text === undefined ? undefined : parseProcStat(text);
  }

  pidNamespaceOf(pid: number): number | undefined {
    let link: string;
    try {
      link = readlinkSync(`${this.procRoot}/${pid}/ns/pid`);
    } catch {
      return undefined;
    }
    const match = /^pid:\[(\d+)\]$/.exec(link);
    return match ? Number(match[1]) : undefined;
  }

  listPids(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.procRoot);
    } catch {
      return [];
    }
    return names.filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
  }

  /** Controllers the unified hierarchy offers (its top cgroup.controllers); read once. */
  private unifiedControllerSet(): Set<string> {
    if (this.unifiedControllers === undefined) {
      const unified = this.layout.unified;
      const text = unified ? this.readFile(`${this.fsRoot}${unified.mountPoint}/cgroup.controllers`) : undefined;
      this.unifiedControllers = new Set((text ?? '').split(/\s+/).filter((c) => c !== ''));
    }
    return this.unifiedControllers;
  }

  private resolve(hierarchy: Hierarchy, controller: string, cgroup: string): CgroupDir | undefined {
    if (!cgroup.startsWith('/')) return undefined;
    const root = hierarchy.root;
    let relative: string;
    if (root === '/') relative = cgroup;
    else if (cgroup === root) relative = '/';
    else if (cgroup.startsWith(`${root}/`)) relative = cgroup.slice(root.length);
    else return undefined; // the cgroup lies outside what this mount shows
    // Inside a cgroup namespace, cgroups outside the namespace root are shown as "/../..": not reachable here.
    if (relative.split('/').includes('..')) return undefined;
    const mountPoint = hierarchy.mountPoint === '/' ? '' : hierarchy.mountPoint;
    const tail = relative === '/' ? '' : stripTrailingSlashes(relative);
    return { controller, version: hierarchy.version, cgroup, dir: `${this.fsRoot}${mountPoint}${tail}` || '/', hierarchy };
  }
}
