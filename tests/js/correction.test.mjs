// The keyboard correction loop's pure logic in AnswerState: split, merge, nudge, snap, no_overlap.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnswerState, snapTime } from '../../static/js/state.js'
import { loadSchema } from './helpers.mjs'

function fresh (schema = loadSchema()) {
  const s = new AnswerState({ schema, mediaDuration: 60 })
  const t = s.addTrack('speaker', 'Agent')
  const u = s.addTrack('speaker', 'Customer')
  return { s, t, u }
}

function noOverlapSchema () {
  const schema = structuredClone(loadSchema())
  schema.tracks[0].no_overlap = true
  return schema
}

const times = (s, track) => s.sortedSegments().filter(x => !track || x.track === track).map(x => [x.start, x.end])

test('split at t: two segments on the track, text and presegment id stay on the first, one undo step', () => {
  const { s, t } = fresh()
  const a = s.addSegment({ track: t, start: 1, end: 5, text: 'hello there', attributes: {}, presegmentId: 'p1' })
  const b = s.splitSegment(a, 2.5004)
  assert.deepEqual(times(s), [[1, 2.5], [2.5, 5]])
  assert.equal(s.segment(a).text, 'hello there')
  assert.equal(s.segment(a).presegmentId, 'p1')
  assert.equal(s.segment(b).track, t)
  assert.equal(s.segment(b).presegmentId, null)
  s.undo()
  assert.deepEqual(times(s), [[1, 5]])
  assert.equal(s.splitSegment(a, 1), null, 'at the start edge: nothing to split')
  assert.equal(s.splitSegment(a, 5.0005), null, 'outside')
  assert.equal(s.splitSegment(a, 4.9995), null, 'less than one ms would be left')
})

test('merge with the next segment on the same track (other tracks skipped); texts joined; undo', () => {
  const { s, t, u } = fresh()
  const a = s.addSegment({ track: t, start: 1, end: 2, text: 'one', attributes: { x: 'a' } })
  s.addSegment({ track: u, start: 2.2, end: 3, text: 'other speaker' })
  const c = s.addSegment({ track: t, start: 4, end: 5, text: ' two ', attributes: { x: 'b', y: 'c' } })
  s.select(c)
  assert.equal(s.mergeWithNext(a), c)
  assert.deepEqual(times(s, t), [[1, 5]])
  assert.equal(s.segment(a).text, 'one two')
  assert.deepEqual(s.segment(a).attributes, { x: 'a', y: 'c' }, 'its own attributes win, the next one fills gaps')
  assert.equal(s.selectedSegmentId, a, 'the selection follows the merged segment')
  assert.equal(s.mergeWithNext(a), null, 'nothing after it on its track')
  s.undo()
  assert.deepEqual(times(s, t), [[1, 2], [4, 5]])
})

test('nudge moves one edge, clamped to the media and to one ms of length', () => {
  const { s, t } = fresh()
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  assert.equal(s.nudgeSegment(a, 'start', -0.25), true)
  assert.deepEqual(times(s), [[0.75, 2]])
  s.nudgeSegment(a, 'end', 0.0104)
  assert.deepEqual(times(s), [[0.75, 2.01]])
  s.nudgeSegment(a, 'start', -10)
  assert.deepEqual(times(s), [[0, 2.01]])
  s.nudgeSegment(a, 'start', 10)
  assert.deepEqual(times(s), [[2.009, 2.01]], 'never past the end')
  s.nudgeSegment(a, 'end', 100)
  assert.deepEqual(times(s), [[2.009, 60]], 'never past the media')
  assert.equal(s.nudgeSegment(a, 'middle', 1), false)
})

test('snapTime: nearest candidate within the tolerance, else t', () => {
  const edges = [0.5, 1.0, 1.2, 3.0]
  assert.equal(snapTime(1.04, edges, 0.05), 1.0)
  assert.equal(snapTime(1.13, edges, 0.1), 1.2)
  assert.equal(snapTime(2.0, edges, 0.1), 2.0)
  assert.equal(snapTime(0, [], 1), 0)
  assert.equal(snapTime(9, edges, 6), 3.0)
})

test('no_overlap track: adding, moving or retracking into overlap or touching merges; other tracks untouched', () => {
  const { s, t, u } = fresh(noOverlapSchema())
  const a = s.addSegment({ track: t, start: 1, end: 2, text: 'a' })
  s.addSegment({ track: t, start: 5, end: 6, text: 'b' })
  s.addSegment({ track: u, start: 1.5, end: 5.5, text: 'other' }) // the other category allows overlap
  assert.equal(s.segments.length, 3)
  const c = s.addSegment({ track: t, start: 1.8, end: 3, text: 'c' })
  assert.deepEqual(times(s, t), [[1, 3], [5, 6]], 'an overlapping new segment merged with the one it overlaps')
  assert.equal(s.segment(c).text, 'a c')
  assert.equal(s.segment(a), null)
  s.setSegmentTimes(c, 1, 5) // touches [5, 6]
  assert.deepEqual(times(s, t), [[1, 6]])
  assert.equal(s.segment(c).text, 'a c b')
  s.undo()
  assert.deepEqual(times(s, t), [[1, 3], [5, 6]], 'one undo step for the move and its merge')
  assert.deepEqual(times(s, u), [[1.5, 5.5]])
  const moved = s.sortedSegments().find(x => x.track === u).id
  s.setSegmentTrack(moved, t)
  assert.deepEqual(times(s, t), [[1, 6]], 'a segment dragged onto the lane merges too')
})

