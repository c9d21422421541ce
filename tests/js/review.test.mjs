// The review page's pure rules (static/js/review-logic.js): where the review data is, the ghost
// lanes and their window query, the disagreement list, content differences, accept vs edit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadSchema } from './helpers.mjs'
import { AnswerState } from '../../static/js/state.js'
import {
  ACCEPT, EDIT, REJECT, contentDifferences, disagreementItems, editableFor, formatValue, ghostLanes, indexByTime,
  labelChanged, reviewAnswerProblems, reviewDecision, reviewNoteOf, reviewProblems, reviewShapeProblem, reviewSource,
  flaggedSegments, ratingHints, rowKey, segmentsIn, withReview
} from '../../static/js/review-logic.js'
import { REVIEW_DECISIONS, REVIEW_NOTE_MAX_CHARS } from '../../static/js/contract.js'

const schema = loadSchema('call-center')

function workerAnswer (segments, content) {
  return {
    schemaVersion: '1.0',
    mediaDuration: 21,
    tracks: [{ id: 't1', category: 'speaker', label: 'Agent' }, { id: 't2', category: 'speaker', label: 'Customer' }],
    segments,
    content
  }
}

/** A review input as contract/review.py ReviewInput has it (dashed keys), built by hand. */
function fixture () {
  return {
    'of-job': 'call-center-labels',
    'label-attribute': 'call-center-labels',
    iteration: 1,
    consolidated: {
      schemaVersion: '1.0',
      segments: [
        { id: 's1', category: 'speaker', label: 'Agent', start: 0.4, end: 3.5, text: 'hello', support: 2, agreement: 0.9 },
        { id: 's2', category: 'speaker', label: 'Customer', start: 4.0, end: 7.8, text: 'hi', support: 1, agreement: 0.4 }
      ],
      content: { overall_rating: { value: 4, agreement: 0.5, tie: true } }
    },
    workers: [
      { worker: 'w1', answer: workerAnswer([{ id: 'a', track: 't1', start: 0.4, end: 3.4 }, { id: 'b', track: 't2', start: 4.0, end: 7.8 }], { overall_rating: 4, background_noise: ['Music', 'Static'] }) },
      { worker: 'w2', answer: workerAnswer([{ id: 'c', track: 't1', start: 0.5, end: 3.6 }], { overall_rating: 3, background_noise: ['Static', 'Music'] }) }
    ],
    disagreements: [
      { kind: 'low-support', 'segment-id': 's2', field: null, start: null, end: null, score: 0.4, message: '1 of 2 workers marked this segment' },
      { kind: 'content-tie', 'segment-id': null, field: 'overall_rating', start: null, end: null, score: 0.5, message: 'tied' },
      { kind: 'low-agreement', 'segment-id': 's1', field: null, start: 0.4, end: 3.6, score: 0.7, message: 'mean IoU 0.7' }
    ]
  }
}

test('a review task is one with review or review-ref; review-note is read from a re-labeling line', () => {
  assert.deepEqual(reviewSource({ 'source-ref': 's3://b/a.wav' }), { review: null, ref: '', isReview: false })
  assert.equal(reviewSource({ review: fixture() }).isReview, true)
  assert.deepEqual(reviewSource({ 'review-ref': ' s3://b/x.review.json ' }), { review: null, ref: 's3://b/x.review.json', isReview: true })
  assert.equal(reviewSource({ review: 'nope' }).isReview, false)
  assert.deepEqual(reviewNoteOf({ 'review-note': { note: 'fix the ends', iteration: 2 } }), { note: 'fix the ends', iteration: 2 })
  assert.equal(reviewNoteOf({ 'review-note': { note: '   ' } }), null)
  assert.equal(reviewNoteOf({}), null)
  assert.equal(reviewShapeProblem(fixture()), '')
  assert.match(reviewShapeProblem({ workers: [] }), /consolidated/)
  assert.match(reviewShapeProblem([]), /not a JSON object/)
})

test('ghost lanes: consolidated first, then the workers as given; tracks by category and label, rows in schema order', () => {
  const { lanes, rows, rowTracks } = ghostLanes(fixture(), schema)
  assert.deepEqual(lanes.map(l => [l.key, l.label, l.consolidated, l.count]), [
    ['consolidated', 'Consolidated', true, 2], ['w1', 'w1', false, 2], ['w2', 'w2', false, 1]])
  // The schema lists Customer before Agent: the rows follow it, whatever order the answers use.
  assert.deepEqual(rows, [rowKey('speaker', 'Customer'), rowKey('speaker', 'Agent')])
  assert.deepEqual(rowTracks, [{ category: 'speaker', label: 'Customer' }, { category: 'speaker', label: 'Agent' }])
  const w1 = lanes[1].index.items
  assert.deepEqual(w1.map(s => [s.category, s.label, s.start, s.row]), [['speaker', 'Agent', 0.4, 1], ['speaker', 'Customer', 4.0, 0]])
})

