// The admission webhook (src/webhook): what it does with AdmissionReview requests in the form the API
// server sends (test/fixtures/admission), what its MutatingWebhookConfiguration's selectors send it, and
// the real server over HTTPS on 127.0.0.1 with a certificate made by deploy/kubernetes/webhook-certs.sh
// (openssl), verified the way the API server verifies it (the CA, the Service's DNS name).

import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Pod as PodModel } from 'kubernetes-models/v1/Pod';
import { admissionResponse, decide, parseReview, type AdmissionRequest, type Injectable } from '../src/webhook/inject.js';
import { DISCARD_LIMIT_BYTES } from '../src/webhook/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/admission');
const WEBHOOK = join(ROOT, 'dist/src/webhook/main.js');
const CERTS_SH = join(ROOT, 'deploy/kubernetes/webhook-certs.sh');
const SERVICE_HOST = 'lxcfs-ts-webhook.lxcfs-ts.svc';

/** The eight /proc files runc lets a container bind over, that lxcfs-ts serves, and the cpu directory. */
const EXPECTED_TARGETS = ['/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg', '/proc/slabinfo', '/sys/devices/system/cpu'];

type Json = any;

const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
function requestOf(name: string): AdmissionRequest {
  const parsed = parseReview(fixture(name));
  if (!parsed.ok) throw new Error(`${name}: ${parsed.error}`);
  return parsed.request;
}

/** RFC 6902 "add" (the only op the webhook emits), written here independently of the webhook. */
function applyPatch(doc: Json, patch: { op: string; path: string; value: unknown }[]): Json {
  const out = structuredClone(doc);
  for (const op of patch) {
    if (op.op !== 'add') throw new Error(`unexpected op ${op.op}`);
    const parts = op.path.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop()!;
    let target = out;
    for (const p of parts) {
      if (target[p] === undefined) throw new Error(`${op.path}: ${p} does not exist`);
      target = target[p];
    }
    if (Array.isArray(target)) {
      if (last === '-') target.push(op.value);
      else target.splice(Number(last), 0, op.value);
    } else {
      if (last in target) throw new Error(`${op.path}: add over an existing member`);
      target[last] = op.value;
    }
  }
  return out;
}

function decodePatch(response: Json): Json[] {
  return JSON.parse(Buffer.from(response.response.patch, 'base64').toString('utf8'));
}

/** Every container (init too) mounts each target once, from a volume the pod has. */
function assertMounted(t: Test, pod: Json, targets: string[] = EXPECTED_TARGETS): void {
  const volumes = new Map<string, Json>((pod.spec.volumes ?? []).map((v: Json) => [v.name, v]));
  t.equal(volumes.size, (pod.spec.volumes ?? []).length, 'volume names are unique');
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    const paths = (c.volumeMounts ?? []).map((m: Json) => m.mountPath);
    t.equal(new Set(paths).size, paths.length, `${c.name}: no mount path twice`);
    for (const target of targets) t.ok(paths.includes(target), `${c.name} mounts ${target}`);
    for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `${c.name}: volume ${m.name} exists`);
  }
}

function hostPathOf(pod: Json, container: Json, target: string): Json {
  const mount = container.volumeMounts.find((m: Json) => m.mountPath === target);
  return pod.spec.volumes.find((v: Json) => v.name === mount.name)?.hostPath;
}

// --- decisions on the recorded requests --------------------------------------------------------------

t.test('every fixture parses as an AdmissionReview v1 request', async (t) => {
  for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
    const parsed = parseReview(fixture(name));
    t.ok(parsed.ok, name);
  }
});

