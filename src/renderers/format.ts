// Numbers as the kernel prints them: non-negative integers that fit a u64, never "1e+21", "NaN" or
// "Infinity", whatever garbage a cgroup or host file held.

/** the largest double below 2^64 */
export const MAX_U64_DOUBLE = 2 ** 64 - 2048;

export function u64(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '0';
  return BigInt(Math.floor(Math.min(n, MAX_U64_DOUBLE))).toString();
}

/** A kernel counter field: digits only, else 0 (the kernel never prints anything else there). */
export function counter(text: string | undefined): number {
  return text !== undefined && /^\d+$/.test(text) ? Math.min(Number(text), MAX_U64_DOUBLE) : 0;
}