test('segmentsIn finds what overlaps a window by binary search, long segments included', () => {
  const items = [{ start: 0, end: 100 }, ...Array.from({ length: 1000 }, (_, i) => ({ start: i, end: i + 0.5 }))]
  const index = indexByTime(items.sort(() => 0.5 - Math.random()))
  const hit = segmentsIn(index, 500.2, 502.1)
  assert.deepEqual(hit.map(s => [s.start, s.end]), [[500, 500.5], [501, 501.5], [502, 502.5]])
  // The 0-100 segment overlaps [50, 50.2] though it starts long before.
  assert.deepEqual(segmentsIn(index, 50.6, 50.9).map(s => [s.start, s.end]), [[0, 100]])
  assert.deepEqual(segmentsIn(index, 2000, 3000), [])
  assert.deepEqual(segmentsIn(indexByTime([]), 0, 1), [])
  // Touching counts (a band at a point).
  assert.equal(segmentsIn(index, 700.5, 700.5).length, 1)
})

test('disagreements keep the given order; times come from the consolidated segment when absent', () => {
  const items = disagreementItems(fixture())
  assert.deepEqual(items.map(i => [i.kind, i.segmentId, i.field, i.start, i.end]), [
    ['low-support', 's2', null, 4.0, 7.8],
    ['content-tie', null, 'overall_rating', null, null],
    ['low-agreement', 's1', null, 0.4, 3.6]])
  assert.deepEqual(items.map(i => i.id), ['d0', 'd1', 'd2'])
  assert.equal(items[0].message, '1 of 2 workers marked this segment')
})

test('a disagreement finds its editable segment by presegmentId, else by id, else by overlap', () => {
  const [onS2, , onS1] = disagreementItems(fixture())
  const segs = [{ id: 'seg-1', presegmentId: 's1', start: 0.4, end: 3.5 }, { id: 'seg-2', presegmentId: null, start: 4.1, end: 7 }]
  assert.equal(editableFor(onS1, segs), 'seg-1')
  assert.equal(editableFor(onS2, segs), 'seg-2') // s2 was retyped away: the segment over its span
  assert.equal(editableFor({ segmentId: null, start: 10, end: 11 }, segs), null)
  assert.equal(editableFor({ segmentId: 'seg-2', start: null, end: null }, segs), 'seg-2')
})

test('content answers are listed where the workers differ (unordered choices are the same answer)', () => {
  const diff = contentDifferences(fixture(), schema)
  assert.deepEqual([...diff.keys()], ['overall_rating'])
  assert.deepEqual(diff.get('overall_rating'), [{ worker: 'w1', value: 4 }, { worker: 'w2', value: 3 }])
  const one = fixture()
  one.workers.pop()
  assert.equal(contentDifferences(one, schema).size, 0)
  assert.equal(formatValue(['Music', 'Static']), 'Music, Static')
  assert.equal(formatValue(true), 'Yes')
  assert.equal(formatValue(undefined), '(no answer)')
  assert.equal(formatValue([]), '(no answer)')
  assert.equal(formatValue('x'.repeat(300)).length, 200)
})

function started () {
  const s = new AnswerState({ schema, mediaDuration: 21 })
  s.loadPresegments([{ id: 's1', track: 'speaker', label: 'Agent', start: 0.4, end: 3.5, text: 'hello' },
    { id: 's2', track: 'speaker', label: 'Customer', start: 4, end: 7.8, text: 'hi' }])
  s.setContent('overall_rating', 4)
  return s
}

test('accept after any change is an edit: moves, text, attributes, content, deletions, relabels', () => {
  const base = started().toAnswer()
  const same = started()
  assert.equal(labelChanged(base, same.toAnswer()), false)
  assert.equal(reviewDecision(ACCEPT, labelChanged(base, same.toAnswer())), ACCEPT)
  assert.equal(reviewDecision(null, false), ACCEPT)
  const edits = [
    s => s.setSegmentTimes(s.segments[0].id, 0.5, 3.5),
    s => s.setSegmentText(s.segments[1].id, 'hi there'),
    s => s.setSegmentAttribute(s.segments[0].id, 'emotion', 'Happy'),
    s => s.setContent('overall_rating', 5),
    s => s.removeSegment(s.segments[0].id),
    s => s.setSegmentTrack(s.segments[0].id, s.findTrack('speaker', 'Customer').id),
    s => s.addSegment({ track: s.tracks[0].id, start: 10, end: 12 })
  ]
  for (const edit of edits) {
    const s = started()
    edit(s)
    assert.equal(labelChanged(base, s.toAnswer()), true, String(edit))
    assert.equal(reviewDecision(ACCEPT, labelChanged(base, s.toAnswer())), EDIT)
  }
  // Undone is unchanged; ids, timestamps and empty values do not count.
  const s = started()
  s.setSegmentTimes(s.segments[0].id, 0.5, 3.5)
  s.undo()
  assert.equal(labelChanged(base, s.toAnswer()), false)
  s.setContent('background_noise', [])
  assert.equal(labelChanged(base, { ...s.toAnswer(), startedAt: 'x', segments: s.toAnswer().segments.map(g => ({ ...g, id: 'other-' + g.id })) }), false)
  // A reject stays a reject whatever changed.
  assert.equal(reviewDecision(REJECT, true), REJECT)
  assert.deepEqual([ACCEPT, EDIT, REJECT], REVIEW_DECISIONS)
})