t.test('a pod labelled to opt in: every container and init container gets the files', async (t) => {
  const request = requestOf('pod-label-opt-in.json');
  const decision = decide(request);
  if (!decision.patch) return t.fail(`no patch: ${decision.reason}`);
  t.same(decision.containers, ['app', 'log-shipper', 'migrate']);
  const before = request.object as Json;
  const pod = applyPatch(before, decision.patch);
  assertMounted(t, pod);
  // What the pod had stays where it was: the first mounts of each container, the first volumes.
  pod.spec.containers.forEach((c: Json, i: number) => t.same(c.volumeMounts.slice(0, before.spec.containers[i].volumeMounts.length), before.spec.containers[i].volumeMounts));
  t.same(pod.spec.volumes.slice(0, 2), before.spec.volumes);
  t.equal(pod.spec.volumes.length, 2 + 9);
  const app = pod.spec.containers[0];
  t.same(hostPathOf(pod, app, '/proc/meminfo'), { path: '/var/lib/lxcfs/proc/meminfo', type: 'File' });
  t.same(hostPathOf(pod, app, '/sys/devices/system/cpu'), { path: '/var/lib/lxcfs/sys/devices/system/cpu', type: 'Directory' });
  t.doesNotThrow(() => new PodModel(pod).validate(), 'the patched pod is a valid v1 Pod');
  // Idempotent: the patched pod, sent again (reinvocation, a retried request), gets nothing.
  const again = decide({ ...request, object: pod });
  t.equal(again.patch, null, 'no second patch');
});

t.test('a pod without volumes or mounts (sent because of its namespace): the arrays are added whole', async (t) => {
  const request = requestOf('pod-namespace-opt-in.json');
  const decision = decide(request);
  if (!decision.patch) return t.fail(`no patch: ${decision.reason}`);
  const paths = decision.patch.map((op) => op.path);
  t.same(paths, ['/spec/volumes', '/spec/containers/0/volumeMounts']);
  const pod = applyPatch(request.object, decision.patch);
  assertMounted(t, pod);
  t.equal(pod.spec.volumes.length, 9);
  t.doesNotThrow(() => new PodModel(pod).validate());
});

t.test('a pod that already has the mounts gets no patch', async (t) => {
  const decision = decide(requestOf('pod-already-patched.json'));
  t.equal(decision.patch, null);
  const response = admissionResponse('u1', decision) as Json;
  t.same(response, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u1', allowed: true } });
});

t.test('a pod mounting /proc/meminfo itself keeps its mount and gets the other eight', async (t) => {
  const request = requestOf('pod-lxcfs-meminfo.json');
  const decision = decide(request);
  if (!decision.patch) return t.fail(`no patch: ${decision.reason}`);
  const pod = applyPatch(request.object, decision.patch);
  assertMounted(t, pod);
  const app = pod.spec.containers[0];
  t.equal(app.volumeMounts.filter((m: Json) => m.mountPath === '/proc/meminfo').length, 1);
  t.equal(app.volumeMounts.find((m: Json) => m.mountPath === '/proc/meminfo').name, 'lxcfs-meminfo');
  t.notOk(pod.spec.volumes.some((v: Json) => v.name === 'lxcfs-ts-proc-meminfo'), 'no unused volume for meminfo');
  t.equal(pod.spec.volumes.length, 2 + 8);
});

t.test('pods that are never patched', async (t) => {
  const cases: [string, RegExp][] = [
    ['pod-opted-out.json', /opted out/],
    ['daemonset-pod.json', /lxcfs-ts pod/],
    ['pod-update.json', /only CREATE/],
  ];
  for (const [name, reason] of cases) {
    const decision = decide(requestOf(name));
    t.equal(decision.patch, null, name);
    if (!decision.patch) t.match(decision.reason, reason, name);
  }
  const notPod = { ...requestOf('pod-label-opt-in.json'), kind: { group: 'apps', version: 'v1', kind: 'Deployment' } };
  t.equal(decide(notPod).patch, null, 'a Deployment');
  const eviction = { ...requestOf('pod-label-opt-in.json'), subResource: 'ephemeralcontainers' };
  t.equal(decide(eviction).patch, null, 'a subresource');
});

t.test('a pod it cannot read: allowed, no patch, a warning for the user', async (t) => {
  const request = { ...requestOf('pod-label-opt-in.json'), object: { spec: { containers: 'app' } } };
  const decision = decide(request);
  t.equal(decision.patch, null);
  const response = admissionResponse(request.uid, decision) as Json;
  t.equal(response.response.allowed, true);
  t.match(response.response.warnings[0], /could not be read/);
});

t.test('--host-dir and --files shape the patch', async (t) => {
  const files: Injectable[] = ['proc/meminfo', 'sys/devices/system/cpu'];
  const request = requestOf('pod-namespace-opt-in.json');
  const decision = decide(request, { hostDir: '/srv/lxcfs', files });
  if (!decision.patch) return t.fail('no patch');
  const pod = applyPatch(request.object, decision.patch);
  assertMounted(t, pod, ['/proc/meminfo', '/sys/devices/system/cpu']);
  t.same(pod.spec.volumes.map((v: Json) => v.hostPath.path), ['/srv/lxcfs/proc/meminfo', '/srv/lxcfs/sys/devices/system/cpu']);
});

t.test('malformed bodies are refused with the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /not JSON/],
    ['{"apiVersion":', /not JSON/],
    ['[]', /AdmissionReview/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }), /apiVersion/],
    [fixture('pod-label-opt-in.json').replace(/"uid": "b6f5c0a2[^"]*"/, '"uid": ""'), /request\.uid/],
    [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request/],
  ];
  for (const [body, error] of cases) {
    const parsed = parseReview(body);
    t.equal(parsed.ok, false, body.slice(0, 40));
    if (!parsed.ok) t.match(parsed.error, error);
  }
});

