// How the VM harness counts: the last line of test/run.mjs, "N passed, N failed" (possibly with more
// counts such as ", N skipped"), read tolerantly, or else the closing comment a tap test file prints when
// node runs it directly ("# { total: 5, pass: 2, fail: 1, todo: 1, skip: 1 }", read as test/run.mjs reads
// it: skips and todos are skipped); one result per file; the combined line for several files.
// Shared by the guest (test/vm/guest-run.mjs) and the host (test/vm/run.mjs).

/** Counts from the last summary line in `output`, e.g. { passed: 3, failed: 0, skipped: 1 }, or null if none. */
export function parseSummary(output) {
  const text = output.replace(/\r/g, '');
  const lines = text.split('\n').filter((l) => /^\s*\d+ passed\b/.test(l));
  const last = lines[lines.length - 1];
  if (last) {
    const counts = {};
    for (const [, n, word] of last.matchAll(/(\d+) ([a-z]+)/g)) counts[word] = Number(n);
    return counts;
  }
  // tap's root counts, at the start of a line (a subtest's output is indented and has none)
  const comments = [...text.matchAll(/^# \{ total: \d+([^}\n]*)\}$/gm)];
  const comment = comments[comments.length - 1]?.[1];
  if (comment === undefined) return null;
  const count = (key) => Number(new RegExp(`\\b${key}: (\\d+)`).exec(comment)?.[1] ?? 0);
  return { passed: count('pass'), failed: count('fail'), skipped: count('skip') + count('todo') };
}

/**
 * The result of one file from its runner's output and how the runner ended. A runner that crashed, was
 * killed, timed out or printed no summary never counts as clean: at least one failure.
 */
export function fileResult({ file, output, code, signal = null, timedOut = false, seconds }) {
  const counts = parseSummary(output);
  const result = { file, passed: counts?.passed ?? 0, failed: counts?.failed ?? 0, seconds, code };
  if (counts?.skipped !== undefined) result.skipped = counts.skipped;
  if (signal) result.signal = signal;
  if (timedOut) result.timedOut = true;
  if (!counts) result.noSummary = true;
  if ((code !== 0 || signal || timedOut || !counts) && result.failed === 0) result.failed = 1;
  return result;
}

/** "N passed, N failed", with ", N skipped" when any file reported skips. */
export function formatSummary(results) {
  const sum = (key) => results.reduce((n, r) => n + (r[key] ?? 0), 0);
  const skipped = results.some((r) => r.skipped !== undefined) ? `, ${sum('skipped')} skipped` : '';
  return `${sum('passed')} passed, ${sum('failed')} failed${skipped}`;
}
