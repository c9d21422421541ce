// The worker UI: mount(rootEl) builds it inside #gtkit-app from its data attributes.
// Loaded by main.js (the entry point, which starts the peaks download first); see
// docs/worker-ui.md for the contract.

import { AnswerState } from './state.js'
import { createAutosave, createPreferences, defaultStorage, storageKey } from './persistence.js'
import { Player, fetchPeaks } from './player.js'
import { parsePeaks } from './peaks.js'
import { createToolbar, createTracksPanel } from './panels.js'
import { createSegmentsList } from './segments-list.js'
import { createContentForm } from './content-form.js'
import { createTranscript } from './transcript.js'
import { createHelpOverlay, installShortcuts } from './keyboard.js'
import { ensureAnswerInput, installSubmit } from './submit.js'
import { validateAnswer } from './validation.js'
import { el } from './dom.js'
import { formatTime } from './format.js'
import { RELEASE_ADVICE, download, failureMessage, mediaErrorReason, probeUrl } from './failure.js'
import { PEAKS_JSON_VERSION, SIDECAR_KEYS, TASK_INPUT_KEYS as KEY } from './contract.js'

// Above this length, decoding the whole file in the browser is what the peaks exist to avoid.
const MAX_DECODE_SECONDS = 20 * 60
const SLOW_LOAD_MS = 20000

function readUrl (root, name) {
  const v = (root.getAttribute(`data-${name}`) || '').trim()
  return v && v !== 'null' && v !== 'undefined' && v !== 'None' ? v : ''
}

function readJson (root, name, required) {
  const raw = root.getAttribute(`data-${name}`)
  if (raw === null || raw.trim() === '') {
    if (required) throw new Error(`the page is missing data-${name}`)
    return null
  }
  try {
    return JSON.parse(raw)
  } catch (err) {
    throw new Error(`data-${name} is not valid JSON (${err.message})`)
  }
}

async function fetchSidecar (url) {
  const text = await download(url, 'the sidecar', { read: res => res.text() })
  try {
    return JSON.parse(text)
  } catch {
    throw new Error('the file is not valid JSON') // not the parser's message: it quotes the text
  }
}

/**
 * Mount the UI into `root` (the #gtkit-app element). Returns the app object, also exposed as
 * window.gtkit: {state, player, wavesurfer, getAnswer(), validate(), ...}.
 */
