// The review page (issue 17): a labeling page whose task input has `review` (or `review-ref`,
// downloaded like the sidecar). The editable label is the consolidated one (the task's
// pre-segments / pre-content, so the normal tools edit it); around it: ghost lanes under the
// waveform (the consolidated label and each worker answer, read-only, drawn for the visible window
// only), the disagreements listed first, each worker's content answer where they differ, and the
// decision: Accept (an edit once anything changed) or Reject with a note. Rules: review-logic.js.

import { REVIEW_NOTE_MAX_CHARS } from './contract.js'
import { el, uniqueId } from './dom.js'
import { formatTime } from './format.js'
import { trackColor, withAlpha } from './colors.js'
import { download, failureMessage } from './failure.js'
import { createVirtualList } from './virtual-list.js'
import { AnswerState } from './state.js'
import {
  ACCEPT, REJECT, contentDifferences, disagreementItems, editableFor, flaggedSegments, formatValue, ghostLanes, indexByTime,
  labelChanged, ratingHints, reviewAnswerProblems, reviewDecision, reviewNoteOf, reviewShapeProblem, segmentsIn, startingAnswer, withReview
} from './review-logic.js'

const ROW_PX = 7 // one track's sub-row in a ghost lane
const LANE_GAP = 3
/** "low-agreement" -> "Low agreement" (the kinds are contract.js's DISAGREEMENT_KINDS). */
const kindText = kind => (kind ? kind[0].toUpperCase() + kind.slice(1).replaceAll('-', ' ') : 'Disagreement')

/** The shortcuts a review page adds (keyboard.js lists them in the help overlay). */
export const REVIEW_SHORTCUTS = [
  ['A', 'Review: accept the label and submit (after any change: submit your edits)'],
  ['N', 'Review: reject - write the note for the annotators (Ctrl + Enter in the note submits the reject)']
]

/** A re-labeling task's `review-note`: the reviewer's note above the form (text only), or null. */
export function createReviewNote (taskInput) {
  const n = reviewNoteOf(taskInput)
  if (!n) return null
  const head = n.iteration ? `A reviewer sent this item back (labeling round ${n.iteration}). Their note:` : 'A reviewer sent this item back. Their note:'
  return el('div', { class: 'gtkit-alert gtkit-review-note', role: 'note', dataset: { role: 'reviewer-note' } }, [
    el('p', { class: 'gtkit-review-note-head', text: head }),
    el('p', { class: 'gtkit-review-note-text', text: n.note })
  ])
}

/** Click the form's submit control (crowd-button or button), as the worker would. */
function pressSubmit (form) {
  const button = form?.querySelector('crowd-button[form-action=submit], button[type=submit], input[type=submit]')
  if (button) button.click()
  else form?.requestSubmit?.()
}

/**
 * @param {object} o
 * @param {import('./task-data.js').Task} o.task
 * @param {{review: object|null, ref: string}} o.source from reviewSource()
 * @param {import('./state.js').AnswerState} o.state
 * @param {object} o.alerts from alerts.js
 * @param {HTMLElement|null} o.form
 * @param {() => boolean} o.isRestored the state holds the reviewer's autosaved work: leave it alone
 * @param {() => void} [o.onEdited] the note or the choice changed (autosave it)
 */
