// A stand-in for systemd's descriptor store and notify socket (fd-store.py): it starts the daemon with
// NOTIFY_SOCKET set, keeps what the daemon stores (FDSTORE=1), and starts the next daemon with it as
// fds 3.. (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), as systemd does across `systemctl restart`.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAIN } from './daemon.js';

const SCRIPT = fileURLToPath(new URL('./fd-store.py', import.meta.url));

export type StoreEvent = Record<string, unknown> & {
  message?: Record<string, string>;
  fds?: number;
  kept?: string[];
  removed?: string[];
  dropped?: string;
  started?: number;
  exited?: number;
  code?: number | null;
  signal?: string | null;
  store?: { name: string; target: string; fd: number }[];
  released?: number;
};

export interface StoredDaemon {
  pid: number;
  /** every JSON log line the daemon wrote so far */
  logs: () => Record<string, unknown>[];
  stderr: () => string;
  /** resolves when the stand-in saw it exit */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

export interface FdStore {
  /** the notify socket's path */
  name: string;
  events: StoreEvent[];
  /** the first event (from index `from` on) that `match` accepts; rejects if the stand-in exits first */
  waitFor: (match: (e: StoreEvent) => boolean, from?: number) => Promise<{ event: StoreEvent; index: number }>;
  /** start lxcfs-ts (MAIN) with `args`, the kept descriptors and `env`; resolves once it runs */
  startDaemon: (args: string[], env?: Record<string, string>) => Promise<StoredDaemon>;
  /** what is kept now */
  list: () => Promise<{ name: string; target: string; fd: number }[]>;
  /** close everything kept (what systemd does when the unit stops) */
  release: () => Promise<number>;
  close: () => void;
}

export async function startFdStore(dir: string, max = 16): Promise<FdStore> {
  const name = join(dir, 'notify.sock');
  const child = spawn('python3', [SCRIPT, name, String(max)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const events: StoreEvent[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) events.push(JSON.parse(line) as StoreEvent);
    for (const w of [...waiters]) w();
  });
  child.on('exit', () => {
    closed = true;
    for (const w of [...waiters]) w();
  });
  const waitFor: FdStore['waitFor'] = (match, from = 0) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const index = events.findIndex((e, i) => i >= from && match(e));
        if (index >= 0) {
          waiters.delete(check);
          resolve({ event: events[index]!, index });
        } else if (closed) {
          waiters.delete(check);
          reject(new Error(`fd-store.py exited; events: ${JSON.stringify(events)}`));
        }
      };
      waiters.add(check);
      check();
    });
  await waitFor((e) => e.listening !== undefined);
  const send = (cmd: unknown) => child.stdin.write(`${JSON.stringify(cmd)}\n`);
  let starts = 0;
  return {
    name,
    events,
    waitFor,
    startDaemon: async (args, env = {}) => {
      const n = ++starts;
      const stdout = join(dir, `daemon-${n}.log`);
      const stderr = join(dir, `daemon-${n}.err`);
      const from = events.length;
      // Under npm run test:sanitize the daemon (node) needs the ASan runtime preloaded (test/sanitize-preload.cjs).
      const preload = process.env.LXCFS_TS_SANITIZE_PRELOAD;
      send({ start: [process.execPath, MAIN, ...args], env, stdout, stderr, ...(preload ? { preload } : {}) });
      const { event } = await waitFor((e) => e.started !== undefined, from);
      const pid = event.started!;
      const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
      return {
        pid,
        logs: () =>
          read(stdout)
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        stderr: () => read(stderr),
        exited: waitFor((e) => e.exited === pid, from).then(({ event: e }) => ({ code: e.code ?? null, signal: e.signal ?? null })),
      };
    },
    list: async () => {
      const from = events.length;
      send({ list: true });
      return (await waitFor((e) => e.store !== undefined, from)).event.store!;
    },
    release: async () => {
      const from = events.length;
      send({ release: true });
      return (await waitFor((e) => e.released !== undefined, from)).event.released!;
    },
    close: () => child.stdin.end(),
  };
}
