// The webhook's HTTPS server (Node's https module): POST /mutate answers AdmissionReview v1 requests,
// GET /healthz answers "ok" for probes. A body that is not an AdmissionReview gets 400 and is logged;
// nothing a client sends can stop the server.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { admissionResponse, decide, parseReview, type InjectOptions } from './inject.js';

/** The API server caps a pod at etcd's 1.5 MiB request size; an AdmissionReview holds it at most twice. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** How much of a too-large body is read (and dropped) before the connection is cut instead. */
export const DISCARD_LIMIT_BYTES = 4 * MAX_BODY_BYTES;

export interface WebhookServerOptions {
  /** PEM certificate chain and private key */
  cert: Buffer;
  key: Buffer;
  inject: InjectOptions;
  log: Logger;
}

export function createWebhookServer(options: WebhookServerOptions): Server {
  const server = createServer({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      options.log.error({ err }, 'request failed');
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // The API server's own timeout (timeoutSeconds, at most 30 s) is shorter: never keep a stuck client.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: WebhookServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, { error: 'GET /healthz' }, { allow: 'GET, HEAD' });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (path !== '/mutate') return reply(res, 404, { error: `no ${path}; POST /mutate` });
  if (req.method !== 'POST') return reply(res, 405, { error: 'POST /mutate' }, { allow: 'POST' });
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return reply(res, 415, { error: `content-type ${type || '(none)'}; application/json expected` });

  const body = await readBody(req);
  if (body.kind === 'aborted') return options.log.warn('request aborted before its body ended');
  if (body.kind === 'too-large') {
    options.log.warn({ limit: MAX_BODY_BYTES }, 'request body too large');
    return reply(res, 413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
  }
  const parsed = parseReview(body.text);
  if (!parsed.ok) {
    options.log.warn({ error: parsed.error, bytes: Buffer.byteLength(body.text) }, 'malformed admission request');
    return reply(res, 400, { error: parsed.error });
  }
  const { request } = parsed;
  const decision = decide(request, options.inject);
  const pod = podName(request.object);
  if (decision.patch) {
    options.log.info({ uid: request.uid, namespace: request.namespace, pod, containers: decision.containers, volumes: decision.volumes }, 'patched');
  } else {
    options.log.info({ uid: request.uid, namespace: request.namespace, pod, reason: decision.reason }, 'not patched');
  }
  reply(res, 200, admissionResponse(request.uid, decision));
}

type Body = { kind: 'ok'; text: string } | { kind: 'too-large' } | { kind: 'aborted' };

/**
 * The body as text. Past MAX_BODY_BYTES the rest is read and dropped, so that the 413 reaches a client
 * still sending (closing on it would fail its write with EPIPE before it reads the answer); past
 * DISCARD_LIMIT_BYTES the connection is cut.
 */
function readBody(req: IncomingMessage): Promise<Body> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (size > DISCARD_LIMIT_BYTES) req.destroy();
      else chunks.length = 0;
    });
    req.on('end', () => {
      ended = true;
      resolve(size > MAX_BODY_BYTES ? { kind: 'too-large' } : { kind: 'ok', text: Buffer.concat(chunks).toString('utf8') });
    });
    req.on('close', () => {
      if (!ended) resolve({ kind: 'aborted' });
    });
    req.on('error', () => {});
  });
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

function podName(object: unknown): string | undefined {
  const meta = (object as { metadata?: { name?: unknown; generateName?: unknown } } | null)?.metadata;
  if (typeof meta?.name === 'string' && meta.name) return meta.name;
  if (typeof meta?.generateName === 'string' && meta.generateName) return `${meta.generateName}*`;
  return undefined;
}
