import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout, written synchronously so nothing is lost when the daemon exits on a signal. */
export function createLogger(debug: boolean): Logger {
  return pino(
    { name: 'lxcfs-ts', level: debug ? 'debug' : 'info', base: { pid: process.pid } },
    pino.destination({ dest: 1, sync: true }),
  );
}
