// Comparison tasks (schema mode: compare): the pure rules, shared by the compare UI and its node
// tests. No DOM here. Candidates are named by their manifest candidate-id; the worker sees them as
// letters in the order the task input lists them (the pre-annotation step shuffled it per task).

import { ANSWER_SCHEMA_VERSION, TIME_DECIMALS, TIME_TOLERANCE } from '../contract.js'

export const LETTERS = ['A', 'B', 'C', 'D']
export const REFERENCE_KEY = 'X'
/** CMOS strength words, index = strength (0 = no preference). */
export const STRENGTH_WORDS = ['No preference', 'Slightly better', 'Clearly better', 'Much better']

const round = t => Number(Number(t).toFixed(TIME_DECIMALS))

/** The compare settings of a schema with their defaults (mirrors toolkit/contract/schema.py CompareSpec). */
export function compareSpec (schema) {
  const c = (schema && schema.compare) || {}
  const mos = c.mos || {}
  return {
    minCandidates: c.min_candidates ?? 2,
    maxCandidates: c.max_candidates ?? 4,
    question: c.question || 'Which candidate is better overall?',
    allowNoPreference: c.allow_no_preference !== false,
    spanReasons: Array.isArray(c.span_reasons) && c.span_reasons.length ? c.span_reasons : ['Other'],
    mos: { enabled: !!mos.enabled, label: mos.label || 'Quality (MOS)', min: mos.min ?? 1, max: mos.max ?? 5, required: !!mos.required }
  }
}

/** Candidate ids in display order from the task input's `candidates` (ids default to 1, 2, ...). */
export function candidateIds (candidates) {
  if (!Array.isArray(candidates)) return []
  return candidates.map((c, i) => String((c && c['candidate-id']) || i + 1))
}

/**
 * What a key press selects: {kind: 'candidate', index} for A-D within the candidates shown,
 * {kind: 'reference'} for X when there is a reference, else null.
 */
export function keyTarget (key, count, hasReference) {
  const k = String(key || '').toUpperCase()
  if (k === REFERENCE_KEY) return hasReference ? { kind: 'reference' } : null
  const index = LETTERS.indexOf(k)
  return index >= 0 && index < count ? { kind: 'candidate', index } : null
}

/** Where the playhead goes while a span loops: back to its start once it reaches the end. */
export function loopTime (t, span) {
  if (!span || !(span.end > span.start)) return t
  return t >= span.end || t < span.start - 0.05 ? span.start : t
}

/** A normalised span from two drag positions, clamped to [0, duration]; null when empty. */
export function spanBetween (a, b, duration) {
  const lo = round(Math.max(0, Math.min(a, b)))
  const hi = round(Math.min(duration || Infinity, Math.max(a, b)))
  return hi > lo ? { start: lo, end: hi } : null
}

/**
 * The CMOS scale for two candidates shown as A, B: value -3..+3 (+ = B better) <-> {preferred, strength}.
 */
export function fromCmos (value, order) {
  const v = Math.trunc(Number(value))
  if (!v) return { preferred: null, strength: 0 }
  return { preferred: v > 0 ? order[1] : order[0], strength: Math.min(3, Math.abs(v)) }
}

export function toCmos ({ preferred, strength }, order) {
  if (!preferred || !strength) return 0
  return preferred === order[1] ? strength : -strength
}

/** The CMOS choices for A/B: [value, text] from -3 (A much better) to +3 (B much better). */
export function cmosChoices () {
  const out = []
  for (let v = -3; v <= 3; v++) {
    out.push([v, v === 0 ? 'No preference' : `${v < 0 ? 'A' : 'B'} ${STRENGTH_WORDS[Math.abs(v)].toLowerCase()} (${v > 0 ? '+' : ''}${v})`])
  }
  return out
}

/** The SegmentationAnswer a compare task submits (its `comparison` carries the judgement). */
export function buildAnswer ({ schema, interactionId, duration, order, judgement, startedAt, submittedAt }) {
  const answer = {
    schemaVersion: ANSWER_SCHEMA_VERSION,
    labelSchema: schema.name ?? null,
    interactionId: interactionId ?? null,
    mediaDuration: round(duration),
    tracks: [],
    segments: [],
    content: { ...judgement.content },
    comparison: {
      order: [...order],
      preferred: judgement.preferred || null,
      strength: judgement.preferred ? judgement.strength : 0,
      mos: { ...judgement.mos },
      spans: judgement.spans.map(s => ({ id: s.id, start: round(s.start), end: round(s.end), preferred: s.preferred, reason: s.reason }))
    }
  }
  if (startedAt) answer.startedAt = startedAt
  if (submittedAt) answer.submittedAt = submittedAt
  return answer
}

/** Why the answer cannot be submitted yet: [{path, message}] (the server checks the same rules).
 *  `decided`: the worker has chosen on the preference scale ("no preference" is a choice too). */
export function comparisonProblems (answer, schema, { decided = true } = {}) {
  const spec = compareSpec(schema)
  const c = answer.comparison
  const problems = []
  const shown = new Set(c.order)
  const letter = id => LETTERS[c.order.indexOf(id)] || id
  if (c.order.length < spec.minCandidates || c.order.length > spec.maxCandidates) {
    problems.push({ path: 'comparison.order', message: `this task has ${c.order.length} candidates; the schema compares ${spec.minCandidates} to ${spec.maxCandidates}` })
  }
  if (!decided) problems.push({ path: 'comparison.preferred', message: 'give your overall preference' })
  if (c.preferred && !shown.has(c.preferred)) problems.push({ path: 'comparison.preferred', message: 'unknown candidate' })
  if (c.preferred && !(c.strength >= 1 && c.strength <= 3)) problems.push({ path: 'comparison.strength', message: 'say how much better it is' })
  if (!c.preferred && !spec.allowNoPreference) problems.push({ path: 'comparison.preferred', message: 'choose the better candidate' })
  if (spec.mos.enabled) {
    for (const id of c.order) {
      const v = c.mos[id]
      if (v === undefined || v === null) {
        if (spec.mos.required) problems.push({ path: `comparison.mos.${id}`, message: `${spec.mos.label} of ${letter(id)} is required` })
      } else if (!(v >= spec.mos.min && v <= spec.mos.max)) {
        problems.push({ path: `comparison.mos.${id}`, message: `rating must be between ${spec.mos.min} and ${spec.mos.max}` })
      }
    }
  }
  c.spans.forEach((s, i) => {
    const where = `comparison.spans[${i}]`
    if (!(s.end > s.start)) problems.push({ path: `${where}.end`, message: 'the span is empty' })
    if (s.end > answer.mediaDuration + TIME_TOLERANCE) problems.push({ path: `${where}.end`, message: 'the span ends after the media' })
    if (!shown.has(s.preferred)) problems.push({ path: `${where}.preferred`, message: `span ${i + 1}: choose which candidate is better` })
    if (!spec.spanReasons.includes(s.reason)) problems.push({ path: `${where}.reason`, message: `span ${i + 1}: choose a reason` })
  })
  for (const f of schema.content_fields || []) {
    const v = answer.content[f.name]
    if (f.required && (v === undefined || v === null || v === '')) problems.push({ path: `content.${f.name}`, message: `${f.label || f.name} is required` })
  }
  return problems
}
