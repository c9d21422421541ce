import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateAnswer, valueProblem, displayName, fieldsFor, textApplies } from '../../static/js/validation.js'
import { loadSchema, runPython } from './helpers.mjs'

const schema = loadSchema('call-center')

function answer (overrides = {}) {
  return {
    schemaVersion: '1.0',
    labelSchema: 'call-center',
    mediaDuration: 21,
    tracks: [{ id: 't1', category: 'speaker', label: 'Agent' }, { id: 't2', category: 'language', label: 'English' }],
    segments: [
      { id: 's1', track: 't1', start: 0.4, end: 3.5, text: 'hi', attributes: { emotion: 'Happy' } },
      { id: 's2', track: 't2', start: 1, end: 20, text: '', attributes: {} }
    ],
    content: { background_noise: ['None'], overall_rating: 4 },
    ...overrides
  }
}

const paths = problems => problems.map(p => p.path)

test('a complete answer has no problems', () => {
  assert.deepEqual(validateAnswer(answer(), schema), [])
})

test('end must be after start, with the segment id attached', () => {
  const a = answer()
  a.segments[0] = { ...a.segments[0], start: 3, end: 3 }
  const problems = validateAnswer(a, schema)
  assert.deepEqual(paths(problems), ['segments[0].end'])
  assert.equal(problems[0].segmentId, 's1')
  assert.equal(problems[0].field, 'end')
  assert.match(problems[0].message, /end \(3\.000\) must be after start \(3\.000\)/)
})

test('a segment past the media end is refused; within 1 ms tolerance is fine', () => {
  const a = answer()
  a.segments[1] = { ...a.segments[1], end: 21.0009 }
  assert.deepEqual(validateAnswer(a, schema), [])
  a.segments[1] = { ...a.segments[1], end: 21.5 }
  const problems = validateAnswer(a, schema)
  assert.deepEqual(paths(problems), ['segments[1].end'])
  assert.match(problems[0].message, /past the end of the media \(21\.000\)/)
  assert.equal(problems[0].segmentId, 's2')
})

test('unknown media duration blocks submit', () => {
  assert.deepEqual(paths(validateAnswer(answer({ mediaDuration: 0 }), schema)), ['mediaDuration'])
})

test('required content fields, wrong types and out-of-range ratings', () => {
  const missing = validateAnswer(answer({ content: {} }), schema)
  assert.deepEqual(paths(missing), ['content.background_noise', 'content.overall_rating'])
  assert.equal(missing[0].message, 'Background noise is required')
  assert.equal(missing[0].field, 'background_noise')
  const bad = validateAnswer(answer({ content: { background_noise: ['Jazz'], overall_rating: 9, summary: 3, mood: 'x' } }), schema)
  assert.deepEqual(paths(bad), ['content.mood', 'content.background_noise', 'content.overall_rating', 'content.summary'])
  assert.match(bad[1].message, /not options of Background noise: 'Jazz'/)
  assert.equal(bad[2].message, 'rating must be between 1 and 5')
  assert.equal(bad[3].message, 'expected text')
})

test('unknown track categories and labels outside the schema', () => {
  const a = answer()
  a.tracks = [{ id: 't1', category: 'speaker', label: 'Robot' }, { id: 't2', category: 'mood', label: 'Happy' }]
  const problems = validateAnswer(a, schema)
  assert.deepEqual(paths(problems), ['tracks[0].label', 'tracks[1].category'])
  assert.equal(problems[0].trackId, 't1')
  assert.equal(problems[0].message, "'Robot' is not a Speaker label")
})

test('segments on a missing track, duplicate ids, unknown attributes, bad options', () => {
  const a = answer()
  a.segments = [
    { id: 's1', track: 'nope', start: 0, end: 1, text: '', attributes: { colour: 'red' } },
    { id: 's1', track: 't1', start: 0, end: 1, text: '', attributes: { emotion: 'Bored' } }
  ]
  const problems = validateAnswer(a, schema)
  assert.deepEqual(paths(problems), ['segments[0].track', 'segments[1].id', 'segments[0].attributes.colour', 'segments[1].attributes.emotion'])
  assert.equal(problems[3].message, "'Bored' is not an option of Emotion")
})

