// Shared fixtures for the node tests: the built-in call-center schema as the UI receives it.
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const python = join(repoRoot, '.venv', 'bin', 'python')

/** Run python code in the repo venv with JSON on stdin; returns parsed JSON stdout or null if no venv. */
export function runPython (code, input) {
  const res = spawnSync(python, ['-c', code], { cwd: repoRoot, input: JSON.stringify(input), encoding: 'utf8' })
  if (res.error && res.error.code === 'ENOENT') return null
  if (res.status !== 0) throw new Error(`python failed: ${res.stderr}`)
  return JSON.parse(res.stdout)
}

let cached = null
/** LabelSchema JSON of a built-in schema, exported by the Python model (falls back to a copy). */
export function loadSchema (name = 'call-center') {
  if (cached && cached[name]) return structuredClone(cached[name])
  const out = runPython(
    'import json,sys\nfrom toolkit.models import load_label_schema\n' +
    'print(json.dumps(load_label_schema(json.load(sys.stdin)).model_dump(mode="json")))', name)
  cached = cached || {}
  cached[name] = out || JSON.parse(readFileSync(join(repoRoot, 'tests', 'js', 'fixtures', `${name}.schema.json`), 'utf8'))
  return structuredClone(cached[name])
}
