#!/usr/bin/env -S node --no-memory-reducer --max-semi-space-size=1
// (--max-semi-space-size=1: a 1 MiB young generation instead of up to 16: the daemon allocates little per
// request, and its RSS stays flat under load instead of growing by the young generation; bench/README.md.
// --no-memory-reducer: V8 otherwise runs a few full GCs some seconds after a burst of allocation ends,
// 40 ms of CPU ~8 s after start with nothing reading; ordinary GCs still run while the daemon works and
// its RSS stays flat: bench/README.md. `env -S` splits the line: coreutils 8.30+, Debian 10+.)
// Entry point. Nothing may be imported statically here: ESM evaluates static imports before this body,
// and a SIGUSR1 arriving with no listener makes Node open its inspector on 127.0.0.1:9229, which in a
// root daemon is local code execution. So the listener comes first, then everything else.

let earlyUsr1 = 0;
const countEarlyUsr1 = (): void => {
  earlyUsr1++;
};
process.on('SIGUSR1', countEarlyUsr1);

const { main } = await import('./run.js');
const code = await main(process.argv.slice(2), {
  earlyUsr1: () => earlyUsr1,
  releaseUsr1: () => process.off('SIGUSR1', countEarlyUsr1),
});
process.exit(code);
