// The rules of a review task (issue 17), kept pure so node tests them: where the review data is,
// the ghost lanes (one per worker answer and the consolidated label) with a cheap window query,
// the disagreement list, the per-worker content answers that differ, and the decision the answer
// carries (Accept after any change is an edit). Shapes: docs/worker-ui.md, "Review tasks".

import {
  DISAGREEMENT_KEYS as DK,
  REVIEW_DECISIONS,
  REVIEW_KEYS as RK,
  REVIEW_NOTE_KEYS as NK,
  REVIEW_NOTE_MAX_CHARS,
  TASK_INPUT_KEYS as KEY
} from './contract.js'
import { structuralProblems, validateAnswer } from './validation.js'

export const [ACCEPT, EDIT, REJECT] = REVIEW_DECISIONS
export const CONSOLIDATED_LANE = 'consolidated'

const isObject = v => v !== null && typeof v === 'object' && !Array.isArray(v)
const finite = v => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/**
 * Whether the task is a review, and where its data is.
 * @returns {{review: object|null, ref: string, isReview: boolean}} ref: the `review-ref` URI ('' = none)
 */
export function reviewSource (taskInput) {
  const review = isObject(taskInput?.[KEY.review]) ? taskInput[KEY.review] : null
  const ref = typeof taskInput?.[KEY.review_ref] === 'string' ? taskInput[KEY.review_ref].trim() : ''
  return { review, ref, isReview: Boolean(review || ref) }
}

/** A re-labeling task's `review-note` (a reviewer rejected the earlier label): {note, iteration} or null. */
export function reviewNoteOf (taskInput) {
  const n = taskInput?.[KEY.review_note]
  if (!isObject(n) || typeof n[NK.note] !== 'string' || !n[NK.note].trim()) return null
  return { note: n[NK.note], iteration: Number.isInteger(n[NK.iteration]) ? n[NK.iteration] : null }
}

/** The editable starting point Python wrote (`review.answer`: the consolidated label as a
 *  SegmentationAnswer, with attributes and every content field), ready for state.restore(): without
 *  the times of whoever made it. null when the review data has none (then: pre-segments / pre-content). */
export function startingAnswer (review) {
  const a = review?.[RK.answer]
  if (!isObject(a)) return null
  const { startedAt, submittedAt, review: _, ...rest } = a
  return rest
}

/** What is wrong with a downloaded `review` object, or '' (the page cannot review without it). */
export function reviewShapeProblem (review) {
  if (!isObject(review)) return 'the review data is not a JSON object'
  if (!isObject(review[RK.consolidated])) return `the review data has no ${RK.consolidated} label`
  if (!Array.isArray(review[RK.workers] ?? [])) return `${RK.workers} is not a list`
  if (!Array.isArray(review[RK.disagreements] ?? [])) return `${RK.disagreements} is not a list`
  return ''
}

/** Segments sorted by start with the running maximum of their ends: segmentsIn() finds the ones
 *  overlapping a window by binary search, so drawing a window of a long call costs what is in it. */
export function indexByTime (items) {
  const sorted = items.filter(s => s.start !== null && s.end !== null).sort((a, b) => a.start - b.start || a.end - b.end)
  const maxEnd = new Float64Array(sorted.length)
  let m = -Infinity
  sorted.forEach((s, i) => { m = Math.max(m, s.end); maxEnd[i] = m })
  return { items: sorted, maxEnd }
}

/** The indexed items overlapping [from, to] (touching counts), in start order. */
export function segmentsIn (index, from, to) {
  const { items, maxEnd } = index
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (maxEnd[mid] < from) lo = mid + 1
    else hi = mid
  }
  const out = []
  for (let i = lo; i < items.length && items[i].start <= to; i++) if (items[i].end >= from) out.push(items[i])
  return out
}

/** "category\u0000label": one sub-row of a ghost lane per track, the same in every lane. */
export const rowKey = (category, label) => `${category}\u0000${label}`

/**
 * The ghost lanes: the consolidated label first, then each worker answer as given (w1, w2, ...).
 * Each lane's segments carry their track's category and label (a worker's track ids mean nothing
 * across answers) and are indexed by time. `rows`: the track rows every lane shares, in the
 * schema's order of categories and labels (then any the schema does not name); each segment's
 * `row` is its index there.
 * @returns {{lanes: {key: string, label: string, consolidated: boolean, count: number, index: object}[], rows: string[],
 *   rowTracks: {category: string, label: string}[]}}
 */
