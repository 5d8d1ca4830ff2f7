// What the mutating admission webhook adds to a pod, as a pure function of the AdmissionReview the API
// server sends: hostPath volumes for the files lxcfs-ts serves on every node and, in each container, a
// volumeMount of each over the container's own /proc file (docs/kubernetes.md, "Admission webhook").
//
// Which pods reach the webhook is decided by the API server from the MutatingWebhookConfiguration's
// namespaceSelector and objectSelector (deploy/kubernetes/webhook.yaml): namespace labels are not in the
// AdmissionReview, so this code patches every pod it is sent, except pods that opt out with the label
// (checked here too, in case a configuration omits the objectSelector) and lxcfs-ts's own pods.

import { z } from 'zod';

/** Label on a namespace or pod: "true" opts in (through the configuration's selectors), "false" opts out. */
export const INJECT_LABEL = 'lxcfs-ts.io/inject';
/** lxcfs-ts's own pods (daemon, webhook) carry this label with the value "lxcfs-ts" and are never patched. */
export const NAME_LABEL = 'app.kubernetes.io/name';
export const OWN_NAME = 'lxcfs-ts';

/** Where the DaemonSet's FUSE mount is on every node. */
export const DEFAULT_HOST_DIR = '/var/lib/lxcfs';

/**
 * The served paths a pod can take, relative to the mountpoint: runc refuses bind mounts inside /proc
 * except onto a fixed list of files (libcontainer/rootfs_linux.go, checkProcMount), of which lxcfs-ts
 * serves these eight; /proc/pressure/* is not on it, so a pod given those would fail to start.
 */
export const INJECTABLE = [
  'proc/cpuinfo',
  'proc/diskstats',
  'proc/meminfo',
  'proc/stat',
  'proc/swaps',
  'proc/uptime',
  'proc/loadavg',
  'proc/slabinfo',
  'sys/devices/system/cpu',
] as const;
export type Injectable = (typeof INJECTABLE)[number];

export interface InjectOptions {
  /** the DaemonSet's mountpoint on the node (default /var/lib/lxcfs) */
  hostDir: string;
  /** which served paths to mount (default: all of INJECTABLE) */
  files: readonly Injectable[];
}

export const DEFAULT_OPTIONS: InjectOptions = { hostDir: DEFAULT_HOST_DIR, files: INJECTABLE };

/** The volume name a served path gets in the pod: "lxcfs-ts-proc-meminfo", "lxcfs-ts-sys-devices-system-cpu". */
export function volumeName(file: Injectable): string {
  return `lxcfs-ts-${file.replaceAll('/', '-')}`;
}

/** The hostPath volume for a served path. `File`/`Directory` make the kubelet hold the pod (rather than
 * start it with the node's own files or with a directory it created) while lxcfs-ts is not serving. */
export function volumeFor(file: Injectable, hostDir: string): HostPathVolume {
  return {
    name: volumeName(file),
    hostPath: { path: `${hostDir.replace(/\/+$/, '')}/${file}`, type: file.startsWith('proc/') ? 'File' : 'Directory' },
  };
}

export interface HostPathVolume {
  name: string;
  hostPath: { path: string; type: 'File' | 'Directory' };
}

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

// --- the AdmissionReview -----------------------------------------------------------------------------

const volumeMountSchema = z.looseObject({ name: z.string(), mountPath: z.string() });
const containerSchema = z.looseObject({ name: z.string(), volumeMounts: z.array(volumeMountSchema).nullish() });
const podSchema = z.looseObject({
  metadata: z
    .looseObject({
      name: z.string().nullish(),
      generateName: z.string().nullish(),
      labels: z.record(z.string(), z.string()).nullish(),
    })
    .nullish(),
  spec: z.looseObject({
    containers: z.array(containerSchema),
    initContainers: z.array(containerSchema).nullish(),
    volumes: z.array(z.looseObject({ name: z.string() })).nullish(),
  }),
});
export type Pod = z.infer<typeof podSchema>;

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const requestSchema = z.looseObject({
  uid: z.string().min(1),
  kind: groupVersionKind,
  operation: z.string(),
  subResource: z.string().nullish(),
  namespace: z.string().nullish(),
  name: z.string().nullish(),
  object: z.unknown(),
});
const reviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: requestSchema,
});
export type AdmissionRequest = z.infer<typeof requestSchema>;

