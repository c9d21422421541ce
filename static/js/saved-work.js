// The worker's unsubmitted work outlives a reload, a crash or an expired session: restored when the
// page opens (with "Discard and start over"), saved after each edit and when the page is hidden,
// and kept until the server has taken the submitted answer. The storage format is persistence.js's.

import { createAutosave, storageKey } from './persistence.js'
import { noticeButton } from './alerts.js'

const NO_STORAGE = 'Autosave is not available in this browser: do not reload the page before submitting.'

/** Whether this browser holds saved work for the task (a returning worker). */
export function hasSavedWork (storage, taskKey) {
  return Boolean(storage?.getItem?.(storageKey(taskKey)))
}

/**
 * Restore the saved answer of the task into `state`, if there is one, and keep saving from now on.
 * @param {object} o
 * @param {Storage|null} o.storage
 * @param {string} o.taskKey
 * @param {import('./state.js').AnswerState} o.state
 * @param {object} o.alerts from alerts.js
 * @param {() => void} o.startOver after "Discard and start over" emptied the state: load the task's own start
 * @param {() => object} [o.draft] what to save (default the state's draft answer; a review adds its note)
 */
export function keepWork ({ storage, taskKey, state, alerts, startOver, draft = () => state.toAnswer({ draft: true }) }) {
  const autosave = createAutosave({ storage, taskKey, onError: () => alerts.showNotice(NO_STORAGE, { sticky: true }) })
  if (!storage) alerts.showNotice(NO_STORAGE, { sticky: true })
  let submitted = false
  let restored = false
  const saved = autosave.load()
  if (saved) {
    state.restore(saved.answer)
    restored = true
    const discard = noticeButton('discard-autosave', 'Discard and start over', () => {
      if (!globalThis.confirm?.('Discard your saved work on this task and start from the task data again?')) return
      autosave.clear()
      restored = false
      state.restore({ tracks: [], segments: [], content: {} })
      startOver()
      alerts.hideNotice()
    })
    alerts.showNotice(`Restored your unsubmitted work${saved.savedAt ? ` (saved ${new Date(saved.savedAt).toLocaleString()})` : ''}.`, { sticky: true, actions: [discard] })
  }

  // The local portal's stand-in says when the server took it.
  window.addEventListener('crowd-standin-submitted', () => autosave.clear())
  // A submission the server refused (the local portal's stand-in fires this; Ground Truth's form
  // never does): the work exists only in this page, so save it again.
  window.addEventListener('gtkit:submit-failed', () => {
    submitted = false
    autosave.saveNow(draft())
  })
  const flush = () => { if (!submitted) autosave.flush() }
  window.addEventListener('pagehide', () => {
    // Ground Truth's crowd-form reports nothing: the page going away after a submit is the sign
    // the answer was taken. (The stand-in reports it; until then the copy is kept.)
    if (submitted && !globalThis.crowdStandin) autosave.clear()
    else flush()
  })
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') flush() })

  return {
    autosave,
    /** The state holds restored work (not the task's own pre-segments). */
    get restored () { return restored },
    /** The saved answer restored at load (null when none). */
    savedAnswer: saved ? saved.answer : null,
    /** A valid answer was posted and not yet refused. */
    get submitted () { return submitted },
    /** After an edit: save soon. Editing again after a submit (the page stayed open) protects the new work too. */
    edited () {
      submitted = false
      autosave.save(draft)
    },
    /** The answer is being posted: the saved copy stays until the server accepts it. */
    submitting () {
      submitted = true
      autosave.saveNow(draft())
    }
  }
}
