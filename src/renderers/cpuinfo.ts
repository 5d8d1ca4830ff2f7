// /proc/cpuinfo with only the container's CPUs, under their host ids (cpu-view.ts says why; LXCFS
// src/proc_cpuview.c: proc_cpuinfo_read keeps the same blocks but renumbers them from 0). Formats:
// - x86, arm64, ppc64le, riscv…: one block per CPU starting "processor\t: N", blank-line separated, maybe
//   followed by machine-wide blocks (ppc "timebase…", arm32 "Hardware…") which are kept;
// - s390x: a header with "# processors", one "processor N: …" line per CPU, then "cpu number : N" blocks;
// - anything else: the host file unchanged.

import { collectCpuView, visibleCpus, type CpuView } from './cpu-view.js';
import type { RenderOptions, Sources, VirtualFile } from '../contract.js';

export interface CpuinfoSnapshot {
  host: string;
  view: CpuView;
}

export function collectCpuinfo(sources: Sources, options: RenderOptions): CpuinfoSnapshot {
  return { host: sources.hostFile('/proc/cpuinfo') ?? '', view: collectCpuView(sources, options) };
}

export function renderCpuinfo(snapshot: CpuinfoSnapshot, options: RenderOptions): string {
  const cpus = visibleCpus(snapshot.view, options);
  if (cpus.length === 0) return snapshot.host;
  const visible = new Set(cpus);
  if (/^processor \d+:/m.test(snapshot.host)) return renderS390(snapshot.host, visible);

  const blocks = snapshot.host.split(/\n\n+/).filter((b) => b.trim() !== '');
  const out: string[] = [];
  let sawProcessor = false;
  const kept = new Set<number>();
  for (const block of blocks) {
    const m = /^processor\s*:\s*(\d+)\s*(\n|$)/.exec(block);
    if (!m) {
      out.push(block.replace(/\n+$/, ''));
      continue;
    }
    sawProcessor = true;
    // Each host CPU once, even if the host file repeats one.
    const cpu = Number(m[1]);
    if (!visible.has(cpu) || kept.has(cpu)) continue;
    out.push(block.replace(/\n+$/, ''));
    kept.add(cpu);
  }
  if (!sawProcessor) return snapshot.host;
  // x86 and arm64 end with a blank line; ppc64le and arm32 end their machine-wide block with one newline.
  return out.join('\n\n') + (/\n\n$/.test(snapshot.host) ? '\n\n' : '\n');
}

function renderS390(host: string, visible: ReadonlySet<number>): string {
  const lines = host.split('\n');
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    const header = /^# processors\s*:\s*\d+/.exec(line);
    if (header) {
      out.push(line.replace(/\d+\s*$/, String(visible.size)));
      continue;
    }
    const perCpu = /^processor (\d+):(.*)$/.exec(line);
    if (perCpu) {
      if (visible.has(Number(perCpu[1]))) out.push(line);
      continue;
    }
    const cpuNumber = /^cpu number\s*:\s*(\d+)/.exec(line);
    if (cpuNumber) {
      skipping = !visible.has(Number(cpuNumber[1]));
      if (!skipping) out.push(line);
      continue;
    }
    if (line === '' && skipping) {
      // the blank line that ends a dropped block goes with it: one blank line between kept blocks
      skipping = false;
      continue;
    }
    if (!skipping) out.push(line);
  }
  return out.join('\n');
}

export const cpuinfo: VirtualFile<CpuinfoSnapshot> = {
  path: 'proc/cpuinfo',
  hostPath: '/proc/cpuinfo',
  collect: collectCpuinfo,
  render: renderCpuinfo,
};
