// deploy/kubernetes: every manifest validates against the Kubernetes OpenAPI schemas (the kubernetes-models
// package's validators, offline), with no field the schemas do not know (kubectl's strict field
// validation), and the files agree with each other, with the Dockerfile, lxcfs-ts-pod, webhook-certs.sh,
// the webhook's patch and package.json's version.

import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { decide, type AdmissionRequest } from '../src/webhook/inject.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy/kubernetes');
const MANIFESTS = ['daemonset.yaml', 'pod-example.yaml', 'webhook.yaml'];
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

type Json = any;

interface Model {
  validate(): void;
}
const MODELS: Record<string, new (data: Json) => Model> = {
  'v1/Namespace': Namespace,
  'v1/Pod': Pod,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
};

function load(file: string): Json[] {
  return parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return d.toJS();
  });
}
const all = Object.fromEntries(MANIFESTS.map((f) => [f, load(f)]));
const find = (file: string, kind: string): Json => all[file]!.find((d: Json) => d.kind === kind);

/** The schema's errors for a document (empty: valid). */
function schemaErrors(doc: Json): { instancePath: string; message?: string }[] {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) return [{ instancePath: '', message: `no schema for ${doc.apiVersion} ${doc.kind}` }];
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return (err as { errors?: { instancePath: string; message?: string }[] }).errors ?? [{ instancePath: '', message: String(err) }];
  }
}

/**
 * Fields the schema does not know. The OpenAPI schemas leave additionalProperties open, so a typo
 * ("mountPropogation") validates; the API server's strict field validation refuses it. A field is known
 * when giving it a value of the wrong type (a number, a string, a boolean: one of them is wrong for every
 * typed field, int-or-string and quantities included) makes the schema report an error at that field.
 */
function unknownFields(doc: Json): string[] {
  const unknown: string[] = [];
  const probes = [12345, 'probe', true];
  const walk = (value: Json, path: (string | number)[]): void => {
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, [...path, i]));
    if (value === null || typeof value !== 'object') return;
    for (const key of Object.keys(value)) {
      const at = [...path, key];
      const pointer = '/' + at.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
      // apiVersion and kind choose the schema (MODELS) rather than being checked by it.
      const known = (path.length === 0 && (key === 'apiVersion' || key === 'kind')) || probes.some((probe) => {
        if (probe === value[key]) return false;
        const copy = structuredClone(doc);
        let target = copy;
        for (const p of path) target = target[p];
        target[key] = probe;
        return schemaErrors(copy).some((e) => e.instancePath === pointer || e.instancePath.startsWith(pointer + '/'));
      });
      if (known) walk(value[key], at);
      else unknown.push(pointer);
    }
  };
  walk(doc, []);
  return unknown;
}

t.test('every manifest validates against the Kubernetes schemas, strictly', async (t) => {
  for (const [file, docs] of Object.entries(all)) {
    t.ok(docs.length > 0, `${file} has documents`);
    for (const doc of docs) {
      const name = `${file}: ${doc.kind} ${doc.metadata?.name}`;
      t.same(schemaErrors(doc), [], `${name} validates`);
      t.same(unknownFields(doc), [], `${name} has no unknown field`);
    }
  }
});

t.test('the checker refuses what the API server refuses', async (t) => {
  const ds = structuredClone(find('daemonset.yaml', 'DaemonSet'));
  const mount = ds.spec.template.spec.containers[0].volumeMounts[0];
  mount.mountPropogation = mount.mountPropagation;
  delete mount.mountPropagation;
  t.same(unknownFields(ds), ['/spec/template/spec/containers/0/volumeMounts/0/mountPropogation'], 'a misspelt field');
  const bad = structuredClone(find('daemonset.yaml', 'DaemonSet'));
  bad.spec.updateStrategy.type = 'Sometimes';
  t.match(schemaErrors(bad), [{ instancePath: '/spec/updateStrategy/type' }], 'a value outside an enum');
  const missing = structuredClone(find('webhook.yaml', 'MutatingWebhookConfiguration'));
  delete missing.webhooks[0].sideEffects;
  t.match(schemaErrors(missing), [{ instancePath: '/webhooks/0' }], 'a required field missing');
});

