// Property-based tests: every parser and every renderer on hostile input (extra fields, missing lines,
// huge numbers, negatives, "max", empty, binary garbage, long lines). Nothing may throw, and output keeps
// its file's shape. FUZZ_RUNS sets the number of cases per property (npm test: 200; npm run soak: 10000).

import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  parseCount,
  parseCpuList,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parseProcStat,
  parseProcStatus,
  detectLayout,
  type MemoryReading,
} from 'node-cgroups-parser';
import { outputText, type LoadAverage, type RenderOptions, type Sources, type ThreadStates } from '../src/contract.js';
import { files, mirrors } from '../src/renderers/index.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
// Templates: this machine's own files, whose numbers the generators replace.
const TEMPLATES = new Map(['meminfo', 'cpuinfo', 'stat', 'diskstats', 'self/stat'].map((name) => [name, readFileSync(`/proc/${name}`, 'utf8')]));
const HOST = (name: string) => TEMPLATES.get(name)!;

// Numbers as the kernel might print them, and as it never should.
const numberText = fc.oneof(
  fc.nat().map(String),
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
  fc.constantFrom('max', '-1', '9223372036854771712', '18446744073709551615', '', ' ', 'NaN', '1e400', '-5', '0x10', '12abc'),
);
const garbage = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('', '\n', '\0\0\0', ')))(((', ': : :', '0::', '::::\n::::'),
);
const lineOf = (fields: fc.Arbitrary<string>[]) => fc.tuple(...fields).map((f) => f.join(' '));
const textOf = (line: fc.Arbitrary<string>) => fc.array(fc.oneof(line, garbage), { maxLength: 30 }).map((l) => l.join('\n'));

t.test('parsers never throw and return sane values', async (t) => {
  const anyText = fc.oneof(garbage, textOf(lineOf([numberText, garbage, numberText])));
  fc.assert(
    fc.property(anyText, (text) => {
      parseMountinfo(text);
      detectLayout(parseMountinfo(text));
      parseProcCgroup(text);
      parseProcStatus(text);
      parseProcStat(text);
      for (const v of parseFlatKeyed(text).values()) if (!(v >= 0)) throw new Error(`negative or NaN flat-keyed value ${v}`);
      const limit = parseLimit(text);
      if (limit !== undefined && !(limit >= 0)) throw new Error(`bad limit ${limit}`);
      const count = parseCount(text);
      if (count !== undefined && !(count >= 0 && Number.isFinite(count))) throw new Error(`bad count ${count}`);
      const cpus = parseCpuList(text);
      for (let i = 0; i < cpus.length; i++) if (!Number.isInteger(cpus[i]) || cpus[i]! < 0 || (i > 0 && cpus[i]! <= cpus[i - 1]!)) throw new Error('cpu list not sorted unique');
    }),
    { numRuns: RUNS },
  );
  // Structured near-misses of each format.
  const mountinfoLine = lineOf([numberText, numberText, fc.constantFrom('0:28', 'x'), fc.constantFrom('/', '/a b', '/a\\040b'), fc.constantFrom('/sys/fs/cgroup/memory', '/'), garbage, fc.constantFrom('-', 'shared:1 -', ''), fc.constantFrom('cgroup', 'cgroup2', 'tmpfs'), garbage, fc.constantFrom('rw,memory', 'rw,cpu,cpuacct', 'rw,name=systemd', 'rw')]);
  fc.assert(fc.property(textOf(mountinfoLine), (text) => void detectLayout(parseMountinfo(text))), { numRuns: RUNS });
  const statLine = lineOf([numberText, fc.constantFrom('(sh)', '(a) b) c)', '((', '(x'), fc.constantFrom('R', 'S', 'D', ''), ...Array.from({ length: 20 }, () => numberText)]);
  fc.assert(fc.property(statLine, (text) => void parseProcStat(text)), { numRuns: RUNS });
  t.equal(parseCpuList('0-4294967295').length <= 65536, true, 'absurd cpu ranges are capped');
  t.doesNotThrow(() => parseFlatKeyed('x '.repeat(512 * 1024)), '1 MiB line');
});

interface World {
  host: Record<string, string>;
  cgroups: Record<string, { version: 1 | 2; files: Record<string, string> }>;
  memory?: MemoryReading;
  hostCaller: boolean;
  load?: LoadAverage;
  threads?: ThreadStates;
  /** what the previous render left: garbage, or the state a first render of this world returned */
  previous: unknown;
}

