// Constants and arithmetic of the Linux kernel that both the daemon's context (loadavg sampler, thread
// census) and the renderers use. Pure: renderers may import it (it is bundled into dist/renderers.cjs).

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times on every architecture lxcfs-ts runs on. */
export const USER_HZ = 100;

/** ns per USER_HZ tick */
export const NS_PER_TICK = 1e9 / USER_HZ;

/** ms per USER_HZ tick (10) */
export const MS_PER_TICK = 1000 / USER_HZ;

/** Whether `nowMs` is less than one USER_HZ tick after `atMs` (and not before it): what may be served again. */
export function withinTick(atMs: number, nowMs: number): boolean {
  return nowMs >= atMs && nowMs - atMs < MS_PER_TICK;
}

/** kernel/sched/loadavg.c: loads are fixed point with FSHIFT fractional bits */
export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
/** 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min) in fixed point (include/linux/sched/loadavg.h) */
export const EXP_1 = 1884;
export const EXP_5 = 2014;
export const EXP_15 = 2037;
/** LOAD_FREQ: the kernel folds the active count into the averages every 5 s */
export const LOAD_FREQ_MS = 5000;

/**
 * One step of the kernel's exponential decay (kernel/sched/loadavg.c: calc_load): `load` and the result in
 * fixed point, `active` a count of tasks (R + D).
 */
export function calcLoad(load: number, exp: number, active: number): number {
  const activeFixed = active * FIXED_1;
  let next = load * exp + activeFixed * (FIXED_1 - exp);
  if (activeFixed >= load) next += FIXED_1 - 1;
  return Math.floor(next / FIXED_1);
}

/**
 * Where a process's start time (field 22) is read in O(1): its leader thread's stat. /proc/<pid>/stat has the
 * same start time but, for the whole process, sums every thread's times and fault counts on each read
 * (fs/proc/array.c: do_task_stat with whole = 1), which for an init with thousands of threads (a JVM, the
 * noisy neighbour of bench:fleet) costs the reader's daemon a fraction of a millisecond per open.
 * `/proc/<pid>/task/<pid>/stat`, under procRoot (default `/proc`).
 */
export function leaderStatPath(pid: number, procRoot = '/proc'): string {
  return `${procRoot}/${pid}/task/${pid}/stat`;
}

/**
 * What a thread's state letter (field 3 of /proc/<tid>/stat) counts for: "R" is runnable (procs_running,
 * loadavg's running field), "D" uninterruptible (procs_blocked); both count towards the load average
 * (kernel/sched/loadavg.c: calc_load_fold_active uses nr_running + nr_uninterruptible).
 */
export function threadStateKind(state: string | undefined): 'running' | 'blocked' | 'other' {
  return state === 'R' ? 'running' : state === 'D' ? 'blocked' : 'other';
}