export function ghostLanes (review, schema) {
  const consolidated = review?.[RK.consolidated] || {}
  const lanes = [{
    key: CONSOLIDATED_LANE,
    label: 'Consolidated',
    consolidated: true,
    segments: (Array.isArray(consolidated.segments) ? consolidated.segments : []).filter(isObject).map(s => ({
      id: String(s.id ?? ''), category: String(s.category ?? ''), label: String(s.label ?? ''),
      start: finite(s.start), end: finite(s.end), support: finite(s.support), agreement: finite(s.agreement)
    }))
  }]
  for (const w of Array.isArray(review?.[RK.workers]) ? review[RK.workers] : []) {
    if (!isObject(w) || !isObject(w.answer)) continue
    const tracks = new Map((Array.isArray(w.answer.tracks) ? w.answer.tracks : []).filter(isObject).map(t => [t.id, t]))
    lanes.push({
      key: String(w.worker),
      label: String(w.worker),
      consolidated: false,
      segments: (Array.isArray(w.answer.segments) ? w.answer.segments : []).filter(isObject).map(s => {
        const t = tracks.get(s.track) || {}
        return { id: String(s.id ?? ''), category: String(t.category ?? ''), label: String(t.label ?? ''), start: finite(s.start), end: finite(s.end) }
      })
    })
  }
  const seen = new Set(lanes.flatMap(l => l.segments.map(s => rowKey(s.category, s.label))))
  const rows = []
  for (const cat of schema?.tracks || []) {
    for (const label of cat.labels || []) {
      const k = rowKey(cat.name, label)
      if (seen.delete(k)) rows.push(k)
    }
  }
  rows.push(...seen)
  const rowIndex = new Map(rows.map((k, i) => [k, i]))
  for (const lane of lanes) for (const seg of lane.segments) seg.row = rowIndex.get(rowKey(seg.category, seg.label))
  return {
    lanes: lanes.map(({ segments, ...lane }) => ({ ...lane, count: segments.length, index: indexByTime(segments) })),
    rows,
    rowTracks: rows.map(k => { const [category, label] = k.split('\u0000'); return { category, label } })
  }
}

/**
 * The disagreements in the order given (Python ranks them), each with the times to show: its own,
 * else those of the consolidated segment it names.
 */
export function disagreementItems (review) {
  const segs = new Map()
  for (const s of review?.[RK.consolidated]?.segments || []) if (isObject(s)) segs.set(String(s.id), s)
  const list = Array.isArray(review?.[RK.disagreements]) ? review[RK.disagreements] : []
  return list.filter(isObject).map((d, i) => {
    const segmentId = d[DK.segment_id] != null ? String(d[DK.segment_id]) : null
    const seg = segmentId ? segs.get(segmentId) : null
    return {
      index: i,
      id: `d${i}`,
      kind: String(d[DK.kind] ?? ''),
      segmentId,
      field: d[DK.field] != null ? String(d[DK.field]) : null,
      start: finite(d[DK.start]) ?? finite(seg?.start) ?? null,
      end: finite(d[DK.end]) ?? finite(seg?.end) ?? null,
      score: finite(d[DK.score]),
      message: String(d[DK.message] ?? '')
    }
  })
}

/** The editable segment a disagreement is about: the one made from its consolidated segment
 *  (presegmentId), else one with that id, else the one overlapping its span most; null if none. */
export function editableFor (item, segments) {
  if (item.segmentId) {
    const hit = segments.find(s => s.presegmentId === item.segmentId) || segments.find(s => s.id === item.segmentId)
    if (hit) return hit.id
  }
  if (item.start === null || item.end === null) return null
  let best = null
  let bestOverlap = 0
  for (const s of segments) {
    const overlap = Math.min(s.end, item.end) - Math.max(s.start, item.start)
    if (overlap > bestOverlap) { best = s.id; bestOverlap = overlap }
  }
  return best
}

/**
 * The editable segments the disagreements are about (the consolidated lane's highlight): segment
 * id -> {kinds (in list order, once each), ids (the items'), first (the first item's index)}.
 * Content fields (no segment) are left out. By presegmentId / id in one pass, else by overlap.
 */
export function flaggedSegments (items, segments) {
  const byPre = new Map()
  const byId = new Map()
  for (const s of segments) {
    if (s.presegmentId && !byPre.has(s.presegmentId)) byPre.set(s.presegmentId, s.id)
    byId.set(s.id, s.id)
  }
  const out = new Map()
  for (const item of items) {
    if (item.field && !item.segmentId) continue
    if (!item.segmentId && (item.start === null || item.end === null)) continue
    const id = (item.segmentId && (byPre.get(item.segmentId) ?? byId.get(item.segmentId))) ?? editableFor({ ...item, segmentId: null }, segments)
    if (!id) continue
    const f = out.get(id) || { kinds: [], ids: [], first: item.index }
    if (!f.kinds.includes(item.kind)) f.kinds.push(item.kind)
    f.ids.push(item.id)
    out.set(id, f)
  }
  return out
}

const roundish = v => String(Math.round(v * 100) / 100)

/**
 * Rating fields whose consolidated value lies between the scale's steps (a mean, such as 3.5): the
 * form cannot show it as a selected step, so no step is selected and Accept keeps the mean (the
 * label as consolidated); the hint says so, with each worker's rating. field name -> {mean,
 * selected (the step now chosen, or null), values [{worker, value}], text}. Fields whose value is
 * a step are preselected as usual and get no hint.
 */