test('required segment text and required segment fields', () => {
  const s = structuredClone(schema)
  s.segment_text.required = true
  s.segment_fields.push({ name: 'visible', type: 'boolean', required: true, min: 1, max: 5 })
  const a = answer()
  a.segments = [{ id: 's1', track: 't1', start: 0, end: 1, text: '   ', attributes: {} }]
  const problems = validateAnswer(a, s)
  assert.deepEqual(paths(problems), ['segments[0].text', 'segments[0].attributes.visible'])
  assert.equal(problems[0].message, 'Transcription is required')
  assert.equal(problems[1].message, 'Visible is required')
  a.segments[0].attributes.visible = false // false is an answer, not "empty"
  a.segments[0].text = 'x'
  assert.deepEqual(validateAnswer(a, s), [])
})

test('segment fields and text apply to the tracks the schema names (tracks: [speaker])', () => {
  assert.deepEqual(fieldsFor(schema, 'speaker').map(f => f.name), ['emotion'])
  assert.deepEqual(fieldsFor(schema, 'language'), [])
  assert.equal(textApplies(schema, 'speaker'), true)
  assert.equal(textApplies(schema, 'language'), false)
  const a = answer()
  a.segments[1] = { ...a.segments[1], text: 'Hello', attributes: { emotion: 'Happy' } }
  const problems = validateAnswer(a, schema)
  assert.deepEqual(problems.map(p => [p.path, p.field, p.segmentId, p.message]), [
    ['segments[1].text', 'text', 's2', 'Transcription does not apply to Language segments; clear it'],
    ['segments[1].attributes.emotion', 'attributes.emotion', 's2', 'Emotion does not apply to Language segments; clear it']
  ])
  a.segments[1].attributes = { emotion: null } // cleared in the UI: not an answer
  a.segments[1].text = ' '
  assert.deepEqual(validateAnswer(a, schema), [])
  // required only where asked
  const s = structuredClone(schema)
  s.segment_text.required = true
  s.segment_fields[0].required = true
  assert.deepEqual(validateAnswer(answer(), s), [])
  const b = answer()
  b.segments[0] = { ...b.segments[0], text: '', attributes: {} }
  assert.deepEqual(paths(validateAnswer(b, s)), ['segments[0].text', 'segments[0].attributes.emotion'])
  // without tracks a field is asked everywhere
  delete s.segment_fields[0].tracks
  s.segment_text.tracks = null
  assert.deepEqual(fieldsFor(s, 'language').map(f => f.name), ['emotion'])
  assert.equal(textApplies(s, 'language'), true)
})

test('valueProblem covers every field type', () => {
  assert.equal(valueProblem({ name: 'b', type: 'boolean' }, 'yes'), 'expected true or false')
  assert.equal(valueProblem({ name: 'c', type: 'single_choice', options: ['A'] }, ['A']), 'expected one option')
  assert.equal(valueProblem({ name: 'm', type: 'multiple_choice', options: ['A'] }, 'A'), 'expected a list of options')
  assert.equal(valueProblem({ name: 'r', type: 'rating', min: 1, max: 5 }, true), 'expected a number')
  assert.equal(valueProblem({ name: 'r', type: 'rating', min: 1, max: 5 }, 5), null)
  assert.equal(valueProblem({ name: 't', type: 'text', required: true }, ''), 'T is required')
  assert.equal(displayName({ name: 'overall_rating' }), 'Overall rating')
})

