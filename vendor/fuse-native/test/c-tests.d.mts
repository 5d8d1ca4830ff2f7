// Types of c-tests.mjs, for the TypeScript tests that use it.
export interface CTestCheck {
  ok: boolean;
  what: string;
}
export interface CTestRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** the "ok N - what" / "not ok N - what" lines */
  checks: CTestCheck[];
  /** the closing "1..N" was printed, with N the number of checks */
  complete: boolean;
}
export declare const C_TESTS: { name: string; sources: string[] }[];
export declare const SANITIZER_ENV: Record<string, string>;
export declare function buildCTests(outDir: string, sanitize?: string): { name: string; exe: string }[];
export declare function runCTest(exe: string, args?: string[], env?: Record<string, string>): CTestRun;
