// The worker UI: mount(rootEl) builds it inside #gtkit-app from its data attributes, composing one
// module per concept (docs/worker-ui.md has the map). Loaded by main.js (the entry point, which
// starts the peaks download first).

import { AnswerState } from './state.js'
import { createPreferences, defaultStorage } from './persistence.js'
import { readTask } from './task-data.js'
import { createLaneLabels, createLayout, placePanels, showFatal } from './layout.js'
import { createAlerts } from './alerts.js'
import { hasSavedWork, keepWork } from './saved-work.js'
import { createSidecar } from './sidecar.js'
import { createPlayer, loadPeaks } from './media.js'
import { createViews } from './views.js'
import { applyPreferences, coalesceChanges, idleDebounce, wirePlayer } from './wiring.js'
import { createProblems } from './problems.js'
import { ensureAnswerInput, installSubmit } from './submit.js'
import { installEnterCommits, installShortcuts } from './keyboard.js'
import { createCannotAnnotate } from './cannot-annotate.js'
import { isCompareTask, mountCompare } from './compare/app.js'
import { REVIEW_SHORTCUTS, createReview, createReviewNote } from './review.js'
import { reviewSource } from './review-logic.js'

const EDITS = ['tracks', 'segments', 'content', 'all']
// Up to this many segments the answer is re-checked on every edit; beyond, once typing pauses.
const CHECK_EVERY_EDIT = 200

/**
 * Mount the UI into `root` (the #gtkit-app element). Returns the app object, also exposed as
 * window.gtkit: {state, player, wavesurfer, getAnswer(), validate(), ...}.
 */
export function mount (root, { storage = defaultStorage(), exposeGlobal = true, prefetched = {} } = {}) {
  if (root.gtkitApp) return root.gtkitApp
  if (isCompareTask(root)) return mountCompare(root, { exposeGlobal }) // schema mode: compare
  root.classList.add('gtkit')
  root.replaceChildren()
  const task = readTaskOrExplain(root)
  const layout = createLayout(root, task.schema, { instructionsOpen: !hasSavedWork(storage, task.taskKey) })
  const alerts = createAlerts(layout)
  const reviewNote = createReviewNote(task.taskInput) // a re-labeling task: the reviewer's note on top
  if (reviewNote) layout.mediaError.before(reviewNote)
  const state = new AnswerState({ schema: task.schema, interactionId: task.interactionId, mediaDuration: task.durationHint })
  const prefs = createPreferences({ storage })
  const preferred = prefs.load()
  const ui = { views: null, lanes: createLaneLabels(layout.laneLabels, state), transcription: task.transcription }
  const review = createReviewPage({ root, task, state, alerts, layout, isRestored: () => work.restored, onEdited: () => work.edited() })
  const work = keepWork({
    storage,
    taskKey: task.taskKey,
    state,
    alerts,
    startOver: () => startFromTask(task, state, sidecar, review),
    draft: review ? () => review.draft(state.toAnswer({ draft: true })) : undefined
  })
  if (work.restored) review?.restoreDraft(work.savedAnswer)
  if (!work.restored) {
    if (!review?.loadStart()) {
      state.loadPresegments(task.presegments)
      state.loadPreContent(task.preContent)
    }
  } else state.attachWords(task.presegments)
  const sidecar = createSidecar({
    url: task.sidecarUrl,
    state,
    alerts,
    isRestored: () => work.restored,
    onTranscription: text => lateTranscription(ui, text),
    onPresegments: pre => review?.setStartPresegments(pre)
  })
  const problems = createProblems(state, review ? { validate: () => review.problems(review.answer(state.toAnswer())) } : {})
  const cannot = createCannotAnnotate(state)
  if (cannot.element) layout.root.append(cannot.element)
  const submitter = installSubmission({ root, task, layout, state, alerts, work, problems, review })
  state.subscribe(change => {
    if (change.kind !== 'content' && change.kind !== 'all') return
    cannot.render()
    submitter.setOverride(Boolean(state.cannotAnnotate))
  })
  submitter.setOverride(Boolean(state.cannotAnnotate))
  const checks = idleDebounce(() => { problems.refresh(); submitter.prepare(); review?.refresh() })
  coalesceChanges(state, (kinds, detail) => afterChanges(kinds, detail, { ui, work, checks, state }))

  const app = createApp({ root, task, state, work, problems })
  app.review = review
  root.gtkitApp = app
  if (exposeGlobal) window.gtkit = app
  // The sidecar holds what did not fit in the manifest line: pre-segments and/or transcription.
  if (task.sidecarUrl && (!Array.isArray(task.presegments) || !ui.transcription)) sidecar.load()
  app.ready = start({ app, task, layout, alerts, state, prefs, preferred, prefetched, problems, ui, review }).catch(err => {
    alerts.blockTask('media', `The media could not be loaded: ${err.message}.`)
  })
  return app
}

function readTaskOrExplain (root) {
  try {
    return readTask(root)
  } catch (err) {
    showFatal(root, err.message)
    throw err
  }
}

