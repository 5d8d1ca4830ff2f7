// Builds the addon from source at install time, offline: node-gyp gets the local Node headers
// (--nodedir) so it never tries to download them, and the result links the libfuse that
// fuse-shared-library-linux ships, found at run time through an $ORIGIN rpath as libfuse.so.2 (its SONAME).

'use strict'

const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const nodedir = path.dirname(path.dirname(process.execPath))
if (!fs.existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(`fuse-native: no Node headers under ${nodedir}/include/node (node_api.h); install them (Debian: nodejs package ships them, or libnode-dev) or set npm_config_nodedir`)
  process.exit(1)
}

function nodeGyp () {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  ]
  for (const c of candidates) if (c && fs.existsSync(c)) return [process.execPath, c]
  return ['node-gyp']
}

const [cmd, ...pre] = nodeGyp()
const args = [...pre, 'rebuild', `--nodedir=${process.env.npm_config_nodedir || nodedir}`]
const r = spawnSync(cmd, args, { cwd: __dirname, stdio: 'inherit' })
if (r.status !== 0) {
  console.error(`fuse-native: ${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : 'exit ' + r.status})`)
  process.exit(1)
}

// The link records the SONAME libfuse.so.2; ship it under that name beside the addon.
const release = path.join(__dirname, 'build', 'Release')
fs.copyFileSync(path.join(release, 'libfuse.so'), path.join(release, 'libfuse.so.2'))