const weirdNumber = fc.oneof(fc.nat(), fc.double({ min: -1e30, max: 1e30, noNaN: false }), fc.constantFrom(Infinity, -1, 2 ** 64, Number.NaN));
const memoryReading: fc.Arbitrary<MemoryReading> = fc.record(
  {
    version: fc.constantFrom(1 as const, 2 as const),
    limit: weirdNumber,
    usage: weirdNumber,
    swapLimit: weirdNumber,
    swapUsage: weirdNumber,
    swappiness: fc.constantFrom(0, 60, 100, -1),
    stat: fc.dictionary(fc.constantFrom('anon', 'file', 'total_cache', 'total_rss', 'shmem', 'total_shmem', 'active_file', 'inactive_anon', 'hierarchical_memory_limit', 'slab', 'zswap', 'file_mapped', 'total_rss_huge'), weirdNumber).map((d) => new Map(Object.entries(d))),
  },
  { requiredKeys: ['version'] },
);

/** A host file from the fixture with its numbers replaced by hostile ones, or pure garbage. */
const mutatedHost = (name: string) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(numberText, { minLength: 400, maxLength: 400 }).map((nums) => { let i = 0; return HOST(name).replace(/\d+/g, () => nums[i++ % nums.length] || '0'); }) },
    { weight: 1, arbitrary: garbage },
  );

const cgroupFiles = fc.dictionary(
  fc.constantFrom('cpuset.cpus', 'cpuset.cpus.effective', 'cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.max', 'cpuacct.usage_all', 'cpuacct.usage_percpu', 'cpuacct.usage', 'cpu.stat', 'io.stat', 'blkio.throttle.io_service_bytes_recursive', 'blkio.throttle.io_serviced_recursive', 'memory.kmem.slabinfo', 'cpu.pressure', 'io.pressure', 'memory.pressure', 'tasks', 'cgroup.threads'),
  fc.oneof(numberText, garbage, textOf(lineOf([numberText, numberText, numberText])), fc.constantFrom('0-1', '1', '0-3,7', '8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6', '8:0 Read 5\n8:0 Write 7', 'cpu user system\n0 1 2\n1 3 4', 'usage_usec 10\nuser_usec 5\nsystem_usec 5', '50000 100000', 'max 100000')),
);

const world: fc.Arbitrary<World> = fc.record({
  host: fc.record({
    '/proc/meminfo': mutatedHost('meminfo'),
    '/proc/cpuinfo': mutatedHost('cpuinfo'),
    '/proc/stat': mutatedHost('stat'),
    '/proc/uptime': fc.oneof(fc.tuple(numberText, numberText).map(([a, b]) => `${a} ${b}\n`), garbage),
    '/proc/diskstats': mutatedHost('diskstats'),
    '/sys/devices/system/cpu/online': fc.oneof(fc.constantFrom('0-1\n', '0\n', '0-3,8\n', ''), garbage),
    '/proc/1/stat': fc.oneof(mutatedHost('self/stat'), garbage),
  }),
  cgroups: fc.dictionary(fc.constantFrom('cpuset', 'cpu', 'cpuacct', 'blkio', 'io', 'memory', 'unified'), fc.record({ version: fc.constantFrom(1 as const, 2 as const), files: cgroupFiles })),
  memory: fc.option(memoryReading, { nil: undefined }),
  hostCaller: fc.boolean(),
  load: fc.option(fc.record({ fixed: fc.tuple(weirdNumber, weirdNumber, weirdNumber), running: fc.nat(), total: fc.nat(), lastPid: fc.nat() }), { nil: undefined }),
  threads: fc.option(fc.record({ running: fc.nat(), blocked: fc.nat() }), { nil: undefined }),
  previous: fc.oneof(fc.constant(undefined), fc.anything(), fc.record({ v: fc.constant(1), kind: fc.constantFrom('per-cpu', 'whole'), host: fc.array(fc.tuple(weirdNumber, weirdNumber, weirdNumber)), usage: fc.array(fc.tuple(weirdNumber, weirdNumber, weirdNumber)), lines: fc.array(fc.record({ cpu: weirdNumber, user: weirdNumber, system: weirdNumber, idle: weirdNumber, carry: weirdNumber })), carry: weirdNumber }), fc.record({ v: fc.constant(1), initStart: weirdNumber, offset: weirdNumber })),
});

