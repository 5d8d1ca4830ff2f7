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
import { cpuDirectory, cpuOnline, cpuPossible, cpuPresent } from './sys-cpu.js';
import type { CONTRACT_VERSION, Mirror, VirtualFile } from '../contract.js';
import { uptime } from './uptime.js';

/** The contract (src/contract.ts) this bundle is built against: checked against the daemon's at load. */
export const contract: typeof CONTRACT_VERSION = 2;
export const version = '0.3.0';

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
export const mirrors: readonly Mirror<any>[] = [cpuDirectory];