// --- which pods the API server sends (webhook.yaml's selectors) ------------------------------------

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A Kubernetes label selector (LabelSelector: matchLabels AND every matchExpression). */
function matches(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok =
      e.operator === 'In' ? has && e.values!.includes(labels[e.key]!)
      : e.operator === 'NotIn' ? !has || !e.values!.includes(labels[e.key]!)
      : e.operator === 'Exists' ? has
      : e.operator === 'DoesNotExist' ? !has
      : (() => { throw new Error(`operator ${e.operator}`); })();
    if (!ok) return false;
  }
  return true;
}

t.test("the configuration's selectors send the opted-in pods, once, and no others", async (t) => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/webhook.yaml'), 'utf8')).map((d) => d.toJS() as Json);
  const config = docs.find((d) => d.kind === 'MutatingWebhookConfiguration');
  const webhooks: Json[] = config.webhooks;
  const called = (namespace: string, nsLabels: Record<string, string>, podLabels: Record<string, string>): string[] =>
    webhooks
      .filter((w) => matches(w.namespaceSelector, { 'kubernetes.io/metadata.name': namespace, ...nsLabels }) && matches(w.objectSelector, podLabels))
      .map((w) => w.name);
  const on = { 'lxcfs-ts.io/inject': 'true' };
  const off = { 'lxcfs-ts.io/inject': 'false' };
  t.same(called('shop', {}, {}), [], 'neither the namespace nor the pod opted in');
  t.same(called('shop', {}, { app: 'web' }), [], 'other labels');
  t.equal(called('shop', {}, on).length, 1, 'the pod opted in');
  t.equal(called('batch', on, {}).length, 1, 'the namespace opted in');
  t.equal(called('batch', on, on).length, 1, 'both: one call, not two');
  t.same(called('batch', on, off), [], 'the namespace opted in, the pod out');
  t.same(called('lxcfs-ts', {}, { 'app.kubernetes.io/name': 'lxcfs-ts', 'lxcfs-ts.io/inject': 'false' }), [], 'the DaemonSet pod');
  t.same(called('lxcfs-ts', {}, on), [], "lxcfs-ts's namespace, even with the label");
  t.same(called('lxcfs-ts', on, { 'app.kubernetes.io/name': 'lxcfs-ts' }), [], 'its own pods even if its namespace were labelled');
  for (const w of webhooks) {
    t.equal(w.failurePolicy, 'Ignore', `${w.name}: failurePolicy Ignore`);
    t.same(w.rules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
    t.equal(w.clientConfig.service.path, '/mutate');
  }
});

