// Shared fixtures for the node tests: the built-in call-center schema as the UI receives it.
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
// GTKIT_TEST_PYTHON: another interpreter (ci-parity.test.mjs points it at a missing one).
export const python = process.env.GTKIT_TEST_PYTHON || join(repoRoot, '.venv', 'bin', 'python')

/** In CI (env CI set, as .ci/run and the Python tests read it) a missing venv fails the parity
 *  tests instead of letting them pass as skipped. */
export const inCI = Boolean(process.env.CI)

/**
 * Run python code in the repo venv with JSON on stdin; returns parsed JSON stdout, or null when
 * there is no venv (the caller skips) — except in CI, where a missing venv throws (the test fails).
 */
export function runPython (code, input, { ci = inCI, interpreter = python } = {}) {
  const res = spawnSync(interpreter, ['-c', code], { cwd: repoRoot, input: JSON.stringify(input), encoding: 'utf8' })
  if (res.error && res.error.code === 'ENOENT') {
    if (ci) throw new Error(`${interpreter} is missing: run make install (in CI the JS<->Python parity tests must run)`)
    return null
  }
  if (res.status !== 0) throw new Error(`python failed: ${res.stderr}`)
  return JSON.parse(res.stdout)
}

let cached = null
/** LabelSchema JSON of a built-in schema, exported by the Python model (falls back to a copy). */
export function loadSchema (name = 'call-center') {
  if (cached && cached[name]) return structuredClone(cached[name])
  const out = runPython(
    'import json,sys\nfrom toolkit.contract import load_label_schema\n' +
    'print(json.dumps(load_label_schema(json.load(sys.stdin)).model_dump(mode="json")))', name)
  cached = cached || {}
  cached[name] = out || JSON.parse(readFileSync(join(repoRoot, 'tests', 'js', 'fixtures', `${name}.schema.json`), 'utf8'))
  return structuredClone(cached[name])
}
