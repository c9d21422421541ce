import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnswerState, roundMs } from '../../static/js/state.js'
import { loadSchema, runPython } from './helpers.mjs'

function fresh (opts = {}) {
  return new AnswerState({ schema: loadSchema(), interactionId: 'call_001', mediaDuration: 21, startedAt: '2026-01-01T00:00:00Z', ...opts })
}

test('roundMs rounds to milliseconds', () => {
  assert.equal(roundMs(1.23456), 1.235)
  assert.equal(roundMs(0.0004), 0)
})

test('tracks and segments: add, update, remove', () => {
  const s = fresh()
  const t1 = s.addTrack('speaker', 'Customer')
  const t2 = s.addTrack('speaker', 'Agent')
  assert.equal(s.activeTrackId, t1, 'the first track becomes active')
  const a = s.addSegment({ track: t1, start: 1.00049, end: 2.5 })
  const b = s.addSegment({ track: t2, start: 2.0, end: 3.0 }) // overlaps a on another track: allowed
  assert.deepEqual(s.segment(a), { id: a, track: t1, start: 1, end: 2.5, text: '', attributes: {}, presegmentId: null })
  s.setSegmentTimes(a, 4, 3) // backwards drag is normalised
  assert.deepEqual([s.segment(a).start, s.segment(a).end], [3, 4])
  s.setSegmentTrack(b, t1)
  assert.equal(s.segment(b).track, t1)
  s.removeTrack(t1)
  assert.equal(s.segments.length, 0, 'removing a track removes its segments')
  assert.equal(s.activeTrackId, t2)
})

test('records are immutable and replaced on change (views rely on identity)', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 0, end: 1 })
  const b = s.addSegment({ track: t, start: 1, end: 2 })
  const beforeA = s.segment(a)
  const beforeB = s.segment(b)
  assert.throws(() => { beforeA.start = 5 }, TypeError)
  s.setSegmentText(a, 'hello')
  assert.notEqual(s.segment(a), beforeA)
  assert.equal(s.segment(b), beforeB, 'an untouched segment keeps its identity')
})

test('undo/redo restores tracks, segments and content; new edits clear redo', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.setContent('overall_rating', 4)
  s.removeSegment(a)
  assert.equal(s.segments.length, 0)
  assert.ok(s.undo())
  assert.equal(s.segment(a).end, 2)
  assert.ok(s.undo())
  assert.deepEqual(s.content, {})
  assert.ok(s.redo())
  assert.equal(s.content.overall_rating, 4)
  s.setContent('summary', 'x')
  assert.equal(s.canRedo, false)
  while (s.undo());
  assert.equal(s.tracks.length, 0)
  assert.equal(s.canUndo, false)
  assert.equal(s.undo(), false)
})

test('typing in one field is one undo step, ended by another edit or blur', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  for (const text of ['h', 'he', 'hel', 'hello']) s.setSegmentText(a, text)
  s.undo()
  assert.equal(s.segment(a).text, '')
  s.redo()
  assert.equal(s.segment(a).text, 'hello')
  s.breakCoalescing()
  s.setSegmentText(a, 'hello!')
  s.undo()
  assert.equal(s.segment(a).text, 'hello')
})

test('editing one segment never loses the text of another', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.setSegmentText(a, 'typed before')
  const b = s.addSegment({ track: t, start: 3, end: 4 })
  s.setSegmentTimes(b, 3.5, 4.5)
  s.removeSegment(b)
  assert.equal(s.segment(a).text, 'typed before')
})

test('attributes: set, multiple choice arrays, empty removes', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.setSegmentAttribute(a, 'emotion', 'Happy')
  assert.deepEqual(s.segment(a).attributes, { emotion: 'Happy' })
  s.setSegmentAttribute(a, 'emotion', '')
  assert.deepEqual(s.segment(a).attributes, {})
  s.setContent('background_noise', ['Music', 'Static'])
  assert.deepEqual([...s.content.background_noise], ['Music', 'Static'])
  s.setContent('background_noise', [])
  assert.equal('background_noise' in s.content, false)
})

