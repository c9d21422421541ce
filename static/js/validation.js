// Mirror of toolkit/contract/answer.py: structural_problems() + validate_answer().
// Pure (no DOM). Keep the rules and paths in step with the Python side: the post-annotation
// Lambda re-validates with those, and the worker must never be able to submit what it rejects.

import { FIELD_DEFAULTS, SEGMENT_TEXT_DEFAULTS, TIME_TOLERANCE } from './contract.js'

/**
 * @typedef {{path: string, message: string, segmentId?: string|null, trackId?: string|null,
 *            field?: string|null}} Problem
 * `field` names the content field (path content.<name>) or the segment part
 * (text | start | end | track | attributes.<name>) so the UI can put the message next to it.
 */

export function displayName (spec) {
  if (spec.label) return spec.label
  const s = String(spec.name).replace(/_/g, ' ')
  return s.charAt(0).toUpperCase() + s.slice(1)
}

const repr = v => `'${String(v)}'`

function isEmpty (value) {
  return value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)
}

/** The schema's segment_text with the model's defaults filled in. */
export function segmentTextSpec (schema) {
  return { ...SEGMENT_TEXT_DEFAULTS, ...(schema.segment_text || {}) }
}

/** The segment fields asked on segments of track category `category` (schema.py fields_for). */
export function fieldsFor (schema, category) {
  return (schema.segment_fields || []).filter(f => !f.tracks || f.tracks.includes(category))
}

/** Whether segments of track category `category` carry segment text (schema.py text_applies). */
export function textApplies (schema, category) {
  const spec = segmentTextSpec(schema)
  return Boolean(spec.enabled) && (!spec.tracks || spec.tracks.includes(category))
}

/** Why `value` is not acceptable for field `spec`, or null when it is. */
export function valueProblem (spec, value) {
  if (isEmpty(value)) return spec.required ? `${displayName(spec)} is required` : null
  switch (spec.type) {
    case 'text':
      return typeof value === 'string' ? null : 'expected text'
    case 'boolean':
      return typeof value === 'boolean' ? null : 'expected true or false'
    case 'single_choice':
      if (typeof value !== 'string') return 'expected one option'
      return (spec.options || []).includes(value) ? null : `${repr(value)} is not an option of ${displayName(spec)}`
    case 'multiple_choice': {
      if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) return 'expected a list of options'
      const unknown = value.filter(v => !(spec.options || []).includes(v))
      return unknown.length ? `not options of ${displayName(spec)}: ${unknown.map(repr).join(', ')}` : null
    }
    case 'rating': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'expected a number'
      const min = spec.min ?? FIELD_DEFAULTS.min
      const max = spec.max ?? FIELD_DEFAULTS.max
      return value >= min && value <= max ? null : `rating must be between ${min} and ${max}`
    }
    default:
      return `unsupported field type ${spec.type}`
  }
}

/** Times, references and ids (answer.py structural_problems). */
export function structuralProblems (answer) {
  const problems = []
  if (!answer.cannotAnnotate && !(answer.mediaDuration > 0)) {
    problems.push({ path: 'mediaDuration', message: 'the media duration is unknown (the media has not loaded)' })
  }
  if (answer.cannotAnnotate && (answer.segments || []).length) {
    problems.push({ path: 'segments', message: 'a cannot-annotate answer has no segments' })
  }
  const trackIds = (answer.tracks || []).map(t => t.id)
  if (new Set(trackIds).size !== trackIds.length) problems.push({ path: 'tracks', message: 'track ids must be unique' })
  const seen = new Set()
  ;(answer.segments || []).forEach((seg, i) => {
    const where = `segments[${i}]`
    const base = { segmentId: seg.id }
    if (seen.has(seg.id)) problems.push({ ...base, path: `${where}.id`, field: 'id', message: `duplicate segment id ${repr(seg.id)}` })
    seen.add(seg.id)
    if (!trackIds.includes(seg.track)) {
      problems.push({ ...base, path: `${where}.track`, field: 'track', message: `unknown track ${repr(seg.track)}` })
    }
    if (!(seg.start >= 0)) {
      problems.push({ ...base, path: `${where}.start`, field: 'start', message: 'start must be 0 or later' })
    }
    if (!(seg.end > seg.start)) {
      problems.push({
        ...base, path: `${where}.end`, field: 'end',
        message: `end (${Number(seg.end).toFixed(3)}) must be after start (${Number(seg.start).toFixed(3)})`
      })
    }
    if (answer.mediaDuration > 0 && seg.end > answer.mediaDuration + TIME_TOLERANCE) {
      problems.push({
        ...base, path: `${where}.end`, field: 'end',
        message: `end (${Number(seg.end).toFixed(3)}) is past the end of the media (${Number(answer.mediaDuration).toFixed(3)})`
      })
    }
  })
  return problems
}

