// What the worker is told above the stage. The error box holds what makes the task undoable here
// (a blocking reason: the media or the sidecar did not load; each also disables Submit) and the
// last other problem; blocking messages end with what the worker should do. The notice box holds
// one transient (6 s) or sticky message with optional action buttons. Text only via textContent.

import { el } from './dom.js'
import { RELEASE_ADVICE } from './failure.js'

const NOTICE_MS = 6000

/** @param {{mediaError: HTMLElement, notice: HTMLElement, loading: HTMLElement}} boxes from layout.js */
export function createAlerts ({ mediaError, notice, loading }) {
  const blocking = new Map() // reason -> message
  let lastError = ''
  let onBlock = null
  let noticeTimer = null

  function renderErrors () {
    const lines = [...blocking.values(), lastError].filter(Boolean)
    if (blocking.size) lines.push(RELEASE_ADVICE)
    mediaError.replaceChildren(...lines.map(text => el('p', { text })))
    mediaError.hidden = !lines.length
    if (lines.length) loading.hidden = true
  }

  return {
    /** A problem that leaves the task doable (playback failed, the waveform stays flat...). */
    showError (message) {
      lastError = message
      renderErrors()
    },
    /** The task cannot be done properly (its media or sidecar did not load): say why, disable Submit. */
    blockTask (reason, message) {
      blocking.set(reason, message)
      renderErrors()
      onBlock?.(reason)
    },
    /** fn(reason) for every blocking reason so far and from now on (Submit disables itself). */
    onBlock (fn) {
      onBlock = fn
      for (const reason of blocking.keys()) fn(reason)
    },
    showNotice (message, { sticky = false, actions = [] } = {}) {
      notice.replaceChildren(el('span', { text: message }), ...actions)
      notice.hidden = false
      clearTimeout(noticeTimer)
      if (!sticky) noticeTimer = setTimeout(() => { notice.hidden = true }, NOTICE_MS)
    },
    hideNotice () { notice.hidden = true }
  }
}

/** A small button for a notice's actions. */
export function noticeButton (action, text, onClick) {
  const b = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-small', dataset: { action }, text })
  b.addEventListener('click', onClick)
  return b
}