t.test('the DaemonSet', async (t) => {
  const ds = find('daemonset.yaml', 'DaemonSet');
  const ns = find('daemonset.yaml', 'Namespace');
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  t.equal(ns.metadata.name, ds.metadata.namespace);
  t.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged', 'Pod Security admits a privileged pod');
  t.equal(ds.spec.updateStrategy.type, 'OnDelete');
  t.equal(pod.hostPID, true);
  t.equal(c.securityContext.privileged, true);
  t.equal(c.image, `registry.example.com/lxcfs-ts:${VERSION}`, 'the image tag is the version');
  t.equal(ds.spec.template.metadata.labels['lxcfs-ts.io/inject'], 'false', 'never injected');
  t.equal(ds.spec.template.metadata.labels['app.kubernetes.io/name'], 'lxcfs-ts');
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'requests and a memory limit');

  // The FUSE mount reaches the node: a Bidirectional volume whose subdirectory lxcfs is the mountpoint.
  const bidirectional = c.volumeMounts.filter((m: Json) => m.mountPropagation === 'Bidirectional');
  t.equal(bidirectional.length, 1);
  const volume = pod.volumes.find((v: Json) => v.name === bidirectional[0].name);
  t.same(volume.hostPath, { path: '/var/lib', type: 'Directory' });
  const script = readFileSync(join(DEPLOY, 'lxcfs-ts-pod'), 'utf8');
  const mountpoint = /^MOUNTPOINT=\$\{LXCFS_TS_MOUNTPOINT:-(.+)\}$/m.exec(script)?.[1];
  t.equal(mountpoint, `${bidirectional[0].mountPath}/lxcfs`, "lxcfs-ts-pod's mountpoint is the volume's subdirectory lxcfs");

  // Probes read a served file with a bounded cat.
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    t.same(c[probe].exec.command, ['timeout', '-s', 'KILL', '4', 'cat', `${mountpoint}/proc/meminfo`], probe);
    t.ok(c[probe].timeoutSeconds > 4, `${probe}: its timeout outlasts the cat's`);
  }
  t.same(c.lifecycle.preStop.exec.command, ['/usr/local/bin/lxcfs-ts-pod', 'stop']);
  t.ok(pod.terminationGracePeriodSeconds >= 10);
  const pidfile = /^PIDFILE=\$\{LXCFS_TS_PIDFILE:-(.+)\}$/m.exec(script)?.[1];
  t.ok(c.volumeMounts.some((m: Json) => pidfile?.startsWith(m.mountPath + '/')), 'the pid file is on a volume that survives restarts');

  // The image: the entry point and the preStop path are lxcfs-ts-pod; the daemon's options are args.
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  t.match(dockerfile, /^COPY deploy\/kubernetes\/lxcfs-ts-pod \/usr\/local\/bin\/lxcfs-ts-pod$/m);
  t.match(dockerfile, /^ENTRYPOINT \["\/usr\/local\/bin\/lxcfs-ts-pod"\]$/m);
  t.notOk(c.command, 'no command: the entry point runs');
  const help = spawnSync(process.execPath, [join(ROOT, 'dist/src/daemon/main.js'), '--help'], { encoding: 'utf8' }).stdout;
  for (const arg of c.args) if (arg.startsWith('-')) t.ok(help.includes(` ${arg}`), `the daemon knows ${arg}`);
});