/** A review task (its input has `review` or `review-ref`): the review panel under the stage. A
 *  page rendered for review (data-mode="review") without review data cannot be reviewed. */
function createReviewPage ({ root, task, state, alerts, layout, isRestored, onEdited }) {
  const source = reviewSource(task.taskInput)
  if (!source.isReview) {
    if (root.dataset.mode === 'review') alerts.blockTask('review', 'This review task has no review data: its manifest line needs review or review-ref.')
    return null
  }
  root.classList.add('gtkit-reviewing')
  const review = createReview({ task, source, state, alerts, form: layout.form, isRestored, onEdited })
  layout.stage.after(review.element)
  return review
}

/** After "Discard and start over": the review's starting label, else the task's own pre-segments,
 *  or its sidecar's. */
function startFromTask (task, state, sidecar, review) {
  if (review?.loadStart()) return
  state.loadPresegments(task.presegments)
  state.loadPreContent(task.preContent)
  if (!task.presegments && task.sidecarUrl) sidecar.load()
}

/** The sidecar's transcription, used when the task input had none. */
function lateTranscription (ui, text) {
  if (ui.transcription) return
  ui.transcription = text
  ui.views?.setTranscription(text)
}

function installSubmission ({ root, task, layout, state, alerts, work, problems, review }) {
  const submitter = installSubmit({
    form: layout.form,
    answerInput: ensureAnswerInput(layout.form, root),
    schema: task.schema,
    // A review answer carries the decision and note (and is checked with them).
    buildAnswer: () => {
      const answer = state.toAnswer({ submittedAt: new Date().toISOString() })
      return review ? review.answer(answer) : answer
    },
    check: review ? review.problems : undefined,
    onInvalid: problems.reveal,
    onSubmitted: work.submitting,
    onBlocked: () => layout.mediaError.scrollIntoView?.({ block: 'nearest' })
  })
  alerts.onBlock(reason => submitter.setBlocked(reason, true))
  return submitter
}

/** One burst of state changes (coalesced): redraw, then save, re-check and refill the answer
 *  (the submit handler re-checks anyway, so deferring the check never lets a stale answer out). */
function afterChanges (kinds, detail, { ui, work, checks, state }) {
  if (!ui.views) return // built with the player, from the state as it is then
  ui.views.render(kinds, detail)
  const edited = EDITS.some(k => kinds.has(k))
  if (edited) work.edited()
  if (edited || kinds.has('duration')) {
    checks.schedule()
    if (state.segments.length <= CHECK_EVERY_EDIT) checks.flush()
  }
}

/** Peaks (if any), then the player, then the panels around it. */
async function start ({ app, task, layout, alerts, state, prefs, preferred, prefetched, problems, ui, review }) {
  const peaks = task.peaksUrl ? await loadPeaks(task, { prefetched, alerts, timings: app.timings }) : null
  const player = createPlayer({
    task,
    layout,
    alerts,
    state,
    peaks,
    onReady: () => {
      app.readyAt = app.timings.ready = performance.now()
      ui.lanes.render()
    }
  })
  applyPreferences(player, preferred)
  app.player = player
  app.timings.player = performance.now()
  player.ws.on('redrawcomplete', () => { if (!app.drawnAt) app.drawnAt = app.timings.drawn = performance.now() })
  const views = createViews({
    state, player, mediaType: task.mediaType, transcription: ui.transcription, alerts, lanes: ui.lanes, shortcuts: review ? REVIEW_SHORTCUTS : []
  })
  placePanels(layout, views, [problems.element, views.help.element])
  if (review) {
    views.toolbar.element.after(review.element) // the disagreements come first, before the columns
    review.attachPlayer(player, layout.waveWrap)
    review.attachViews(views)
  }
  problems.attach(review ? { ...views, review } : views)
  wirePlayer(player, views, prefs)
  installShortcuts({ state, player, help: views.help, editText: id => views.list.focusSegment(id, 'text'), review })
  installEnterCommits(layout.root)
  ui.views = views
  views.render(new Set(['all']))
  app.timings.views = performance.now()
}

/** The app object (window.gtkit): docs/worker-ui.md, "Test hooks". */
function createApp ({ root, task, state, work, problems }) {
  let player = null
  return {
    root,
    schema: task.schema,
    taskInput: task.taskInput,
    state,
    autosave: work.autosave,
    get player () { return player },
    set player (p) { player = p },
    get wavesurfer () { return player ? player.ws : null },
    /** The SegmentationAnswer object as it would be submitted now. */
    getAnswer: () => state.toAnswer(),
    /** Problems that would block submit now (also shows them). */
    validate: () => { const p = problems.validate(); problems.show(p); return p },
    get submitted () { return work.submitted },
    mountedAt: performance.now(),
    readyAt: null,
    drawnAt: null,
    /** performance.now() marks: mount, peaks, player, views, ready, drawn (for benchmarks). */
    timings: { mount: performance.now() },
    ready: null
  }
}
