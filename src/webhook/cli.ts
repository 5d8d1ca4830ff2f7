// The webhook's command line. Parsing never exits: it returns what to do (bad input: one line on
// stderr and exit 2, as the daemon does).

import { parseArgs } from 'node:util';
import { DEFAULT_HOST_DIR, INJECTABLE, type Injectable } from './inject.js';

export const HELP = `Usage: node dist/src/webhook/main.js --cert FILE --key FILE [options]

Mutating admission webhook for lxcfs-ts (opt-in per namespace or pod, see
docs/kubernetes.md): answers AdmissionReview v1 requests on POST /mutate with a
JSONPatch that adds hostPath volumes for the files lxcfs-ts serves on every node
and mounts them over each container's /proc files and /sys/devices/system/cpu.
Pods labelled lxcfs-ts.io/inject=false and lxcfs-ts's own pods are never patched;
a pod that already has the mounts gets none twice. GET /healthz answers "ok".

Options:
      --cert FILE         PEM certificate (chain) the server presents
      --key FILE          PEM private key of that certificate
      --port PORT         HTTPS port (default 8443; 0: any free port, logged)
      --address ADDRESS   address to listen on (default: every address)
      --host-dir DIR      the DaemonSet's mountpoint on the nodes
                          (default ${DEFAULT_HOST_DIR})
      --files LIST        comma-separated served paths to mount (default all:
                          ${INJECTABLE.slice(0, 4).join(',')},
                          ${INJECTABLE.slice(4, 8).join(',')},
                          ${INJECTABLE[8]})
  -h, --help              show this help
  -v, --version           show the version

Logs JSON lines on stdout. SIGHUP reads --cert and --key again (a renewed
certificate without a restart); SIGTERM stops accepting, finishes the requests
in flight and exits 0.
`;

export interface WebhookOptions {
  cert: string;
  key: string;
  port: number;
  address: string | undefined;
  hostDir: string;
  files: Injectable[];
}

export type WebhookCommand = { kind: 'run'; options: WebhookOptions } | { kind: 'help' } | { kind: 'version' } | { kind: 'error'; message: string };

export function parseWebhookArgs(argv: string[]): WebhookCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        cert: { type: 'string' },
        key: { type: 'string' },
        port: { type: 'string', default: '8443' },
        address: { type: 'string' },
        'host-dir': { type: 'string', default: DEFAULT_HOST_DIR },
        files: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    }));
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (!values.cert || !values.key) return { kind: 'error', message: '--cert and --key are required' };
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) return { kind: 'error', message: `--port ${values.port}: a port number 0-65535 expected` };
  const hostDir = values['host-dir'];
  if (!hostDir.startsWith('/') || hostDir.includes('\n')) return { kind: 'error', message: `--host-dir ${hostDir}: an absolute path expected` };
  let files: Injectable[] = [...INJECTABLE];
  if (values.files !== undefined) {
    const names = values.files.split(',').map((f) => f.trim().replace(/^\/+|\/+$/g, '')).filter((f) => f !== '');
    const unknown = names.filter((f) => !(INJECTABLE as readonly string[]).includes(f));
    if (unknown.length > 0) return { kind: 'error', message: `--files: ${unknown.join(', ')} cannot be mounted into a pod (one of ${INJECTABLE.join(', ')})` };
    if (names.length === 0) return { kind: 'error', message: '--files: no file named' };
    files = INJECTABLE.filter((f) => names.includes(f));
  }
  return { kind: 'run', options: { cert: values.cert, key: values.key, port, address: values.address, hostDir: hostDir.replace(/\/+$/, '') || '/', files } };
}
