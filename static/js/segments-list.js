// The segment list: one row per segment, keyed by segment id. The state is the source of truth;
// rows are patched only when their segment record changed (records are immutable), and a field
// the worker is typing in is never overwritten, so edits survive changes to other segments.
// Long lists are windowed (virtual-list.js): only rows near the viewport exist.

import { el, setValueIfIdle, uniqueId } from './dom.js'
import { formatTime } from './format.js'
import { trackColor } from './colors.js'
import { trackTitle } from './panels.js'
import { displayName, fieldsFor, segmentTextSpec, textApplies } from './validation.js'
import { TIME_DECIMALS, TIME_STEP } from './contract.js'
import { createVirtualList } from './virtual-list.js'

const INTERACTIVE = 'input, select, textarea, button, label, a'
// Up to this many segments every row exists; beyond it only the rows near the viewport do.
export const EAGER_ROWS = 200
const ROW_GAP = 6 // .gtkit-seg-list gap

export function createSegmentsList ({ state, player }) {
  const { schema } = state
  const segText = segmentTextSpec(schema)
  const fields = schema.segment_fields || []
  const list = el('ol', { class: 'gtkit-seg-list', 'aria-label': 'Segments' })
  const empty = el('p', { class: 'gtkit-hint gtkit-empty', text: 'No segments yet. Drag across the waveform, or press R while playing.' })
  const heading = el('h3', { id: 'gtkit-segs-h', text: 'Segments' })
  const element = el('section', { class: 'gtkit-panel gtkit-segments', 'aria-labelledby': 'gtkit-segs-h' }, [heading, empty, list])
  let trackEpoch = 0 // bumps when tracks change so rows rebuild their track <select>
  let current = new Set()
  let problemsBySeg = new Map()
  let flagged = new Map() // a review: segment id -> {kinds, text} (setFlagged)
  let onFlagPick = () => {}
  const rowsView = createVirtualList({
    scroller: element,
    list,
    eager: EAGER_ROWS,
    estimate: 120,
    gap: ROW_GAP,
    create: seg => makeRow(seg.id),
    update: (row, seg) => {
      if (row.seg !== seg || row.trackEpoch !== trackEpoch) fillRow(row, seg)
    }
  })
  const rowOf = id => rowsView.handle(id)

  function makeRow (id) {
    const li = el('li', { class: 'gtkit-seg', dataset: { segmentId: id }, tabindex: '-1' })
    li.addEventListener('click', ev => {
      if (ev.target.closest(INTERACTIVE)) return
      state.select(id)
      player.seekToSegment(id)
    })
    li.addEventListener('focusin', () => state.select(id))
    const row = { id, li, seg: null, trackEpoch: -1, parts: {}, fieldInputs: new Map(), problems: problemsBySeg.get(id) || [] }
    buildRow(row)
    applyProblems(row)
    applyFlag(row)
    if (current.has(id)) li.classList.add('gtkit-playing')
    if (state.selectedSegmentId === id) {
      li.classList.add('gtkit-selected')
      li.setAttribute('aria-current', 'true')
    }
    return row
  }

  function buildRow (row) {
    const { id } = row
    const swatch = el('span', { class: 'gtkit-swatch', 'aria-hidden': 'true' })
    const track = el('select', { 'aria-label': 'Track', dataset: { part: 'track' } })
    track.addEventListener('change', () => state.setSegmentTrack(id, track.value))
    const start = el('input', { type: 'number', step: String(TIME_STEP), min: '0', inputmode: 'decimal', 'aria-label': 'Start (seconds)', dataset: { part: 'start' } })
    const end = el('input', { type: 'number', step: String(TIME_STEP), min: '0', inputmode: 'decimal', 'aria-label': 'End (seconds)', dataset: { part: 'end' } })
    for (const [input, side] of [[start, 'start'], [end, 'end']]) {
      input.addEventListener('change', () => {
        if (input.value === '') return
        state.setSegmentTime(id, side, Number(input.value))
      })
    }
    const dur = el('span', { class: 'gtkit-seg-dur' })
    const play = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-small', dataset: { action: 'play-segment' }, title: 'Play this segment (P)', 'aria-label': 'Play segment', text: '▶' })
    play.addEventListener('click', () => { state.select(id); player.playSegment(id) })
    const del = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-small gtkit-btn-quiet', dataset: { action: 'delete-segment' }, title: 'Delete this segment (Delete)', 'aria-label': 'Delete segment', text: '✕' })
    del.addEventListener('click', () => state.removeSegment(id))
    const flag = el('button', { type: 'button', class: 'gtkit-link gtkit-seg-flag', dataset: { role: 'segment-disagreement' }, hidden: true })
    flag.addEventListener('click', () => { const f = flagged.get(id); if (f) onFlagPick(f) })
    const head = el('div', { class: 'gtkit-seg-head' }, [
      swatch, flag, track,
      el('label', { class: 'gtkit-time-field' }, ['Start ', start]),
      el('label', { class: 'gtkit-time-field' }, ['End ', end]),
      dur, play, del
    ])
    const body = [head]
    row.parts = { swatch, flag, track, start, end, dur }
    if (segText.enabled) {
      const tid = uniqueId('gtkit-segtext')
      const text = el('textarea', { id: tid, rows: '2', class: 'gtkit-seg-text', dataset: { part: 'text' }, placeholder: segText.label, 'aria-label': segText.label })
      text.addEventListener('input', () => state.setSegmentText(id, text.value))
      text.addEventListener('blur', () => state.breakCoalescing())
      row.parts.text = text
      body.push(text)
    }
    if (fields.length) {
      const box = el('div', { class: 'gtkit-seg-fields' })
      for (const spec of fields) box.append(buildField(row, spec))
      row.parts.fields = box
      body.push(box)
    }
    row.error = el('div', { class: 'gtkit-error', role: 'alert', hidden: true })
    body.push(row.error)
    row.li.append(...body)
  }

  function buildField (row, spec) {
    const { id } = row
    const title = displayName(spec) + (spec.required ? ' *' : '')
    const wrap = el('div', { class: 'gtkit-field', dataset: { field: spec.name } })
    let input
    if (spec.type === 'text') {
      input = el('input', { type: 'text', 'aria-label': displayName(spec) })
      input.addEventListener('input', () => state.setSegmentAttribute(id, spec.name, input.value))
      input.addEventListener('blur', () => state.breakCoalescing())
      wrap.append(el('label', {}, [title + ' ', input]))
    } else if (spec.type === 'single_choice' || (spec.type === 'boolean' && spec.required)) {
      const opts = spec.type === 'boolean' ? [['true', 'Yes'], ['false', 'No']] : spec.options.map(o => [o, o])
      input = el('select', { 'aria-label': displayName(spec) },
        [el('option', { value: '', text: '—' }), ...opts.map(([v, t]) => el('option', { value: v, text: t }))])
      input.addEventListener('change', () => {
        const v = input.value
        state.setSegmentAttribute(id, spec.name, spec.type === 'boolean' ? (v === '' ? null : v === 'true') : v)
      })
      wrap.append(el('label', {}, [title + ' ', input]))
    } else if (spec.type === 'boolean') {
      input = el('input', { type: 'checkbox' })
      input.addEventListener('change', () => state.setSegmentAttribute(id, spec.name, input.checked))
      wrap.append(el('label', { class: 'gtkit-check' }, [input, ' ' + title]))
    } else if (spec.type === 'multiple_choice') {
      const boxes = spec.options.map(o => {
        const cb = el('input', { type: 'checkbox', value: o })
        cb.addEventListener('change', () => {
          state.setSegmentAttribute(id, spec.name, boxes.filter(b => b.checked).map(b => b.value))
        })
        return cb
      })
      input = boxes
      wrap.append(el('fieldset', { class: 'gtkit-choices' }, [
        el('legend', { text: title }),
        ...boxes.map(cb => el('label', { class: 'gtkit-check' }, [cb, ' ' + cb.value]))
      ]))
    }
    row.fieldInputs.set(spec.name, { spec, input, wrap })
    return wrap
  }

  function fillRow (row, seg) {
    const { parts } = row
    const track = state.track(seg.track)
    if (row.trackEpoch !== trackEpoch) {
      parts.track.replaceChildren(...state.tracks.map(t => el('option', { value: t.id, text: trackTitle(schema, t) })))
      row.trackEpoch = trackEpoch
    }
    parts.track.value = seg.track
    parts.swatch.style.background = trackColor(schema, track)
    row.li.style.borderLeftColor = trackColor(schema, track)
    setValueIfIdle(parts.start, seg.start.toFixed(TIME_DECIMALS))
    setValueIfIdle(parts.end, seg.end.toFixed(TIME_DECIMALS))
    parts.dur.textContent = `${formatTime(seg.start)} – ${formatTime(seg.end)} (${Math.max(0, seg.end - seg.start).toFixed(TIME_DECIMALS)} s)`
    if (parts.text) setValueIfIdle(parts.text, seg.text)
    for (const { spec, input } of row.fieldInputs.values()) {
      const value = seg.attributes[spec.name]
      if (spec.type === 'multiple_choice') {
        const chosen = Array.isArray(value) ? value : []
        for (const cb of input) cb.checked = chosen.includes(cb.value)
      } else if (spec.type === 'boolean' && !spec.required) {
        input.checked = value === true
      } else if (spec.type === 'boolean') {
        setValueIfIdle(input, value === true ? 'true' : value === false ? 'false' : '')
      } else {
        setValueIfIdle(input, value ?? '')
      }
    }
    showAsked(row, seg, track?.category)
    row.seg = seg
  }

  /** Only the text and fields the schema asks on this segment's track category (`tracks:` in the
   *  YAML) are shown. One holding a value (the segment moved to another track) stays visible, so
   *  the worker can clear what validation then points at. */
  function showAsked (row, seg, category) {
    const { parts } = row
    if (parts.text) parts.text.hidden = !textApplies(schema, category) && !String(seg.text || '').trim()
    const asked = new Set(fieldsFor(schema, category).map(f => f.name))
    let shown = 0
    for (const { spec, wrap } of row.fieldInputs.values()) {
      const value = seg.attributes[spec.name]
      wrap.hidden = !asked.has(spec.name) && (value === undefined || value === null || value === '' ||
        (Array.isArray(value) && !value.length))
      if (!wrap.hidden) shown++
    }
    if (parts.fields) parts.fields.hidden = shown === 0
  }

  function render (change = { kind: 'all' }) {
    if (change.kind === 'tracks' || change.kind === 'all') trackEpoch++
    const sorted = state.sortedSegments()
    rowsView.render(sorted)
    empty.hidden = sorted.length > 0
    heading.textContent = sorted.length ? `Segments (${sorted.length})` : 'Segments'
    renderSelection(false)
  }

  /** Only these segments' text or attributes changed: patch their rows (if they have DOM). */
  function refresh (ids) {
    for (const id of ids) {
      const row = rowOf(id)
      const seg = state.segment(id)
      if (row && seg && row.seg !== seg) fillRow(row, seg)
    }
  }

  let selectedId = null
  let revealQueued = false
  function renderSelection (scroll = true) {
    const sel = state.selectedSegmentId
    if (selectedId && selectedId !== sel) {
      rowOf(selectedId)?.li.classList.remove('gtkit-selected')
      rowOf(selectedId)?.li.removeAttribute('aria-current')
    }
    const row = sel ? rowOf(sel) : null
    if (sel && scroll && selectedId !== sel && !row?.li.contains(document.activeElement) && !revealQueued) {
      // After the frame that moves the playhead and the waveform (J, a click on the transcript):
      // the list follows a task later instead of delaying that frame with its layout.
      revealQueued = true
      setTimeout(() => {
        revealQueued = false
        const id = state.selectedSegmentId
        if (id) markSelected(rowsView.reveal(state.sortedIndex(id)))
      }, 0)
    }
    markSelected(row)
    selectedId = sel
  }

  function markSelected (row) {
    if (!row || row.id !== state.selectedSegmentId) return
    row.li.classList.add('gtkit-selected')
    row.li.setAttribute('aria-current', 'true')
  }

  /** Show times while a region is being dragged (the state changes when the drag ends). */
  function previewTimes (id, start, end) {
    const row = rowOf(id)
    if (!row) return
    row.parts.start.value = start.toFixed(TIME_DECIMALS)
    row.parts.end.value = end.toFixed(TIME_DECIMALS)
    row.parts.dur.textContent = `${formatTime(start)} – ${formatTime(end)} (${(end - start).toFixed(TIME_DECIMALS)} s)`
  }

  /** Mark the rows under the playhead. Touches only rows whose status changed. */
  function highlight (t) {
    const next = new Set(state.segmentsAt(t).map(s => s.id))
    for (const id of current) if (!next.has(id)) rowOf(id)?.li.classList.remove('gtkit-playing')
    for (const id of next) if (!current.has(id)) rowOf(id)?.li.classList.add('gtkit-playing')
    current = next
  }

  /** Put validation messages next to the segment rows (and mark the offending inputs). */
  function showProblems (problems) {
    const bySeg = new Map()
    for (const p of problems) if (p.segmentId) bySeg.set(p.segmentId, [...(bySeg.get(p.segmentId) || []), p])
    problemsBySeg = bySeg // rows made later (scrolled into view) take theirs from here
    for (const row of rowsView.handles()) {
      row.problems = bySeg.get(row.id) || []
      applyProblems(row)
    }
  }

  function applyProblems (row) {
    const ps = row.problems
    row.li.classList.toggle('gtkit-invalid', ps.length > 0)
    row.error.hidden = !ps.length
    row.error.textContent = ps.map(p => p.message).join('; ')
    const bad = new Set(ps.map(p => p.field))
    for (const part of ['start', 'end', 'text', 'track']) row.parts[part]?.setAttribute('aria-invalid', String(bad.has(part)))
    for (const [name, { wrap }] of row.fieldInputs) wrap.classList.toggle('gtkit-field-invalid', bad.has(`attributes.${name}`))
  }

  /** A review: mark the rows of the segments a disagreement is about (id -> {kinds, text}); a
   *  click on a row's mark calls `onPick` with its entry (the review goes to its disagreement). */
  function setFlagged (map, onPick = () => {}) {
    flagged = map || new Map()
    onFlagPick = onPick
    for (const row of rowsView.handles()) applyFlag(row)
  }

  function applyFlag (row) {
    const f = flagged.get(row.id)
    row.li.classList.toggle('gtkit-flagged', Boolean(f))
    if (f) row.li.dataset.disagreement = f.kinds.join(' ')
    else delete row.li.dataset.disagreement
    const badge = row.parts.flag
    if (!badge) return
    badge.hidden = !f
    badge.textContent = f ? `⚑ ${f.text}` : ''
    if (f) badge.title = 'Go to this disagreement in the list'
  }

  /** Focus the first input of a segment row (used after submit is blocked). */
  function focusSegment (id, field, { pageScroll = true } = {}) {
    const row = rowsView.reveal(state.sortedIndex(id))
    if (!row) return
    if (pageScroll) row.li.scrollIntoView({ block: 'center' })
    let target = row.parts[field]
    if (!target && field?.startsWith('attributes.')) {
      const f = row.fieldInputs.get(field.slice('attributes.'.length))
      target = Array.isArray(f?.input) ? f.input[0] : f?.input
    }
    ;(target || row.li).focus({ preventScroll: !pageScroll })
  }

  return { element, render, refresh, renderSelection, highlight, showProblems, focusSegment, previewTimes, rowOf, setFlagged }
}