test('subscribers hear about each change with its kind', () => {
  const s = fresh()
  const seen = []
  s.subscribe(c => seen.push(c.kind))
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.select(a)
  s.setContent('summary', 'x')
  s.undo()
  assert.deepEqual(seen, ['tracks', 'segments', 'selection', 'content', 'all'])
})

test('ensureActiveTrack creates the schema\'s first track when there is none', () => {
  const s = fresh()
  const id = s.ensureActiveTrack()
  assert.deepEqual(s.track(id), { id, category: 'speaker', label: 'Customer' })
  assert.equal(s.ensureActiveTrack(), id)
})

test('pre-segments become segments on auto-created (category, label) tracks', () => {
  const s = fresh()
  const n = s.loadPresegments([
    { id: 'p1', track: 'speaker', label: 'Agent', start: 0.4, end: 3.557, text: 'Hello', speaker: 'spk_0', source: 'transcribe' },
    { id: 'p2', track: 'speaker', label: 'Customer', start: 3.9, end: 8.2, text: 'Hi' },
    { id: 'p3', track: 'speaker', label: 'Agent', start: 9, end: 10 },
    { id: 'bad', track: 'speaker', label: 'Agent', start: 'x', end: 2 }
  ])
  assert.equal(n, 3)
  assert.deepEqual(s.tracks.map(t => [t.category, t.label]), [['speaker', 'Agent'], ['speaker', 'Customer']])
  const segs = s.sortedSegments()
  assert.deepEqual(segs.map(x => x.presegmentId), ['p1', 'p2', 'p3'])
  assert.equal(segs[0].track, segs[2].track)
  assert.equal(s.canUndo, false, 'the starting point is not an undo step')
})

test('toAnswer produces the SegmentationAnswer shape, segments in time order', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Agent')
  s.addSegment({ track: t, start: 5, end: 6, text: 'second' })
  s.addSegment({ track: t, start: 1, end: 2, text: 'first', presegmentId: 'p1' })
  s.setContent('overall_rating', 3)
  const answer = s.toAnswer({ submittedAt: '2026-01-01T00:01:00Z' })
  assert.deepEqual(answer, {
    schemaVersion: '1.0',
    labelSchema: 'call-center',
    interactionId: 'call_001',
    mediaDuration: 21,
    tracks: [{ id: t, category: 'speaker', label: 'Agent' }],
    segments: [
      { id: 'seg-2', track: t, start: 1, end: 2, text: 'first', attributes: {}, presegmentId: 'p1' },
      { id: 'seg-1', track: t, start: 5, end: 6, text: 'second', attributes: {} }
    ],
    content: { overall_rating: 3 },
    startedAt: '2026-01-01T00:00:00Z',
    submittedAt: '2026-01-01T00:01:00Z'
  })
  // JSON round trip is lossless (what the hidden input carries).
  assert.deepEqual(JSON.parse(JSON.stringify(answer)), answer)
})

test('restore() round-trips an answer and continues ids without collisions', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Agent')
  s.addSegment({ track: t, start: 1, end: 2, text: 'a', attributes: { emotion: 'Sad' } })
  s.addSegment({ track: t, start: 3, end: 4 })
  s.setContent('summary', 'sum')
  const saved = JSON.parse(JSON.stringify(s.toAnswer()))
  const r = fresh()
  r.restore(saved)
  assert.deepEqual(r.toAnswer(), s.toAnswer())
  const newTrack = r.addTrack('speaker', 'Customer')
  const newSeg = r.addSegment({ track: newTrack, start: 5, end: 6 })
  assert.ok(!saved.tracks.some(x => x.id === newTrack))
  assert.ok(!saved.segments.some(x => x.id === newSeg))
})