t.test('the pod example has what the webhook adds', async (t) => {
  const example = find('pod-example.yaml', 'Pod');
  const bare = structuredClone(example);
  bare.spec.volumes = undefined;
  bare.spec.containers[0].volumeMounts = undefined;
  const request = { uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: bare } as AdmissionRequest;
  const decision = decide(request);
  if (!decision.patch) return t.fail('no patch');
  const byPath = Object.fromEntries(decision.patch.map((op) => [op.path, op.value]));
  t.same(example.spec.volumes, byPath['/spec/volumes']);
  t.same(example.spec.containers[0].volumeMounts, byPath['/spec/containers/0/volumeMounts']);
  t.equal(example.spec.volumes.length, 9, 'eight /proc files and the cpu directory');
  const ds = find('daemonset.yaml', 'DaemonSet');
  const hostVarLib = ds.spec.template.spec.volumes.find((v: Json) => v.hostPath.path === '/var/lib');
  t.ok(hostVarLib, 'the DaemonSet serves the node path the pods mount (/var/lib + /lxcfs)');
  for (const v of example.spec.volumes) t.match(v.hostPath.path, /^\/var\/lib\/lxcfs\//);
});

t.test('the webhook manifests fit together', async (t) => {
  const deployment = find('webhook.yaml', 'Deployment');
  const service = find('webhook.yaml', 'Service');
  const config = find('webhook.yaml', 'MutatingWebhookConfiguration');
  const sa = find('webhook.yaml', 'ServiceAccount');
  const c = deployment.spec.template.spec.containers[0];
  t.equal(c.image, find('daemonset.yaml', 'DaemonSet').spec.template.spec.containers[0].image, 'the same image as the DaemonSet');
  t.same(c.command, ['node', '/opt/lxcfs-ts/dist/src/webhook/main.js']);
  t.ok(existsSync(join(ROOT, 'dist/src/webhook/main.js')), 'the entry point is built where the image has /opt/lxcfs-ts');
  const arg = (name: string): string => c.args[c.args.indexOf(name) + 1];
  t.equal(Number(arg('--port')), c.ports[0].containerPort);
  t.equal(arg('--host-dir'), '/var/lib/lxcfs');
  t.equal(service.spec.ports[0].targetPort, c.ports[0].name);
  t.same(service.spec.selector, deployment.spec.selector.matchLabels);
  t.equal(deployment.spec.template.metadata.labels['lxcfs-ts.io/inject'], 'false');
  t.equal(deployment.spec.template.spec.serviceAccountName, sa.metadata.name);
  t.equal(c.securityContext.readOnlyRootFilesystem, true);
  t.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
  // TLS: the Secret webhook-certs.sh makes, mounted where --cert and --key point.
  const tls = deployment.spec.template.spec.volumes.find((v: Json) => v.secret);
  const certsScript = readFileSync(join(DEPLOY, 'webhook-certs.sh'), 'utf8');
  t.match(certsScript, /create secret tls \$SERVICE-tls/);
  t.match(certsScript, /^SERVICE=\$\{SERVICE:-lxcfs-ts-webhook\}$/m);
  t.equal(tls.secret.secretName, `${service.metadata.name}-tls`);
  const mount = c.volumeMounts.find((m: Json) => m.name === tls.name);
  t.equal(arg('--cert'), `${mount.mountPath}/tls.crt`);
  t.equal(arg('--key'), `${mount.mountPath}/tls.key`);
  t.equal(config.webhooks.length, 2);
  config.webhooks.forEach((w: Json, i: number) => {
    t.same(w.clientConfig.service, { name: service.metadata.name, namespace: service.metadata.namespace, path: '/mutate', port: service.spec.ports[0].port });
    t.match(certsScript, `/webhooks/${i}/clientConfig/caBundle`, `webhook-certs.sh sets webhook ${i}'s caBundle`);
  });
});

t.test('the shell scripts parse', async (t: Test) => {
  for (const [shell, file] of [['sh', 'lxcfs-ts-pod'], ['sh', 'webhook-certs.sh'], ['bash', 'test-docker.sh']] as const) {
    const r = spawnSync(shell, ['-n', join(DEPLOY, file)], { encoding: 'utf8' });
    t.equal(r.status, 0, `${shell} -n ${file} ${r.stderr}`);
  }
});
