// A stand-in for systemd's notify socket (notify-socket.py): tests start the daemon with NOTIFY_SOCKET
// pointing at it and wait for the datagrams the daemon sends, in order.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./notify-socket.py', import.meta.url));

export interface NotifyMessage {
  state: Record<string, string>;
  /** /proc/self/fd link targets of descriptors passed with the datagram */
  fds: string[];
  /** with a `watch` path: whether it existed when the datagram arrived */
  exists?: boolean;
}

export interface NotifySocket {
  /** the NOTIFY_SOCKET value: a path, or "@name" */
  name: string;
  messages: NotifyMessage[];
  /** Resolves with the first message (from index `from` on) that `match` accepts; rejects if the socket closes first. */
  waitFor: (match: (m: NotifyMessage) => boolean, from?: number) => Promise<{ message: NotifyMessage; index: number }>;
  close: () => void;
}

export async function startNotifySocket(name: string, watch?: string): Promise<NotifySocket> {
  const child = spawn('python3', [SCRIPT, name, ...(watch ? [watch] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: NotifyMessage[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  let buffered = '';
  let listening: () => void;
  const started = new Promise<void>((resolve) => (listening = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const parsed = JSON.parse(line) as NotifyMessage & { listening?: string };
      if (parsed.listening !== undefined) listening();
      else messages.push(parsed);
    }
    for (const w of [...waiters]) w();
  });
  child.on('exit', () => {
    closed = true;
    listening();
    for (const w of [...waiters]) w();
  });
  await started;
  if (closed) throw new Error(`notify-socket.py could not bind ${name}`);
  return {
    name,
    messages,
    waitFor: (match, from = 0) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const index = messages.findIndex((m, i) => i >= from && match(m));
          if (index >= 0) {
            waiters.delete(check);
            resolve({ message: messages[index]!, index });
          } else if (closed) {
            waiters.delete(check);
            reject(new Error(`notify socket closed; messages: ${JSON.stringify(messages)}`));
          }
        };
        waiters.add(check);
        check();
      }),
    close: () => child.stdin.end(),
  };
}
