// The boot fail-safe (templates/boot-failsafe.js), a classic script inlined in the task template,
// run here in a vm context as a browser runs it; without a document it only defines its functions.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import vm from 'node:vm'
import { repoRoot } from './helpers.mjs'

const FAILSAFE = readFileSync(join(repoRoot, 'templates', 'boot-failsafe.js'), 'utf8')

function failsafe () {
  const context = vm.createContext({ URL })
  vm.runInContext(FAILSAFE, context) // no `document`: defines the functions, installs nothing
  return context.gtkitBootFailsafe
}

test('the fail-safe script defines its functions and installs nothing outside a page', () => {
  const fs = failsafe()
  assert.equal(typeof fs.install, 'function')
  assert.equal(fs.controller, undefined)
})

test('originOf: the asset host as an origin, root-relative bases resolve to the page', () => {
  const { originOf } = failsafe()
  assert.equal(originOf('https://d111.cloudfront.net/gtkit/0.1.0/', 'https://x.example/task'), 'https://d111.cloudfront.net')
  assert.equal(originOf('/assets/', 'http://127.0.0.1:8080/task/0'), 'http://127.0.0.1:8080')
  assert.equal(originOf('http://127.0.0.1:9000/ui/', 'about:blank'), 'http://127.0.0.1:9000')
})

test('bootFailureMessage names the asset host, the page origin and what to do', () => {
  const { bootFailureMessage } = failsafe()
  const o = { assetOrigin: 'https://d111.cloudfront.net', pageOrigin: 'https://abc.labeling.eu-west-1.sagemaker.aws', timeoutSeconds: 10 }
  const load = bootFailureMessage({ ...o, reason: 'load' })
  const text = [load.title, ...load.lines].join('\n')
  assert.match(load.title, /could not be loaded\. Do not submit/)
  assert.ok(text.includes('https://d111.cloudfront.net'))
  assert.ok(text.includes("This page's origin is https://abc.labeling.eu-west-1.sagemaker.aws"))
  assert.match(text, /Access-Control-Allow-Origin/)
  assert.match(text, /integrity hash/)
  assert.match(text, /release \(return\) this task/)
  assert.match(text, /Submit is disabled/)
  const detailed = bootFailureMessage({ ...o, reason: 'load', detail: 'Failed to fetch dynamically imported module' })
  assert.match(detailed.lines[0], /: Failed to fetch dynamically imported module\)\.$/)

  const timeout = bootFailureMessage({ ...o, reason: 'timeout', timeoutSeconds: 2.5 })
  assert.match(timeout.title, /has not started/)
  assert.match(timeout.lines[0], /have not loaded after 2\.5 s/)
  assert.match(timeout.lines.join(' '), /reload the page.*release \(return\) the task.*Submit is disabled until the tool starts/)

  const task = bootFailureMessage({ ...o, reason: 'task', detail: 'data-schema has no tracks' })
  assert.equal(task.lines[0], 'What failed: data-schema has no tracks.')
  assert.ok(!task.lines.join(' ').includes('Access-Control'), 'a bad task is not a CORS problem')
})

test('an opaque page origin ("null", a sandboxed frame) is explained', () => {
  const { bootFailureMessage, describeOrigin } = failsafe()
  assert.match(describeOrigin('null'), /^null \(an opaque origin.*Access-Control-Allow-Origin: \*/)
  assert.equal(describeOrigin('https://a.example'), 'https://a.example')
  const msg = bootFailureMessage({ reason: 'load', assetOrigin: 'https://cdn.example', pageOrigin: 'null' })
  assert.match(msg.lines[1], /origin is null \(an opaque origin/)
})
