// Types for summary.mjs (plain JS so the guest and the host run it without a TypeScript loader).

export interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped?: number;
  seconds: number;
  code: number | null;
  signal?: string;
  timedOut?: true;
  noSummary?: true;
}

export function parseSummary(output: string): Record<string, number> | null;
export function fileResult(run: { file: string; output: string; code: number | null; signal?: string | null; timedOut?: boolean; seconds: number }): FileResult;
export function formatSummary(results: Array<{ passed: number; failed: number; skipped?: number }>): string;
