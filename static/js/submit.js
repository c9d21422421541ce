// Submit: validate, then put the SegmentationAnswer JSON into the crowd-form's hidden `answer`
// input. An invalid answer cancels the submit event (Ground Truth's crowd-form, like a plain form,
// does not post when the submit event is cancelled) and the problems are shown in place.

import { ANSWER_FIELD } from './contract.js'
import { validateAnswer } from './validation.js'

/** The hidden answer input of `form`, created when the template did not provide one. */
export function ensureAnswerInput (form, root) {
  let input = form ? form.querySelector(`input[name="${ANSWER_FIELD}"]`) : null
  if (!input) {
    input = document.createElement('input')
    input.type = 'hidden'
    input.name = ANSWER_FIELD
    ;(form || root).append(input)
  }
  return input
}

// Submit controls of a crowd-form (the page's fail-safe disables the same ones).
const SUBMITTERS = 'crowd-button[form-action=submit], button[type=submit], input[type=submit]'
const MARK = 'data-gtkit-blocked'
const FAILSAFE_MARK = 'data-gtkit-failsafe-disabled'

/** Disable (or re-enable) the form's submit controls; a control the boot fail-safe also disabled
 *  stays disabled until it lets go too. */
export function setSubmittersDisabled (form, disabled) {
  if (!form) return
  for (const b of form.querySelectorAll(SUBMITTERS)) {
    if (disabled) {
      b.setAttribute(MARK, '')
      b.setAttribute('disabled', '')
      b.setAttribute('aria-disabled', 'true')
    } else if (b.hasAttribute(MARK)) {
      b.removeAttribute(MARK)
      if (!b.hasAttribute(FAILSAFE_MARK)) {
        b.removeAttribute('disabled')
        b.removeAttribute('aria-disabled')
      }
    }
  }
}

/**
 * @param {object} o
 * @param {HTMLFormElement|null} o.form crowd-form (or a plain form in local preview)
 * @param {HTMLInputElement} o.answerInput
 * @param {() => object} o.buildAnswer SegmentationAnswer with submittedAt set
 * @param {object} o.schema
 * @param {(problems: object[]) => void} o.onInvalid show the problems and focus the first
 * @param {() => void} o.onSubmitted the answer passed validation and is being posted (clear autosave)
 * @param {(reasons: string[]) => void} [o.onBlocked] a submit was refused because of setBlocked()
 * @param {(answer: object) => object[]} [o.check] what blocks posting `answer` (default: validateAnswer against the schema)
 */
export function installSubmit ({ form, answerInput, buildAnswer, schema, onInvalid, onSubmitted, onBlocked, check = answer => validateAnswer(answer, schema) }) {
  // Reasons the task cannot be done here (media that did not load, ...): while any holds, Submit
  // is disabled and a submit event is cancelled, so no incomplete answer is posted.
  const blocks = new Set()
  // A cannot-annotate answer ("corrupt media"...) may be posted whatever blocks the task.
  let override = false
  const blocked = () => blocks.size > 0 && !override
  function setBlocked (reason, on) {
    if (on) blocks.add(reason)
    else blocks.delete(reason)
    setSubmittersDisabled(form, blocked())
    if (blocked()) answerInput.value = ''
  }
  function setOverride (on) {
    if (override === Boolean(on)) return
    override = Boolean(on)
    setSubmittersDisabled(form, blocked())
    if (blocked()) answerInput.value = ''
  }

  /** Validate and fill the hidden input. Returns the problems (empty = ready to post). */
  function prepare () {
    const answer = buildAnswer()
    const problems = check(answer)
    answerInput.value = problems.length || blocked() ? '' : JSON.stringify(answer)
    return problems
  }

  function onSubmit (ev) {
    if (blocked()) {
      ev.preventDefault()
      ev.stopImmediatePropagation()
      answerInput.value = ''
      onBlocked?.([...blocks])
      return
    }
    const problems = prepare()
    if (problems.length) {
      ev.preventDefault()
      ev.stopImmediatePropagation()
      onInvalid(problems)
      return
    }
    // Valid: the answer is in the form. (Stand-ins and crowd-form itself may cancel the native
    // event to post by script, so a cancelled event does not mean "not submitted".)
    onSubmitted()
  }

  if (form) form.addEventListener('submit', onSubmit, true)
  return {
    prepare,
    setBlocked,
    setOverride,
    get blocked () { return [...blocks] },
    uninstall () { if (form) form.removeEventListener('submit', onSubmit, true) }
  }
}