function sourcesOf(w: World, previous: unknown = w.previous): Sources {
  return {
    container: { initPid: 1, host: w.hostCaller },
    hostFile: (path) => w.host[path],
    memory: () => (w.memory ? { own: w.memory, chain: [{ limit: w.memory.limit, swapLimit: w.memory.swapLimit }] } : undefined),
    cgroupFile: (controller, name, level = 0) => (level === 0 ? w.cgroups[controller]?.files[name] : undefined),
    cgroupVersion: (controller) => w.cgroups[controller]?.version,
    cgroupDepth: () => 0,
    loadavg: () => w.load,
    tasks: (controller) => (w.cgroups[controller] ? [1, 2, 3] : undefined),
    processes: (controller) => (w.cgroups[controller] ? [1] : undefined),
    threadStates: (controller) => (w.cgroups[controller] ? w.threads : undefined),
    lastState: () => previous,
  };
}

/** A CPU list as the kernel prints it ("0-3,7"), ids ascending. */
const CPU_LIST = /^(\d+(-\d+)?)(,\d+(-\d+)?)*\n$/;

const U64 = 2n ** 64n;
/** Why `text` is not a well-formed `path` for world `w`, or undefined. Every served file has a rule. */
function checkShape(path: string, text: string, w: World): string | undefined {
  const numbersFit = (line: string) => (line.match(/\d+/g) ?? []).every((n) => BigInt(n) < U64);
  const cgroupText = (name: string) => Object.values(w.cgroups).map((c) => c.files[name]);
  switch (path) {
    case 'proc/meminfo':
      if (text === w.host['/proc/meminfo']) return undefined; // no memory cgroup: the host file
      for (const line of text.split('\n').filter(Boolean)) {
        const recomputed = /^(MemTotal|MemFree|MemAvailable|Cached|Active|Inactive|SwapTotal|SwapFree|AnonPages|Mapped|Shmem|Slab|CommitLimit|Committed_AS):/.test(line);
        if (recomputed && !/^[A-Za-z_()]+:\s+\d+ kB$/.test(line)) return `bad meminfo line ${JSON.stringify(line)}`;
        if (recomputed && !numbersFit(line)) return `meminfo number above 2^64: ${line}`;
      }
      return undefined;
    case 'proc/stat': {
      if (text === w.host['/proc/stat']) return undefined; // no CPU known: the host file
      const cpuLines = text.split('\n').filter((l) => /^cpu\d* /.test(l));
      if (!/^cpu {2}/.test(text)) return `stat does not start with the aggregate line: ${JSON.stringify(text.slice(0, 80))}`;
      for (const line of cpuLines) if (!/^cpu\d* {1,2}(\d+ ){9}\d+$/.test(line) || !numbersFit(line)) return `bad stat line ${line}`;
      const sums = cpuLines.slice(1).reduce((acc, l) => l.split(/\s+/).slice(1).map((v, i) => acc[i]! + BigInt(v)), new Array<bigint>(10).fill(0n));
      if (cpuLines[0]!.split(/\s+/).slice(1).join(' ') !== sums.join(' ')) return `aggregate is not the sum of the cpuN lines: ${cpuLines.join(' | ')}`;
      return undefined;
    }
    case 'proc/uptime':
      return text === w.host['/proc/uptime'] || /^\d+\.\d\d \d+\.\d\d\n$/.test(text) ? undefined : `bad uptime ${JSON.stringify(text)}`;
    case 'proc/loadavg':
      return text === (w.host['/proc/loadavg'] ?? '') || /^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+\n$/.test(text) ? undefined : `bad loadavg ${JSON.stringify(text)}`;
    case 'proc/cpuinfo': {
      if (text === w.host['/proc/cpuinfo']) return undefined;
      const ids = [...text.matchAll(/^processor\s*:\s*(\d+)$/gm)].map((m) => Number(m[1]));
      const hostIds = new Set([...(w.host['/proc/cpuinfo'] ?? '').matchAll(/^processor\s*:\s*(\d+)$/gm)].map((m) => Number(m[1])));
      if (ids.some((id) => !hostIds.has(id))) return `cpuinfo lists a CPU the host does not have: ${ids}`;
      if (new Set(ids).size !== ids.length) return `cpuinfo lists a CPU twice: ${ids}`;
      return undefined;
    }
    case 'proc/diskstats':
      if (text === w.host['/proc/diskstats']) return undefined;
      for (const line of text.split('\n').filter(Boolean)) if (line.trim().split(/\s+/).length !== 20 || !numbersFit(line.replace(/^\s*\d+\s+\d+\s+\S+/, ''))) return `bad diskstats line ${line}`;
      return undefined;
    case 'proc/swaps': {
      const lines = text.split('\n');
      if (lines[0] !== 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority' && text !== (w.host['/proc/swaps'] ?? '')) return `bad swaps header ${JSON.stringify(lines[0])}`;
      if (lines.length > 3 || (lines[1] && !/^none {36}virtual\t\t\d+\t\t?\d+\t\t?0$/.test(lines[1]))) return `bad swaps entry ${JSON.stringify(lines[1])} in ${JSON.stringify(text.slice(0, 300))}`;
      return undefined;
    }
    case 'proc/slabinfo':
      return text === (w.host['/proc/slabinfo'] ?? '') || cgroupText('memory.kmem.slabinfo').includes(text) ? undefined : 'slabinfo is neither the host\'s nor the cgroup\'s';
    case 'proc/pressure/cpu':
    case 'proc/pressure/io':
    case 'proc/pressure/memory': {
      const resource = path.split('/')[2]!;
      return text === (w.host[`/${path}`] ?? '') || cgroupText(`${resource}.pressure`).includes(text) ? undefined : `${path} is neither the host's nor the cgroup's`;
    }
    case 'sys/devices/system/cpu/online':
    case 'sys/devices/system/cpu/present':
    case 'sys/devices/system/cpu/possible':
      return text === (w.host[`/${path}`] ?? '') || CPU_LIST.test(text) ? undefined : `bad cpu list ${JSON.stringify(text)}`;
    default:
      return `no shape rule for ${path}`;
  }
}

/** A fast-check failure as a test message: the error, and the seed and path that replay it. */
function failureOf<T>(result: fc.RunDetails<T>): string | undefined {
  if (!result.failed) return undefined;
  const error = String((result.errorInstance as Error)?.stack ?? result.errorInstance).slice(0, 800);
  const path = result.counterexamplePath ?? '';
  // A long shrink path is useless in a log line; the seed alone replays the first failing case.
  return `${error}\nreplay: fc.assert(property, { seed: ${result.seed}${path.length <= 400 ? `, path: ${JSON.stringify(path)}` : ''} })`;
}

t.test('renderers never throw and keep their file\'s shape, first and from their own state', async (t) => {
  for (const file of files) {
    const result = fc.check(
      fc.property(world, fc.boolean(), fc.boolean(), (w, swap, cfs) => {
        const options: RenderOptions = { swap, cfs };
        const output = file.render(file.collect(sourcesOf(w), options), options);
        const text = outputText(output);
        if (text === undefined) throw new Error(`${file.path} rendered ${typeof output}`);
        const bad = checkShape(file.path, text, w);
        if (bad) throw new Error(bad);
        // Again, from the state this render kept: the same world gives the same text.
        if (typeof output === 'object') {
          const again = outputText(file.render(file.collect(sourcesOf(w, output.state), options), options));
          if (again === undefined || checkShape(file.path, again, w)) throw new Error(`${file.path}: bad second render ${JSON.stringify(again)}`);
        }
      }),
      { numRuns: RUNS },
    );
    t.equal(failureOf(result), undefined, `${file.path}: ${RUNS} hostile cases`);
  }
  for (const mirror of mirrors) {
    const result = fc.check(
      fc.property(world, fc.boolean(), (w, cfs) => {
        const names = mirror.hide!.render(mirror.hide!.collect(sourcesOf(w), { swap: true, cfs }), { swap: true, cfs });
        if (!Array.isArray(names) || names.some((n) => !/^cpu\d+$/.test(n))) throw new Error(`bad hidden list ${JSON.stringify(names)}`);
      }),
      { numRuns: RUNS },
    );
    t.equal(failureOf(result), undefined, `${mirror.path} hidden entries: ${RUNS} hostile cases`);
  }
});

t.test('a 1 MiB host line and an empty world', async (t) => {
  const long = 'x'.repeat(1 << 20);
  const empty: World = { host: {}, cgroups: {}, hostCaller: false, previous: undefined };
  const huge: World = { host: Object.fromEntries(['/proc/meminfo', '/proc/cpuinfo', '/proc/stat', '/proc/uptime', '/proc/diskstats'].map((p) => [p, long])), cgroups: { memory: { version: 1, files: { 'memory.kmem.slabinfo': long } } }, hostCaller: false, previous: undefined };
  for (const file of files) {
    t.doesNotThrow(() => file.render(file.collect(sourcesOf(empty), { swap: true, cfs: false }), { swap: true, cfs: false }), `${file.path}: nothing readable`);
    t.doesNotThrow(() => file.render(file.collect(sourcesOf(huge), { swap: true, cfs: true }), { swap: true, cfs: true }), `${file.path}: 1 MiB lines`);
  }
});