export function ratingHints (review, schema, content) {
  const out = new Map()
  const results = review?.[RK.consolidated]?.content || {}
  const workers = (Array.isArray(review?.[RK.workers]) ? review[RK.workers] : []).filter(w => isObject(w) && isObject(w.answer))
  for (const spec of schema?.content_fields || []) {
    if (spec.type !== 'rating') continue
    const result = results[spec.name]
    const value = finite(isObject(result) ? result.value : null)
    const min = spec.min ?? 1
    const max = spec.max ?? 5
    const isStep = v => Number.isInteger(v) && v >= min && v <= max
    if (value === null || isStep(value)) continue
    const mean = finite(result.mean) ?? value
    const values = workers.map(w => ({ worker: String(w.worker), value: isObject(w.answer.content) ? w.answer.content[spec.name] : undefined }))
    const list = values.map(v => `${v.worker}: ${formatValue(v.value)}`).join(' · ')
    const now = finite(content?.[spec.name])
    const selected = now !== null && isStep(now) ? now : null
    const text = selected === null
      ? `No step is selected: Accept keeps the mean ${roundish(mean)} of the workers' ratings${list ? ` (${list})` : ''}. Choose a step to change it.`
      : `You chose ${selected}; the workers' mean is ${roundish(mean)}${list ? ` (${list})` : ''}.`
    out.set(spec.name, { mean, selected, values, text })
  }
  return out
}

/** A content value comparable across answers: unset and empty are the same, choices unordered. */
function canonicalValue (v) {
  if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) return null
  return Array.isArray(v) ? [...v].map(String).sort() : v
}

/**
 * The content fields on which the worker answers differ: field name -> [{worker, value}] in the
 * workers' order. Fields where all agree are left out (the editable field already shows it).
 */
export function contentDifferences (review, schema) {
  const workers = (Array.isArray(review?.[RK.workers]) ? review[RK.workers] : []).filter(w => isObject(w) && isObject(w.answer))
  const out = new Map()
  if (workers.length < 2) return out
  for (const spec of schema?.content_fields || []) {
    const values = workers.map(w => ({ worker: String(w.worker), value: isObject(w.answer.content) ? w.answer.content[spec.name] : undefined }))
    const distinct = new Set(values.map(v => JSON.stringify(canonicalValue(v.value))))
    if (distinct.size > 1) out.set(spec.name, values)
  }
  return out
}

/** A content answer in words for the "w1: ..." line (textContent only). */
export function formatValue (value, maxChars = 200) {
  const v = canonicalValue(value)
  if (v === null) return '(no answer)'
  if (Array.isArray(v)) return value.join(', ')
  if (v === true) return 'Yes'
  if (v === false) return 'No'
  const s = String(v)
  return s.length > maxChars ? `${s.slice(0, maxChars - 1)}…` : s
}

/** What the label says, without ids and timestamps: two answers with the same fingerprint are the
 *  same label (tracks by category and label; empty content values are no value). */
export function labelFingerprint (answer) {
  const tracks = new Map((answer?.tracks || []).map(t => [t.id, [t.category, t.label]]))
  const segments = (answer?.segments || []).map(s => JSON.stringify([
    ...(tracks.get(s.track) || [null, null]), Math.round(s.start * 1000), Math.round(s.end * 1000), s.text || '',
    Object.entries(s.attributes || {}).map(([k, v]) => [k, canonicalValue(v)]).filter(([, v]) => v !== null).sort()
  ])).sort()
  const content = Object.entries(answer?.content || {}).map(([k, v]) => [k, canonicalValue(v)]).filter(([, v]) => v !== null).sort()
  return JSON.stringify({ segments, content, cannot: answer?.cannotAnnotate?.reason ?? null })
}

/** Whether `current` differs from the label the review started from. */
export function labelChanged (start, current) {
  return labelFingerprint(start) !== labelFingerprint(current)
}

/**
 * The decision the answer carries: a reject stays a reject; Accept (or a plain Submit) is an edit
 * once anything changed. (The Python side recomputes accept vs edit anyway.)
 * @param {'accept'|'reject'|null} choice what the reviewer pressed
 */
export function reviewDecision (choice, changed) {
  if (choice === REJECT) return REJECT
  return changed ? EDIT : ACCEPT
}

/** Problems of the review decision itself (a reject needs a note; at most REVIEW_NOTE_MAX_CHARS). */
export function reviewProblems ({ decision, note }) {
  const problems = []
  const text = typeof note === 'string' ? note : ''
  if (decision === REJECT && !text.trim()) {
    problems.push({ path: 'review.note', field: 'note', message: 'A reject needs a note for the annotators: say what to fix.' })
  }
  if (text.length > REVIEW_NOTE_MAX_CHARS) {
    problems.push({ path: 'review.note', field: 'note', message: `The note is ${text.length} characters long; at most ${REVIEW_NOTE_MAX_CHARS}.` })
  }
  return problems
}

/** The answer with its review member. */
export function withReview (answer, decision, note) {
  return { ...answer, review: { decision, note: typeof note === 'string' ? note : '' } }
}

/** Everything that blocks submitting a review answer: the decision's problems, then the label's
 *  (a rejected label is ignored downstream, so only its structure must hold). */
export function reviewAnswerProblems (answer, schema) {
  const own = reviewProblems(answer.review || {})
  const label = answer.review?.decision === REJECT ? structuralProblems(answer) : validateAnswer(answer, schema)
  return [...own, ...label]
}
