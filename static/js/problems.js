// Validation problems shown to the worker: next to their segment row, track or content field, and
// in a summary whose items jump to them. Shown from the first refused submit (or validate()) on,
// then kept current after every edit.

import { el } from './dom.js'
import { formatTime } from './format.js'
import { validateAnswer } from './validation.js'

const SUMMARY_ITEMS = 20

/**
 * @param {import('./state.js').AnswerState} state
 * @param {{validate?: () => object[]}} [o] what blocks submitting now (a review task adds its decision's)
 * @returns the summary element, validate() (problems now), show(problems), reveal(problems) (show,
 *   scroll to, focus the first), refresh() (again, if shown), attach(views) (the panels, once built)
 */
export function createProblems (state, { validate: check = () => validateAnswer(state.toAnswer(), state.schema) } = {}) {
  const summary = el('div', { class: 'gtkit-summary gtkit-error', role: 'alert', dataset: { role: 'summary' }, hidden: true })
  let showing = false
  let views = {}

  function validate () {
    return check()
  }

  function show (problems) {
    showing = true
    views.list?.showProblems(problems)
    views.content?.showProblems(problems)
    views.tracks?.showProblems(problems)
    views.review?.showProblems(problems)
    summary.hidden = !problems.length
    if (!problems.length) { summary.replaceChildren(); return }
    const items = problems.slice(0, SUMMARY_ITEMS).map(p => {
      const seg = p.segmentId ? state.segment(p.segmentId) : null
      const where = seg ? `Segment at ${formatTime(seg.start)}: ` : p.path.startsWith('content.') ? '' : p.trackId ? 'Track: ' : ''
      const link = el('button', { type: 'button', class: 'gtkit-link', text: where + p.message })
      link.addEventListener('click', () => focus(p))
      return el('li', {}, [link])
    })
    if (problems.length > SUMMARY_ITEMS) items.push(el('li', { text: `…and ${problems.length - SUMMARY_ITEMS} more` }))
    summary.replaceChildren(
      el('p', { text: `Fix ${problems.length === 1 ? 'this problem' : `these ${problems.length} problems`} before submitting:` }),
      el('ul', {}, items))
  }

  function focus (p) {
    if (p.segmentId) {
      state.select(p.segmentId)
      views.list.focusSegment(p.segmentId, p.field)
    } else if (p.path.startsWith('content.')) {
      views.content.focusField(p.field)
    } else if (p.path.startsWith('review.') && views.review) {
      views.review.focusNote()
    } else {
      summary.focus?.()
    }
  }

  return {
    element: summary,
    validate,
    show,
    reveal (problems) {
      show(problems)
      summary.scrollIntoView({ block: 'nearest' })
      focus(problems[0])
    },
    refresh () { if (showing) show(validate()) },
    attach (panels) { views = panels }
  }
}
