#!/usr/bin/env node
// Copy the pinned wavesurfer.js ESM builds from node_modules into static/vendor/wavesurfer/.
// The worker template loads these self-hosted files (with SRI hashes), never a CDN.
// Usage: npm install && npm run vendor
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pkgDir = join(root, 'node_modules', 'wavesurfer.js')
const outDir = join(root, 'static', 'vendor', 'wavesurfer')
const PLUGINS = ['regions', 'timeline', 'zoom', 'minimap', 'spectrogram']

let pkg
try {
  pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
} catch {
  console.error('wavesurfer.js is not installed: run `npm install` first')
  process.exit(1)
}
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies['wavesurfer.js']
if (pkg.version !== pinned) {
  console.error(`node_modules has wavesurfer.js ${pkg.version} but package.json pins ${pinned}: run \`npm install\``)
  process.exit(1)
}

rmSync(outDir, { recursive: true, force: true })
mkdirSync(join(outDir, 'plugins'), { recursive: true })
const files = [['dist/wavesurfer.esm.js', 'wavesurfer.esm.js'], ['LICENSE', 'LICENSE']]
for (const name of PLUGINS) files.push([`dist/plugins/${name}.esm.js`, `plugins/${name}.esm.js`])
for (const [from, to] of files) {
  const src = readFileSync(join(pkgDir, from), 'utf8')
  // The ESM builds must be self-contained: the browser loads each file on its own.
  if (/^\s*import\s|[\s;]import\s*[{*]|from\s*["']\./m.test(src) && to.endsWith('.js')) {
    console.error(`${from} imports other modules; vendoring it alone would break`)
    process.exit(1)
  }
  copyFileSync(join(pkgDir, from), join(outDir, to))
}
writeFileSync(join(outDir, 'VERSION'), `wavesurfer.js ${pkg.version} (npm, BSD-3-Clause)\n`)
console.log(`vendored wavesurfer.js ${pkg.version}: ${files.length} files -> static/vendor/wavesurfer/`)
