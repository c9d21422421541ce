// Keyboard shortcuts and the in-page help overlay (?). Shortcuts are ignored while the worker
// types in a field (except Escape, which leaves the field), so text entry never triggers them.

import { el } from './dom.js'

/** [keys, description] - the help overlay and docs/worker-ui.md list exactly these. */
export const SHORTCUTS = [
  ['Space', 'Play / pause'],
  ['R', 'Begin / stop recording a segment on the active track (starts playback)'],
  ['← / →', 'Back / forward 1 s'],
  ['Shift + ← / →', 'Back / forward 5 s'],
  [', / .', 'Back / forward 10 ms'],
  ['+ / -', 'Zoom in / out'],
  ['0', 'Zoom to the whole file'],
  ['< / >', 'Slower / faster playback (0.5× – 2×)'],
  ['S', 'Show / hide the spectrogram'],
  ['1 – 9', 'Make track N the active track'],
  ['J / K', 'Select the next / previous segment (and seek to it)'],
  ['Shift + J / K', 'Select the next / previous segment and play it'],
  ['P', 'Play the selected segment'],
  ['Enter', 'Edit the selected segment\'s text (Escape returns to the shortcuts)'],
  ['L', 'Loop the selected segment (again: stop)'],
  ['[ / ]', 'Set the selected segment start / end to the playhead'],
  ['Q / W', 'Move the selected segment start earlier / later (a step that follows the zoom)'],
  ['I / O', 'Move the selected segment end earlier / later (a step that follows the zoom)'],
  ['X', 'Split the selected segment (or the one under the playhead) at the playhead'],
  ['M', 'Merge the selected segment with the next one on its track'],
  ['Delete / Backspace', 'Delete the selected segment'],
  ['Ctrl + Z', 'Undo'],
  ['Ctrl + Shift + Z, Ctrl + Y', 'Redo'],
  ['Escape', 'Leave a text field / close this help / deselect'],
  ['?', 'Show / hide this help']
]

/** Where Space belongs to the element: any input, textarea, select or editable content. */
function isField (target) {
  if (!target || !(target instanceof Element)) return false
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)
}

function isTyping (target) {
  if (!target || !(target instanceof Element)) return false
  if (target.isContentEditable) return true
  const tag = target.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true
  if (tag !== 'INPUT') return false
  return !['checkbox', 'radio', 'button', 'submit', 'reset', 'range'].includes(target.type)
}

/** @param {[string, string][]} [extra] rows a kind of task adds (review: A / N), listed after the others */
export function createHelpOverlay (extra = []) {
  const close = el('button', { type: 'button', class: 'gtkit-btn', dataset: { action: 'close-help' }, text: 'Close' })
  const table = el('table', { class: 'gtkit-keys' }, [
    el('thead', {}, [el('tr', {}, [el('th', { scope: 'col', text: 'Keys' }), el('th', { scope: 'col', text: 'Action' })])]),
    el('tbody', {}, [...SHORTCUTS, ...extra].map(([k, d]) => el('tr', {}, [el('td', {}, [el('kbd', { text: k })]), el('td', { text: d })])))
  ])
  const dialog = el('div', { class: 'gtkit-help', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'gtkit-help-h', hidden: true, tabindex: '-1' }, [
    el('div', { class: 'gtkit-help-box' }, [
      el('h3', { id: 'gtkit-help-h', text: 'Keyboard shortcuts' }),
      el('p', { class: 'gtkit-hint', text: 'Drag across a track\'s lane on the waveform to create a segment on that track; drag a segment to move it (up or down onto another lane: to that track), drag its edges to resize it; boundaries snap to word edges (hold Alt to place them exactly); double-click a segment to play it.' }),
      table, close
    ])
  ])
  let returnFocus = null
  const api = {
    element: dialog,
    get open () { return !dialog.hidden },
    show () {
      returnFocus = document.activeElement
      dialog.hidden = false
      close.focus()
    },
    hide () {
      dialog.hidden = true
      if (returnFocus && returnFocus.focus) returnFocus.focus()
    },
    toggle () { api.open ? api.hide() : api.show() }
  }
  close.addEventListener('click', () => api.hide())
  dialog.addEventListener('click', ev => { if (ev.target === dialog) api.hide() })
  return api
}

/** Install the shortcuts on `target` (the document). Returns a function that removes them.
 *  `review` ({accept(), startReject()}, review tasks only): A accepts, N starts a reject. */
