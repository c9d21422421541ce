// Submit: validate, then put the SegmentationAnswer JSON into the crowd-form's hidden `answer`
// input. An invalid answer cancels the submit event (Ground Truth's crowd-form, like a plain form,
// does not post when the submit event is cancelled) and the problems are shown in place.

import { validateAnswer } from './validation.js'

export const ANSWER_FIELD = 'answer'

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

/**
 * @param {object} o
 * @param {HTMLFormElement|null} o.form crowd-form (or a plain form in local preview)
 * @param {HTMLInputElement} o.answerInput
 * @param {() => object} o.buildAnswer SegmentationAnswer with submittedAt set
 * @param {object} o.schema
 * @param {(problems: object[]) => void} o.onInvalid show the problems and focus the first
 * @param {() => void} o.onSubmitted the answer passed validation and is being posted (clear autosave)
 */
export function installSubmit ({ form, answerInput, buildAnswer, schema, onInvalid, onSubmitted }) {
  /** Validate and fill the hidden input. Returns the problems (empty = ready to post). */
  function prepare () {
    const answer = buildAnswer()
    const problems = validateAnswer(answer, schema)
    answerInput.value = problems.length ? '' : JSON.stringify(answer)
    return problems
  }

  function onSubmit (ev) {
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
    uninstall () { if (form) form.removeEventListener('submit', onSubmit, true) }
  }
}
