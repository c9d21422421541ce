// Answer state: tracks, segments and full-content values, with undo/redo.
// Pure (no DOM): the single source of truth every view renders from and writes to.
// Records are replaced, never mutated (copy-on-write), so views can skip unchanged rows by
// identity and undo snapshots share everything that did not change.

import { ANSWER_SCHEMA_VERSION, TIME_DECIMALS, TIME_STEP } from './contract.js'
import { EventEmitter } from './emitter.js'

const HISTORY_LIMIT = 200
const PER_SECOND = 10 ** TIME_DECIMALS
const TIME_STEP_S = Number(TIME_STEP)

/**
 * What changed, in one subscriber stream (`subscribe(fn)`). Unlike the Player's events these are
 * one event with one payload shape: subscribers want every kind, in order (the views coalesce a
 * burst of changes, e.g. a drag, into one render keyed by the set of kinds; the Player redraws
 * regions on segments/tracks/all and restyles on selection), so one typed channel fits.
 * @typedef {'tracks'|'segments'|'content'|'selection'|'duration'|'all'} ChangeKind
 * @typedef {object} StateChange
 * @property {ChangeKind} kind tracks: a track added or relabelled; segments: segments added, edited
 *   or removed; content: a whole-media field; selection: the selected segment or active track;
 *   duration: the media duration became known; all: anything (restore, undo/redo, pre-segments
 *   loaded, a track removed with its segments)
 * @property {string[]} [ids] the track ids (tracks), segment ids (segments) or field names (content)
 * @property {string[]} [added] segments: ids of new segments
 * @property {string[]} [removed] segments: ids of removed segments
 * @property {boolean} [layout] segments: the times, track or membership changed (false: only text
 *   or attributes did, so regions, order and per-track counts stay as they are)
 * @typedef {{change: [change: StateChange]}} AnswerStateEvents
 */
export const CHANGE_KINDS = Object.freeze(['tracks', 'segments', 'content', 'selection', 'duration', 'all'])

/**
 * The candidate time nearest to t within `tolerance` seconds, else t (snapping a boundary to a
 * word edge). candidates sorted ascending. Pure.
 */
export function snapTime (t, candidates, tolerance) {
  let lo = 0
  let hi = candidates.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (candidates[mid] < t) lo = mid + 1
    else hi = mid
  }
  let best = t
  let bestDist = tolerance
  for (const i of [lo - 1, lo]) {
    const c = candidates[i]
    if (c !== undefined && Math.abs(c - t) <= bestDist) { best = c; bestDist = Math.abs(c - t) }
  }
  return best
}

/** A pre-segment's `words` as [[start, end, text]] with finite times, in time order ([] if none). */
function cleanWords (words) {
  if (!Array.isArray(words)) return []
  return words
    .filter(w => Array.isArray(w) && Number.isFinite(Number(w[0])) && Number.isFinite(Number(w[1])))
    .map(w => Object.freeze([Number(w[0]), Number(w[1]), String(w[2] ?? '')]))
    .sort((a, b) => a[0] - b[0])
}

/** Round seconds to milliseconds (TIME_DECIMALS): what the answer stores and what the UI shows. */
export function roundMs (seconds) {
  return Math.round(seconds * PER_SECOND) / PER_SECOND
}