export function mount (root, { storage = defaultStorage(), exposeGlobal = true, prefetched = {} } = {}) {
  if (root.gtkitApp) return root.gtkitApp
  root.classList.add('gtkit')
  root.replaceChildren()

  let schema, taskInput
  try {
    schema = readJson(root, 'schema', true)
    if (!schema || !Array.isArray(schema.tracks) || !schema.tracks.length) throw new Error('data-schema has no tracks')
    taskInput = readJson(root, 'task-input', false) || {}
    if (typeof taskInput !== 'object' || Array.isArray(taskInput)) throw new Error('data-task-input is not a JSON object')
  } catch (err) {
    root.append(el('div', { class: 'gtkit-fatal', role: 'alert', dataset: { role: 'fatal-error' }, text: `This task cannot be shown: ${err.message}.` }))
    throw err
  }
  const mediaUrl = readUrl(root, 'media-url')
  const peaksUrl = readUrl(root, 'peaks-url')
  const spectrogramUrl = readUrl(root, 'spectrogram-url')
  const sidecarUrl = readUrl(root, 'sidecar-url')
  const mediaType = schema.media === 'video' || taskInput[KEY.media_type] === 'video' || root.dataset.variant === 'video' ? 'video' : 'audio'
  const durationHint = Number(taskInput[KEY.duration_seconds]) || 0
  const taskKey = root.getAttribute('data-task-key') || taskInput[KEY.interaction_id] || mediaUrl || 'default'
  const form = root.closest('crowd-form, form')

  // A returning worker has read the instructions: start them collapsed.
  const hasSavedWork = Boolean(storage?.getItem?.(storageKey(taskKey)))

  // ---- layout -------------------------------------------------------------------------------
  const header = el('header', { class: 'gtkit-header' }, [
    el('h2', { class: 'gtkit-title', text: schema.title || 'Segment the media' }),
    schema.description ? el('p', { class: 'gtkit-description', text: schema.description }) : null,
    schema.instructions
      ? el('details', { class: 'gtkit-instructions', open: !hasSavedWork }, [el('summary', { text: 'Instructions' }), el('div', { class: 'gtkit-instructions-text', text: schema.instructions })])
      : null
  ])
  const mediaError = el('div', { class: 'gtkit-alert gtkit-alert-error', role: 'alert', dataset: { role: 'media-error' }, hidden: true })
  const notice = el('div', { class: 'gtkit-alert gtkit-alert-info', role: 'status', dataset: { role: 'notice' }, hidden: true })
  const loading = el('div', { class: 'gtkit-loading', role: 'status', dataset: { role: 'loading' }, text: 'Loading media…' })
  const videoHost = el('div', { class: 'gtkit-video-host', hidden: true })
  const laneLabels = el('div', { class: 'gtkit-lanes', 'aria-hidden': 'true' })
  const waveEl = el('div', { class: 'gtkit-wave', dataset: { role: 'waveform' } })
  const rulerEl = el('canvas', { class: 'gtkit-ruler', 'aria-hidden': 'true' })
  const waveWrap = el('div', { class: 'gtkit-wave-wrap' }, [waveEl, rulerEl, laneLabels, loading])
  const spectrogramEl = el('div', { class: 'gtkit-spectrogram', hidden: true })
  const stage = el('div', { class: 'gtkit-stage' }, [videoHost, waveWrap, spectrogramEl])
  const summary = el('div', { class: 'gtkit-summary gtkit-error', role: 'alert', dataset: { role: 'summary' }, hidden: true })
  const help = createHelpOverlay()
  root.append(header, mediaError, notice, stage)

  // The error box holds what makes the task undoable here (each also blocks Submit, see
  // blockTask) and the last other problem; blocking ones end with what the worker should do.
  const blocking = new Map()
  let lastError = ''
  let submitter = null // installSubmit(), below
  function renderErrors () {
    const lines = [...blocking.values(), lastError].filter(Boolean)
    if (blocking.size) lines.push(RELEASE_ADVICE)
    mediaError.replaceChildren(...lines.map(text => el('p', { text })))
    mediaError.hidden = !lines.length
    if (lines.length) loading.hidden = true
  }
  function showError (message) {
    lastError = message
    renderErrors()
  }
  /** The task cannot be done properly (its media or sidecar did not load): say why, disable Submit. */
  function blockTask (reason, message) {
    blocking.set(reason, message)
    renderErrors()
    submitter?.setBlocked(reason, true)
  }
  let noticeTimer = null
  function showNotice (message, { sticky = false, actions = [] } = {}) {
    notice.replaceChildren(el('span', { text: message }), ...actions)
    notice.hidden = false
    clearTimeout(noticeTimer)
    if (!sticky) noticeTimer = setTimeout(() => { notice.hidden = true }, 6000)
  }

  // ---- state, autosave, pre-segments --------------------------------------------------------
  const state = new AnswerState({ schema, interactionId: taskInput[KEY.interaction_id] ?? null, mediaDuration: durationHint })
  const autosave = createAutosave({
    storage,
    taskKey,
    onError: () => showNotice('Autosave is not available in this browser: do not reload the page before submitting.', { sticky: true })
  })
  if (!storage) showNotice('Autosave is not available in this browser: do not reload the page before submitting.', { sticky: true })
  // The worker's viewing preferences (spectrogram, playback rate) follow them from task to task.
  const prefs = createPreferences({ storage })
  const preferred = prefs.load()
  let submitted = false
  let restored = false
  const saved = autosave.load()
  const loadTaskPresegments = list => state.loadPresegments(list)
  if (saved) {
    state.restore(saved.answer)
    restored = true
    const discard = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-small', dataset: { action: 'discard-autosave' }, text: 'Discard and start over' })
    discard.addEventListener('click', () => {
      if (!globalThis.confirm?.('Discard your saved work on this task and start from the task data again?')) return
      autosave.clear()
      restored = false
      state.restore({ tracks: [], segments: [], content: {} })
      loadTaskPresegments(taskInput[KEY.pre_segments])
      if (!taskInput[KEY.pre_segments] && sidecarUrl) loadSidecar()
      notice.hidden = true
    })
    showNotice(`Restored your unsubmitted work${saved.savedAt ? ` (saved ${new Date(saved.savedAt).toLocaleString()})` : ''}.`, { sticky: true, actions: [discard] })
  } else {
    loadTaskPresegments(taskInput[KEY.pre_segments])
  }

  let transcription = typeof taskInput.transcription === 'string' ? taskInput.transcription : ''

  // ---- views --------------------------------------------------------------------------------
  let player = null
  const views = {}

  /** Peaks from main.js's worker (started while the modules loaded), else fetched here. */
  async function loadPeaks () {
    const early = prefetched.peaks && prefetched.peaksUrl === peaksUrl ? prefetched.peaks : null
    if (early) {
      try {
        return parsePeaks(await early)
      } catch (err) {
        if (!err.fallback) throw err
      }
    }
    return fetchPeaks(peaksUrl)
  }

  async function start () {
    let peaks = null
    if (peaksUrl) {
      try {
        peaks = await loadPeaks()
        app.timings.peaks = performance.now()
      } catch (err) {
        // The peaks only draw the waveform: the task stays doable (flat waveform or decoding).
        const why = failureMessage('peaks', peaksUrl, err)
        if (durationHint > MAX_DECODE_SECONDS) {
          // Decoding this much audio could exhaust the tab: keep playback and segments, draw flat.
          peaks = parsePeaks({ version: PEAKS_JSON_VERSION, duration: durationHint, data: [[0, 0]] })
          showError(`${why} The waveform stays flat; you can still play the media and make segments.`)
        } else {
          showNotice(`${why} Decoding the media in the browser instead.`)
        }
      }
    }
    if (!mediaUrl) {
      blockTask('media', 'The media could not be loaded: the task has no media URL.')
    }
    player = new Player({
      waveEl, rulerEl, spectrogramEl, videoHost, mediaUrl, mediaType, peaks, spectrogramUrl, durationHint, state,
      onError: showError,
      onMediaError: mediaFailed,
      onReady: () => {
        loading.hidden = true
        app.readyAt = app.timings.ready = performance.now()
        renderLanes()
        // Deferred: `player` is assigned once the constructor returns, even if ready fired inside it.
        queueMicrotask(() => {
          if (preferred.spectrogram && player && !player.spectrogram && !player.spectrogramUnavailableReason()) player.toggleSpectrogram()
        })
      }
    })
    if (preferred.rate) player.setRate(preferred.rate)
    app.player = player
    app.timings.player = performance.now()
    player.ws.on('loading', pct => { loading.textContent = `Loading media… ${pct}%` })
    player.ws.on('redrawcomplete', () => { if (!app.drawnAt) app.drawnAt = app.timings.drawn = performance.now() })
    setTimeout(() => {
      if (!player.ready && mediaError.hidden) {
        loading.textContent = 'The media is taking a long time to load… (a very long file may not load without precomputed peaks)'
      }
    }, SLOW_LOAD_MS)
    buildViews()
    app.timings.views = performance.now()
  }

  /** The media did not load: say which host and why (asked again by a probe fetch, since a media
   *  element only reports "error"), and block Submit: there is nothing to label. */
  async function mediaFailed (err, media) {
    const decodeFailed = media?.error?.code === 3 || err?.name === 'EncodingError'
    const reason = mediaErrorReason(err, media)
    blockTask('media', failureMessage(mediaType, mediaUrl, { reason }))
    if (decodeFailed || !mediaUrl) return
    const probe = await probeUrl(mediaUrl)
    if (!probe.ok) blockTask('media', failureMessage(mediaType, mediaUrl, probe))
  }

  function buildViews () {
    views.toolbar = createToolbar({ state, player, onHelp: () => help.toggle() })
    views.tracks = createTracksPanel({
      state,
      onMessage: (m, { undo = false } = {}) => {
        const actions = []
        if (undo) {
          const b = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-small', dataset: { action: 'undo-notice' }, text: 'Undo' })
          b.addEventListener('click', () => { state.undo(); notice.hidden = true })
          actions.push(b)
        }
        showNotice(m, { actions })
      }
    })
    views.list = createSegmentsList({ state, player })
    views.transcript = createTranscript({ state, player, transcription })
    views.content = createContentForm({ state, title: mediaType === 'video' ? 'About the whole video' : 'About the whole recording' })
    const left = el('div', { class: 'gtkit-col gtkit-col-main' }, [views.tracks.element, views.list.element])
    const right = el('div', { class: 'gtkit-col gtkit-col-side' }, [views.transcript.element, views.content.element])
    stage.after(views.toolbar.element)
    views.toolbar.element.after(el('div', { class: 'gtkit-columns' }, [left, right]))
    root.append(summary, help.element)

    player.on('time', scheduleTime)
    player.on('region-drag', (id, start, end) => views.list.previewTimes(id, start, end))
    for (const name of ['ready', 'play', 'pause', 'zoom', 'rate', 'recording', 'spectrogram', 'spectrogram-drawn']) {
      player.on(name, () => views.toolbar.update())
    }
    player.on('rate', rate => prefs.save({ rate }))
    player.on('spectrogram', shown => prefs.save({ spectrogram: shown }))
    installShortcuts({ state, player, help })
    // Enter in a one-line field would submit the whole task (implicit form submission): make it
    // commit the field instead.
    root.addEventListener('keydown', ev => {
      const t = ev.target
      if (ev.key !== 'Enter' || !(t instanceof HTMLInputElement)) return
      if (['checkbox', 'radio', 'button', 'submit'].includes(t.type)) return
      ev.preventDefault()
      t.dispatchEvent(new Event('change', { bubbles: true }))
    })
    renderKinds(new Set(['all']))
  }

  // ---- rendering ----------------------------------------------------------------------------
  /** Re-render what a set of change kinds (tracks|segments|content|selection|all|duration) touched. */
  function renderKinds (kinds) {
    const all = kinds.has('all') || kinds.has('tracks')
    if (all || kinds.has('segments')) {
      views.tracks.render()
      views.list.render({ kind: all ? 'all' : 'segments' })
      views.transcript.render()
      renderLanes()
    } else if (kinds.has('selection')) {
      views.tracks.render()
      renderLanes()
    }
    if (kinds.has('selection')) views.list.renderSelection()
    if (all || kinds.has('content')) views.content.render()
    views.toolbar.update()
  }

  // Coalesce bursts of state changes (one drag = many events) into one render per microtask.
  let pendingKinds = null
  function onStateChange (change) {
    if (!pendingKinds) {
      pendingKinds = new Set()
      queueMicrotask(() => {
        const kinds = pendingKinds
        pendingKinds = null
        if (!views.list) return
        renderKinds(kinds)
        afterChange(kinds)
      })
    }
    pendingKinds.add(change.kind)
  }

  function afterChange (kinds) {
    const edited = ['tracks', 'segments', 'content', 'all'].some(k => kinds.has(k))
    if (edited) {
      // Editing again after a submit (the page stayed open): protect the new work too.
      submitted = false
      autosave.save(() => state.toAnswer())
    }
    if (edited || kinds.has('duration')) {
      if (showingProblems) showProblems(validate())
      submitter.prepare()
    }
  }

  let lastLaneKey = ''
  function renderLanes () {
    const key = state.tracks.map(t => `${t.id}:${t.label}:${t.id === state.activeTrackId}`).join('|')
    if (key === lastLaneKey) return
    lastLaneKey = key
    laneLabels.replaceChildren(...state.tracks.map((t, i) => el('div', {
      class: `gtkit-lane${t.id === state.activeTrackId ? ' gtkit-lane-active' : ''}`,
      style: { top: `${(i / state.tracks.length) * 100}%`, height: `${100 / state.tracks.length}%` }
    }, [el('span', { text: `${i + 1} ${t.label}` })])))
  }

  let timeQueued = false
  let lastTime = 0
  function scheduleTime (t) {
    lastTime = t
    if (timeQueued) return
    timeQueued = true
    requestAnimationFrame(() => {
      timeQueued = false
      views.toolbar.updateTime(lastTime)
      views.list.highlight(lastTime)
      views.transcript.highlight(lastTime)
    })
  }

  // ---- validation + submit ------------------------------------------------------------------
  let showingProblems = false
  function validate () {
    return validateAnswer(state.toAnswer(), schema)
  }

  function showProblems (problems) {
    showingProblems = true
    views.list?.showProblems(problems)
    views.content?.showProblems(problems)
    views.tracks?.showProblems(problems)
    summary.hidden = !problems.length
    if (!problems.length) { summary.replaceChildren(); return }
    const items = problems.slice(0, 20).map(p => {
      const seg = p.segmentId ? state.segment(p.segmentId) : null
      const where = seg ? `Segment at ${formatTime(seg.start)}: ` : p.path.startsWith('content.') ? '' : p.trackId ? 'Track: ' : ''
      const link = el('button', { type: 'button', class: 'gtkit-link', text: where + p.message })
      link.addEventListener('click', () => focusProblem(p))
      return el('li', {}, [link])
    })
    if (problems.length > 20) items.push(el('li', { text: `…and ${problems.length - 20} more` }))
    summary.replaceChildren(
      el('p', { text: `Fix ${problems.length === 1 ? 'this problem' : `these ${problems.length} problems`} before submitting:` }),
      el('ul', {}, items))
  }

  function focusProblem (p) {
    if (p.segmentId) {
      state.select(p.segmentId)
      views.list.focusSegment(p.segmentId, p.field)
    } else if (p.path.startsWith('content.')) {
      views.content.focusField(p.field)
    } else {
      summary.focus?.()
    }
  }

  const answerInput = ensureAnswerInput(form, root)
  submitter = installSubmit({
    form,
    answerInput,
    schema,
    buildAnswer: () => state.toAnswer({ submittedAt: new Date().toISOString() }),
    onInvalid: problems => {
      showProblems(problems)
      summary.scrollIntoView({ block: 'nearest' })
      focusProblem(problems[0])
    },
    onSubmitted: () => {
      // Posted, not yet taken: the saved copy stays until the server accepts the answer.
      submitted = true
      autosave.saveNow(state.toAnswer())
    },
    onBlocked: () => {
      mediaError.scrollIntoView?.({ block: 'nearest' })
    }
  })
  for (const reason of blocking.keys()) submitter.setBlocked(reason, true) // blocked before it existed
  // The local portal's stand-in says when the server took it.
  window.addEventListener('crowd-standin-submitted', () => autosave.clear())

  // A submission the server refused (the local portal's stand-in fires this; Ground Truth's form
  // never does): the work exists only in this page, so save it again.
  window.addEventListener('gtkit:submit-failed', () => {
    submitted = false
    autosave.saveNow(state.toAnswer())
  })

  state.subscribe(onStateChange)
  const flush = () => { if (!submitted) autosave.flush() }
  window.addEventListener('pagehide', () => {
    // Ground Truth's crowd-form reports nothing: the page going away after a submit is the sign
    // the answer was taken. (The stand-in reports it; until then the copy is kept.)
    if (submitted && !globalThis.crowdStandin) autosave.clear()
    else flush()
  })
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') flush() })

  function loadSidecar () {
    fetchSidecar(sidecarUrl).then(sidecar => {
      const pre = sidecar && (sidecar[SIDECAR_KEYS.pre_segments] || sidecar.pre_segments)
      if (!restored && Array.isArray(pre) && !state.segments.length) loadTaskPresegments(pre)
      const text = sidecar && typeof sidecar.transcription === 'string' ? sidecar.transcription : ''
      if (text && !transcription) {
        transcription = text
        if (views.transcript) {
          const fresh = createTranscript({ state, player, transcription })
          views.transcript.element.replaceWith(fresh.element)
          views.transcript = fresh
          fresh.render()
        }
      }
    }).catch(err => {
      // Without it the worker would label without the task's pre-segments / transcription.
      blockTask('sidecar', failureMessage('sidecar', sidecarUrl, err))
    })
  }

  const app = {
    root,
    schema,
    taskInput,
    state,
    autosave,
    get player () { return player },
    set player (p) { player = p },
    get wavesurfer () { return player ? player.ws : null },
    /** The SegmentationAnswer object as it would be submitted now. */
    getAnswer: () => state.toAnswer(),
    /** Problems that would block submit now (also shows them). */
    validate: () => { const p = validate(); showProblems(p); return p },
    get submitted () { return submitted },
    mountedAt: performance.now(),
    readyAt: null,
    drawnAt: null,
    /** performance.now() marks: mount, peaks, player, views, ready, drawn (for benchmarks). */
    timings: { mount: performance.now() },
    ready: null
  }
  root.gtkitApp = app
  if (exposeGlobal) window.gtkit = app

  // The sidecar holds what did not fit in the manifest line: pre-segments and/or transcription.
  if (sidecarUrl && (!Array.isArray(taskInput[KEY.pre_segments]) || !transcription)) loadSidecar()
  app.ready = start().catch(err => {
    blockTask('media', `The media could not be loaded: ${err.message}.`)
  })
  return app
}