/** Parse a request body: the AdmissionReview's request, or why it is not one (an HTTP 400). */
export function parseReview(body: string): { ok: true; request: AdmissionRequest } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { ok: false, error: `body is not JSON: ${(err as Error).message}` };
  }
  const parsed = reviewSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `not an admission.k8s.io/v1 AdmissionReview request: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}` };
  }
  return { ok: true, request: parsed.data.request };
}

// --- the decision ------------------------------------------------------------------------------------

export type Decision =
  | { patch: JsonPatchOp[]; containers: string[]; volumes: string[] }
  | { patch: null; reason: string; warning?: string };

/** What to do with one admission request: a JSONPatch, or no patch and why. Never throws. */
export function decide(request: AdmissionRequest, options: InjectOptions = DEFAULT_OPTIONS): Decision {
  const { group, version, kind } = request.kind;
  if (group !== '' || version !== 'v1' || kind !== 'Pod') return { patch: null, reason: `not a pod (${group || 'core'}/${version} ${kind})` };
  if (request.operation !== 'CREATE') return { patch: null, reason: `operation ${request.operation}, only CREATE is patched` };
  if (request.subResource) return { patch: null, reason: `subresource ${request.subResource}` };
  const parsed = podSchema.safeParse(request.object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const why = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
    return { patch: null, reason: `unreadable pod (${why})`, warning: `lxcfs-ts: the pod could not be read (${why}); no lxcfs-ts volumes added` };
  }
  const pod = parsed.data;
  const labels = pod.metadata?.labels ?? {};
  if (labels[INJECT_LABEL] === 'false') return { patch: null, reason: `opted out (${INJECT_LABEL}=false)` };
  if (labels[NAME_LABEL] === OWN_NAME) return { patch: null, reason: `an lxcfs-ts pod (${NAME_LABEL}=${OWN_NAME})` };
  return patchFor(pod, options);
}

/**
 * The JSONPatch (RFC 6902) that gives every container of `pod` (init containers too) a mount of each
 * served path, and the pod the volumes those mounts need. Idempotent: a container that already has a
 * mount on a path gets none there (whatever its volume), a volume already present by name is not added
 * again, so a pod patched before (or given the volumes by hand) gets an empty patch.
 */
export function patchFor(pod: Pod, options: InjectOptions): Decision {
  const patch: JsonPatchOp[] = [];
  const needed = new Set<Injectable>();
  const containers: string[] = [];
  const lists = [
    ['containers', pod.spec.containers],
    ['initContainers', pod.spec.initContainers ?? []],
  ] as const;
  for (const [field, list] of lists) {
    list.forEach((container, index) => {
      const mounted = new Set((container.volumeMounts ?? []).map((m) => normalizePath(m.mountPath)));
      const mounts = options.files
        .filter((file) => !mounted.has(`/${file}`))
        .map((file) => {
          needed.add(file);
          return { name: volumeName(file), mountPath: `/${file}` };
        });
      if (mounts.length === 0) return;
      containers.push(container.name);
      const base = `/spec/${field}/${index}/volumeMounts`;
      if (container.volumeMounts == null) patch.push({ op: 'add', path: base, value: mounts });
      else for (const m of mounts) patch.push({ op: 'add', path: `${base}/-`, value: m });
    });
  }
  const present = new Set((pod.spec.volumes ?? []).map((v) => v.name));
  const volumes = options.files.filter((f) => needed.has(f) && !present.has(volumeName(f))).map((f) => volumeFor(f, options.hostDir));
  if (volumes.length > 0) {
    if (pod.spec.volumes == null) patch.unshift({ op: 'add', path: '/spec/volumes', value: volumes });
    else patch.unshift(...volumes.map((v) => ({ op: 'add' as const, path: '/spec/volumes/-', value: v })));
  }
  if (patch.length === 0) return { patch: null, reason: 'already has every lxcfs-ts mount' };
  return { patch, containers, volumes: volumes.map((v) => v.name) };
}

function normalizePath(p: string): string {
  return '/' + p.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

/** The AdmissionReview v1 response for a decision: always allowed (this webhook only adds). */
export function admissionResponse(uid: string, decision: Decision): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: true };
  if (decision.patch) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(decision.patch)).toString('base64');
  } else if (decision.warning) {
    response.warnings = [decision.warning];
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