// --- the real server over HTTPS --------------------------------------------------------------------

const haveOpenssl = spawnSync('sh', ['-c', 'command -v openssl']).status === 0;
if (!haveOpenssl) process.stderr.write('webhook.test.ts: HTTPS round trip skipped: openssl is not installed (apt-get install openssl)\n');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peerCert: string;
}

function call(port: number, ca: Buffer, opts: { method?: string; path?: string; body?: string | Buffer; contentType?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: SERVICE_HOST, // verified against the certificate's subjectAltName, as the API server does
        ca,
        agent: false,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/mutate',
        headers: opts.body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {},
      },
      (res) => {
        const peerCert = createHash('sha256').update(res.socket && 'getPeerCertificate' in res.socket ? (res.socket as import('node:tls').TLSSocket).getPeerCertificate().raw : Buffer.alloc(0)).digest('hex');
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, peerCert }));
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** The webhook as a child process; resolves log lines by predicate as they arrive. */
function startWebhook(args: string[]): { child: ChildProcess; logs: Json[]; waitLog: (pred: (l: Json) => boolean) => Promise<Json>; stderr: () => string } {
  const child = spawn(process.execPath, [WEBHOOK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Json[] = [];
  const waiters: { pred: (l: Json) => boolean; resolve: (l: Json) => void }[] = [];
  let buf = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line);
      logs.push(entry);
      for (const w of waiters.splice(0)) {
        if (w.pred(entry)) w.resolve(entry);
        else waiters.push(w);
      }
    }
  });
  const waitLog = (pred: (l: Json) => boolean): Promise<Json> => {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ pred, resolve });
      child.once('exit', (code) => reject(new Error(`webhook exited (${code}) before the log line: ${err}`)));
    });
  };
  return { child, logs, waitLog, stderr: () => err };
}

function certFingerprint(file: string): string {
  return createHash('sha256').update(new X509Certificate(readFileSync(file)).raw).digest('hex');
}

