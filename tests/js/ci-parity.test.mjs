// The JS<->Python parity tests (validation, serialisation, peaks) run the venv's Python: without
// it they skip on a developer's machine, but in CI (env CI set) they must fail, not pass as skipped.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot, runPython } from './helpers.mjs'

const missing = join(repoRoot, 'no-such-venv', 'bin', 'python')
const PARITY = ['validation.test.mjs', 'state.test.mjs', 'peaks.test.mjs'].map(f => join(repoRoot, 'tests', 'js', f))

function runTests (env) {
  // NODE_TEST_CONTEXT would make the child report to this runner instead of printing TAP.
  const { CI, NODE_TEST_CONTEXT, ...rest } = process.env
  return spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...PARITY], {
    cwd: repoRoot, encoding: 'utf8', env: { ...rest, GTKIT_TEST_PYTHON: missing, ...env }
  })
}

test('runPython: a missing interpreter is null outside CI and an error naming it in CI', () => {
  assert.equal(runPython('print(1)', null, { ci: false, interpreter: missing }), null)
  assert.throws(() => runPython('print(1)', null, { ci: true, interpreter: missing }), /no-such-venv.*is missing/)
})

test('without the venv the parity tests skip on a developer machine and fail in CI', () => {
  const dev = runTests({})
  assert.equal(dev.status, 0, dev.stdout + dev.stderr)
  assert.match(dev.stdout, /# skipped [1-9]/)
  assert.match(dev.stdout, /# fail 0/)
  const ci = runTests({ CI: 'true' })
  assert.notEqual(ci.status, 0, 'CI must fail without the venv')
  assert.match(ci.stdout, /# skipped 0/)
  const failed = Number(/# fail (\d+)/.exec(ci.stdout)[1])
  assert.ok(failed >= 3, `expected every parity test to fail, got ${failed}:\n${ci.stdout}`)
  assert.match(ci.stdout, /is missing: run make install/)
})
