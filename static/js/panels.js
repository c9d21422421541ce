// Toolbar (transport, zoom, rate, record, undo/redo, spectrogram, help) and the tracks panel.

import { el } from './dom.js'
import { formatTime } from './format.js'
import { RATES } from './player.js'
import { trackColor } from './colors.js'
import { displayName } from './validation.js'

function button (action, text, title, extra = {}) {
  return el('button', { type: 'button', class: 'gtkit-btn', dataset: { action }, title, 'aria-label': title, text, ...extra })
}

/** The toolbar under the waveform. Returns {element, update()} - update is cheap, call freely. */
export function createToolbar ({ state, player, onHelp }) {
  const play = button('play', 'Play', 'Play / pause (Space)')
  const time = el('output', { class: 'gtkit-time', 'aria-live': 'off', title: 'Current time / duration' })
  const rate = el('select', { class: 'gtkit-rate', dataset: { role: 'rate' }, 'aria-label': 'Playback rate' },
    RATES.map(r => el('option', { value: String(r), text: `${r}×`, selected: r === 1 })))
  rate.addEventListener('change', () => player.setRate(Number(rate.value)))
  const zoomOut = button('zoom-out', '−', 'Zoom out (-)')
  const zoomFit = button('zoom-fit', 'Fit', 'Show the whole file (0)')
  const zoomIn = button('zoom-in', '+', 'Zoom in (+)')
  const zoomLabel = el('span', { class: 'gtkit-zoom-label', 'aria-live': 'polite' })
  const record = button('record', '● Record', 'Begin / stop recording a segment on the active track (R)', { 'aria-pressed': 'false' })
  const loop = button('loop', '↻ Loop', 'Loop the selected segment (L)', { 'aria-pressed': 'false' })
  const undo = button('undo', 'Undo', 'Undo (Ctrl+Z)')
  const redo = button('redo', 'Redo', 'Redo (Ctrl+Shift+Z)')
  const spectro = button('toggle-spectrogram', 'Spectrogram', 'Show / hide the spectrogram', { 'aria-pressed': 'false' })
  const spectroNote = el('span', { class: 'gtkit-note gtkit-spectro-note', hidden: true })
  const channels = button('toggle-channels', 'Channels', 'One waveform per channel (stereo calls)', { 'aria-pressed': 'false', hidden: true })
  const help = button('help', '?', 'Keyboard shortcuts (?)')

  play.addEventListener('click', () => player.playPause())
  zoomIn.addEventListener('click', () => player.zoomIn())
  zoomOut.addEventListener('click', () => player.zoomOut())
  zoomFit.addEventListener('click', () => player.zoomFit())
  record.addEventListener('click', () => player.toggleRecording())
  loop.addEventListener('click', () => player.toggleLoop(state.selectedSegmentId))
  undo.addEventListener('click', () => state.undo())
  redo.addEventListener('click', () => state.redo())
  spectro.addEventListener('click', () => player.toggleSpectrogram())
  help.addEventListener('click', () => onHelp())
  channels.addEventListener('click', () => player.toggleChannels())

  const element = el('div', { class: 'gtkit-toolbar', role: 'toolbar', 'aria-label': 'Player controls' }, [
    el('div', { class: 'gtkit-group' }, [play, time, el('label', { class: 'gtkit-inline' }, ['Speed ', rate])]),
    el('div', { class: 'gtkit-group' }, [zoomOut, zoomFit, zoomIn, zoomLabel]),
    el('div', { class: 'gtkit-group' }, [record, loop, undo, redo]),
    el('div', { class: 'gtkit-group' }, [channels, spectro, spectroNote, help])
  ])

  let lastTimeText = ''
  function updateTime (t = player.currentTime) {
    const text = `${formatTime(t)} / ${formatTime(player.duration)}`
    if (text !== lastTimeText) {
      time.value = text
      time.textContent = text
      lastTimeText = text
    }
  }

  function update () {
    const playing = player.isPlaying
    play.textContent = playing ? 'Pause' : 'Play'
    play.setAttribute('aria-pressed', String(playing))
    record.textContent = player.isRecording ? '■ Stop recording' : '● Record'
    record.setAttribute('aria-pressed', String(player.isRecording))
    record.classList.toggle('gtkit-recording', player.isRecording)
    loop.setAttribute('aria-pressed', String(Boolean(player.looping)))
    loop.disabled = !player.looping && !state.selectedSegmentId
    channels.hidden = !(player.channelCount > 1)
    channels.setAttribute('aria-pressed', String(player.splitChannels))
    undo.disabled = !state.canUndo
    redo.disabled = !state.canRedo
    zoomLabel.textContent = player.zoomLabel()
    const zoomReady = player.ready
    zoomIn.disabled = !zoomReady
    zoomOut.disabled = !zoomReady || player.pxPerSec === 0
    zoomFit.disabled = !zoomReady || player.pxPerSec === 0
    const why = player.spectrogramUnavailableReason()
    const on = Boolean(player.spectrogram)
    spectro.disabled = Boolean(why) && !on
    spectro.setAttribute('aria-pressed', String(on))
    spectro.title = why || 'Show / hide the spectrogram'
    // Peaks-only is a permanent condition worth explaining; "not loaded yet" is not.
    const noSpectrogram = player.peaksMode && !player.spectrogramUrl
    spectroNote.hidden = !noSpectrogram
    spectroNote.textContent = noSpectrogram ? 'Spectrogram off: long media is streamed with precomputed peaks.' : ''
    if (String(player.rate) !== rate.value) rate.value = String(player.rate)
    updateTime()
  }

  return { element, update, updateTime }
}