/** Everything that breaks the label schema (answer.py validate_answer). */
export function schemaProblems (answer, schema) {
  const problems = []
  const categories = new Map((schema.tracks || []).map(c => [c.name, c]))
  const segmentFields = schema.segment_fields || []
  const contentFields = schema.content_fields || []
  const segText = segmentTextSpec(schema)
  ;(answer.tracks || []).forEach((track, i) => {
    const category = categories.get(track.category)
    if (!category) {
      problems.push({ path: `tracks[${i}].category`, trackId: track.id, message: `unknown track category ${repr(track.category)}` })
    } else if (!category.labels.includes(track.label)) {
      problems.push({ path: `tracks[${i}].label`, trackId: track.id, message: `${repr(track.label)} is not a ${displayName(category)} label` })
    }
  })
  const ca = answer.cannotAnnotate
  if (ca) {
    // Nothing else is required of an item the worker could not annotate.
    if (!schema.cannot_annotate) {
      problems.push({ path: 'cannotAnnotate', field: 'cannotAnnotate', message: 'this label schema has no cannot-annotate reasons' })
    } else if (!schema.cannot_annotate.reasons.includes(ca.reason)) {
      problems.push({ path: 'cannotAnnotate.reason', field: 'cannotAnnotate', message: `${repr(ca.reason)} is not a cannot-annotate reason` })
    }
    for (const name of Object.keys(answer.content || {})) {
      if (!contentFields.some(f => f.name === name)) {
        problems.push({ path: `content.${name}`, field: name, message: `unknown content field ${repr(name)}` })
      }
    }
    return problems
  }
  problems.push(...overlapProblems(answer, categories))
  const trackCategory = new Map((answer.tracks || []).map(t => [t.id, t.category]))
  ;(answer.segments || []).forEach((seg, i) => {
    const where = `segments[${i}]`
    const base = { segmentId: seg.id }
    // A segment on an unknown track is a structural problem; judge its fields as any track's.
    const category = categories.get(trackCategory.get(seg.track))
    const applies = category ? fieldsFor(schema, category.name) : segmentFields
    const takesText = category ? textApplies(schema, category.name) : Boolean(segText.enabled)
    const text = String(seg.text || '').trim()
    if (takesText && segText.required && !text) {
      problems.push({ ...base, path: `${where}.text`, field: 'text', message: `${segText.label} is required` })
    }
    if (!takesText && segText.enabled && text && category) {
      problems.push({ ...base, path: `${where}.text`, field: 'text', message: `${segText.label} does not apply to ${displayName(category)} segments; clear it` })
    }
    const attributes = seg.attributes || {}
    for (const name of Object.keys(attributes)) {
      const spec = segmentFields.find(f => f.name === name)
      if (!spec) {
        problems.push({ ...base, path: `${where}.attributes.${name}`, field: `attributes.${name}`, message: `unknown segment field ${repr(name)}` })
      } else if (category && !applies.includes(spec) && !isEmpty(attributes[name])) {
        problems.push({ ...base, path: `${where}.attributes.${name}`, field: `attributes.${name}`, message: `${displayName(spec)} does not apply to ${displayName(category)} segments; clear it` })
      }
    }
    for (const spec of applies) {
      const message = valueProblem(spec, attributes[spec.name])
      if (message) problems.push({ ...base, path: `${where}.attributes.${spec.name}`, field: `attributes.${spec.name}`, message })
    }
  })
  const content = answer.content || {}
  for (const name of Object.keys(content)) {
    if (!contentFields.some(f => f.name === name)) {
      problems.push({ path: `content.${name}`, field: name, message: `unknown content field ${repr(name)}` })
    }
  }
  for (const spec of contentFields) {
    const message = valueProblem(spec, content[spec.name])
    if (message) problems.push({ path: `content.${spec.name}`, field: spec.name, message })
  }
  return problems
}

/** Segments that overlap or touch on a track whose category says no_overlap (answer.py). */
function overlapProblems (answer, categories) {
  const problems = []
  const trackCategory = new Map((answer.tracks || []).map(t => [t.id, categories.get(t.category)]))
  const perTrack = new Map()
  ;(answer.segments || []).forEach((seg, i) => {
    if (!trackCategory.get(seg.track)?.no_overlap) return
    if (!perTrack.has(seg.track)) perTrack.set(seg.track, [])
    perTrack.get(seg.track).push([i, seg])
  })
  for (const segs of perTrack.values()) {
    segs.sort((a, b) => a[1].start - b[1].start || a[1].end - b[1].end)
    for (let k = 1; k < segs.length; k++) {
      const prev = segs[k - 1][1]
      const [i, seg] = segs[k]
      if (seg.start <= prev.end) {
        problems.push({
          segmentId: seg.id, path: `segments[${i}].start`, field: 'start',
          message: `overlaps or touches the segment before it (${prev.start.toFixed(3)}-${prev.end.toFixed(3)}) on a track that allows no overlap`
        })
      }
    }
  }
  return problems
}

/** All problems; an empty list means the answer may be submitted. */
export function validateAnswer (answer, schema) {
  return [...structuralProblems(answer), ...schemaProblems(answer, schema)]
}