export function createReview ({ task, source, state, alerts, form, isRestored, onEdited = () => {} }) {
  const schema = task.schema
  let review = null
  let model = { lanes: [], rows: [], rowTracks: [] }
  let items = []
  let timeline = indexByTime([])
  let flagged = new Map()
  let choice = null
  let activeId = null
  let startPresegments = task.presegments
  let baseline = null
  let player = null
  let views = null
  let ghosts = null

  // ---- the panel: decision, note, disagreements ----------------------------------------------
  const noteId = uniqueId('gtkit-review-note')
  const note = el('textarea', { id: noteId, rows: '3', maxlength: String(REVIEW_NOTE_MAX_CHARS), dataset: { role: 'review-note-input' }, 'aria-describedby': `${noteId}-count ${noteId}-err` })
  const count = el('span', { id: `${noteId}-count`, class: 'gtkit-hint gtkit-review-count', dataset: { role: 'review-note-count' } })
  const error = el('div', { id: `${noteId}-err`, class: 'gtkit-error', role: 'alert', dataset: { role: 'review-error' }, hidden: true })
  const status = el('p', { class: 'gtkit-review-status', dataset: { role: 'review-decision' }, 'aria-live': 'polite' })
  const acceptBtn = el('button', { type: 'button', class: 'gtkit-btn gtkit-review-accept', dataset: { action: 'review-accept' }, text: 'Accept' })
  const rejectBtn = el('button', { type: 'button', class: 'gtkit-btn gtkit-review-reject', dataset: { action: 'review-reject' }, text: 'Reject with note' })
  const cancelBtn = el('button', { type: 'button', class: 'gtkit-btn gtkit-btn-quiet', dataset: { action: 'review-cancel-reject' }, text: 'Do not reject', hidden: true })
  const about = el('p', { class: 'gtkit-hint', dataset: { role: 'review-about' }, text: 'Loading the workers\' answers…' })
  const listHead = el('h4', { class: 'gtkit-review-h', text: 'Disagreements' })
  const list = el('ol', { class: 'gtkit-disagreements', dataset: { role: 'disagreements' } })
  const scroller = el('div', { class: 'gtkit-disagreements-scroll' }, [list])
  const none = el('p', { class: 'gtkit-hint', dataset: { role: 'no-disagreements' }, hidden: true, text: 'The workers agree: nothing was flagged.' })
  const element = el('section', { class: 'gtkit-panel gtkit-review', 'aria-labelledby': 'gtkit-review-h', dataset: { role: 'review' } }, [
    el('h3', { id: 'gtkit-review-h', text: 'Review' }),
    about,
    listHead, none, scroller,
    el('div', { class: 'gtkit-review-decide' }, [
      el('div', { class: 'gtkit-review-buttons' }, [acceptBtn, rejectBtn, cancelBtn]),
      status,
      el('label', { for: noteId, class: 'gtkit-review-note-label', text: 'Note for the annotators (required to reject)' }),
      note, count, error
    ])
  ])

  const rows = createVirtualList({
    scroller,
    list,
    estimate: 44,
    create (item) {
      const when = item.start !== null ? `${formatTime(item.start)}${item.end !== null ? `–${formatTime(item.end)}` : ''}` : (item.field ? `Field: ${item.field}` : '')
      const button = el('button', { type: 'button', class: 'gtkit-link gtkit-disagreement-go', dataset: { action: 'go-disagreement' } }, [
        el('span', { class: 'gtkit-disagreement-kind', text: kindText(item.kind) }),
        when ? el('span', { class: 'gtkit-disagreement-when', text: ` ${when}` }) : null,
        item.score !== null ? el('span', { class: 'gtkit-hint', text: ` (agreement ${Math.round(item.score * 100)}%)` }) : null,
        el('span', { class: 'gtkit-disagreement-msg', text: item.message })
      ])
      button.addEventListener('click', () => focusDisagreement(item))
      const li = el('li', { class: 'gtkit-disagreement', dataset: { disagreement: String(item.index), kind: item.kind } }, [button])
      return { li, button }
    },
    update (handle, item) {
      const on = item.id === activeId
      handle.li.classList.toggle('gtkit-selected', on)
      if (on) handle.button.setAttribute('aria-current', 'true')
      else handle.button.removeAttribute('aria-current')
    }
  })

  function renderCount () {
    count.textContent = `${note.value.length} / ${REVIEW_NOTE_MAX_CHARS}`
  }
  renderCount()

  /** The label the review started from: `review.answer`, else the task's pre-segments and
   *  pre-content; as the state holds it (so that only the reviewer's changes differ). */
  function startAnswer () {
    if (!baseline) {
      const fresh = new AnswerState({ schema, interactionId: task.interactionId })
      const start = startingAnswer(review || source.review)
      if (start) fresh.restore(start)
      else {
        fresh.loadPresegments(startPresegments)
        fresh.loadPreContent(task.preContent)
      }
      baseline = fresh.toAnswer()
    }
    return baseline
  }

  /** Put the starting label into the state (at mount, after "Discard and start over", or when the
   *  review file arrives). Returns false when there is no `review.answer` (the caller loads the
   *  pre-segments and pre-content instead). */
  function loadStart () {
    const start = startingAnswer(review || source.review)
    if (!start) return false
    state.restore(start)
    queueMicrotask(renderDecision)
    return true
  }
  const changed = () => labelChanged(startAnswer(), state.toAnswer())
  const decision = () => reviewDecision(choice, choice === REJECT ? false : changed())

  function renderDecision () {
    markFlagged()
    annotateRatings()
    const d = decision()
    status.dataset.decision = d
    status.textContent = d === REJECT
      ? 'Submitting rejects this label: it goes back to the annotators with your note.'
      : d === ACCEPT
        ? 'Submitting accepts the label as shown (decision: accept).'
        : 'You changed the label: submitting sends your edits (decision: edit).'
    acceptBtn.textContent = d === ACCEPT || d === REJECT ? 'Accept' : 'Submit edits'
    rejectBtn.setAttribute('aria-pressed', String(choice === REJECT))
    cancelBtn.hidden = choice !== REJECT
  }

  function showProblems (problems) {
    const mine = problems.filter(p => p.path.startsWith('review.'))
    error.hidden = !mine.length
    error.textContent = mine.map(p => p.message).join(' ')
    note.setAttribute('aria-invalid', String(mine.length > 0))
  }

  function choose (next) {
    if (choice !== next) onEdited()
    choice = next
    renderDecision()
  }

  function accept () {
    choose(ACCEPT)
    pressSubmit(form)
  }
  function reject () {
    choose(REJECT)
    if (!note.value.trim()) {
      // Say it now, where the note goes (the submit would refuse it the same way).
      showProblems(reviewAnswerProblems(answerOf(state.toAnswer()), schema).filter(p => p.path.startsWith('review.')))
      note.focus()
      return
    }
    pressSubmit(form)
  }
  acceptBtn.addEventListener('click', accept)
  rejectBtn.addEventListener('click', reject)
  cancelBtn.addEventListener('click', () => { choose(null); showProblems([]) })
  note.addEventListener('input', () => {
    renderCount()
    onEdited()
    if (!error.hidden) showProblems(reviewAnswerProblems(answerOf(state.toAnswer()), schema))
  })
  note.addEventListener('keydown', ev => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); reject() }
  })

  /** `answer` with the review decision and note. */
  function answerOf (answer) {
    return withReview(answer, reviewDecision(choice, choice === REJECT ? false : labelChanged(startAnswer(), answer)), note.value)
  }

  // ---- the disagreements: select, seek, focus -----------------------------------------------
  function focusDisagreement (item) {
    activeId = item.id
    rows.render()
    ghosts?.schedule()
    if (item.field && !item.segmentId) {
      if (item.start !== null) player?.seek(item.start)
      views?.content.focusField(item.field)
      return
    }
    const id = editableFor(item, state.segments)
    if (id) {
      state.select(id)
      player?.seekToSegment(id)
      // A segment attribute (segment-id and field): its control in the segment's row.
      if (item.field) views?.list.focusSegment(id, `attributes.${item.field}`, { pageScroll: false })
    } else if (item.start !== null) {
      player?.seek(item.start)
    }
  }

  // ---- the data -----------------------------------------------------------------------------
  function apply (data) {
    const problem = reviewShapeProblem(data)
    if (problem) throw new Error(problem)
    review = data
    baseline = null
    // From a review file: the starting label replaces the pre-segments shown meanwhile, unless the
    // reviewer's own work is there (restored, or already edited).
    if (!source.review && !isRestored() && !state.canUndo) loadStart()
    model = ghostLanes(review, schema)
    items = disagreementItems(review)
    timeline = indexByTime(items.filter(i => i.start !== null && i.end !== null))
    const workers = model.lanes.length - 1
    about.textContent = `${workers} worker answer${workers === 1 ? '' : 's'} under the waveform (grey lanes), the consolidated label on top. ` +
      'Edit the label with the usual tools, then accept it or reject it with a note.'
    listHead.textContent = `Disagreements (${items.length})`
    none.hidden = items.length > 0
    scroller.hidden = !items.length
    rows.render(items)
    ghosts?.setModel(model, timeline)
    annotateContent()
    renderDecision()
  }

  /** The segments the disagreements are about, marked on the editable lane (waveform regions and
   *  segment rows) as on the ghost lanes; again after edits (a moved segment keeps its mark). */
  function markFlagged () {
    if (!review) return
    const marks = flaggedSegments(items, state.segments)
    for (const f of marks.values()) f.text = f.kinds.map(kindText).join(', ')
    player?.setFlagged?.(marks)
    views?.list.setFlagged?.(marks, f => {
      const item = items[f.first]
      if (!item) return
      focusDisagreement(item)
      rows.reveal?.(item.index)
    })
    flagged = marks
  }

  /** A rating whose consolidated value is a mean between steps: no step is shown selected, and the
   *  hint says that Accept keeps the mean, with each worker's rating (review-logic.js ratingHints). */
  function annotateRatings () {
    if (!views || !review) return
    for (const [name, hint] of ratingHints(review, schema, state.content)) {
      const wrap = views.content.fieldElement(name)
      if (!wrap) continue
      let p = wrap.querySelector('[data-rating-hint]')
      if (!p) {
        p = el('p', { class: 'gtkit-hint gtkit-rating-hint', dataset: { ratingHint: name } })
        wrap.append(p)
        wrap.querySelector(`[data-worker-answers="${name}"]`)?.remove() // the hint lists them
      }
      p.dataset.selected = hint.selected === null ? '' : String(hint.selected)
      p.textContent = hint.text
    }
  }

  function annotateContent () {
    if (!views || !review) return
    const hinted = ratingHints(review, schema, state.content)
    for (const [name, values] of contentDifferences(review, schema)) {
      const wrap = views.content.fieldElement(name)
      if (!wrap || hinted.has(name)) continue
      wrap.querySelector('[data-worker-answers]')?.remove()
      wrap.append(el('p', { class: 'gtkit-worker-answers gtkit-hint', dataset: { workerAnswers: name } },
        values.flatMap((v, i) => [i ? ' · ' : '', el('span', { dataset: { worker: v.worker }, text: `${v.worker}: ${formatValue(v.value)}` })])))
    }
  }

  const loaded = source.review
    ? Promise.resolve().then(() => apply(source.review))
    : task.reviewUrl
      ? download(task.reviewUrl, 'the review data', { read: res => res.text() })
        .then(text => { try { return JSON.parse(text) } catch { throw new Error('the file is not valid JSON') } })
        .then(apply)
      : Promise.reject(Object.assign(new Error('no review URL'), { noUrl: true }))
  const ready = loaded.catch(err => {
    about.textContent = 'The workers\' answers could not be loaded.'
    alerts.blockTask('review', err.noUrl
      ? 'The review data could not be loaded: the page has no data-review-url for the task\'s review-ref (render the template with gtkit template render --review).'
      : failureMessage('review', task.reviewUrl, err))
  })

  renderDecision()
  const api = {
    element: element,
    ready,
    get review () { return review },
    get model () { return model },
    get disagreements () { return items },
    get choice () { return choice },
    get ghosts () { return ghosts },
    /** The editable segments the disagreements are about (segment id -> {kinds, ids, first, text}). */
    get flagged () { return flagged },
    decision,
    changed,
    /** The label the review started from (what "changed" compares with). */
    startAnswer,
    loadStart,
    accept,
    reject,
    /** N: choose reject and go to the note (its Reject button or Ctrl + Enter submits). */
    startReject () { choose(REJECT); api.focusNote() },
    focusNote () { note.scrollIntoView?.({ block: 'nearest' }); note.focus() },
    showProblems,
    /** Build the answer to submit, and what blocks it. */
    answer: answer => answerOf(answer),
    problems: answer => reviewAnswerProblems(answer, schema),
    /** The autosave's copy: the draft answer with the choice (reject, or not yet) and the note. */
    draft: answer => withReview(answer, reviewDecision(choice, false), note.value),
    /** After a reload: the note and a reject choice from the autosaved draft. */
    restoreDraft (saved) {
      const r = saved && saved.review
      if (!r || typeof r !== 'object') return
      if (typeof r.note === 'string') { note.value = r.note; renderCount() }
      choice = r.decision === REJECT ? REJECT : null
      renderDecision()
    },
    /** The sidecar's pre-segments are the start of the review when the line had none. */
    setStartPresegments (pre) { if (!Array.isArray(startPresegments)) { startPresegments = pre; baseline = null } },
    /** A burst of edits: the decision line (Accept or Submit edits). */
    refresh: renderDecision,
    attachPlayer (p, host) {
      player = p
      ghosts = new GhostLanes({ host, player, schema, onPick: focusDisagreement, activeId: () => activeId })
      ghosts.setModel(model, timeline)
    },
    attachViews (v) {
      views = v
      annotateContent()
      renderDecision()
    }
  }
  return api
}

