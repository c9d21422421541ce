// Answer state: tracks, segments and full-content values, with undo/redo.
// Pure (no DOM): the single source of truth every view renders from and writes to.
// Records are replaced, never mutated (copy-on-write), so views can skip unchanged rows by
// identity and undo snapshots share everything that did not change.

import { ANSWER_SCHEMA_VERSION, TIME_DECIMALS } from './contract.js'
import { EventEmitter } from './emitter.js'

const HISTORY_LIMIT = 200
const PER_SECOND = 10 ** TIME_DECIMALS

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
 * @typedef {{change: [change: StateChange]}} AnswerStateEvents
 */
export const CHANGE_KINDS = Object.freeze(['tracks', 'segments', 'content', 'selection', 'duration', 'all'])

/** Round seconds to milliseconds (TIME_DECIMALS): what the answer stores and what the UI shows. */
export function roundMs (seconds) {
  return Math.round(seconds * PER_SECOND) / PER_SECOND
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
    // UI selection lives here so every view agrees, but it is not part of undo history.
    this.selectedSegmentId = null
    this.activeTrackId = null
    this._undo = []
    this._redo = []
    this._coalesceKey = null
    /** @type {EventEmitter<AnswerStateEvents>} */
    this._events = new EventEmitter(['change'])
    this._nextSegment = 1
    this._nextTrack = 1
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
    return { tracks: this.tracks, segments: this.segments, content: this.content }
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
    this.segments = snap.segments
    this.content = snap.content
    this._coalesceKey = null
    if (this.selectedSegmentId && !this.segment(this.selectedSegmentId)) this.selectedSegmentId = null
    if (this.activeTrackId && !this.track(this.activeTrackId)) this.activeTrackId = this.tracks[0]?.id ?? null
    this._emit({ kind: 'all' })
  }

  // ---- lookups ------------------------------------------------------------------------------

  track (id) { return this.tracks.find(t => t.id === id) || null }
  segment (id) { return this.segments.find(s => s.id === id) || null }
  findTrack (category, label) { return this.tracks.find(t => t.category === category && t.label === label) || null }
  category (name) { return this.schema.tracks.find(c => c.name === name) || null }

  /** Segments sorted by start (then end, then id): list, transcript and keyboard order. */
  sortedSegments () {
    return [...this.segments].sort((a, b) => a.start - b.start || a.end - b.end || (a.id < b.id ? -1 : 1))
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
    this.segments = this.segments.filter(s => s.track !== id)
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
    if (!this.track(track)) throw new Error(`unknown track ${track}`)
    if (!Number.isFinite(Number(start)) || !Number.isFinite(Number(end))) throw new TypeError('segment times must be numbers')
    if (remember) this._remember()
    const [s, e] = this._cleanTimes(start, end)
    const segId = id && !this.segment(id) ? id : `seg-${this._nextSegment++}`
    const seg = freezeRecord({
      id: segId,
      track,
      start: s,
      end: e,
      text: String(text ?? ''),
      attributes: freezeRecord({ ...attributes }),
      presegmentId: presegmentId ?? null
    })
    this.segments = [...this.segments, seg]
    this._emit({ kind: 'segments', ids: [segId], added: [segId] })
    return segId
  }

  _replaceSegment (id, fn, coalesceKey = null) {
    const old = this.segment(id)
    if (!old) return false
    const next = fn(old)
    if (!next) return false
    this._remember(coalesceKey)
    const frozen = freezeRecord(next)
    this.segments = this.segments.map(s => (s.id === id ? frozen : s))
    this._emit({ kind: 'segments', ids: [id] })
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

  removeSegment (id) {
    if (!this.segment(id)) return false
    this._remember()
    this.segments = this.segments.filter(s => s.id !== id)
    if (this.selectedSegmentId === id) this.selectedSegmentId = null
    this._emit({ kind: 'segments', ids: [id], removed: [id] })
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
    let added = 0
    for (const p of presegments) {
      if (!p || typeof p !== 'object') continue
      const start = Number(p.start)
      const end = Number(p.end)
      if (!p.track || !p.label || !Number.isFinite(start) || !Number.isFinite(end)) continue
      const track = this.findTrack(String(p.track), String(p.label))?.id ??
        this.addTrack(String(p.track), String(p.label), { remember: false })
      this.addSegment({ track, start, end, text: p.text ?? '', presegmentId: p.id != null ? String(p.id) : null },
        { remember: false })
      added++
    }
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

  /** Replace everything with a saved SegmentationAnswer-shaped object (from autosave). */
  restore (answer) {
    if (!answer || typeof answer !== 'object') throw new TypeError('nothing to restore')
    const tracks = Array.isArray(answer.tracks) ? answer.tracks : []
    const segments = Array.isArray(answer.segments) ? answer.segments : []
    this.tracks = tracks
      .filter(t => t && t.id && t.category && t.label)
      .map(t => freezeRecord({ id: String(t.id), category: String(t.category), label: String(t.label) }))
    this.segments = segments
      .filter(s => s && s.id && s.track && Number.isFinite(Number(s.start)) && Number.isFinite(Number(s.end)))
      .map(s => freezeRecord({
        id: String(s.id),
        track: String(s.track),
        start: roundMs(Number(s.start)),
        end: roundMs(Number(s.end)),
        text: typeof s.text === 'string' ? s.text : '',
        attributes: freezeRecord({ ...(s.attributes && typeof s.attributes === 'object' ? s.attributes : {}) }),
        presegmentId: s.presegmentId ?? null
      }))
    this.content = freezeRecord({ ...(answer.content && typeof answer.content === 'object' ? answer.content : {}) })
    this.prefill = freezeRecord({ ...(answer.prefill && typeof answer.prefill === 'object' ? answer.prefill : {}) })
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

  /** The SegmentationAnswer JSON object (camelCase), segments in time order. */
  toAnswer ({ submittedAt = null } = {}) {
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
    for (const key of ['labelSchema', 'interactionId', 'submittedAt', 'startedAt']) {
      if (answer[key] == null) delete answer[key]
    }
    return answer
  }
}
