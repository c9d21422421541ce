import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from '../../static/js/emitter.js'
import { AnswerState, CHANGE_KINDS } from '../../static/js/state.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadSchema, repoRoot } from './helpers.mjs'

const make = () => new EventEmitter(['time', 'rate', 'ready'])

test('on(name, fn) gets the event\'s arguments, in subscription order, and returns an unsubscribe', () => {
  const e = make()
  const calls = []
  const offA = e.on('time', (t, extra) => calls.push(['a', t, extra]))
  e.on('time', t => calls.push(['b', t]))
  e.on('rate', r => calls.push(['rate', r]))
  e.emit('time', 1.5, 'x')
  assert.deepEqual(calls, [['a', 1.5, 'x'], ['b', 1.5]])
  offA()
  offA() // twice is harmless
  e.emit('time', 2)
  e.emit('rate', 1.25)
  assert.deepEqual(calls.slice(2), [['b', 2], ['rate', 1.25]])
})

test('once(name, fn) is called for one emission only, and can be cancelled before it', () => {
  const e = make()
  const seen = []
  e.once('ready', d => seen.push(d))
  const cancel = e.once('ready', d => seen.push(-d))
  cancel()
  e.emit('ready', 21)
  e.emit('ready', 22)
  assert.deepEqual(seen, [21])
  const seen2 = []
  e.on('ready', d => seen2.push(d), { once: true })
  e.emit('ready', 1)
  e.emit('ready', 2)
  assert.deepEqual(seen2, [1])
})

test('the same function twice on one event is one subscription; one fn on two events is two', () => {
  const e = make()
  let n = 0
  const fn = () => n++
  e.on('time', fn)
  e.on('time', fn)
  e.on('rate', fn)
  e.emit('time', 0)
  e.emit('rate', 1)
  assert.equal(n, 2)
})

test('unknown event names are refused by on, once and emit, naming the known ones', () => {
  const e = make()
  assert.deepEqual(e.eventNames, ['time', 'rate', 'ready'])
  assert.throws(() => e.on('tiem', () => {}), { name: 'TypeError', message: 'unknown event "tiem"; known: time, rate, ready' })
  assert.throws(() => e.once('zoom', () => {}), /unknown event "zoom"/)
  assert.throws(() => e.emit('nope'), /unknown event "nope"/)
  assert.throws(() => e.on('time', 'not a function'), /listener of "time" is not a function/)
})

test('a listener removed or added during an emission takes effect from the next one; unAll removes all', () => {
  const e = make()
  const calls = []
  let offB = null
  e.on('time', () => { calls.push('a'); offB(); e.on('time', () => calls.push('c')) })
  offB = e.on('time', () => calls.push('b'))
  e.emit('time', 0)
  assert.deepEqual(calls, ['a', 'b'])
  calls.length = 0
  e.unAll()
  e.emit('time', 0)
  assert.deepEqual(calls, [])
})

test('AnswerState: one change stream with a typed kind; subscribe returns an unsubscribe', () => {
  const s = new AnswerState({ schema: loadSchema() })
  const kinds = []
  const off = s.subscribe(change => kinds.push(change))
  const t = s.addTrack('speaker', 'Agent')
  const seg = s.addSegment({ track: t, start: 1, end: 2 })
  s.select(seg)
  s.setMediaDuration(10)
  s.undo()
  off()
  s.redo()
  assert.deepEqual(kinds.map(c => c.kind), ['tracks', 'segments', 'selection', 'duration', 'all'])
  assert.deepEqual(kinds[1], { kind: 'segments', ids: [seg], added: [seg], layout: true })
  for (const c of kinds) assert.ok(CHANGE_KINDS.includes(c.kind))
  assert.throws(() => s._emit({ kind: 'segment' }), /unknown change kind segment/)
})

test('Player: the event map typedef, PLAYER_EVENTS and what player.js emits are the same names', async () => {
  const { PLAYER_EVENTS } = await import('../../static/js/player.js')
  const source = readFileSync(join(repoRoot, 'static', 'js', 'player.js'), 'utf8')
  const typedef = source.slice(source.indexOf('@typedef {object} PlayerEvents'), source.indexOf('export const PLAYER_EVENTS'))
  const documented = [...typedef.matchAll(/@property \{\[[^\]]*\]\} ([\w-]+)/g)].map(m => m[1])
  const emitted = new Set([...source.matchAll(/this\.emit\('([\w-]+)'/g)].map(m => m[1]))
  assert.deepEqual(documented, [...PLAYER_EVENTS])
  assert.deepEqual([...emitted].sort(), [...PLAYER_EVENTS].sort())
  assert.ok(Object.isFrozen(PLAYER_EVENTS))
})