/**
 * The ghost lanes: one canvas under the waveform, as wide as its viewport, holding one lane per
 * answer (the consolidated label, then w1, w2, ...; one sub-row per track) and the disagreements
 * as bands across them. Drawn once per frame on scroll, zoom and resize, from the same visible
 * window as the time ruler; only the segments in that window are visited (segmentsIn), so a long
 * call with thousands of segments per answer costs what is on screen.
 */
export class GhostLanes {
  constructor ({ host, player, schema, onPick, activeId }) {
    this.player = player
    this.schema = schema
    this.onPick = onPick
    this.activeId = activeId
    this.canvas = el('canvas', { class: 'gtkit-ghost-canvas', dataset: { role: 'ghost-lanes' }, 'aria-hidden': 'true' })
    this.labels = el('div', { class: 'gtkit-ghost-labels', dataset: { role: 'ghost-lane-labels' } })
    this.element = el('div', { class: 'gtkit-ghosts', title: 'Workers\' answers (read-only); orange: disagreements. Click to seek.' }, [this.canvas, this.labels])
    host.append(this.element)
    this.model = { lanes: [], rows: [], rowTracks: [] }
    this.colors = []
    this.timeline = indexByTime([])
    this.drawn = 0 // segments in the window at the last draw (tests, benchmarks)
    this.painted = 0 // rects it filled (covered segments are skipped)
    this.drawnBands = 0
    this.queued = false
    const redraw = () => this.schedule()
    for (const ev of ['scroll', 'zoom', 'resize', 'redraw', 'ready']) player.ws.on(ev, redraw)
    this.resizeObserver = new ResizeObserver(redraw)
    this.resizeObserver.observe(this.canvas)
    this.canvas.addEventListener('click', ev => this._click(ev))
  }

