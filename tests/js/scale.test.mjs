// The caches that keep one keystroke O(1) at thousands of segments, and the list window maths.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnswerState } from '../../static/js/state.js'
import { windowRange } from '../../static/js/virtual-list.js'
import { loadSchema } from './helpers.mjs'

function many (n) {
  const s = new AnswerState({ schema: loadSchema(), mediaDuration: n * 4 })
  // Out of time order on purpose: the sorted cache must sort.
  const pre = []
  for (let i = n - 1; i >= 0; i--) pre.push({ id: `p${i}`, track: 'speaker', label: i % 2 ? 'Agent' : 'Customer', start: i * 4, end: i * 4 + 3, text: `t${i}` })
  s.loadPresegments(pre)
  return s
}

test('loadPresegments: one change for thousands of segments, in time order', () => {
  const s = new AnswerState({ schema: loadSchema(), mediaDuration: 100 })
  const changes = []
  s.subscribe(c => changes.push(c.kind))
  s.loadPresegments(Array.from({ length: 3000 }, (_, i) => ({ track: 'speaker', label: 'Agent', start: 3000 - i, end: 3000.5 - i })))
  assert.deepEqual(changes.filter(k => k === 'segments' || k === 'all'), ['all'])
  const sorted = s.sortedSegments()
  assert.equal(sorted.length, 3000)
  assert.ok(sorted.every((seg, i) => i === 0 || sorted[i - 1].start <= seg.start))
  assert.equal(s.sortedIndex(sorted[1234].id), 1234)
})

test('typing: text edits patch the caches (same sorted array), say layout: false, and undo restores', () => {
  const s = many(50)
  const sorted = s.sortedSegments()
  const id = sorted[10].id
  const changes = []
  s.subscribe(c => changes.push(c))
  s.setSegmentText(id, 'h')
  s.setSegmentText(id, 'he')
  s.setSegmentText(id, 'hel')
  assert.equal(s.sortedSegments(), sorted, 'no re-sort for a keystroke')
  assert.equal(s.sortedSegments()[10].text, 'hel')
  assert.equal(s.segment(id).text, 'hel')
  assert.ok(changes.every(c => c.kind === 'segments' && c.layout === false && c.ids[0] === id))
  s.undo()
  assert.equal(s.segment(id).text, 't10', 'one undo step for the typing, and the snapshot was not patched')
  assert.equal(s.sortedSegments()[10].text, 't10')
  s.redo()
  assert.equal(s.segment(id).text, 'hel')
  s.undo()
  s.setSegmentText(id, 'x') // an edit after undo must not write into the redo/undo snapshots
  s.undo()
  assert.equal(s.segment(id).text, 't10')
})

test('moving a segment re-sorts; layout: true', () => {
  const s = many(20)
  const first = s.sortedSegments()[0].id
  let change = null
  s.subscribe(c => { change = c })
  s.setSegmentTimes(first, 1000, 1001)
  assert.equal(change.layout, true)
  assert.equal(s.sortedSegments().at(-1).id, first)
  assert.equal(s.sortedIndex(first), 19)
})

test('segmentsBetween and segmentsAt find overlaps by binary search, long segments included', () => {
  const s = many(100) // [4i, 4i+3]
  const t = s.tracks[0].id
  const long = s.addSegment({ track: t, start: 10, end: 200 })
  const ids = s.segmentsBetween(100, 110).map(x => x.id)
  assert.ok(ids.includes(long), 'a long segment starting before the window overlaps it')
  assert.deepEqual(s.segmentsBetween(100, 110).filter(x => x.id !== long).map(x => x.start), [100, 104, 108])
  assert.deepEqual(s.segmentsAt(101).map(x => x.start).sort((a, b) => a - b), [10, 100])
  assert.deepEqual(s.segmentsAt(103.5).map(x => x.id), [long], 'a gap between turns')
  // Brute force agrees on random windows.
  for (let k = 0; k < 200; k++) {
    const a = Math.random() * 420 - 10
    const b = a + Math.random() * 30
    const want = s.segments.filter(x => x.end >= a && x.start <= b).map(x => x.id).sort()
    assert.deepEqual(s.segmentsBetween(a, b).map(x => x.id).sort(), want)
  }
})

test('windowRange: the rows in view plus overscan, clamped', () => {
  assert.deepEqual(windowRange({ scrollTop: 0, viewport: 500, stride: 100, count: 0 }), { first: 0, last: -1 })
  assert.deepEqual(windowRange({ scrollTop: 0, viewport: 500, stride: 100, count: 3000, overscan: 2 }), { first: 0, last: 7 })
  assert.deepEqual(windowRange({ scrollTop: 100000, viewport: 500, stride: 100, count: 3000, overscan: 2 }), { first: 998, last: 1007 })
  assert.deepEqual(windowRange({ scrollTop: 10 ** 9, viewport: 500, stride: 100, count: 3000, overscan: 2 }), { first: 2999, last: 2999 })
  assert.deepEqual(windowRange({ scrollTop: -50, viewport: 500, stride: 0, count: 3, overscan: 2 }), { first: 0, last: 2 })
})

test('adding into a sorted cache keeps it equal to a full sort; counts follow layoutVersion', () => {
  const s = many(200)
  const t = s.tracks[0].id
  s.sortedSegments()
  const v = s.layoutVersion
  for (let i = 0; i < 100; i++) s.addSegment({ track: t, start: (i * 37) % 800, end: (i * 37) % 800 + (i % 5) + 0.5 }, { remember: false })
  const cached = s.sortedSegments().map(x => x.id)
  s._sorted = null
  assert.deepEqual(s.sortedSegments().map(x => x.id), cached)
  assert.ok(s.layoutVersion > v)
  const before = s.layoutVersion
  s.setSegmentText(cached[0], 'typed')
  assert.equal(s.layoutVersion, before, 'text does not bump it')
  s.setSegmentTrack(cached[0], s.tracks[1].id)
  assert.equal(s.layoutVersion, before + 1)
  const long = s.addSegment({ track: t, start: 0, end: 700 })
  assert.ok(s.segmentsBetween(650, 651).some(x => x.id === long), 'the longest length is kept up to date')
})