t.test('HTTPS round trip on 127.0.0.1', { skip: haveOpenssl ? false : 'openssl not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-webhook-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certs = join(dir, 'certs');
  const made = spawnSync('sh', [CERTS_SH, certs], { encoding: 'utf8' });
  t.equal(made.status, 0, `webhook-certs.sh: ${made.stderr}`);
  t.match(made.stdout, /kubectl -n lxcfs-ts create secret tls lxcfs-ts-webhook-tls/);
  t.match(made.stdout, /caBundle/);
  const ca = readFileSync(join(certs, 'ca.crt'));

  const hook = startWebhook(['--cert', join(certs, 'tls.crt'), '--key', join(certs, 'tls.key'), '--address', '127.0.0.1', '--port', '0']);
  t.teardown(() => {
    if (hook.child.exitCode === null) hook.child.kill('SIGKILL');
  });
  const listening = await hook.waitLog((l) => l.msg === 'listening');
  const port: number = listening.address.port;

  const health = await call(port, ca, { method: 'GET', path: '/healthz' });
  t.equal(health.status, 200);
  t.equal(health.body, 'ok\n');
  t.equal(health.peerCert, certFingerprint(join(certs, 'tls.crt')), 'the server presents the certificate made by webhook-certs.sh');

  // A request to patch: the response carries the uid and a JSONPatch that gives every container the files.
  const body = fixture('pod-label-opt-in.json');
  const patched = await call(port, ca, { body });
  t.equal(patched.status, 200);
  t.equal(patched.headers['content-type'], 'application/json');
  const review = JSON.parse(patched.body);
  t.equal(review.apiVersion, 'admission.k8s.io/v1');
  t.equal(review.kind, 'AdmissionReview');
  t.equal(review.response.uid, JSON.parse(body).request.uid);
  t.equal(review.response.allowed, true);
  t.equal(review.response.patchType, 'JSONPatch');
  assertMounted(t, applyPatch(JSON.parse(body).request.object, decodePatch(review)));
  await hook.waitLog((l) => l.msg === 'patched' && l.uid === review.response.uid && l.namespace === 'shop' && l.pod === 'web-7d9c6b8f5d-*');

  // Requests that get no patch are still allowed.
  for (const name of ['pod-already-patched.json', 'pod-opted-out.json', 'daemonset-pod.json', 'pod-update.json']) {
    const r = await call(port, ca, { body: fixture(name) });
    t.equal(r.status, 200, name);
    const resp = JSON.parse(r.body).response;
    t.same({ allowed: resp.allowed, patch: resp.patch }, { allowed: true, patch: undefined }, name);
  }

  // Malformed requests: an HTTP error each, and the server goes on.
  const bad: [Parameters<typeof call>[2], number][] = [
    [{ body: 'not json' }, 400],
    [{ body: '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}' }, 400],
    [{ body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: JSON.parse(body).request }) }, 400],
    [{ body, contentType: 'text/plain' }, 415],
    [{ method: 'GET' }, 405],
    [{ path: '/', body }, 404],
    [{ body: Buffer.alloc(9 * 1024 * 1024, 0x20) }, 413],
  ];
  for (const [opts, status] of bad) {
    const r = await call(port, ca, opts);
    t.equal(r.status, status, `${opts.method ?? 'POST'} ${opts.path ?? '/mutate'} ${String(opts.body ?? '').slice(0, 30)} -> ${status}`);
    if (status === 400) t.match(JSON.parse(r.body).error, /JSON|AdmissionReview/);
  }
  // Past four times the limit the server stops reading and cuts the connection.
  const cut = await call(port, ca, { body: Buffer.alloc(DISCARD_LIMIT_BYTES + 1024 * 1024, 0x20) }).then(
    (r) => `answered ${r.status}`,
    (err: NodeJS.ErrnoException) => err.code,
  );
  t.match(cut, /^(ECONNRESET|EPIPE)$/, `a body past ${DISCARD_LIMIT_BYTES} bytes: connection cut (${cut})`);
  t.equal((await call(port, ca, { method: 'GET', path: '/healthz' })).status, 200, 'still serving after the bad requests');

  // A renewed certificate (same CA) is served after SIGHUP, without a restart.
  const before = certFingerprint(join(certs, 'tls.crt'));
  t.equal(spawnSync('sh', [CERTS_SH, certs]).status, 0);
  const after = certFingerprint(join(certs, 'tls.crt'));
  t.not(after, before, 'a new certificate');
  hook.child.kill('SIGHUP');
  await hook.waitLog((l) => l.msg?.startsWith('SIGHUP: certificate and key read again'));
  const renewed = await call(port, ca, { method: 'GET', path: '/healthz' });
  t.equal(renewed.peerCert, after, 'the renewed certificate is presented');

  const exited = new Promise<number | null>((resolve) => hook.child.once('exit', (code) => resolve(code)));
  hook.child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exits 0');
});

t.test('command line errors exit 2 with one line', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /--cert and --key are required/],
    [['--cert', 'a', '--key', 'b', '--files', 'proc/meminfo,proc/pressure/cpu'], /proc\/pressure\/cpu cannot be mounted/],
    [['--cert', 'a', '--key', 'b', '--port', '70000'], /--port/],
    [['--cert', 'a', '--key', 'b', '--host-dir', 'var/lib/lxcfs'], /absolute path/],
    [['--bogus'], /bogus/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [WEBHOOK, ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, args.join(' '));
    t.match(r.stderr, message);
    t.equal(r.stderr.trim().split('\n').length, 1);
  }
  const missing = spawnSync(process.execPath, [WEBHOOK, '--cert', '/nonexistent/tls.crt', '--key', '/nonexistent/tls.key'], { encoding: 'utf8' });
  t.equal(missing.status, 1, 'unreadable certificate: exit 1');
  t.match(missing.stderr, /ENOENT/);
  const help = spawnSync(process.execPath, [WEBHOOK, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /--cert FILE/);
});
