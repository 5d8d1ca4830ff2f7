// Counting containers' threads on a worker thread, for the loadavg sampler's 5 s tick (-l). A tick reads
// one /proc/<pid>/task/<tid>/stat per thread of every watched container: with hundreds of containers that
// is thousands of reads. On the serving thread, even cut into slices, that work arrives as one burst every
// 5 s and delays every container's open at once; here it runs on its own thread (the second CPU when
// there is one) and the serving thread only folds the counts. LXCFS does the same with a pthread of its
// own (proc_loadavg.c, load_begin).
//
// The worker exists only while the sampler has containers to count: `warm()` (a container is watched)
// starts it, `close()` ends it. Until it has loaded and said so (`ready`), ticks count on the serving
// thread as before, so a slow start (a loaded machine, an emulated one) never delays a tick. The same file is the worker's entry point (below), so the daemon, the
// transpiled tests and the tests on .ts sources all start it the same way.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { CgroupReader } from 'node-cgroups-parser';
import { countThreads, MAX_COUNTED_THREADS, threadsUnder } from './tasks.js';

/** One container to count: its cgroup directory (cpu controller) and the hierarchy's version. */
export interface CountJob {
  dir: string;
  version: 1 | 2;
}

/** What a tick needs of one container; `gone` when its cgroup directory no longer exists. */
export type ContainerCount =
  | { gone: true }
  | {
      gone: false;
      /** threads in state R */
      running: number;
      /** threads in state R or D (what the kernel's load average counts) */
      active: number;
      /** threads found (at most MAX_COUNTED_THREADS) */
      total: number;
      /** the newest thread's id in the container's own pid namespace (0 for none) */
      lastPid: number;
    };

/** Where the worker finds /proc and cgroup files (the reader's own roots: fixtures in tests). */
interface Roots {
  procRoot: string;
  fsRoot: string;
}

interface Request {
  id: number;
  jobs: CountJob[];
}

interface Reply {
  id: number;
  counts?: ContainerCount[];
  error?: string;
  /** the worker's first message: it has loaded and takes requests */
  ready?: true;
}

const WORKER_KIND = 'lxcfs-ts thread count';

/** The newest thread's id as the container numbers it (the last NSpid field), else the host's. */
export function lastPidOf(reader: CgroupReader, newest: number): number {
  if (!newest) return 0;
  const nspid = reader.readProcStatus(newest)?.nspid;
  return nspid?.[nspid.length - 1] ?? newest;
}

/** Count one container's threads now, on the calling thread (the worker's body; also usable inline). */
export function countContainer(reader: CgroupReader, job: CountJob, exists: (dir: string) => boolean = existsSync): ContainerCount {
  const threads = threadsUnder(job.dir, job.version, MAX_COUNTED_THREADS, reader.procRoot);
  if (threads.length === 0 && !exists(job.dir)) return { gone: true };
  const counts = countThreads(threads);
  return { gone: false, running: counts.running, active: counts.running + counts.blocked, total: threads.length, lastPid: lastPidOf(reader, counts.newest) };
}

/**
 * The serving thread's handle on the worker. `count` resolves with one ContainerCount per job, in order,
 * or rejects when the worker fails or exits (the caller then counts on its own thread).
 */
export class ThreadCountWorker {
  private worker: Worker | undefined;
  private isReady = false;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (counts: ContainerCount[]) => void; reject: (err: Error) => void }>();

  constructor(private readonly roots: Roots) {}

  /** Whether a worker thread exists now (tests, status). */
  get alive(): boolean {
    return this.worker !== undefined;
  }

  /** Whether the worker has loaded and answers without delay. */
  get ready(): boolean {
    return this.worker !== undefined && this.isReady;
  }

  /** Start the worker now if there is none, so that it is ready by the next tick. */
  warm(): void {
    if (!this.worker) this.spawn();
  }

  count(jobs: CountJob[]): Promise<ContainerCount[]> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, jobs } satisfies Request);
    });
  }

  /**
   * End the worker; pending counts reject. One still loading is ended once it says it is ready (or exits
   * by itself): terminated in the middle of loading its modules, a worker was seen to leave a descriptor
   * of a module file open in the daemon for good (the reliability suite's churn test).
   */
  close(): void {
    const worker = this.worker;
    if (!worker) return;
    const loaded = this.isReady;
    this.worker = undefined;
    this.isReady = false;
    this.failAll(new Error('the thread-count worker was closed'));
    if (loaded) void worker.terminate();
  }

  private spawn(): Worker {
    const worker = new Worker(new URL(import.meta.url), { workerData: { kind: WORKER_KIND, roots: this.roots } });
    // Never keeps the daemon alive on its own: SIGTERM's unmount decides when the process ends.
    worker.unref();
    worker.on('message', (reply: Reply) => {
      if (reply.ready) {
        if (this.worker === worker) this.isReady = true;
        else void worker.terminate(); // closed while it was loading
        return;
      }
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (reply.counts) waiting.resolve(reply.counts);
      else waiting.reject(new Error(reply.error ?? 'no counts'));
    });
    const lost = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.isReady = false;
      this.failAll(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the thread-count worker exited (code ${code})`)));
    this.worker = worker;
    this.isReady = false;
    return worker;
  }

  private failAll(err: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(err);
    this.pending.clear();
  }
}

/** The worker's side: count what it is asked, one request at a time, with a reader of its own. */
function serve(roots: Roots): void {
  const reader = new CgroupReader({ procRoot: roots.procRoot, fsRoot: roots.fsRoot, mountinfo: '' });
  parentPort!.on('message', (request: Request) => {
    let reply: Reply;
    try {
      reply = { id: request.id, counts: request.jobs.map((job) => countContainer(reader, job)) };
    } catch (err) {
      reply = { id: request.id, error: (err as Error).message };
    }
    parentPort!.postMessage(reply);
  });
  parentPort!.postMessage({ id: 0, ready: true } satisfies Reply);
}

if (!isMainThread && (workerData as { kind?: string } | null)?.kind === WORKER_KIND) {
  serve((workerData as { roots: Roots }).roots);
}
