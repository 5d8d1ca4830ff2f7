// Loaded into every node process of `npm run test:sanitize` (test/sanitize.mjs) through
// NODE_OPTIONS=--require. The sanitized fuse-native addon needs the ASan runtime preloaded into node
// (LD_PRELOAD), but the other programs the tests run must not get it: procps' free, ps and vmstat hang at
// startup with libasan preloaded. So this process drops LD_PRELOAD from its environment, and adds it back
// only to children that run node, directly or through a wrapper whose arguments name it (unshare ... sh -c
// 'exec "$@"' ... node).
'use strict'

const preload = process.env.LXCFS_TS_SANITIZE_PRELOAD
if (preload) {
  delete process.env.LD_PRELOAD
  const cp = require('child_process')
  const runsNode = (options) => options && [options.file, ...(options.args || [])].includes(process.execPath)
  const withPreload = (options) => ({
    ...options,
    envPairs: [...(options.envPairs || []).filter((pair) => !pair.startsWith('LD_PRELOAD=')), `LD_PRELOAD=${preload}`],
  })
  // spawn, exec, execFile and fork all start their process through ChildProcess.prototype.spawn,
  const spawn = cp.ChildProcess.prototype.spawn
  cp.ChildProcess.prototype.spawn = function (options) {
    return spawn.call(this, runsNode(options) ? withPreload(options) : options)
  }
  // and spawnSync, execSync and execFileSync through the spawn_sync binding's spawn.
  const binding = process.binding('spawn_sync')
  const spawnSync = binding.spawn
  binding.spawn = function (options) {
    return spawnSync.call(this, runsNode(options) ? withPreload(options) : options)
  }
}
