// Builds the addon from source at install time, offline: node-gyp gets the local Node headers
// (--nodedir) so it never tries to download them, and the result links the libfuse that
// fuse-shared-library-linux ships, found at run time through an $ORIGIN rpath as libfuse.so.2 (its SONAME).
//
// Usage: node build.js [--sanitize LIST] [--out DIR]
//   --sanitize address,undefined   compile and link with -fsanitize=LIST (and -O1, frame pointers) for
//                                  npm run test:sanitize (PATCHES.md 17); default: none
//   --out DIR                      where the built files go (fuse.node, libfuse.so.2, whatever else
//                                  binding.gyp makes), relative to this directory (default build/Release)
//
// node-gyp runs in a private staging directory under build/, and each finished file is renamed into DIR:
// a process that has the old fuse.node or libfuse.so.2 loaded keeps its mapping of the old file, and one
// that loads it meanwhile gets either the old or the new file, never a half-written one.

'use strict'

const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

function fail (msg) {
  console.error(`fuse-native: ${msg}`)
  process.exit(1)
}

function parseArgs (argv) {
  const opts = { sanitize: '', out: path.join('build', 'Release') }
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split(/=(.*)/s)
    const value = () => (inline !== undefined ? inline : argv[++i])
    if (key === '--sanitize') opts.sanitize = value() || ''
    else if (key === '--out') opts.out = value() || ''
    else fail(`unknown argument ${argv[i]} (usage: node build.js [--sanitize LIST] [--out DIR])`)
  }
  if (opts.sanitize && !/^[a-z-]+(,[a-z-]+)*$/.test(opts.sanitize)) fail(`--sanitize needs a list like address,undefined (got ${opts.sanitize})`)
  if (!opts.out) fail('--out needs a directory')
  return opts
}

const opts = parseArgs(process.argv.slice(2))

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

// Everything node-gyp may read (binding.gyp and the C sources beside it); the stage is under build/ so that
// binding.gyp's require()s still resolve from this package's node_modules (or its parents').
const SOURCES = fs.readdirSync(__dirname).filter((f) => /\.(gyp|gypi|c|h)$/.test(f) && fs.statSync(path.join(__dirname, f)).isFile())

fs.mkdirSync(path.join(__dirname, 'build'), { recursive: true })
const stage = fs.mkdtempSync(path.join(__dirname, 'build', '.stage-'))
try {
  for (const f of SOURCES) fs.copyFileSync(path.join(__dirname, f), path.join(stage, f))

  const env = { ...process.env }
  if (opts.sanitize) {
    // After binding.gyp's own flags on the command line, so -O1 wins over -O2.
    const flags = `-fsanitize=${opts.sanitize} -fno-omit-frame-pointer -fno-sanitize-recover=all -O1 -g`
    env.CFLAGS = `${env.CFLAGS || ''} ${flags}`.trim()
    env.LDFLAGS = `${env.LDFLAGS || ''} -fsanitize=${opts.sanitize}`.trim()
  }
  const [cmd, ...pre] = nodeGyp()
  const args = [...pre, 'rebuild', `--nodedir=${nodedir}`]
  const r = spawnSync(cmd, args, { cwd: stage, stdio: 'inherit', env })
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : r.signal ? 'signal ' + r.signal : 'exit ' + r.status})`)

  // Write each file beside its final name, then rename over it; fuse.node last, so that a process loading
  // the new addon finds the rest new too. The link records the SONAME libfuse.so.2: ship the copied
  // libfuse.so under that name beside the addon.
  const built = path.join(stage, 'build', 'Release')
  const out = path.resolve(__dirname, opts.out)
  fs.mkdirSync(out, { recursive: true })
  const files = fs.readdirSync(built).filter((f) => fs.statSync(path.join(built, f)).isFile() && f !== 'fuse.node')
  const installs = files.map((f) => [f, f === 'libfuse.so' ? 'libfuse.so.2' : f]).concat([['fuse.node', 'fuse.node']])
  for (const [from, to] of installs) {
    const tmp = path.join(out, `.${to}.${process.pid}.tmp`)
    fs.copyFileSync(path.join(built, from), tmp)
    fs.chmodSync(tmp, fs.statSync(path.join(built, from)).mode)
    fs.renameSync(tmp, path.join(out, to))
  }
} finally {
  fs.rmSync(stage, { recursive: true, force: true })
}