test('a reject needs a note; a note is at most REVIEW_NOTE_MAX_CHARS; a rejected label only needs its structure', () => {
  assert.deepEqual(reviewProblems({ decision: ACCEPT, note: '' }), [])
  const [p] = reviewProblems({ decision: REJECT, note: '  ' })
  assert.equal(p.path, 'review.note')
  assert.match(p.message, /reject needs a note/)
  assert.deepEqual(reviewProblems({ decision: REJECT, note: 'wrong speaker at 4 s' }), [])
  assert.equal(reviewProblems({ decision: EDIT, note: 'x'.repeat(REVIEW_NOTE_MAX_CHARS + 1) }).length, 1)
  assert.deepEqual(reviewProblems({ decision: REJECT, note: 'x'.repeat(REVIEW_NOTE_MAX_CHARS) }), [])

  // background_noise is required: an accepted label without it is refused, a rejected one is not.
  const answer = started().toAnswer()
  const accepted = reviewAnswerProblems(withReview(answer, ACCEPT, ''), schema)
  assert.ok(accepted.some(x => x.path === 'content.background_noise'), JSON.stringify(accepted))
  assert.deepEqual(reviewAnswerProblems(withReview(answer, REJECT, 'the call is cut'), schema), [])
  assert.deepEqual(reviewAnswerProblems(withReview(answer, REJECT, ''), schema).map(x => x.path), ['review.note'])
  assert.deepEqual(withReview(answer, EDIT, 'ok').review, { decision: 'edit', note: 'ok' })
})

test('a rating whose consolidated value is between steps: no step is preselected, the hint says the mean and what Accept does', () => {
  const review = fixture()
  review.consolidated.content.overall_rating = { value: 3.5, agreement: 0.75, tie: false, mean: 3.5, values: { w1: 4, w2: 3 } }
  // The starting answer keeps the mean (Accept keeps the label as consolidated): the form shows no step.
  const hints = ratingHints(review, schema, { overall_rating: 3.5 })
  const h = hints.get('overall_rating')
  assert.equal(h.selected, null)
  assert.equal(h.mean, 3.5)
  assert.deepEqual(h.values, [{ worker: 'w1', value: 4 }, { worker: 'w2', value: 3 }])
  assert.match(h.text, /mean 3\.5/)
  assert.match(h.text, /w1: 4 · w2: 3/)
  assert.match(h.text, /No step is selected: Accept keeps the mean 3\.5/)
  // Once the reviewer picks a step, it is selected and the hint says so, the mean still shown.
  const chosen = ratingHints(review, schema, { overall_rating: 4 }).get('overall_rating')
  assert.equal(chosen.selected, 4)
  assert.match(chosen.text, /You chose 4; the workers' mean is 3\.5/)
  // A consolidated value on the scale is preselected: no hint needed.
  review.consolidated.content.overall_rating = { value: 4, agreement: 1, tie: false, mean: 4, values: { w1: 4, w2: 4 } }
  assert.equal(ratingHints(review, schema, { overall_rating: 4 }).size, 0)
  // Not a rating field, or a value off the scale's range: not a rating hint.
  assert.equal(ratingHints({ ...review, consolidated: { content: {} } }, schema, { summary: 'x' }).size, 0)
})

test('disagreements mark the editable segments they are about (by presegmentId, else by overlap), kinds in list order', () => {
  const items = disagreementItems(fixture())
  const segs = [{ id: 'seg-1', presegmentId: 's1', start: 0.4, end: 3.5 }, { id: 'seg-2', presegmentId: null, start: 4.1, end: 7 },
    { id: 'seg-3', presegmentId: null, start: 15, end: 16 }]
  const flagged = flaggedSegments(items, segs)
  assert.deepEqual([...flagged.keys()].sort(), ['seg-1', 'seg-2'])
  assert.deepEqual(flagged.get('seg-2'), { kinds: ['low-support'], ids: ['d0'], first: 0 })
  assert.deepEqual(flagged.get('seg-1'), { kinds: ['low-agreement'], ids: ['d2'], first: 2 })
  // Content fields are not segments.
  assert.equal([...flagged.values()].some(f => f.kinds.includes('content-tie')), false)
  // Two on one segment: both kinds, once each.
  const two = flaggedSegments([...items, { ...items[0], id: 'd9', index: 9, kind: 'content-disagreement', field: 'emotion' }], segs)
  assert.deepEqual(two.get('seg-2').kinds, ['low-support', 'content-disagreement'])
  // Thousands of segments: by presegmentId in one pass.
  const many = Array.from({ length: 5000 }, (_, i) => ({ id: `e${i}`, presegmentId: `p${i}`, start: i, end: i + 1 }))
  const lots = Array.from({ length: 2000 }, (_, i) => ({ id: `d${i}`, index: i, kind: 'low-agreement', segmentId: `p${i * 2}`, start: i * 2, end: i * 2 + 1 }))
  const t0 = performance.now()
  const big = flaggedSegments(lots, many)
  assert.equal(big.size, 2000)
  assert.ok(performance.now() - t0 < 200)
})
