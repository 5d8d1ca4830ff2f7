// Pure parsers: text in, typed value out. None of them throws; malformed lines are skipped, because the
// files they read are produced by a kernel we do not control (and a process can exit mid-read).

export interface MountInfo {
  mountId: number;
  parentId: number;
  /** field 3, the filesystem's device "major:minor": every mount of one superblock has the same */
  device: string;
  /** the path inside the mounted filesystem that is mounted here (for cgroup fs: the cgroup seen as "/") */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string[];
}

export interface ProcCgroupEntry {
  hierarchyId: number;
  /** [] for the cgroup v2 line ("0::/path"); "name=systemd" for a named v1 hierarchy */
  controllers: string[];
  path: string;
}

export interface ProcStatus {
  name?: string;
  /** the state letter, e.g. "S" (status prints "S (sleeping)") */
  state?: string;
  tgid?: number;
  pid?: number;
  ppid?: number;
  /** the pid in each nested pid namespace, outermost first: [hostPid, ..., pidInOwnNamespace] */
  nspid?: number[];
  uid?: number[];
  gid?: number[];
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** field 22: clock ticks since boot at which the process started */
  startTime: number;
  /** fields 14-17: CPU time of the process in user and kernel mode, and of its waited-for children
   * (cutime, cstime), clock ticks; 0 when the line is cut short */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/** Limits at or above this are "no limit": v1 prints PAGE_COUNTER_MAX * PAGE_SIZE (9223372036854771712 with 4 KiB
 * pages, other values with larger pages), and a double cannot tell those apart from real neighbours anyway. */
const UNLIMITED_THRESHOLD = 2n ** 62n;

export const UNLIMITED: number = Infinity;

/** The most CPUs a kernel can be built with (NR_CPUS max is 8192 today); a list beyond it is corrupt. */
const MAX_CPUS = 65536;

const DECIMAL = /^\d+$/;

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function toInt(text: string | undefined): number | undefined {
  if (text === undefined || !DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function toIntList(text: string): number[] | undefined {
  const parts = text.trim().split(/\s+/);
  const out: number[] = [];
  for (const part of parts) {
    const n = toInt(part);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out.length > 0 ? out : undefined;
}

function lines(text: string): string[] {
  return typeof text === 'string' ? text.split('\n') : [];
}

export function parseMountinfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of lines(text)) {
    const fields = line.trim().split(' ');
    // Optional fields ("shared:12", "master:3", ...) come in any number between field 6 and the lone "-".
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    const mountId = toInt(fields[0]);
    const parentId = toInt(fields[1]);
    if (mountId === undefined || parentId === undefined) continue;
    mounts.push({
      mountId,
      parentId,
      device: fields[2]!,
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[separator + 1]!,
      source: unescapeOctal(fields[separator + 2]!),
      superOptions: fields[separator + 3]!.split(',').filter((o) => o !== ''),
    });
  }
  return mounts;
}

export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const entries: ProcCgroupEntry[] = [];
  for (const line of lines(text)) {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const hierarchyId = toInt(line.slice(0, first));
    // The path is everything after the second colon: cgroup names may themselves contain ':'.
    const path = line.slice(second + 1);
    if (hierarchyId === undefined || path === '') continue;
    const controllers = line.slice(first + 1, second).split(',').filter((c) => c !== '');
    entries.push({ hierarchyId, controllers, path });
  }
  return entries;
}

/**
 * A limit file: memory.max, memory.limit_in_bytes, memory.swap.max, cpu.cfs_quota_us, pids.max...
 * "max" (v2) and "-1" (v1 quotas) mean no limit, as does anything >= 2^62 (the v1 "no limit" sentinel).
 */
export function parseLimit(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const value = text.trim();
  if (value === 'max' || value === '-1') return UNLIMITED;
  if (!DECIMAL.test(value)) return undefined;
  if (value.length >= 19 && BigInt(value) >= UNLIMITED_THRESHOLD) return UNLIMITED;
  return Number(value);
}

/** A counter file (memory.current, memory.usage_in_bytes, cpuacct.usage...): a non-negative integer. */
export function parseCount(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const value = text.trim();
  return DECIMAL.test(value) ? Number(value) : undefined;
}

/** "key value" lines (memory.stat, cpu.stat). Keys are kept exactly; a repeated key keeps its last value. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of lines(text)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 2) continue;
    const [key, value] = fields as [string, string];
    if (!DECIMAL.test(value)) continue;
    out.set(key, Number(value));
  }
  return out;
}

export function parseProcStatus(text: string): ProcStatus {
  const status: ProcStatus = {};
  const value = (line: string, colon: number) => line.slice(colon + 1).replace(/^[\t ]+/, '');
  for (const line of lines(text)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon);
    switch (key) {
      case 'Name':
        status.name = value(line, colon);
        break;
      case 'State': {
        const letter = value(line, colon).trim().split(/\s+/)[0];
        if (letter) status.state = letter;
        break;
      }
      case 'Tgid':
      case 'Pid':
      case 'PPid': {
        const n = toInt(value(line, colon).trim());
        if (n === undefined) break;
        if (key === 'Tgid') status.tgid = n;
        else if (key === 'Pid') status.pid = n;
        else status.ppid = n;
        break;
      }
      case 'NSpid':
      case 'Uid':
      case 'Gid': {
        const list = toIntList(value(line, colon));
        if (list === undefined) break;
        if (key === 'NSpid') status.nspid = list;
        else if (key === 'Uid') status.uid = list;
        else status.gid = list;
        break;
      }
    }
    // The kernel prints NSpid after every field read here (fs/proc/array.c: task_state); the 40-odd lines
    // after it (memory, signals, capabilities) are not worth parsing on a container's first open.
    if (key === 'NSpid' && status.tgid !== undefined && status.ppid !== undefined) break;
  }
  return status;
}

export function parseProcStat(text: string): ProcStat | undefined {
  if (typeof text !== 'string') return undefined;
  // comm is free text (up to 15 bytes) and may contain spaces and ')': the real end is the LAST ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = toInt(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const state = rest[0];
  const ppid = toInt(rest[1]);
  const startTime = toInt(rest[19]);
  if (pid === undefined || state === undefined || state === '' || ppid === undefined || startTime === undefined) return undefined;
  const ticks = (field: number) => toInt(rest[field - 3]) ?? 0;
  return { pid, comm: text.slice(open + 1, close), state, ppid, startTime, utime: ticks(14), stime: ticks(15), cutime: ticks(16), cstime: ticks(17) };
}

/** "0-3,7,9-10" (cpuset.cpus, /sys/devices/system/cpu/online) -> sorted unique ids; [] if any part is garbage. */
export function parseCpuList(text: string): number[] {
  if (typeof text !== 'string') return [];
  const value = text.trim();
  if (value === '') return [];
  const cpus = new Set<number>();
  for (const part of value.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) return [];
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) return [];
    for (let cpu = first; cpu <= Math.min(last, MAX_CPUS - 1); cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The effective limit of a chain of cgroups (own + ancestors): the smallest known one, Infinity if none. */
export function minLimit(readings: Array<number | undefined>): number {
  let min = UNLIMITED;
  for (const value of readings) if (value !== undefined && !Number.isNaN(value) && value < min) min = value;
  return min;
}
