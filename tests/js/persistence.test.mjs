import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAutosave, createPreferences, PREFERENCES_KEY, storageKey, STORAGE_PREFIX } from '../../static/js/persistence.js'
import { AnswerState } from '../../static/js/state.js'
import { loadSchema } from './helpers.mjs'

class FakeStorage {
  constructor () { this.map = new Map(); this.writes = 0; this.failWith = null }
  getItem (k) { return this.map.has(k) ? this.map.get(k) : null }
  setItem (k, v) { if (this.failWith) throw this.failWith; this.writes++; this.map.set(k, String(v)) }
  removeItem (k) { this.map.delete(k) }
}

/** Manual timers so debouncing is deterministic. */
function fakeTimers () {
  let next = 1
  const timers = new Map()
  return {
    setTimer: (fn) => { const id = next++; timers.set(id, fn); return id },
    clearTimer: (id) => timers.delete(id),
    runAll: () => { const fns = [...timers.values()]; timers.clear(); fns.forEach(f => f()) },
    get pending () { return timers.size }
  }
}

test('keys are per task', () => {
  assert.equal(storageKey('job/1/obj-7'), `${STORAGE_PREFIX}job/1/obj-7`)
  assert.notEqual(storageKey('a'), storageKey('b'))
})

test('debounced save writes the newest state once; load returns it', () => {
  const storage = new FakeStorage()
  const timers = fakeTimers()
  const auto = createAutosave({ storage, taskKey: 'task-1', now: () => '2026-01-01T00:00:00Z', ...timers })
  let n = 0
  auto.save(() => ({ v: ++n }))
  auto.save(() => ({ v: ++n }))
  auto.save(() => ({ v: 'latest' }))
  assert.equal(storage.writes, 0)
  timers.runAll()
  assert.equal(storage.writes, 1)
  assert.deepEqual(auto.load(), { savedAt: '2026-01-01T00:00:00Z', answer: { v: 'latest' } })
})

test('save is off the typing path: no answer is built per call, the timer is not restarted, the write waits for idle', () => {
  const storage = new FakeStorage()
  let started = 0
  const timers = fakeTimers()
  const idle = []
  const auto = createAutosave({
    storage, taskKey: 't', ...timers, setTimer: fn => { started++; return timers.setTimer(fn) }, whenIdle: fn => idle.push(fn)
  })
  let built = 0
  for (let i = 0; i < 50; i++) auto.save(() => { built++; return { keystroke: i } })
  assert.equal(built, 0)
  assert.equal(started, 1) // continuous typing still saves: a debounce would wait for a pause
  timers.runAll()
  assert.equal(storage.writes, 0) // the timer fired while busy: the write waits for idle
  idle.shift()()
  assert.equal(built, 1)
  assert.deepEqual(auto.load().answer, { keystroke: 49 })
  auto.save(() => ({ keystroke: 50 }))
  assert.equal(started, 2)
})

test('flush writes a pending save immediately; clear forgets it and cancels pending saves', () => {
  const storage = new FakeStorage()
  const timers = fakeTimers()
  const auto = createAutosave({ storage, taskKey: 't', ...timers })
  auto.save(() => ({ a: 1 }))
  assert.equal(auto.flush(), true)
  assert.deepEqual(auto.load().answer, { a: 1 })
  auto.save(() => ({ a: 2 }))
  auto.clear()
  timers.runAll()
  assert.equal(auto.load(), null)
  assert.equal(storage.map.size, 0)
})

test('tasks do not see each other\'s saves', () => {
  const storage = new FakeStorage()
  const a = createAutosave({ storage, taskKey: 'A' })
  const b = createAutosave({ storage, taskKey: 'B' })
  a.saveNow({ x: 1 })
  assert.equal(b.load(), null)
  assert.deepEqual(a.load().answer, { x: 1 })
})

test('corrupt or foreign data is ignored, not thrown', () => {
  const storage = new FakeStorage()
  const auto = createAutosave({ storage, taskKey: 't' })
  storage.setItem(auto.key, '{not json')
  assert.equal(auto.load(), null)
  storage.setItem(auto.key, JSON.stringify({ v: 99, answer: {} }))
  assert.equal(auto.load(), null)
})

test('quota errors are reported, not thrown', () => {
  const storage = new FakeStorage()
  storage.failWith = new Error('QuotaExceededError')
  const errors = []
  const auto = createAutosave({ storage, taskKey: 't', onError: e => errors.push(e.message) })
  assert.equal(auto.saveNow({ big: true }), false)
  assert.deepEqual(errors, ['QuotaExceededError'])
})

test('no storage (privacy mode): everything is a no-op', () => {
  const auto = createAutosave({ storage: null, taskKey: 't' })
  assert.equal(auto.saveNow({}), false)
  assert.equal(auto.load(), null)
  auto.clear()
})

test('a whole answer survives save -> reload -> restore', () => {
  const storage = new FakeStorage()
  const schema = loadSchema()
  const s = new AnswerState({ schema, interactionId: 'c1', mediaDuration: 21 })
  const t = s.addTrack('speaker', 'Agent')
  const seg = s.addSegment({ track: t, start: 1.234, end: 2.5, text: 'typed <b>text</b>' })
  s.setSegmentAttribute(seg, 'emotion', 'Sad')
  s.setContent('background_noise', ['Music'])
  createAutosave({ storage, taskKey: 'c1' }).saveNow(s.toAnswer())

  const reloaded = new AnswerState({ schema, interactionId: 'c1', mediaDuration: 21 })
  const saved = createAutosave({ storage, taskKey: 'c1' }).load()
  reloaded.restore(saved.answer)
  assert.deepEqual(reloaded.toAnswer(), s.toAnswer())
})

test('viewing preferences merge, survive reloads and ignore invalid entries', () => {
  const storage = new FakeStorage()
  const prefs = createPreferences({ storage })
  assert.deepEqual(prefs.load(), {})
  prefs.save({ rate: 1.25 })
  prefs.save({ spectrogram: true })
  assert.deepEqual(createPreferences({ storage }).load(), { rate: 1.25, spectrogram: true })
  prefs.save({ rate: 9, spectrogram: 'yes', other: 1 }) // out of range / wrong type / unknown: dropped
  assert.deepEqual(prefs.load(), { rate: 1.25, spectrogram: true })
  storage.setItem(PREFERENCES_KEY, '{not json')
  assert.deepEqual(prefs.load(), {})
  storage.setItem(PREFERENCES_KEY, JSON.stringify({ rate: 0.75, spectrogram: false, junk: [1] }))
  assert.deepEqual(prefs.load(), { rate: 0.75, spectrogram: false })
  assert.deepEqual(createPreferences({ storage: null }).load(), {})
  storage.failWith = new Error('quota')
  const errors = []
  createPreferences({ storage, onError: e => errors.push(e.message) }).save({ rate: 1 })
  assert.deepEqual(errors, ['quota'])
})
