// /proc/diskstats per container: the host's device list, each line rebuilt from the cgroup's I/O
// counters, zeros for a device the container did no I/O on (iostat and vmstat -d list the devices they
// find here, so a container that has not done I/O yet still sees its disks). Loop and RAM devices the host
// itself never used are left out, as iostat does. Sources:
//   v2 io.stat                                   rbytes wbytes rios wios dbytes dios per "maj:min"
//   v1 blkio.throttle.io_service_bytes_recursive  "maj:min Read|Write|Discard N" (bytes), and
//      blkio.throttle.io_serviced_recursive       (requests); non-recursive files as a fallback
// LXCFS reads the CFQ-era blkio.io_*_recursive files, gone since CFQ left the kernel (5.0), so it shows
// the host's disks; on v2 it ignores io.stat (lxc/lxcfs#653). Times, merges and in-flight counts have no
// per-cgroup source and are 0. With no I/O controller at all the host file is served.

import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface DeviceIo {
  reads: number;
  writes: number;
  discards: number;
  readBytes: number;
  writeBytes: number;
  discardBytes: number;
}

export interface DiskstatsSnapshot {
  host: string;
  /** keyed "maj:min"; undefined = no I/O controller for this container */
  io?: Map<string, DeviceIo>;
}

const empty = (): DeviceIo => ({ reads: 0, writes: 0, discards: 0, readBytes: 0, writeBytes: 0, discardBytes: 0 });
const count = (s: string | undefined): number => {
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? n : 0;
};

export function parseIoStat(text: string): Map<string, DeviceIo> {
  const io = new Map<string, DeviceIo>();
  for (const line of text.split('\n')) {
    const [dev, ...pairs] = line.trim().split(/\s+/);
    if (!dev || !/^\d+:\d+$/.test(dev)) continue;
    const kv = new Map(pairs.map((p) => p.split('=') as [string, string]));
    io.set(dev, {
      reads: count(kv.get('rios')),
      writes: count(kv.get('wios')),
      discards: count(kv.get('dios')),
      readBytes: count(kv.get('rbytes')),
      writeBytes: count(kv.get('wbytes')),
      discardBytes: count(kv.get('dbytes')),
    });
  }
  return io;
}

/** Merge a v1 blkio "maj:min Op N" file into io: ops names the fields for Read, Write and Discard. */
export function addBlkio(io: Map<string, DeviceIo>, text: string, fields: { Read: keyof DeviceIo; Write: keyof DeviceIo; Discard: keyof DeviceIo }): void {
  for (const line of text.split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev || !/^\d+:\d+$/.test(dev) || (op !== 'Read' && op !== 'Write' && op !== 'Discard')) continue;
    const entry = io.get(dev) ?? empty();
    entry[fields[op]] = count(value);
    io.set(dev, entry);
  }
}

export function collectDiskstats(sources: Sources): DiskstatsSnapshot {
  const host = sources.hostFile('/proc/diskstats') ?? '';
  // A host process has no container to account: the root cgroup's throttle counters stay 0 on v1.
  if (sources.container.host) return { host };
  if (sources.cgroupVersion('io') === 2) {
    const stat = sources.cgroupFile('io', 'io.stat');
    if (stat !== undefined) return { host, io: parseIoStat(stat) };
  }
  if (sources.cgroupVersion('blkio') === 1) {
    const read = (name: string) => sources.cgroupFile('blkio', `${name}_recursive`) ?? sources.cgroupFile('blkio', name);
    const bytes = read('blkio.throttle.io_service_bytes');
    const ios = read('blkio.throttle.io_serviced');
    if (bytes !== undefined || ios !== undefined) {
      const io = new Map<string, DeviceIo>();
      addBlkio(io, bytes ?? '', { Read: 'readBytes', Write: 'writeBytes', Discard: 'discardBytes' });
      addBlkio(io, ios ?? '', { Read: 'reads', Write: 'writes', Discard: 'discards' });
      return { host, io };
    }
  }
  return { host };
}

export function renderDiskstats(snapshot: DiskstatsSnapshot, _options: RenderOptions): string {
  const io = snapshot.io;
  if (!io) return snapshot.host;
  let out = '';
  for (const line of snapshot.host.split('\n')) {
    const [major, minor, name] = line.trim().split(/\s+/);
    // A device number is two small integers; anything else is not a device line.
    if (!major || !minor || !name || !/^\d{1,10}$/.test(major) || !/^\d{1,10}$/.test(minor)) continue;
    const d = io.get(`${major}:${minor}`) ?? empty();
    if (/^(loop|ram)\d/.test(name) && !hostDidIo(line)) continue;
    const sectors = (bytes: number) => Math.floor(bytes / 512);
    // block/genhd.c: diskstats_show's layout, 20 fields (kernel 5.5+): reads, merged, sectors, ms,
    // writes, merged, sectors, ms, in flight, io ms, weighted ms, discards, merged, sectors, ms, flushes, ms.
    const fields = [d.reads, 0, sectors(d.readBytes), 0, d.writes, 0, sectors(d.writeBytes), 0, 0, 0, 0, d.discards, 0, sectors(d.discardBytes), 0, 0, 0];
    out += `${major.padStart(4)} ${minor.padStart(7)} ${name} ${fields.join(' ')}\n`;
  }
  return out;
}

/** Whether a host diskstats line shows any completed read, write or discard. */
function hostDidIo(line: string): boolean {
  const f = line.trim().split(/\s+/);
  return [3, 7, 14].some((i) => f[i] !== undefined && f[i] !== '0');
}

export const diskstats: VirtualFile<DiskstatsSnapshot> = {
  path: 'proc/diskstats',
  hostPath: '/proc/diskstats',
  collect: collectDiskstats,
  render: renderDiskstats,
};
