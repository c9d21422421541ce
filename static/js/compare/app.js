// The comparison worker UI (schema mode: compare): one shared timeline over 2-4 candidates (and an
// optional reference), one candidate audible/visible at a time, switched at the same playhead with
// keys A-D (X: reference), a span that loops across switches, per-span preference marks, the
// overall preference on a CMOS scale and optional per-candidate MOS. Built apart from the
// segmentation UI (app.js only branches here); the rules live in ./logic.js.
// Every text from the task or schema goes in through textContent (dom.js el()).

import { el, uniqueId } from '../dom.js'
import { CONTENT_FIELD_PREFIX, TASK_INPUT_KEYS as KEY } from '../contract.js'
import { ensureAnswerInput, setSubmittersDisabled } from '../submit.js'
import { createAutosave, defaultStorage } from '../persistence.js'
import { readJson, readUrl } from '../task-data.js'
import {
  LETTERS, REFERENCE_KEY, STRENGTH_WORDS, buildAnswer, candidateIds, cmosChoices, compareSpec,
  comparisonProblems, fromCmos, keyTarget, loopTime, spanBetween, toCmos
} from './logic.js'

/** Whether #gtkit-app holds a comparison task (its schema says mode: compare). */
export function isCompareTask (root) {
  try {
    const schema = readJson(root, 'schema', false)
    return !!schema && schema.mode === 'compare'
  } catch (err) {
    return false // the segmentation UI reports the unreadable schema
  }
}