export function installShortcuts ({ target = document, state, player, help, editText = () => {}, trackCount = () => state.tracks.length, review = null }) {
  function selectRelative (dir, play = false) {
    const sorted = state.sortedSegments()
    if (!sorted.length) return
    let idx = state.selectedSegmentId ? state.sortedIndex(state.selectedSegmentId) : -1
    if (idx < 0) {
      const t = player.currentTime
      idx = dir > 0 ? sorted.findIndex(s => s.start >= t) : sorted.findLastIndex(s => s.start < t)
      if (idx < 0) idx = dir > 0 ? 0 : sorted.length - 1
    } else {
      idx = Math.max(0, Math.min(sorted.length - 1, idx + dir))
    }
    state.select(sorted[idx].id)
    player.seekToSegment(sorted[idx].id)
    if (play) player.playSegment(sorted[idx].id)
  }

  /** The selected segment, else the one under the playhead (active track first). */
  function targetSegment () {
    if (state.selectedSegmentId) return state.selectedSegmentId
    const here = state.segmentsAt(player.currentTime)
    return (here.find(s => s.track === state.activeTrackId) || here[0])?.id ?? null
  }

  function onKey (ev) {
    if (ev.defaultPrevented) return
    const key = ev.key
    const mod = ev.ctrlKey || ev.metaKey
    if (help.open) {
      if (key === 'Escape' || key === '?') { ev.preventDefault(); help.hide() }
      return
    }
    // Enter on a button, link or disclosure presses it (Space never reaches here: onSpace).
    if (key === 'Enter' && ev.target instanceof Element &&
        ev.target.closest('input[type=checkbox], input[type=radio], summary, button, a[href], [role=button]')) return
    if (isTyping(ev.target)) {
      if (key === 'Escape') ev.target.blur()
      return // let text fields keep their own keys, including their native Ctrl+Z
    }
    if (ev.altKey) return
    const sel = state.selectedSegmentId
    let handled = true
    if (mod && (key === 'z' || key === 'Z')) {
      if (ev.shiftKey) state.redo()
      else state.undo()
    } else if (mod && (key === 'y' || key === 'Y')) {
      state.redo()
    } else if (mod) {
      handled = false // leave browser shortcuts (copy, reload, ...) alone
    } else if (key === 'r' || key === 'R') {
      player.toggleRecording()
    } else if (key === 'ArrowLeft' || key === 'ArrowRight') {
      player.skip((key === 'ArrowLeft' ? -1 : 1) * (ev.shiftKey ? 5 : 1))
    } else if (key === ',' || key === '.') {
      player.skip(key === ',' ? -0.01 : 0.01)
    } else if (key === '+' || key === '=') {
      player.zoomIn()
    } else if (key === '-' || key === '_') {
      player.zoomOut()
    } else if (key === '0') {
      player.zoomFit()
    } else if (key === '<' || key === '>') {
      player.stepRate(key === '<' ? -1 : 1)
    } else if (key === 's' || key === 'S') {
      player.toggleSpectrogram()
    } else if (/^[1-9]$/.test(key)) {
      const n = Number(key)
      if (n <= trackCount()) state.setActiveTrack(state.tracks[n - 1].id)
    } else if (key === 'j' || key === 'J') {
      selectRelative(1, ev.shiftKey)
    } else if (key === 'k' || key === 'K') {
      selectRelative(-1, ev.shiftKey)
    } else if ((key === 'p' || key === 'P') && sel) {
      player.playSegment(sel)
    } else if (key === 'Enter' && sel) {
      editText(sel)
    } else if ((key === 'l' || key === 'L') && (sel || player.looping)) {
      player.toggleLoop(sel)
    } else if (['q', 'Q', 'w', 'W', 'i', 'I', 'o', 'O'].includes(key) && sel) {
      const k = key.toLowerCase()
      const step = player.nudgeStep()
      state.nudgeSegment(sel, k === 'q' || k === 'w' ? 'start' : 'end', k === 'q' || k === 'i' ? -step : step)
    } else if (key === 'x' || key === 'X') {
      const id = targetSegment()
      const second = id && state.splitSegment(id, player.currentTime)
      if (second) state.select(second)
    } else if ((key === 'm' || key === 'M') && sel) {
      state.mergeWithNext(sel)
    } else if ((key === '[' || key === ']') && sel) {
      const t = player.currentTime
      if (key === '[') state.setSegmentTime(sel, 'start', t)
      else state.setSegmentTime(sel, 'end', t)
    } else if ((key === 'Delete' || key === 'Backspace') && sel) {
      state.removeSegment(sel)
    } else if (review && (key === 'a' || key === 'A')) {
      review.accept()
    } else if (review && (key === 'n' || key === 'N')) {
      review.startReject()
    } else if (key === 'Escape') {
      state.select(null)
    } else if (key === '?') {
      help.toggle()
    } else {
      handled = false
    }
    if (handled) ev.preventDefault()
  }

  // Space is play/pause wherever the focus is, except in a field (typing, ticking a checkbox,
  // opening a select): never a press of the focused button. After a click on "Add track", Space
  // used to add the track again. Capture phase, so that it runs before a button's own key
  // handler (crowd-button clicks itself on Space); cancelling the keydown stops the native press.
  function onSpace (ev) {
    if (ev.key !== ' ' && ev.key !== 'Spacebar') return
    if (help.open || ev.ctrlKey || ev.metaKey || ev.altKey || isField(ev.target)) return
    ev.preventDefault()
    ev.stopPropagation()
    if (!ev.repeat) player.playPause()
  }

  target.addEventListener('keydown', onSpace, true)
  target.addEventListener('keydown', onKey)
  return () => {
    target.removeEventListener('keydown', onSpace, true)
    target.removeEventListener('keydown', onKey)
  }
}

/** Enter in a one-line field would submit the whole task (implicit form submission): make it
 *  commit the field instead. Returns a function that removes the handler. */
export function installEnterCommits (root) {
  function onKey (ev) {
    const t = ev.target
    if (ev.key !== 'Enter' || !(t instanceof HTMLInputElement)) return
    if (['checkbox', 'radio', 'button', 'submit'].includes(t.type)) return
    ev.preventDefault()
    t.dispatchEvent(new Event('change', { bubbles: true }))
  }
  root.addEventListener('keydown', onKey)
  return () => root.removeEventListener('keydown', onKey)
}