  get laneHeight () { return Math.max(1, this.model.rows.length) * ROW_PX + LANE_GAP }

  setModel (model, timeline) {
    this.model = model
    this.timeline = timeline
    this.colors = (model.rowTracks || []).map(track => withAlpha(trackColor(this.schema, track), 0.55))
    const h = this.laneHeight
    this.canvas.style.height = `${model.lanes.length * h}px`
    this.element.hidden = !model.lanes.length
    this.labels.replaceChildren(...model.lanes.map((lane, i) => el('span', {
      class: `gtkit-ghost-label${lane.consolidated ? ' gtkit-ghost-consolidated' : ''}`,
      dataset: { ghostLane: lane.key },
      style: { top: `${i * h}px`, height: `${h}px` },
      text: `${lane.label} (${lane.count})`
    })))
    this.schedule()
  }

  schedule () {
    if (this.queued) return
    this.queued = true
    requestAnimationFrame(() => { this.queued = false; this.draw() })
  }

  draw () {
    const c = this.canvas
    const cssW = c.clientWidth
    const cssH = c.clientHeight
    const [from, to] = this.player.visibleRange()
    if (!cssW || !cssH || !(to > from)) return
    const dpr = globalThis.devicePixelRatio || 1
    if (c.width !== Math.round(cssW * dpr)) c.width = Math.round(cssW * dpr)
    if (c.height !== Math.round(cssH * dpr)) c.height = Math.round(cssH * dpr)
    const ctx = c.getContext('2d')
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, cssW, cssH)
    const xOf = t => ((t - from) / (to - from)) * cssW
    const laneH = this.laneHeight
    let drawn = 0
    let painted = 0
    // Per sub-row, the rightmost pixel painted so far: a segment already covered (thousands of
    // short turns in a whole-file view of a long call) costs no fillRect, so a draw paints at most
    // about one rect per pixel column and row.
    const reach = new Float64Array(Math.max(1, this.model.rows.length))
    this.model.lanes.forEach((lane, i) => {
      const top = i * laneH
      ctx.fillStyle = i % 2 ? '#f3f5f8' : '#eceff3'
      ctx.fillRect(0, top, cssW, laneH - 1)
      reach.fill(-1)
      for (const s of segmentsIn(lane.index, from, to)) {
        drawn++
        const row = s.row
        // Whole pixels: a segment narrower than a column shares it with its neighbours.
        const left = Math.max(0, Math.floor(xOf(s.start)))
        const x1 = Math.min(cssW, Math.max(Math.ceil(xOf(s.end)), left + 1))
        const x0 = Math.max(left, reach[row])
        if (x1 <= x0) continue
        ctx.fillStyle = this.colors[row]
        ctx.fillRect(x0, top + 1 + row * ROW_PX, x1 - x0, ROW_PX - 1)
        reach[row] = x1
        painted++
      }
    })
    let bands = 0
    const active = this.activeId()
    for (const d of segmentsIn(this.timeline, from, to)) {
      const x = xOf(d.start)
      const w = Math.max(2, xOf(d.end) - x)
      const on = d.id === active
      ctx.fillStyle = on ? 'rgba(234, 88, 12, 0.35)' : 'rgba(234, 88, 12, 0.16)'
      ctx.fillRect(x, 0, w, cssH)
      ctx.strokeStyle = on ? '#c2410c' : 'rgba(194, 65, 12, 0.6)'
      ctx.lineWidth = on ? 2 : 1
      ctx.strokeRect(x + 0.5, 0.5, w - 1, cssH - 1)
      bands++
    }
    this.drawn = drawn
    this.painted = painted
    this.drawnBands = bands
  }

  _click (ev) {
    const rect = this.canvas.getBoundingClientRect()
    const [from, to] = this.player.visibleRange()
    if (!rect.width || !(to > from)) return
    const t = from + ((ev.clientX - rect.left) / rect.width) * (to - from)
    const hit = segmentsIn(this.timeline, t, t)[0]
    if (hit) this.onPick(hit)
    else this.player.seek(t)
  }

  destroy () {
    this.resizeObserver.disconnect()
    this.element.remove()
  }
}