const fmt = t => {
  const s = Math.max(0, Number(t) || 0)
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(3).padStart(6, '0')}`
}

function readCompareTask (root) {
  const schema = readJson(root, 'schema', true)
  const taskInput = readJson(root, 'task-input', false) || {}
  const candidates = Array.isArray(taskInput.candidates) ? taskInput.candidates : []
  const spec = compareSpec(schema)
  if (candidates.length < 2 || candidates.length > 4) throw new Error(`the task has ${candidates.length} candidates; a comparison needs 2 to 4`)
  const urls = candidates.map((c, i) => readUrl(root, `candidate-${i}-url`))
  if (urls.some(u => !u)) throw new Error('a candidate has no media URL')
  const prompt = taskInput.prompt && typeof taskInput.prompt === 'object' ? taskInput.prompt : {}
  return {
    schema,
    spec,
    taskInput,
    order: candidateIds(candidates),
    urls,
    referenceUrl: readUrl(root, 'reference-url'),
    promptText: typeof prompt.text === 'string' ? prompt.text : '',
    mediaType: schema.media === 'video' || taskInput[KEY.media_type] === 'video' ? 'video' : 'audio',
    durationHint: Number(taskInput[KEY.duration_seconds]) || 0,
    interactionId: taskInput[KEY.interaction_id] ?? null
  }
}

export function mountCompare (root, { exposeGlobal = true, storage = defaultStorage() } = {}) {
  root.classList.add('gtkit', 'gtkit-compare')
  root.replaceChildren()
  let task
  try {
    task = readCompareTask(root)
  } catch (err) {
    root.append(el('div', { class: 'gtkit-fatal', role: 'alert', dataset: { role: 'fatal-error' }, text: `This task cannot be shown: ${err.message}.` }))
    throw err
  }
  const { schema, spec, order } = task
  const startedAt = new Date().toISOString()
  const judgement = { decided: false, preferred: null, strength: 0, mos: {}, spans: [], content: {} }
  let selection = null // {start, end} on the shared timeline
  let looping = false
  let spanSeq = 0
  const controls = { cmos: new Map(), best: new Map(), strengths: [], mos: new Map(), content: new Map() }
  const autosave = createAutosave({ storage, taskKey: `compare:${root.getAttribute('data-task-key') || task.interactionId || 'default'}` })

  // -- media: one element per candidate (+ reference); only the active one plays and shows -------
  const tag = task.mediaType === 'video' ? 'video' : 'audio'
  const makeMedia = (url, name) => el(tag, { src: url, preload: 'auto', playsinline: true, class: 'gtkit-compare-media', dataset: { role: 'media', candidate: name } })
  const media = task.urls.map((u, i) => makeMedia(u, LETTERS[i]))
  const reference = task.referenceUrl ? makeMedia(task.referenceUrl, REFERENCE_KEY) : null
  const all = reference ? [...media, reference] : media
  for (const m of all) { m.muted = true; m.hidden = true }
  let active = media[0]
  active.muted = false
  active.hidden = false
  let duration = task.durationHint

  // -- layout --------------------------------------------------------------------------------
  const problemsBox = el('div', { class: 'gtkit-alert gtkit-alert-error', role: 'alert', dataset: { role: 'problems' }, hidden: true })
  const mediaError = el('div', { class: 'gtkit-alert gtkit-alert-error', role: 'alert', dataset: { role: 'media-error' }, hidden: true })
  const switchButtons = [...media.map((_, i) => LETTERS[i]), ...(reference ? [REFERENCE_KEY] : [])].map(key => el('button', {
    type: 'button', class: 'gtkit-btn gtkit-compare-switch', dataset: { role: 'switch', key }, 'aria-pressed': 'false',
    text: key === REFERENCE_KEY ? 'X · Reference' : `${key} · Candidate ${key}`, on: { click: () => switchTo(key) }
  }))
  const playButton = el('button', { type: 'button', class: 'gtkit-btn', dataset: { action: 'play' }, text: 'Play', on: { click: () => togglePlay() } })
  const loopButton = el('button', { type: 'button', class: 'gtkit-btn', dataset: { action: 'loop' }, 'aria-pressed': 'false', text: 'Loop span (L)', on: { click: () => setLoop(!looping) } })
  const timeText = el('span', { class: 'gtkit-compare-time', dataset: { role: 'time' }, 'aria-live': 'off' })
  const playhead = el('div', { class: 'gtkit-compare-playhead' })
  const selectionEl = el('div', { class: 'gtkit-compare-selection', hidden: true, dataset: { role: 'selection' } })
  const marksEl = el('div', { class: 'gtkit-compare-marks' })
  const timeline = el('div', {
    class: 'gtkit-compare-timeline', dataset: { role: 'timeline' }, role: 'slider', tabindex: '0', 'aria-label': 'Shared timeline: click to seek, drag to select a span',
    'aria-valuemin': '0'
  }, [marksEl, selectionEl, playhead])
  const markButton = el('button', { type: 'button', class: 'gtkit-btn', dataset: { action: 'mark-span' }, text: 'Mark span', disabled: true, on: { click: () => markSpan() } })
  const spanList = el('ol', { class: 'gtkit-compare-spans', dataset: { role: 'spans' } })

  root.append(
    el('header', { class: 'gtkit-header' }, [
      el('h2', { class: 'gtkit-title', text: schema.title || 'Compare the candidates' }),
      schema.description ? el('p', { class: 'gtkit-description', text: schema.description }) : null,
      schema.instructions ? el('details', { class: 'gtkit-instructions', open: true }, [el('summary', { text: 'Instructions' }), el('div', { class: 'gtkit-instructions-text', text: schema.instructions })]) : null
    ]),
    mediaError,
    task.promptText ? el('section', { class: 'gtkit-panel gtkit-compare-prompt', dataset: { role: 'prompt' } }, [el('h3', { text: 'Prompt' }), el('p', { text: task.promptText })]) : null,
    el('div', { class: 'gtkit-stage gtkit-compare-stage', dataset: { role: 'stage' } }, all),
    el('div', { class: 'gtkit-toolbar gtkit-compare-switcher', role: 'group', 'aria-label': 'Candidate' }, switchButtons),
    el('div', { class: 'gtkit-toolbar' }, [playButton, loopButton, markButton, timeText]),
    timeline,
    el('section', { class: 'gtkit-panel' }, [el('h3', { text: 'Spans where one candidate is better' }), el('p', { class: 'gtkit-hint', text: 'Drag on the timeline to select a span, then Mark span.' }), spanList]),
    preferencePanel(),
    spec.mos.enabled ? mosPanel() : null,
    contentPanel(),
    problemsBox
  )

  // -- switching and transport ---------------------------------------------------------------
  function elementFor (key) {
    const target = keyTarget(key, media.length, !!reference)
    if (!target) return null
    return target.kind === 'reference' ? reference : media[target.index]
  }

  /** Make `key`'s media the audible/visible one, at the same playhead, playing if it was. */
  function switchTo (key) {
    const next = elementFor(key)
    if (!next || next === active) return
    const t = active.currentTime
    const playing = !active.paused
    active.pause()
    active.muted = true
    next.currentTime = Math.min(t, Number.isFinite(next.duration) ? next.duration : t)
    next.muted = false
    // Frame-synced for video: the new element is shown once it has the frame at t.
    const show = () => { for (const m of all) m.hidden = m !== next }
    if (tag === 'video' && next.seeking) next.addEventListener('seeked', show, { once: true })
    else show()
    active = next
    if (playing) next.play().catch(() => {})
    renderSwitch()
    tick()
  }

  function togglePlay () {
    if (active.paused) active.play().catch(err => showMediaError(err.message))
    else active.pause()
  }

  function setLoop (on) {
    looping = on && !!selection
    loopButton.setAttribute('aria-pressed', String(looping))
    if (looping && (active.currentTime < selection.start || active.currentTime >= selection.end)) active.currentTime = selection.start
  }

  function seek (t) {
    active.currentTime = Math.max(0, Math.min(duration || t, t))
    tick()
  }

  let raf = 0
  function tick () {
    if (looping && selection) {
      const t = loopTime(active.currentTime, selection)
      if (t !== active.currentTime) active.currentTime = t
    }
    const t = active.currentTime
    playhead.style.left = duration ? `${(t / duration) * 100}%` : '0'
    timeText.textContent = `${fmt(t)} / ${fmt(duration)}`
    timeline.setAttribute('aria-valuenow', t.toFixed(3))
    playButton.textContent = active.paused ? 'Play' : 'Pause'
    cancelAnimationFrame(raf)
    raf = active.paused ? 0 : requestAnimationFrame(tick)
  }

  for (const m of all) {
    m.addEventListener('play', tick)
    m.addEventListener('pause', tick)
    m.addEventListener('seeked', tick)
    m.addEventListener('loadedmetadata', () => {
      if (m !== reference && Number.isFinite(m.duration)) duration = Math.max(duration, m.duration)
      timeline.setAttribute('aria-valuemax', String(duration))
      renderSelection()
      tick()
    })
    m.addEventListener('error', () => showMediaError(`candidate ${m.dataset.candidate} could not be loaded`))
  }

  function showMediaError (message) {
    mediaError.hidden = false
    mediaError.textContent = `The media could not be loaded: ${message}. Do not submit this task.`
    setSubmittersDisabled(form, true)
  }

  function renderSwitch () {
    for (const b of switchButtons) b.setAttribute('aria-pressed', String(elementFor(b.dataset.key) === active))
  }

  function remember (map, key, input) {
    map.set(key, input)
    return input
  }

  // -- timeline selection ----------------------------------------------------------------------
  const timeAt = ev => {
    const r = timeline.getBoundingClientRect()
    return r.width ? Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) * duration : 0
  }
  let dragFrom = null
  timeline.addEventListener('pointerdown', ev => { dragFrom = timeAt(ev); timeline.setPointerCapture?.(ev.pointerId) })
  timeline.addEventListener('pointermove', ev => { if (dragFrom !== null) select(dragFrom, timeAt(ev), false) })
  timeline.addEventListener('pointerup', ev => {
    if (dragFrom === null) return
    const to = timeAt(ev)
    if (Math.abs(to - dragFrom) < 0.05) { select(null); seek(to) } else select(dragFrom, to, true)
    dragFrom = null
  })

  /** Select [a, b] on the shared timeline (null clears); `commit` moves the playhead to its start. */
  function select (a, b, commit = true) {
    selection = a === null ? null : spanBetween(a, b, duration)
    if (!selection) setLoop(false)
    markButton.disabled = !selection
    renderSelection()
    if (commit && selection) seek(selection.start)
  }

  function renderSelection () {
    selectionEl.hidden = !selection || !duration
    if (selection && duration) Object.assign(selectionEl.style, { left: `${(selection.start / duration) * 100}%`, width: `${((selection.end - selection.start) / duration) * 100}%` })
    marksEl.replaceChildren(...judgement.spans.map(s => el('div', {
      class: 'gtkit-compare-mark', title: `${fmt(s.start)}–${fmt(s.end)}`,
      style: duration ? { left: `${(s.start / duration) * 100}%`, width: `${((s.end - s.start) / duration) * 100}%` } : {}
    })))
  }

  // -- span marks ----------------------------------------------------------------------------
  function markSpan () {
    if (!selection) return
    spanSeq += 1
    const span = { id: `span-${spanSeq}`, start: selection.start, end: selection.end, preferred: '', reason: '' }
    judgement.spans.push(span)
    spanList.append(spanRow(span))
    renderSelection()
    changed()
  }

  function spanRow (span) {
    const pick = el('select', { dataset: { field: 'span-preferred' }, 'aria-label': 'Better candidate in this span', on: { change: () => { span.preferred = pick.value; changed() } } }, [
      el('option', { value: '', text: 'Better here: choose' }), ...order.map((id, i) => el('option', { value: id, text: `${LETTERS[i]} is better` }))
    ])
    const reason = el('select', { dataset: { field: 'span-reason' }, 'aria-label': 'Reason', on: { change: () => { span.reason = reason.value; changed() } } }, [
      el('option', { value: '', text: 'Reason: choose' }), ...spec.spanReasons.map(r => el('option', { value: r, text: r }))
    ])
    pick.value = span.preferred
    reason.value = span.reason
    const row = el('li', { class: 'gtkit-compare-span', dataset: { span: span.id } }, [
      el('button', { type: 'button', class: 'gtkit-btn gtkit-link', text: `${fmt(span.start)}–${fmt(span.end)}`, title: 'Select and loop this span', on: { click: () => { select(span.start, span.end); setLoop(true) } } }),
      pick, reason,
      el('button', {
        type: 'button', class: 'gtkit-btn', text: 'Remove', 'aria-label': 'Remove this span',
        on: { click: () => { judgement.spans.splice(judgement.spans.indexOf(span), 1); row.remove(); renderSelection(); changed() } }
      })
    ])
    return row
  }

  // -- overall preference, MOS, content fields -----------------------------------------------
  function preferencePanel () {
    const name = uniqueId('gtkit-cmos')
    const decide = (preferred, strength) => { judgement.decided = true; judgement.preferred = preferred; judgement.strength = strength; changed() }
    let body
    if (order.length === 2) {
      body = el('div', { class: 'gtkit-options gtkit-compare-cmos' }, cmosChoices().filter(([v]) => v !== 0 || spec.allowNoPreference).map(([v, text]) => el('label', { class: 'gtkit-check' }, [
        remember(controls.cmos, v, el('input', { type: 'radio', name, value: String(v), dataset: { cmos: String(v) }, on: { change: () => { const p = fromCmos(v, order); decide(p.preferred, p.strength) } } })), ` ${text}`
      ])))
    } else {
      const strengthName = uniqueId('gtkit-strength')
      const strengths = controls.strengths = [1, 2, 3].map(s => el('input', { type: 'radio', name: strengthName, value: String(s), dataset: { strength: String(s) }, on: { change: () => decide(judgement.preferred, s) } }))
      const best = [...order.map((id, i) => [id, `${LETTERS[i]} is best`]), ...(spec.allowNoPreference ? [['', 'No preference']] : [])]
      body = el('div', {}, [
        el('div', { class: 'gtkit-options' }, best.map(([id, text]) => el('label', { class: 'gtkit-check' }, [
          remember(controls.best, id, el('input', {
            type: 'radio', name, value: id, dataset: { best: id || 'none' },
            on: { change: () => { for (const s of strengths) s.disabled = !id; decide(id || null, id ? (judgement.strength || 0) : 0) } }
          })), ` ${text}`
        ]))),
        el('div', { class: 'gtkit-options', role: 'group', 'aria-label': 'How much better' }, strengths.map((s, i) => el('label', { class: 'gtkit-check' }, [s, ` ${STRENGTH_WORDS[i + 1]}`])))
      ])
    }
    return el('fieldset', { class: 'gtkit-panel gtkit-field', dataset: { role: 'preference' } }, [el('legend', { text: `${spec.question} *` }), body])
  }

  function mosPanel () {
    const rows = order.map((id, i) => {
      const select = remember(controls.mos, id, el('select', { dataset: { mos: LETTERS[i] }, 'aria-label': `${spec.mos.label}: ${LETTERS[i]}`, on: { change: () => { if (select.value === '') delete judgement.mos[id]; else judgement.mos[id] = Number(select.value); changed() } } }, [
        el('option', { value: '', text: '–' }),
        ...Array.from({ length: spec.mos.max - spec.mos.min + 1 }, (_, k) => el('option', { value: String(spec.mos.min + k), text: String(spec.mos.min + k) }))
      ]))
      return el('label', { class: 'gtkit-check' }, [`${LETTERS[i]} `, select])
    })
    return el('fieldset', { class: 'gtkit-panel gtkit-field', dataset: { role: 'mos' } }, [el('legend', { text: spec.mos.label + (spec.mos.required ? ' *' : '') }), el('div', { class: 'gtkit-options' }, rows)])
  }

  function contentPanel () {
    const specs = (schema.content_fields || []).filter(f => f.type === 'text' || f.type === 'single_choice' || f.type === 'rating' || f.type === 'boolean')
    if (!specs.length) return null
    return el('section', { class: 'gtkit-panel gtkit-content' }, specs.map(f => {
      const id = uniqueId('gtkit-content')
      const label = (f.label || f.name) + (f.required ? ' *' : '')
      let input
      const set = v => { if (v === '' || v === null) delete judgement.content[f.name]; else judgement.content[f.name] = v; changed() }
      if (f.type === 'text') {
        input = el('textarea', { id, name: CONTENT_FIELD_PREFIX + f.name, rows: '2', dataset: { field: f.name }, on: { input: () => set(input.value) } })
      } else if (f.type === 'boolean') {
        input = el('input', { id, type: 'checkbox', name: CONTENT_FIELD_PREFIX + f.name, dataset: { field: f.name }, on: { change: () => set(input.checked) } })
      } else {
        const values = f.type === 'rating' ? Array.from({ length: (f.max ?? 5) - (f.min ?? 1) + 1 }, (_, k) => String((f.min ?? 1) + k)) : f.options
        input = el('select', { id, name: CONTENT_FIELD_PREFIX + f.name, dataset: { field: f.name }, on: { change: () => set(input.value === '' ? null : f.type === 'rating' ? Number(input.value) : input.value) } },
          [el('option', { value: '', text: '–' }), ...values.map(v => el('option', { value: v, text: v }))])
      }
      controls.content.set(f.name, { f, input })
      return el('div', { class: 'gtkit-field' }, [el('label', { for: id, text: label }), input])
    }))
  }

  // -- answer and submit -----------------------------------------------------------------------
  const form = root.closest('crowd-form, form')
  const answerInput = ensureAnswerInput(form, root)
  const answerNow = (extra = {}) => buildAnswer({ schema, interactionId: task.interactionId, duration: duration || 0, order, judgement, startedAt, ...extra })
  const problemsNow = answer => {
    const problems = comparisonProblems(answer, schema, { decided: judgement.decided })
    if (!(answer.mediaDuration > 0)) problems.unshift({ path: 'mediaDuration', message: 'the media has not loaded yet' })
    return problems
  }
  function showProblems (problems) {
    problemsBox.hidden = !problems.length
    problemsBox.replaceChildren(...(problems.length ? [el('p', { text: 'Before you submit:' }), el('ul', {}, problems.map(p => el('li', { dataset: { path: p.path }, text: p.message })))] : []))
  }
  function changed () {
    if (!problemsBox.hidden) showProblems(problemsNow(answerNow()))
    answerInput.value = ''
    if (!submitted) autosave.save(() => judgement)
  }

  /** Put a saved judgement back (after a reload): the state, then the controls showing it. */
  function restore (saved) {
    if (!saved || typeof saved !== 'object') return false
    const known = new Set(order)
    const pref = known.has(saved.preferred) ? saved.preferred : null
    judgement.decided = !!saved.decided
    judgement.preferred = pref
    judgement.strength = pref ? Math.max(1, Math.min(3, Math.trunc(Number(saved.strength)) || 1)) : 0
    judgement.mos = Object.fromEntries(Object.entries(saved.mos || {}).filter(([k, v]) => known.has(k) && Number.isFinite(v)))
    judgement.content = saved.content && typeof saved.content === 'object' ? { ...saved.content } : {}
    judgement.spans = (Array.isArray(saved.spans) ? saved.spans : [])
      .filter(x => x && Number.isFinite(x.start) && Number.isFinite(x.end) && x.end > x.start)
      .map((x, i) => ({ id: `span-${i + 1}`, start: x.start, end: x.end, preferred: known.has(x.preferred) ? x.preferred : '', reason: spec.spanReasons.includes(x.reason) ? x.reason : '' }))
    spanSeq = judgement.spans.length
    spanList.replaceChildren(...judgement.spans.map(spanRow))
    if (judgement.decided) {
      const cmos = controls.cmos.get(toCmos(judgement, order))
      if (cmos) cmos.checked = true
      const best = controls.best.get(pref || '')
      if (best) best.checked = true
      controls.strengths.forEach((input, i) => { input.checked = i + 1 === judgement.strength; input.disabled = !pref })
    }
    for (const [id, select] of controls.mos) select.value = id in judgement.mos ? String(judgement.mos[id]) : ''
    for (const [name, { f, input }] of controls.content) {
      const v = judgement.content[name]
      if (f.type === 'boolean') input.checked = v === true
      else input.value = v === undefined || v === null ? '' : String(v)
    }
    renderSelection()
    return true
  }
  let submitted = false
  if (form) {
    form.addEventListener('submit', ev => {
      const answer = answerNow({ submittedAt: new Date().toISOString() })
      const problems = problemsNow(answer)
      if (problems.length || !mediaError.hidden) {
        ev.preventDefault()
        ev.stopImmediatePropagation()
        answerInput.value = ''
        showProblems(problems)
        return
      }
      answerInput.value = JSON.stringify(answer)
      submitted = true
      autosave.clear()
    }, true)
  }

  // -- keyboard ----------------------------------------------------------------------------------
  const onKey = ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return
    const t = ev.target
    if (t && t.closest && t.closest('input, textarea, select, [contenteditable]')) return
    if (ev.key === ' ' || ev.code === 'Space') {
      if (t && t.closest && t.closest('button, summary, a[href]')) return
      ev.preventDefault()
      togglePlay()
    } else if (ev.key === 'l' || ev.key === 'L') {
      setLoop(!looping)
    } else if (elementFor(ev.key)) {
      ev.preventDefault()
      switchTo(ev.key.toUpperCase())
    }
  }
  document.addEventListener('keydown', onKey)

  const restored = restore(autosave.load()?.answer)
  window.addEventListener('pagehide', () => { if (!submitted) autosave.flush() })
  renderSwitch()
  tick()
  const ready = Promise.all(media.map(m => m.readyState >= 1 ? null : new Promise(resolve => {
    m.addEventListener('loadedmetadata', resolve, { once: true })
    m.addEventListener('error', resolve, { once: true })
  })))
  const app = {
    mode: 'compare',
    root,
    restored,
    autosave,
    schema,
    taskInput: task.taskInput,
    order,
    ready,
    getAnswer: () => answerNow(),
    validate: () => { const p = problemsNow(answerNow()); showProblems(p); return p },
    get submitted () { return submitted },
    compare: {
      switchTo,
      seek,
      select,
      setLoop,
      markSpan,
      get active () { return active.dataset.candidate },
      get currentTime () { return active.currentTime },
      get duration () { return duration },
      get looping () { return looping },
      media: all
    },
    unmount () { document.removeEventListener('keydown', onKey); cancelAnimationFrame(raf) }
  }
  root.gtkitApp = app
  if (exposeGlobal) window.gtkit = app
  return app
}
