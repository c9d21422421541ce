// The comparison UI's pure rules (static/js/compare/logic.js).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  buildAnswer, candidateIds, cmosChoices, compareSpec, comparisonProblems, fromCmos, keyTarget, loopTime, spanBetween, toCmos
} from '../../static/js/compare/logic.js'

const schema = {
  name: 'tts-compare',
  mode: 'compare',
  compare: { min_candidates: 2, max_candidates: 4, span_reasons: ['Prosody', 'Other'], mos: { enabled: true, min: 1, max: 5, required: true, label: 'MOS' } },
  content_fields: [{ name: 'comment', type: 'text', required: false }]
}

test('keys A-D select shown candidates only, X only with a reference', () => {
  assert.deepEqual(keyTarget('a', 2, false), { kind: 'candidate', index: 0 })
  assert.deepEqual(keyTarget('B', 2, false), { kind: 'candidate', index: 1 })
  assert.equal(keyTarget('c', 2, false), null)
  assert.deepEqual(keyTarget('d', 4, false), { kind: 'candidate', index: 3 })
  assert.equal(keyTarget('x', 3, false), null)
  assert.deepEqual(keyTarget('x', 3, true), { kind: 'reference' })
  assert.equal(keyTarget('q', 4, true), null)
})

test('candidate ids default to 1, 2, ... in the shown order', () => {
  assert.deepEqual(candidateIds([{ 'candidate-id': 'b' }, {}, { 'candidate-id': 'z' }]), ['b', '2', 'z'])
  assert.deepEqual(candidateIds(null), [])
})

test('a looping span wraps at its end and pulls a playhead from before it in', () => {
  const span = { start: 5, end: 6 }
  assert.equal(loopTime(5.5, span), 5.5)
  assert.equal(loopTime(6, span), 5)
  assert.equal(loopTime(7.2, span), 5)
  assert.equal(loopTime(1, span), 5)
  assert.equal(loopTime(3, null), 3)
})

test('spans are ordered, clamped and millisecond-rounded; empty ones are null', () => {
  assert.deepEqual(spanBetween(6.00049, 5.1234, 10), { start: 5.123, end: 6 })
  assert.deepEqual(spanBetween(-1, 12, 10), { start: 0, end: 10 })
  assert.equal(spanBetween(3, 3.0004, 10), null)
})

test('CMOS -3..+3 round-trips to {preferred, strength} against the shown order', () => {
  const order = ['7', '3']
  for (const [v] of cmosChoices()) assert.equal(toCmos(fromCmos(v, order), order), v)
  assert.deepEqual(fromCmos(2, order), { preferred: '3', strength: 2 })
  assert.deepEqual(fromCmos(-3, order), { preferred: '7', strength: 3 })
  assert.deepEqual(fromCmos(0, order), { preferred: null, strength: 0 })
  assert.equal(cmosChoices().length, 7)
  assert.match(cmosChoices()[0][1], /^A much better \(-3\)$/)
})

test('buildAnswer writes the comparison with the order shown; problems name the field', () => {
  const judgement = { preferred: '2', strength: 1, mos: { 1: 3 }, spans: [{ id: 's1', start: 1.00049, end: 2, preferred: '', reason: '' }], content: {} }
  const answer = buildAnswer({ schema, interactionId: 'i', duration: 4, order: ['2', '1'], judgement })
  assert.deepEqual(answer.comparison, { order: ['2', '1'], preferred: '2', strength: 1, mos: { 1: 3 }, spans: [{ id: 's1', start: 1, end: 2, preferred: '', reason: '' }] })
  const paths = comparisonProblems(answer, schema, { decided: false }).map(p => p.path)
  assert.deepEqual(paths, ['comparison.preferred', 'comparison.mos.2', 'comparison.spans[0].preferred', 'comparison.spans[0].reason'])
  judgement.mos['2'] = 4
  judgement.spans[0].preferred = '2'
  judgement.spans[0].reason = 'Prosody'
  const fixed = buildAnswer({ schema, interactionId: 'i', duration: 4, order: ['2', '1'], judgement })
  assert.deepEqual(comparisonProblems(fixed, schema, { decided: true }), [])
})

test('compareSpec fills the model defaults', () => {
  const spec = compareSpec({ mode: 'compare' })
  assert.equal(spec.minCandidates, 2)
  assert.equal(spec.maxCandidates, 4)
  assert.equal(spec.allowNoPreference, true)
  assert.equal(spec.mos.enabled, false)
})
