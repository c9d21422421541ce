import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { inCI, repoRoot } from './helpers.mjs'

const vendor = join(repoRoot, 'static', 'vendor', 'wavesurfer')
const pinned = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).devDependencies['wavesurfer.js']

test('vendored wavesurfer matches the exact version pinned in package.json', () => {
  assert.match(pinned, /^\d+\.\d+\.\d+$/, 'pin an exact version')
  assert.equal(readFileSync(join(vendor, 'VERSION'), 'utf8').trim(), `wavesurfer.js ${pinned} (npm, BSD-3-Clause)`)
  assert.match(readFileSync(join(vendor, 'LICENSE'), 'utf8'), /BSD 3-Clause|Redistribution and use in source and binary forms/)
  for (const f of ['wavesurfer.esm.js', ...['regions', 'timeline', 'zoom', 'minimap', 'spectrogram'].map(n => `plugins/${n}.esm.js`)]) {
    assert.ok(existsSync(join(vendor, f)), f)
  }
})

test('vendored files are byte-identical to the installed package (when node_modules exists)', (t) => {
  const pkg = join(repoRoot, 'node_modules', 'wavesurfer.js')
  if (!existsSync(pkg)) {
    assert.ok(!inCI, 'node_modules/wavesurfer.js is missing: CI runs npm ci first (.ci/run)')
    return t.skip('run npm install to compare')
  }
  for (const [from, to] of [['dist/wavesurfer.esm.js', 'wavesurfer.esm.js'], ['dist/plugins/regions.esm.js', 'plugins/regions.esm.js'], ['LICENSE', 'LICENSE']]) {
    assert.ok(readFileSync(join(pkg, from)).equals(readFileSync(join(vendor, to))), `${to} differs: run npm run vendor`)
  }
})