/** Label text of a track, e.g. "Speaker: Customer". */
export function trackTitle (schema, track) {
  const cat = schema.tracks.find(c => c.name === track.category)
  return `${cat ? displayName(cat) : track.category}: ${track.label}`
}

/** Tracks panel: the tracks of this answer, which one is active, add/remove/relabel. */
export function createTracksPanel ({ state, onMessage }) {
  const { schema } = state
  const list = el('ul', { class: 'gtkit-track-list', 'aria-label': 'Tracks' })
  const picker = el('select', { class: 'gtkit-new-track', dataset: { role: 'new-track' }, 'aria-label': 'Track to add' },
    schema.tracks.map(cat => el('optgroup', { label: displayName(cat) },
      cat.labels.map(label => el('option', { value: JSON.stringify([cat.name, label]), text: `${displayName(cat)}: ${label}` })))))
  const add = el('button', { type: 'button', class: 'gtkit-btn', dataset: { action: 'add-track' }, text: 'Add track' })
  add.addEventListener('click', () => {
    const [category, label] = JSON.parse(picker.value)
    const existing = state.findTrack(category, label)
    if (existing) {
      state.setActiveTrack(existing.id)
      onMessage(`${trackTitle(schema, existing)} already exists; it is now the active track.`)
      return
    }
    const id = state.addTrack(category, label)
    state.setActiveTrack(id)
  })
  const element = el('section', { class: 'gtkit-panel gtkit-tracks', 'aria-labelledby': 'gtkit-tracks-h' }, [
    el('h3', { id: 'gtkit-tracks-h', text: 'Tracks' }),
    el('p', { class: 'gtkit-hint', text: 'Drag in a track\'s lane on the waveform to add a segment there, drag a segment to another lane to move it there; R while playing records on the active track, or on every track ticked "rec".' }),
    list,
    el('div', { class: 'gtkit-add-track' }, [picker, add])
  ])

  const rows = new Map()

  function buildRow (track) {
    const swatch = el('span', { class: 'gtkit-swatch', 'aria-hidden': 'true' })
    const activate = el('button', { type: 'button', class: 'gtkit-track-name', dataset: { action: 'activate-track' } })
    activate.addEventListener('click', () => state.setActiveTrack(track.id))
    const relabel = el('select', { class: 'gtkit-track-label', 'aria-label': 'Track label', dataset: { role: 'track-label' } })
    relabel.addEventListener('change', () => {
      const t = state.track(track.id)
      if (t) state.setTrackLabel(track.id, t.category, relabel.value)
    })
    const record = el('input', { type: 'checkbox', dataset: { role: 'record-into' }, 'aria-label': 'Record into this track (R)' })
    record.addEventListener('change', () => state.setRecordTrack(track.id, record.checked))
    const count = el('span', { class: 'gtkit-count' })
    const remove = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-quiet', dataset: { action: 'remove-track' }, text: 'Remove' })
    remove.addEventListener('click', () => {
      const t = state.track(track.id)
      if (!t) return
      const n = state.segments.filter(s => s.track === track.id).length
      state.removeTrack(track.id)
      // No confirm dialog: removal is one undo step away, and the notice says so.
      if (n) onMessage(`Removed ${trackTitle(schema, t)} and its ${n} segment${n === 1 ? '' : 's'}.`, { undo: true })
    })
    const error = el('div', { class: 'gtkit-error', role: 'alert', hidden: true })
    const li = el('li', { class: 'gtkit-track', dataset: { trackId: track.id } }, [
      swatch, activate, relabel, el('label', { class: 'gtkit-check gtkit-record-into', title: 'R records a segment on every ticked track (none ticked: the active track)' }, [record, ' rec']),
      count, remove, error])
    return { li, swatch, activate, relabel, record, count, error, track: null }
  }

  let counted = null
  let counts = new Map()
  function render () {
    // Recount only when segments were added, removed or retracked: a selection re-renders this
    // panel and must not cost O(segments).
    if (counted !== state.layoutVersion) {
      counts = new Map()
      for (const s of state.segments) counts.set(s.track, (counts.get(s.track) || 0) + 1)
      counted = state.layoutVersion
    }
    const live = new Set()
    state.tracks.forEach((track, i) => {
      live.add(track.id)
      let row = rows.get(track.id)
      if (!row) {
        row = buildRow(track)
        rows.set(track.id, row)
      }
      if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null)
      if (row.track !== track) {
        const cat = schema.tracks.find(c => c.name === track.category)
        row.swatch.style.background = trackColor(schema, track)
        row.activate.textContent = `${i + 1}. ${trackTitle(schema, track)}`
        const labels = cat ? [...cat.labels] : []
        if (!labels.includes(track.label)) labels.push(track.label)
        row.relabel.replaceChildren(...labels.map(l => el('option', { value: l, text: l })))
        row.relabel.value = track.label
        row.track = track
      } else {
        row.activate.textContent = `${i + 1}. ${trackTitle(schema, track)}`
      }
      const active = state.activeTrackId === track.id
      row.record.checked = state.recordTrackIds.has(track.id)
      row.li.classList.toggle('gtkit-active', active)
      row.activate.setAttribute('aria-pressed', String(active))
      const n = counts.get(track.id) || 0
      row.count.textContent = `${n} segment${n === 1 ? '' : 's'}`
    })
    for (const [id, row] of rows) {
      if (!live.has(id)) {
        row.li.remove()
        rows.delete(id)
      }
    }
  }

  /** Show schema problems of tracks (unknown label...) next to the track. */
  function showProblems (problems) {
    const byTrack = new Map()
    for (const p of problems) if (p.trackId) byTrack.set(p.trackId, [...(byTrack.get(p.trackId) || []), p.message])
    for (const [id, row] of rows) {
      const msgs = byTrack.get(id) || []
      row.error.hidden = !msgs.length
      row.error.textContent = msgs.join('; ')
      row.relabel.setAttribute('aria-invalid', String(msgs.length > 0))
    }
  }

  return { element, render, showProblems }
}