test('the serialised answer validates against the Python SegmentationAnswer model', (t) => {
  const s = fresh()
  s.loadPresegments([{ id: 'p1', track: 'speaker', label: 'Agent', start: 0.4, end: 3.557, text: '<script>x</script>' }])
  const lang = s.addTrack('language', 'Spanish')
  s.addSegment({ track: lang, start: 2, end: 20.5 })
  // emotion is asked on speaker turns only (call-center: tracks: [speaker])
  s.setSegmentAttribute(s.toAnswer().segments[0].id, 'emotion', 'Confused')
  s.setContent('background_noise', ['Music'])
  s.setContent('overall_rating', 5)
  const answer = s.toAnswer({ submittedAt: '2026-01-01T00:01:00Z' })
  const out = runPython(
    'import json,sys\nfrom toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer\n' +
    'a = SegmentationAnswer.model_validate_json(sys.stdin.read())\n' +
    'print(json.dumps({"problems": [p.path for p in validate_answer(a, load_label_schema("call-center"))],' +
    ' "dump": a.model_dump(mode="json", by_alias=True, exclude_none=True)}))', answer)
  if (out === null) return t.skip('no .venv python')
  assert.deepEqual(out.problems, [])
  assert.deepEqual(out.dump.segments.map(x => [x.start, x.end]), [[0.4, 3.557], [2, 20.5]])
  assert.equal(out.dump.segments[0].presegmentId, 'p1')
})

test('typed times are kept as typed (so validation can point at end <= start), rounded to ms', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.setSegmentTime(a, 'start', 5.00049)
  assert.deepEqual([s.segment(a).start, s.segment(a).end], [5, 2])
  assert.equal(s.setSegmentTime(a, 'end', 'abc'), false, 'unreadable input changes nothing')
})

test('deleting the selected segment clears the selection; undo brings the segment back', () => {
  const s = fresh()
  const t = s.addTrack('speaker', 'Customer')
  const a = s.addSegment({ track: t, start: 1, end: 2 })
  s.select(a)
  assert.equal(s.activeTrackId, t)
  s.removeSegment(a)
  assert.equal(s.selectedSegmentId, null)
  s.undo()
  assert.equal(s.segment(a).start, 1)
})

test('pre-content fills text fields for the worker to correct and goes back with the answer', (t) => {
  const s = fresh()
  const filled = s.loadPreContent({
    summary: { value: 'Order W48172 is late.', model_id: 'anthropic.claude-3-haiku-20240307-v1:0', record_id: 'R0000000001' },
    overall_rating: { value: '5', model_id: 'm' }, // not a text field: left to the worker
    nosuch: { value: 'x', model_id: 'm' }
  })
  assert.equal(filled, 1)
  assert.deepEqual(s.content, { summary: 'Order W48172 is late.' })
  assert.equal(s.undo(), false, 'the pre-fill is the starting point, not an edit')
  s.setContent('summary', 'The order W48172 is late; the customer wants a call back.')
  s.setContent('background_noise', ['None'])
  s.setContent('overall_rating', 4)
  const t1 = s.addTrack('speaker', 'Customer')
  s.addSegment({ track: t1, start: 0, end: 2, text: 'hi' })
  const answer = s.toAnswer({ submittedAt: '2026-01-01T00:01:00Z' })
  assert.deepEqual(answer.prefill, { summary: { value: 'Order W48172 is late.', modelId: 'anthropic.claude-3-haiku-20240307-v1:0', recordId: 'R0000000001' } })
  const out = runPython(
    'import json,sys\nfrom toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer\n' +
    'a = SegmentationAnswer.model_validate_json(sys.stdin.read())\n' +
    'print(json.dumps([p.path for p in validate_answer(a, load_label_schema("call-center"))]))', answer)
  if (out === null) return t.skip('no .venv python')
  assert.deepEqual(out, [])
  s.restore({ tracks: [], segments: [], content: {} })
  assert.equal(s.toAnswer().prefill, undefined, 'discarding the work forgets the pre-fill too')
})
