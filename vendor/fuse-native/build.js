// Builds the addon from source at install time, offline: node-gyp gets the local Node headers
// (--nodedir) so it never tries to download them, and the result links the libfuse that
// fuse-shared-library-linux ships, found at run time through an $ORIGIN rpath as libfuse.so.2 (its SONAME).

'use strict'

const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

function fail (msg) {
  console.error(`fuse-native: ${msg}`)
  process.exit(1)
}

// The running Node's own prefix (/usr for /usr/bin/node) holds its headers in include/node.
const nodedir = process.env.npm_config_nodedir || path.dirname(path.dirname(process.execPath))
for (const f of ['common.gypi', 'node_api.h']) {
  if (!fs.existsSync(path.join(nodedir, 'include', 'node', f))) {
    fail(`no Node headers at ${path.join(nodedir, 'include', 'node', f)}; install the headers of this Node (Debian: libnode-dev / nodejs package; tarball installs ship them) or set npm_config_nodedir`)
  }
}

// node-gyp: the one npm runs scripts with, else one on PATH, else the copy bundled with npm.
function nodeGyp () {
  const js = (f) => (f && fs.existsSync(f) ? [process.execPath, f] : null)
  const fromNpm = process.env.npm_config_node_gyp
  if (fromNpm && fs.existsSync(fromNpm)) return js(fromNpm)
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'node-gyp'))) return [path.join(dir, 'node-gyp')]
  }
  const bundled = [
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  ]
  for (const f of bundled) if (js(f)) return js(f)
  return fail('node-gyp not found (npm_config_node_gyp unset, none on PATH, none bundled with npm)')
}

const [cmd, ...pre] = nodeGyp()
const args = [...pre, 'rebuild', `--nodedir=${nodedir}`]
const r = spawnSync(cmd, args, { cwd: __dirname, stdio: 'inherit' })
if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : r.signal ? 'signal ' + r.signal : 'exit ' + r.status})`)

// The link records the SONAME libfuse.so.2; ship it under that name beside the addon.
const release = path.join(__dirname, 'build', 'Release')
fs.copyFileSync(path.join(release, 'libfuse.so'), path.join(release, 'libfuse.so.2'))
