#!/usr/bin/env node
// Where a daemon's thread spent its time, from a V8 .cpuprofile (`node --cpu-prof`): self and inclusive time
// per function (name, file:line), as percentages of the busy (non-idle) time. bench/README.md ("Targets")
// uses it on the daemon's main thread under the fleet load:
//
//   printf '#!/bin/sh\nexec node --cpu-prof --cpu-prof-dir=/tmp/cpuprof %s/dist/src/daemon/main.js "$@"\n' "$PWD" > /tmp/prof-daemon.sh
//   chmod +x /tmp/prof-daemon.sh
//   node bench/fleet.mjs -n 300 --targets lxcfs-ts -d 20 --lxcfs-ts /tmp/prof-daemon.sh -o /tmp/fleet.json
//   node bench/cpu-profile-summary.mjs /tmp/cpuprof/CPU.*.0.001.cpuprofile     # .0. is the main thread
//
// Usage: node bench/cpu-profile-summary.mjs FILE.cpuprofile [self rows (40)] [inclusive rows (60)]

import { readFileSync } from 'node:fs';

const [file, selfRows = '40', inclusiveRows = '60'] = process.argv.slice(2);
if (!file || file === '--help' || file === '-h') {
  process.stdout.write('usage: node bench/cpu-profile-summary.mjs FILE.cpuprofile [self rows (40)] [inclusive rows (60)]\n');
  process.exit(file ? 0 : 2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Each sample's time is the delta to the next one (µs).
const timeOf = new Map();
for (let i = 0; i < profile.samples.length; i++) timeOf.set(profile.samples[i], (timeOf.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
const key = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/.*\/(dist|node_modules|vendor)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map();
const inclusive = new Map();
let total = 0;
let idle = 0;
for (const [id, us] of timeOf) {
  const node = byId.get(id);
  total += us;
  if (node.callFrame.functionName === '(idle)') {
    idle += us;
    continue;
  }
  self.set(key(node), (self.get(key(node)) ?? 0) + us);
  const seen = new Set(); // a recursive function counts once per sample
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const k = key(byId.get(at));
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const busy = total - idle;
const show = (map, rows) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .forEach(([k, us]) => process.stdout.write(`${((100 * us) / busy).toFixed(1).padStart(5)} %  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${k}\n`));
process.stdout.write(`profile ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s\n--- self\n`);
show(self, Number(selfRows));
process.stdout.write('--- inclusive\n');
show(inclusive, Number(inclusiveRows));