test('no_overlap track: a split leaves one ms between the halves (touching would merge back)', () => {
  const { s, t } = fresh(noOverlapSchema())
  const a = s.addSegment({ track: t, start: 1, end: 3 })
  const b = s.splitSegment(a, 2)
  assert.ok(b)
  assert.deepEqual(times(s, t), [[1, 2], [2.001, 3]])
})

test('cannot annotate: the answer carries the reason and no segments; the draft keeps them; undo and restore', () => {
  const { s, t } = fresh()
  s.addSegment({ track: t, start: 1, end: 2, text: 'kept' })
  assert.equal(s.setCannotAnnotate('Silence or no speech'), true)
  assert.equal(s.setCannotAnnotate('Silence or no speech'), false, 'no change, no event')
  s.setCannotAnnotate('Silence or no speech', 'only hold music')
  const posted = s.toAnswer()
  assert.deepEqual(posted.cannotAnnotate, { reason: 'Silence or no speech', note: 'only hold music' })
  assert.deepEqual(posted.segments, [])
  const draft = s.toAnswer({ draft: true })
  assert.equal(draft.segments.length, 1)
  const again = new AnswerState({ schema: loadSchema(), mediaDuration: 60 })
  again.restore(draft)
  assert.deepEqual(again.cannotAnnotate, { reason: 'Silence or no speech', note: 'only hold music' })
  assert.equal(again.segments.length, 1)
  s.undo() // the note
  s.undo() // the reason
  assert.equal(s.cannotAnnotate, null)
  assert.equal(s.toAnswer().segments.length, 1)
  assert.equal('cannotAnnotate' in s.toAnswer(), false)
})

test('word timings: kept per pre-segment, split and merged with it, their edges found near a time', () => {
  const s = new AnswerState({ schema: loadSchema(), mediaDuration: 60 })
  s.loadPresegments([{ id: 'p1', track: 'speaker', label: 'Agent', start: 1, end: 3, text: 'a b c', words: [[1, 1.4, 'a'], [1.5, 2, 'b'], [2.2, 2.9, 'c']] }])
  const [seg] = s.segments
  assert.deepEqual(s.wordEdgesBetween(1.3, 2.25), [1.4, 1.5, 2, 2.2])
  const second = s.splitSegment(seg.id, 1.8) // 'b' (middle 1.75) stays in the first half
  assert.deepEqual(s.words.get(seg.id).map(w => w[2]), ['a', 'b'])
  assert.deepEqual(s.words.get(second).map(w => w[2]), ['c'])
  s.mergeWithNext(seg.id)
  assert.deepEqual(s.words.get(seg.id).map(w => w[2]), ['a', 'b', 'c'])
  assert.equal(s.words.has(second), false)
  // After a restore (autosave has no words) they come back from the task's pre-segments.
  const saved = s.toAnswer({ draft: true })
  const again = new AnswerState({ schema: loadSchema(), mediaDuration: 60 })
  again.restore(saved)
  assert.equal(again.words.size, 0)
  assert.equal(again.attachWords([{ id: 'p1', words: [[1, 1.4, 'a']] }]), 1)
  assert.deepEqual(again.wordEdgesBetween(0, 10), [1, 1.4])
  assert.equal(again.attachWords([{ id: 'p1', words: 'nonsense' }, null]), 0)
})

test('channel-identified pre-segments: tracks in channel order (lane N over channel N)', () => {
  const s = new AnswerState({ schema: loadSchema(), mediaDuration: 60 })
  s.loadPresegments([
    { id: 'p1', track: 'speaker', label: 'Customer', channel: 1, start: 0.5, end: 2 }, // speaks first
    { id: 'p2', track: 'speaker', label: 'Agent', channel: 0, start: 2.5, end: 4 },
    { id: 'p3', track: 'language', label: 'English', start: 0, end: 4 } // no channel: after them
  ])
  assert.deepEqual(s.tracks.map(t => t.label), ['Agent', 'Customer', 'English'])
  assert.equal(s.segments.length, 3)
  const onTrack = Object.fromEntries(s.segments.map(x => [x.presegmentId, s.track(x.track).label]))
  assert.deepEqual(onTrack, { p1: 'Customer', p2: 'Agent', p3: 'English' })
})
