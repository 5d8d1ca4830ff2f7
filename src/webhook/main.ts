#!/usr/bin/env node
// Entry point of the admission webhook: `node dist/src/webhook/main.js --cert FILE --key FILE`.
// As in the daemon's main.js, a SIGUSR1 listener comes before any import: with none, SIGUSR1 opens
// Node's inspector on 127.0.0.1:9229.

process.on('SIGUSR1', () => {});

const { readFileSync } = await import('node:fs');
const { pino } = await import('pino');
const { HELP, parseWebhookArgs } = await import('./cli.js');
const { createWebhookServer } = await import('./server.js');

const command = parseWebhookArgs(process.argv.slice(2));
if (command.kind === 'help') {
  process.stdout.write(HELP);
  process.exit(0);
}
if (command.kind === 'version') {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
  process.stdout.write(`${pkg.version ?? 'unknown'}\n`);
  process.exit(0);
}
if (command.kind === 'error') {
  process.stderr.write(`lxcfs-ts-webhook: ${command.message} (--help for usage)\n`);
  process.exit(2);
}

const options = command.options;
const log = pino({ name: 'lxcfs-ts-webhook', base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));

function readTls(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(options.cert), key: readFileSync(options.key) };
}

let tls;
try {
  tls = readTls();
} catch (err) {
  process.stderr.write(`lxcfs-ts-webhook: ${(err as Error).message}\n`);
  process.exit(1);
}

const server = createWebhookServer({ ...tls, inject: { hostDir: options.hostDir, files: options.files }, log });
server.on('error', (err) => {
  log.fatal({ err }, 'server error');
  process.exit(1);
});
server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));

process.on('SIGHUP', () => {
  try {
    server.setSecureContext({ ...readTls(), minVersion: 'TLSv1.2' });
    log.info({ cert: options.cert }, 'SIGHUP: certificate and key read again');
  } catch (err) {
    log.error({ err: (err as Error).message }, 'SIGHUP: could not read the certificate or key; keeping the previous ones');
  }
});
const stop = (signal: string): void => {
  log.info({ signal }, 'stopping');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  // Requests in flight get the API server's own timeout at most.
  setTimeout(() => process.exit(0), 30_000).unref();
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));

server.listen(options.port, options.address, () => {
  const address = server.address();
  log.info({ address, hostDir: options.hostDir, files: options.files }, 'listening');
});