test('same verdicts as toolkit.contract.answer for the same answers', (t) => {
  const cases = []
  const a1 = answer(); a1.segments[0].end = 0.1; cases.push(a1)
  const a2 = answer({ content: {} }); a2.segments[1].end = 25; cases.push(a2)
  const a3 = answer(); a3.tracks[0].label = 'Robot'; a3.segments[0].attributes = { emotion: 'Bored', x: 'y' }; cases.push(a3)
  const a4 = answer({ content: { background_noise: [], overall_rating: 6, summary: '' } }); cases.push(a4)
  cases.push(answer())
  const a5 = answer(); a5.segments[1].text = 'Hola'; a5.segments[1].attributes = { emotion: 'Happy' }; cases.push(a5)
  const a6 = answer(); a6.segments[1].attributes = { emotion: 'Bored' }; a6.segments[0].track = 'nope'; cases.push(a6)
  const js = cases.map(c => paths(validateAnswer(c, schema)).sort())
  // model_construct skips the model's own structural validator so both layers can be compared.
  const py = runPython(
    'import json,sys\n' +
    'from toolkit.contract import SegmentationAnswer, load_label_schema, validate_answer\n' +
    'from toolkit.contract.answer import AnswerSegment, AnswerTrack, structural_problems\n' +
    's = load_label_schema("call-center")\nout = []\n' +
    'for c in json.load(sys.stdin):\n' +
    '    a = SegmentationAnswer.model_construct(media_duration=c["mediaDuration"],' +
    ' tracks=[AnswerTrack.model_validate(t) for t in c["tracks"]],' +
    ' segments=[AnswerSegment.model_validate(x) for x in c["segments"]], content=c["content"])\n' +
    '    out.append(sorted(p.path for p in structural_problems(a) + validate_answer(a, s)))\n' +
    'print(json.dumps(out))', cases)
  if (py === null) return t.skip('no .venv python')
  assert.deepEqual(js, py)
})

test('cannot annotate and no_overlap: the same verdicts as toolkit.contract.answer', (t) => {
  const strict = structuredClone(schema)
  strict.tracks[0].no_overlap = true
  const ca = reason => ({ cannotAnnotate: { reason, note: '' }, segments: [], tracks: [], content: {} })
  const cases = [
    answer(ca('Silence or no speech')), // valid: nothing else required, even the content fields
    answer({ ...ca('Silence or no speech'), mediaDuration: 0 }), // corrupt media: duration unknown is fine
    answer(ca('Bored')),
    answer({ ...ca('Wrong language'), segments: answer().segments, tracks: answer().tracks }),
    answer({ ...ca('Wrong language'), content: { nope: 1 } })
  ]
  const touching = answer()
  touching.segments.push({ id: 's3', track: 't1', start: 3.5, end: 5, text: '', attributes: {} })
  cases.push(touching)
  const apart = answer()
  apart.segments.push({ id: 's3', track: 't1', start: 3.501, end: 5, text: '', attributes: {} })
  cases.push(apart)
  const js = cases.map(c => paths(validateAnswer(c, strict)).sort())
  assert.deepEqual(js, [[], [], ['cannotAnnotate.reason'], ['segments'], ['content.nope'], ['segments[2].start'], []])
  const py = runPython(
    'import json,sys\n' +
    'from toolkit.contract import LabelSchema, SegmentationAnswer, validate_answer\n' +
    'from toolkit.contract.answer import AnswerSegment, AnswerTrack, CannotAnnotate, structural_problems\n' +
    'd = json.load(sys.stdin)\ns = LabelSchema.model_validate(d["schema"])\nout = []\n' +
    'for c in d["cases"]:\n' +
    '    a = SegmentationAnswer.model_construct(media_duration=c["mediaDuration"],' +
    ' tracks=[AnswerTrack.model_validate(t) for t in c["tracks"]],' +
    ' segments=[AnswerSegment.model_validate(x) for x in c["segments"]], content=c["content"],' +
    ' cannot_annotate=CannotAnnotate.model_validate(c["cannotAnnotate"]) if c.get("cannotAnnotate") else None)\n' +
    '    out.append(sorted(p.path for p in structural_problems(a) + validate_answer(a, s)))\n' +
    'print(json.dumps(out))', { schema: strict, cases })
  if (py === null) return t.skip('no .venv python')
  assert.deepEqual(js, py)
})
