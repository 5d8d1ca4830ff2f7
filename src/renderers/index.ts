// The reloadable renderer module: every virtual file the daemon serves, and nothing else.
// The daemon loads this module through its loader and never imports a renderer directly, so adding a
// file means writing src/renderers/<file>.ts, adding one line here, and its test.

import { cpuinfo } from './cpuinfo.js';
import { diskstats } from './diskstats.js';
import { loadavg } from './loadavg.js';
import { meminfo } from './meminfo.js';
import { pressureCpu, pressureIo, pressureMemory } from './pressure.js';
import { slabinfo } from './slabinfo.js';
import { stat } from './stat.js';
import { swaps } from './swaps.js';
import { cpuOnline, cpuPossible, cpuPresent } from './sys-cpu.js';
import type { VirtualFile } from './types.js';
import { uptime } from './uptime.js';

export const version = '0.2.0';

export const files: readonly VirtualFile<any>[] = [
  meminfo,
  cpuinfo,
  stat,
  uptime,
  swaps,
  loadavg,
  diskstats,
  slabinfo,
  pressureCpu,
  pressureIo,
  pressureMemory,
  cpuOnline,
  cpuPresent,
  cpuPossible,
];

/** Host directories served as they are, around the virtual files inside them. */
export const mirrors = [{ path: 'sys/devices/system/cpu', hostPath: '/sys/devices/system/cpu' }];

export type { RenderOptions, Sources, VirtualFile, MemoryView, MemoryLimits, LoadAverage } from './types.js';
