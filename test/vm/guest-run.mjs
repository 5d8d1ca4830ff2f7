// lxcfs-ts test VM, inside the guest: runs each test file on its own under a time limit, streams its output
// to the console, and records { file, passed, failed, skipped?, seconds, ... } per file in RUN/results.json
// (rewritten after every file, so the host keeps what finished if the guest dies). Ends with the combined
// "N passed, N failed" line. Usage: node test/vm/guest-run.mjs RUN_DIR
//
// A file runs as plain `node FILE.js`: the host transpiled every .ts of the snapshot next to its source
// (test/vm/run.mjs), and a tap test file run by node prints its own TAP and counts. Under TCG, tap's runner
// and its TypeScript loader cost most of a minute per file before the first test starts.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileResult, formatSummary } from './summary.mjs';

const run = process.argv[2];
const files = readFileSync(join(run, 'files.txt'), 'utf8').split('\n').filter(Boolean);
const limitSec = Number(process.env.LXCFS_TS_VM_FILE_TIMEOUT);
// The root test's own limit (TAP_TIMEOUT, 30 s when node runs a file directly): just under ours, so a file
// that hangs still gets tap's report of where it hung before we kill it.
const tapTimeoutSec = Math.max(60, limitSec - 60);
const results = [];

function save() {
  writeFileSync(join(run, 'results.json.tmp'), JSON.stringify(results, null, 2));
  renameSync(join(run, 'results.json.tmp'), join(run, 'results.json'));
}

/** Runs one file in its own process group (the test process, daemons, containers) and kills the group on timeout. */
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const script = file.replace(/\.ts$/, '.js');
    if (!existsSync(script)) {
      const message = `lxcfs-ts-vm: no ${script}: the host did not transpile ${file}\n`;
      process.stdout.write(message);
      resolve({ code: null, signal: null, timedOut: false, tail: message, seconds: 0 });
      return;
    }
    // --enable-source-maps: tap's failure locations point into the .ts (the transpiled files carry inline maps)
    const child = spawn(process.execPath, ['--enable-source-maps', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TAP_TIMEOUT: String(tapTimeoutSec) } });
    let tail = '';
    const take = (stream, out) =>
      stream.on('data', (chunk) => {
        out.write(chunk);
        tail = (tail + chunk.toString()).slice(-8192);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    let timedOut = false;
    const killGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // ESRCH: the group is already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      process.stdout.write(`\nlxcfs-ts-vm: ${file} still running after ${limitSec} s: killing it\n`);
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 10_000).unref();
    }, limitSec * 1000);
    let exited = null;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      resolve({ ...exited, timedOut, tail, seconds: Math.round((Date.now() - started) / 100) / 10 });
    };
    let drain;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      clearTimeout(timer);
      killGroup('SIGKILL'); // whatever the file left running in its group
      // a process that left the group may still hold the pipes: do not wait for it forever
      drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        done();
      }, 5_000);
    });
    child.on('close', done); // after 'exit' and both pipes closed
  });
}

/** After a file, lazily unmount any FUSE mount it left (only after a crash or a kill). Only in the guest. */
function unmountLeftovers() {
  if (!process.env.LXCFS_TS_VM) return;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const fstype = fields[fields.indexOf('-') + 1];
    if (fstype?.startsWith('fuse')) spawnSync('umount', ['-l', fields[4]]);
  }
}

for (const [i, file] of files.entries()) {
  process.stdout.write(`lxcfs-ts-vm: ==> ${file} (${i + 1}/${files.length}, limit ${limitSec} s)\n`);
  const r = await runFile(file);
  unmountLeftovers();
  const result = fileResult({ file, output: r.tail, code: r.code, signal: r.signal, timedOut: r.timedOut, seconds: r.seconds });
  results.push(result);
  save();
  const how = result.timedOut ? ', timed out' : result.noSummary ? ', no summary' : '';
  process.stdout.write(`lxcfs-ts-vm: <== ${file}: ${formatSummary([result])} in ${r.seconds} s${how}\n`);
}
process.stdout.write(`lxcfs-ts-vm: all files done\n${formatSummary(results)}\n`);
