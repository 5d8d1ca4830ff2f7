export {
  UNLIMITED,
  minLimit,
  parseCount,
  parseCpuList,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parseProcStat,
  parseProcStatus,
  type MountInfo,
  type ProcCgroupEntry,
  type ProcStat,
  type ProcStatus,
} from './parse.js';
export { detectLayout, type CgroupLayout, type Hierarchy } from './layout.js';
export { CgroupReader, type CgroupDir, type FileSource, type MemoryReading, type PidCgroups, type ReaderOptions } from './reader.js';