/** Time order of segments: start, then end, then id. */
function byTime (a, b) {
  return a.start - b.start || a.end - b.end || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

function freezeRecord (obj) {
  return Object.freeze(obj)
}

function maxNumericSuffix (ids, prefix) {
  let max = 0
  for (const id of ids) {
    if (typeof id === 'string' && id.startsWith(prefix)) {
      const n = Number(id.slice(prefix.length))
      if (Number.isInteger(n) && n > max) max = n
    }
  }
  return max
}

export class AnswerState {
  /**
   * @param {object} opts
   * @param {object} opts.schema LabelSchema as JSON (snake_case keys)
   * @param {string|null} [opts.interactionId]
   * @param {number} [opts.mediaDuration] best known duration (seconds); updated when media loads
   * @param {string} [opts.startedAt] ISO time the worker opened the task
   */
  constructor ({ schema, interactionId = null, mediaDuration = 0, startedAt = null } = {}) {
    if (!schema || !Array.isArray(schema.tracks)) throw new TypeError('AnswerState needs a label schema with tracks')
    this.schema = schema
    this.interactionId = interactionId
    this.mediaDuration = mediaDuration || 0
    this.startedAt = startedAt || new Date().toISOString()
    this.tracks = []
    this.segments = []
    this.content = freezeRecord({})
    // The model texts content fields started from (task input pre-content): sent back with the answer.
    this.prefill = freezeRecord({})
    this.cannotAnnotate = null // {reason, note} when the worker cannot annotate the item
    // UI selection lives here so every view agrees, but it is not part of undo history.
    this.selectedSegmentId = null
    this.activeTrackId = null
    this.recordTrackIds = new Set() // tracks R records into (none: the active track)
    this._undo = []
    this._redo = []
    this._coalesceKey = null
    /** @type {EventEmitter<AnswerStateEvents>} */
    this._events = new EventEmitter(['change'])
    this._nextSegment = 1
    this._nextTrack = 1
    // Caches so that one keystroke costs O(1), not O(segments): id -> record, the time-ordered
    // array (patched in place when an edit keeps the order) and id -> its place in that order.
    this._byId = null
    this._sorted = null
    this._sortedPos = null
    this._maxLength = 0
    // Whether an undo snapshot holds this.segments (then it must be copied, not patched).
    this._segmentsShared = false
    // Bumped whenever a segment is added, removed, moved or retracked (not for text): views that
    // count or place segments redo that work only when it changed.
    this.layoutVersion = 0
    // Word timings of pre-segments (segment id -> [[start, end, text], ...]): shown zoomed in and
    // snapped to; not part of the answer, so not of the undo history either.
    this.words = new Map()
  }

  // ---- subscription -------------------------------------------------------------------------

  /**
   * fn(change) after every change. Returns the unsubscribe function.
   * @param {(change: StateChange) => void} fn
   * @returns {() => void}
   */
  subscribe (fn) {
    return this._events.on('change', fn)
  }

  /** @param {StateChange} change */
  _emit (change) {
    if (!CHANGE_KINDS.includes(change.kind)) throw new TypeError(`unknown change kind ${change.kind}`)
    this._events.emit('change', change)
  }

  // ---- history ------------------------------------------------------------------------------

  _snapshot () {
    this._segmentsShared = true
    return { tracks: this.tracks, segments: this.segments, content: this.content, cannotAnnotate: this.cannotAnnotate }
  }

  /** Replace the segment array (any membership or order change): the caches start over. */
  _setSegments (segments) {
    this.layoutVersion++
    this.segments = segments
    this._segmentsShared = false
    this._byId = null
    this._sorted = null
    this._sortedPos = null
  }

  /** Record the current state before a change. Edits sharing a coalesce key merge into one step. */
  _remember (coalesceKey = null) {
    if (coalesceKey && coalesceKey === this._coalesceKey) return
    this._undo.push(this._snapshot())
    if (this._undo.length > HISTORY_LIMIT) this._undo.shift()
    this._redo = []
    this._coalesceKey = coalesceKey
  }

  /** Stop merging keyed edits (e.g. the text box lost focus). */
  breakCoalescing () {
    this._coalesceKey = null
  }

  get canUndo () { return this._undo.length > 0 }
  get canRedo () { return this._redo.length > 0 }

  undo () {
    if (!this._undo.length) return false
    this._redo.push(this._snapshot())
    this._restoreSnapshot(this._undo.pop())
    return true
  }

  redo () {
    if (!this._redo.length) return false
    this._undo.push(this._snapshot())
    this._restoreSnapshot(this._redo.pop())
    return true
  }

  _restoreSnapshot (snap) {
    this.tracks = snap.tracks
    this._setSegments(snap.segments)
    this._segmentsShared = true // the other stack may still hold it
    this.content = snap.content
    this.cannotAnnotate = snap.cannotAnnotate ?? null
    this._coalesceKey = null
    if (this.selectedSegmentId && !this.segment(this.selectedSegmentId)) this.selectedSegmentId = null
    if (this.activeTrackId && !this.track(this.activeTrackId)) this.activeTrackId = this.tracks[0]?.id ?? null
    this._emit({ kind: 'all' })
  }

  // ---- lookups ------------------------------------------------------------------------------

  track (id) { return this.tracks.find(t => t.id === id) || null }
  segment (id) {
    const i = this._indexOf(id)
    return i < 0 ? null : this.segments[i]
  }

  /** Place of a segment in this.segments (insertion order), or -1. */
  _indexOf (id) {
    if (!this._byId) this._byId = new Map(this.segments.map((s, i) => [s.id, i]))
    return this._byId.get(id) ?? -1
  }
  findTrack (category, label) { return this.tracks.find(t => t.category === category && t.label === label) || null }
  category (name) { return this.schema.tracks.find(c => c.name === name) || null }

  /** Segments sorted by start (then end, then id): list, transcript and keyboard order.
   *  A cached array shared by every caller until the next change: do not modify it. */
  sortedSegments () {
    if (!this._sorted) {
      this._sorted = [...this.segments].sort(byTime)
      this._sortedPos = new Map(this._sorted.map((s, i) => [s.id, i]))
      let max = 0
      for (const s of this._sorted) if (s.end - s.start > max) max = s.end - s.start
      this._maxLength = max
    }
    return this._sorted
  }

  /** Place of a segment in sortedSegments(), or -1. */
  sortedIndex (id) {
    const sorted = this.sortedSegments()
    if (!this._sortedPos) this._sortedPos = new Map(sorted.map((s, i) => [s.id, i]))
    return this._sortedPos.get(id) ?? -1
  }

  /** Where `seg` goes in `sorted` (the order of sortedSegments()). */
  _insertionIndex (sorted, seg) {
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (byTime(sorted[mid], seg) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Index in sortedSegments() of the first segment whose start is >= t (binary search). */
  _lowerBound (t) {
    const sorted = this.sortedSegments()
    let lo = 0
    let hi = sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (sorted[mid].start < t) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Segments overlapping [from, to] in time order, in O(log n + the ones that overlap, and
   *  those starting within the longest segment's length before `from`). */
  segmentsBetween (from, to) {
    const sorted = this.sortedSegments()
    const out = []
    for (let i = this._lowerBound(from - this._maxLength); i < sorted.length && sorted[i].start <= to; i++) {
      if (sorted[i].end >= from) out.push(sorted[i])
    }
    return out
  }

  /** Segments playing at time t (start <= t < end). */
  segmentsAt (t) {
    return this.segmentsBetween(t, t).filter(s => s.start <= t && t < s.end)
  }

  // ---- tracks -------------------------------------------------------------------------------

  addTrack (category, label, { remember = true } = {}) {
    if (!category || !label) throw new TypeError('a track needs a category and a label')
    if (remember) this._remember()
    const id = `t${this._nextTrack++}`
    this.tracks = [...this.tracks, freezeRecord({ id, category, label })]
    if (!this.activeTrackId) this.activeTrackId = id
    this._emit({ kind: 'tracks', ids: [id] })
    return id
  }

  /** Change a track's (category, label), e.g. a diarized speaker turned out to be the Agent. */
  setTrackLabel (id, category, label) {
    const track = this.track(id)
    if (!track || (track.category === category && track.label === label)) return
    this._remember()
    this.tracks = this.tracks.map(t => (t.id === id ? freezeRecord({ ...t, category, label }) : t))
    this._emit({ kind: 'tracks', ids: [id] })
  }

  /** Remove a track and its segments. */
  removeTrack (id) {
    if (!this.track(id)) return
    this._remember()
    this.tracks = this.tracks.filter(t => t.id !== id)
    const removed = this.segments.filter(s => s.track === id).map(s => s.id)
    this._setSegments(this.segments.filter(s => s.track !== id))
    if (removed.includes(this.selectedSegmentId)) this.selectedSegmentId = null
    if (this.activeTrackId === id) this.activeTrackId = this.tracks[0]?.id ?? null
    this._emit({ kind: 'all' })
  }

  setActiveTrack (id) {
    if (id !== null && !this.track(id)) return
    if (this.activeTrackId === id) return
    this.activeTrackId = id
    this._emit({ kind: 'selection' })
  }

  /** Record (R) into this track too (on) or not. UI state, not undone. */
  setRecordTrack (id, on) {
    if (!this.track(id) || this.recordTrackIds.has(id) === Boolean(on)) return
    if (on) this.recordTrackIds.add(id)
    else this.recordTrackIds.delete(id)
    this._emit({ kind: 'selection' })
  }

  /** The tracks a recording goes to: those chosen with setRecordTrack, else the active one. */
  recordTargets () {
    const chosen = this.tracks.filter(t => this.recordTrackIds.has(t.id)).map(t => t.id)
    return chosen.length ? chosen : [this.ensureActiveTrack()]
  }

  /** The track new segments go to; creates the schema's first (category, label) when none exists. */
  ensureActiveTrack () {
    if (this.activeTrackId && this.track(this.activeTrackId)) return this.activeTrackId
    if (this.tracks.length) {
      this.activeTrackId = this.tracks[0].id
      return this.activeTrackId
    }
    const first = this.schema.tracks[0]
    return this.addTrack(first.name, first.labels[0])
  }

  // ---- segments -----------------------------------------------------------------------------

  _cleanTimes (start, end) {
    let s = roundMs(Math.max(0, Number(start)))
    let e = roundMs(Math.max(0, Number(end)))
    if (e < s) [s, e] = [e, s]
    return [s, e]
  }

  addSegment ({ track, start, end, text = '', attributes = {}, presegmentId = null, id = null }, { remember = true } = {}) {
    if (remember) this._remember()
    const seg = this._newSegment({ track, start, end, text, attributes, presegmentId, id })
    const { _sorted: sorted, _maxLength: maxLength } = this
    this._setSegments([...this.segments, seg])
    if (sorted) {
      // Insert into the time order (binary search) rather than sort all again.
      sorted.splice(this._insertionIndex(sorted, seg), 0, seg)
      this._sorted = sorted
      this._maxLength = Math.max(maxLength, seg.end - seg.start)
    }
    const removed = this._applyNoOverlap(seg.id)
    this._emit({ kind: 'segments', ids: [seg.id, ...removed], added: [seg.id], ...(removed.length ? { removed } : {}), layout: true })
    return seg.id
  }

  /** A new frozen segment record with a fresh id (not yet in this.segments). */
  _newSegment ({ track, start, end, text = '', attributes = {}, presegmentId = null, id = null }, taken = null) {
    if (!this.track(track)) throw new Error(`unknown track ${track}`)
    if (!Number.isFinite(Number(start)) || !Number.isFinite(Number(end))) throw new TypeError('segment times must be numbers')
    const [s, e] = this._cleanTimes(start, end)
    const segId = id && !this.segment(id) && !taken?.has(id) ? id : `seg-${this._nextSegment++}`
    return freezeRecord({
      id: segId,
      track,
      start: s,
      end: e,
      text: String(text ?? ''),
      attributes: freezeRecord({ ...attributes }),
      presegmentId: presegmentId ?? null
    })
  }

  _replaceSegment (id, fn, coalesceKey = null) {
    const old = this.segment(id)
    if (!old) return false
    const next = fn(old)
    if (!next) return false
    this._remember(coalesceKey)
    const frozen = freezeRecord(next)
    // layout: the times or the track changed (regions, order and counts follow); text and
    // attributes do not, so a keystroke patches the caches in place instead of rebuilding them.
    const layout = frozen.start !== old.start || frozen.end !== old.end || frozen.track !== old.track
    const i = this._indexOf(id)
    if (this._segmentsShared) {
      // Copy the array an undo snapshot holds; same records and order, so the caches stay.
      const { _byId, _sorted, _sortedPos, layoutVersion } = this
      this._setSegments(this.segments.slice())
      Object.assign(this, { _byId, _sorted, _sortedPos, layoutVersion })
    }
    this.segments[i] = frozen
    if (layout) {
      this.layoutVersion++
      this._sorted = null
      this._sortedPos = null
    } else if (this._sorted) {
      this._sorted[this.sortedIndex(id)] = frozen
    }
    const removed = layout ? this._applyNoOverlap(id) : []
    this._emit({ kind: 'segments', ids: [id, ...removed], layout, ...(removed.length ? { removed } : {}) })
    return true
  }

  /** New start/end (seconds); rounded to ms; swapped if given backwards. */
  setSegmentTimes (id, start, end) {
    return this._replaceSegment(id, old => {
      const [s, e] = this._cleanTimes(start ?? old.start, end ?? old.end)
      if (s === old.start && e === old.end) return null
      return { ...old, start: s, end: e }
    })
  }

  /** Like setSegmentTimes but keeps the given values as typed (used by the time inputs, so a
   *  worker can type a start after the end and see the validation message). */
  setSegmentTime (id, side, value) {
    return this._replaceSegment(id, old => {
      const v = roundMs(Number(value))
      if (!Number.isFinite(v) || old[side] === v) return null
      return { ...old, [side]: v }
    })
  }

  setSegmentTrack (id, trackId) {
    if (!this.track(trackId)) return false
    return this._replaceSegment(id, old => (old.track === trackId ? null : { ...old, track: trackId }))
  }

  /** Typing merges into one undo step per segment until another kind of edit happens. */
  setSegmentText (id, text) {
    return this._replaceSegment(id, old => (old.text === text ? null : { ...old, text: String(text) }), `text:${id}`)
  }

  /** value undefined/null/''/[] removes the attribute (= not answered). */
  setSegmentAttribute (id, name, value) {
    return this._replaceSegment(id, old => {
      const attributes = { ...old.attributes }
      if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) {
        if (!(name in attributes)) return null
        delete attributes[name]
      } else {
        attributes[name] = Array.isArray(value) ? Object.freeze([...value]) : value
      }
      return { ...old, attributes: freezeRecord(attributes) }
    }, typeof value === 'string' ? `attr:${id}:${name}` : null)
  }

  /**
   * Split a segment at time t into [start, t] and [t, end] on its track; both keep the attributes,
   * the first keeps the text and the pre-segment id. One undo step. Returns the new (second)
   * segment's id, or null when t is not at least one TIME_STEP inside the segment.
   */
  splitSegment (id, t) {
    const old = this.segment(id)
    const at = roundMs(Number(t))
    if (!old || !(at - old.start >= TIME_STEP_S && old.end - at >= TIME_STEP_S)) return null
    // On a no_overlap track touching segments merge, so the halves keep one TIME_STEP apart.
    const gap = this.noOverlap(old.track) ? TIME_STEP_S : 0
    if (old.end - at - gap < TIME_STEP_S) return null
    this._remember()
    const first = freezeRecord({ ...old, end: at })
    const second = this._newSegment({ track: old.track, start: roundMs(at + gap), end: old.end, attributes: old.attributes })
    const segments = this.segments.slice()
    segments[this._indexOf(id)] = first
    segments.push(second)
    this._setSegments(segments)
    const words = this.words.get(id)
    if (words) {
      // A word goes with the half holding its middle.
      this.words.set(id, words.filter(w => (w[0] + w[1]) / 2 < at))
      this.words.set(second.id, words.filter(w => (w[0] + w[1]) / 2 >= at))
    }
    this._emit({ kind: 'segments', ids: [id, second.id], added: [second.id], layout: true })
    return second.id
  }

  /** The segment after `id` on the same track (time order), or null. */
  nextOnTrack (id) {
    const sorted = this.sortedSegments()
    const seg = this.segment(id)
    if (!seg) return null
    for (let i = this.sortedIndex(id) + 1; i < sorted.length; i++) if (sorted[i].track === seg.track) return sorted[i]
    return null
  }

  /**
   * Merge a segment with the next one on its track: it spans both, texts joined by a space,
   * its own attributes kept (the next one's fill the ones it lacks). One undo step. Returns
   * the id of the removed segment, or null when there is none after it.
   */
  mergeWithNext (id) {
    const seg = this.segment(id)
    const next = seg && this.nextOnTrack(id)
    if (!next) return null
    this._remember()
    this._merge(seg, [next])
    this._emit({ kind: 'segments', ids: [id, next.id], removed: [next.id], layout: true })
    return next.id
  }

  /** Whether segments on this track may not overlap or touch (schema: track category no_overlap). */
  noOverlap (trackId) {
    const track = this.track(trackId)
    return Boolean(track && this.category(track.category)?.no_overlap)
  }

  /**
   * On a no_overlap track, the segment absorbs every segment it overlaps or touches (as the
   * public sample's tool merges them), until none is left. Part of the caller's undo step.
   * Returns the ids of the absorbed segments.
   */
  _applyNoOverlap (id) {
    let seg = this.segment(id)
    if (!seg || !this.noOverlap(seg.track)) return []
    const removed = []
    for (;;) {
      const others = this.segmentsBetween(seg.start, seg.end).filter(o => o.id !== seg.id && o.track === seg.track)
      if (!others.length) return removed
      removed.push(...others.map(o => o.id))
      seg = this._merge(seg, others)
    }
  }

  /** `into` absorbs `others` (already known to be on its track). */
  _merge (into, others) {
    const all = [into, ...others].sort((a, b) => a.start - b.start)
    const merged = freezeRecord({
      ...into,
      start: Math.min(...all.map(s => s.start)),
      end: Math.max(...all.map(s => s.end)),
      text: all.map(s => s.text.trim()).filter(Boolean).join(' '),
      attributes: freezeRecord(Object.assign({}, ...others.map(s => s.attributes).reverse(), into.attributes))
    })
    const gone = new Set(others.map(s => s.id))
    const words = all.flatMap(s => this.words.get(s.id) || [])
    if (words.length) this.words.set(into.id, words.sort((a, b) => a[0] - b[0]))
    for (const id of gone) this.words.delete(id)
    this._setSegments(this.segments.filter(s => !gone.has(s.id)).map(s => (s.id === into.id ? merged : s)))
    if (gone.has(this.selectedSegmentId)) this.selectedSegmentId = into.id
    return merged
  }

  /**
   * Move one edge of a segment by `delta` seconds, clamped to the media and so that the segment
   * keeps at least one TIME_STEP. Returns whether it changed.
   */
  nudgeSegment (id, side, delta) {
    const seg = this.segment(id)
    if (!seg || (side !== 'start' && side !== 'end')) return false
    const max = this.mediaDuration > 0 ? this.mediaDuration : Infinity
    let v = roundMs(seg[side] + Number(delta))
    if (side === 'start') v = Math.max(0, Math.min(v, roundMs(seg.end - TIME_STEP_S)))
    else v = Math.min(max, Math.max(v, roundMs(seg.start + TIME_STEP_S)))
    return this.setSegmentTimes(id, side === 'start' ? v : seg.start, side === 'end' ? v : seg.end)
  }

  removeSegment (id) {
    if (!this.segment(id)) return false
    this._remember()
    this._setSegments(this.segments.filter(s => s.id !== id))
    if (this.selectedSegmentId === id) this.selectedSegmentId = null
    this._emit({ kind: 'segments', ids: [id], removed: [id], layout: true })
    return true
  }

  select (id) {
    if (id !== null && !this.segment(id)) return
    if (this.selectedSegmentId === id) return
    this.selectedSegmentId = id
    const seg = id ? this.segment(id) : null
    if (seg) this.activeTrackId = seg.track
    this._emit({ kind: 'selection' })
  }

  // ---- content ------------------------------------------------------------------------------

  setContent (name, value) {
    const empty = value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)
    const old = this.content[name]
    if (empty && !(name in this.content)) return false
    if (!empty && JSON.stringify(old) === JSON.stringify(value)) return false
    this._remember(typeof value === 'string' ? `content:${name}` : null)
    const next = { ...this.content }
    if (empty) delete next[name]
    else next[name] = Array.isArray(value) ? Object.freeze([...value]) : value
    this.content = freezeRecord(next)
    this._emit({ kind: 'content', ids: [name] })
    return true
  }

  /**
   * The worker cannot annotate the item: one of the schema's cannot_annotate reasons (null: they
   * can after all). The segments stay in the state but are not in the answer while it is set.
   */
  setCannotAnnotate (reason, note = '') {
    const next = reason ? freezeRecord({ reason: String(reason), note: String(note ?? '') }) : null
    const old = this.cannotAnnotate
    if (old === next || (old && next && old.reason === next.reason && old.note === next.note)) return false
    this._remember(old && next && old.reason === next.reason ? 'cannot-annotate-note' : null)
    this.cannotAnnotate = next
    this._emit({ kind: 'content', ids: ['cannotAnnotate'] })
    return true
  }

  setMediaDuration (seconds) {
    if (!(seconds > 0) || seconds === this.mediaDuration) return
    this.mediaDuration = seconds
    this._emit({ kind: 'duration' })
  }

  // ---- pre-segments and restore -------------------------------------------------------------

  /**
   * Turn task-input pre-segments into editable segments, creating one track per
   * (pre-segment.track, pre-segment.label). Not undoable: it is the starting point.
   * Returns the number of segments added.
   */
  loadPresegments (presegments) {
    if (!Array.isArray(presegments) || !presegments.length) return 0
    // Tracks of channel-identified pre-segments (a stereo call) come in channel order, so lane N
    // lies over channel N's waveform; the others follow in order of appearance.
    const channelOf = new Map()
    for (const p of presegments) {
      if (!p || !p.track || !p.label || !Number.isInteger(p.channel)) continue
      const key = JSON.stringify([String(p.track), String(p.label)])
      channelOf.set(key, Math.min(channelOf.get(key) ?? Infinity, p.channel))
    }
    for (const [key] of [...channelOf].sort((a, b) => a[1] - b[1])) {
      const [category, label] = JSON.parse(key)
      if (!this.findTrack(category, label)) this.addTrack(category, label, { remember: false })
    }
    // One array and one change for all of them: thousands of addSegment() calls would copy the
    // array (and notify every view) once per pre-segment.
    const fresh = []
    for (const p of presegments) {
      if (!p || typeof p !== 'object') continue
      const start = Number(p.start)
      const end = Number(p.end)
      if (!p.track || !p.label || !Number.isFinite(start) || !Number.isFinite(end)) continue
      const track = this.findTrack(String(p.track), String(p.label))?.id ??
        this.addTrack(String(p.track), String(p.label), { remember: false })
      const seg = this._newSegment({ track, start, end, text: p.text ?? '', presegmentId: p.id != null ? String(p.id) : null })
      fresh.push(seg)
      const words = cleanWords(p.words)
      if (words.length) this.words.set(seg.id, words)
    }
    const added = fresh.length
    this._setSegments([...this.segments, ...fresh])
    this._undo = []
    this._redo = []
    this._emit({ kind: 'all' })
    return added
  }

  /**
   * Pre-fill text content fields with model answers (task input `pre-content`: {field: {value, model_id}})
   * for the worker to correct. Only text fields of the schema; not undoable: it is the starting point.
   * Returns the number of fields filled.
   */
  loadPreContent (preContent) {
    if (!preContent || typeof preContent !== 'object' || Array.isArray(preContent)) return 0
    const textFields = new Set((this.schema.content_fields || []).filter(f => f.type === 'text').map(f => f.name))
    const content = { ...this.content }
    const prefill = {}
    for (const [name, p] of Object.entries(preContent)) {
      if (!textFields.has(name) || !p || typeof p.value !== 'string' || typeof p.model_id !== 'string') continue
      content[name] = p.value
      prefill[name] = freezeRecord({ value: p.value, modelId: p.model_id, recordId: p.record_id ?? null })
    }
    const filled = Object.keys(prefill).length
    if (!filled) return 0
    this.content = freezeRecord(content)
    this.prefill = freezeRecord(prefill)
    this._undo = []
    this._redo = []
    this._emit({ kind: 'all' })
    return filled
  }

  /** After a restore: the word timings of the task's pre-segments, matched by presegmentId. */
  attachWords (presegments) {
    if (!Array.isArray(presegments)) return 0
    const byPre = new Map()
    for (const p of presegments) {
      const words = p && p.id != null ? cleanWords(p.words) : []
      if (words.length) byPre.set(String(p.id), words)
    }
    let n = 0
    for (const seg of this.segments) {
      const words = seg.presegmentId != null && byPre.get(seg.presegmentId)
      if (words) { this.words.set(seg.id, words); n++ }
    }
    if (n) this._emit({ kind: 'all' })
    return n
  }

  /** Word edges (starts and ends, sorted) of the segments overlapping [from, to]. */
  wordEdgesBetween (from, to) {
    const edges = []
    for (const seg of this.segmentsBetween(from, to)) {
      for (const [a, b] of this.words.get(seg.id) || []) {
        if (a >= from && a <= to) edges.push(a)
        if (b >= from && b <= to) edges.push(b)
      }
    }
    return edges.sort((x, y) => x - y)
  }

  /** Replace everything with a saved SegmentationAnswer-shaped object (from autosave). */
  restore (answer) {
    if (!answer || typeof answer !== 'object') throw new TypeError('nothing to restore')
    this.words = new Map() // attachWords() brings back those of the task's pre-segments
    const tracks = Array.isArray(answer.tracks) ? answer.tracks : []
    const segments = Array.isArray(answer.segments) ? answer.segments : []
    this.tracks = tracks
      .filter(t => t && t.id && t.category && t.label)
      .map(t => freezeRecord({ id: String(t.id), category: String(t.category), label: String(t.label) }))
    this._setSegments(segments
      .filter(s => s && s.id && s.track && Number.isFinite(Number(s.start)) && Number.isFinite(Number(s.end)))
      .map(s => freezeRecord({
        id: String(s.id),
        track: String(s.track),
        start: roundMs(Number(s.start)),
        end: roundMs(Number(s.end)),
        text: typeof s.text === 'string' ? s.text : '',
        attributes: freezeRecord({ ...(s.attributes && typeof s.attributes === 'object' ? s.attributes : {}) }),
        presegmentId: s.presegmentId ?? null
      })))
    this.content = freezeRecord({ ...(answer.content && typeof answer.content === 'object' ? answer.content : {}) })
    this.prefill = freezeRecord({ ...(answer.prefill && typeof answer.prefill === 'object' ? answer.prefill : {}) })
    const ca = answer.cannotAnnotate
    this.cannotAnnotate = ca && typeof ca === 'object' && ca.reason
      ? freezeRecord({ reason: String(ca.reason), note: typeof ca.note === 'string' ? ca.note : '' })
      : null
    if (answer.startedAt) this.startedAt = answer.startedAt
    this._nextTrack = maxNumericSuffix(this.tracks.map(t => t.id), 't') + 1
    this._nextSegment = maxNumericSuffix(this.segments.map(s => s.id), 'seg-') + 1
    this.activeTrackId = this.tracks[0]?.id ?? null
    this.selectedSegmentId = null
    this._undo = []
    this._redo = []
    this._coalesceKey = null
    this._emit({ kind: 'all' })
  }

  // ---- serialisation ------------------------------------------------------------------------

  /** The SegmentationAnswer JSON object (camelCase), segments in time order. draft: the autosave's
   *  copy, which keeps the segments of a cannot-annotate answer (the worker may change their mind). */
  toAnswer ({ submittedAt = null, draft = false } = {}) {
    const answer = {
      schemaVersion: ANSWER_SCHEMA_VERSION,
      labelSchema: this.schema.name ?? null,
      interactionId: this.interactionId ?? null,
      mediaDuration: roundMs(this.mediaDuration),
      tracks: this.tracks.map(t => ({ id: t.id, category: t.category, label: t.label })),
      segments: this.sortedSegments().map(s => {
        const seg = {
          id: s.id,
          track: s.track,
          start: s.start,
          end: s.end,
          text: s.text,
          attributes: { ...s.attributes }
        }
        if (s.presegmentId != null) seg.presegmentId = s.presegmentId
        return seg
      }),
      content: { ...this.content },
      startedAt: this.startedAt,
      submittedAt
    }
    if (Object.keys(this.prefill).length) answer.prefill = { ...this.prefill }
    if (this.cannotAnnotate) {
      // A cannot-annotate answer carries the reason and no segments (the worker's stay here).
      answer.cannotAnnotate = { ...this.cannotAnnotate }
      if (!draft) answer.segments = []
    }
    for (const key of ['labelSchema', 'interactionId', 'submittedAt', 'startedAt']) {
      if (answer[key] == null) delete answer[key]
    }
    return answer
  }
}
