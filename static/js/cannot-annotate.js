// "Cannot annotate": the schema's reasons (cannot_annotate.reasons) let a worker submit an item
// without segments (silence, wrong language, corrupt media...). Built with the page skeleton, not
// with the player, so it is there even when the media or its peaks never load.

import { el, setValueIfIdle, uniqueId } from './dom.js'

/**
 * @param {import('./state.js').AnswerState} state
 * @returns {{element: HTMLElement|null, render: () => void}} element null when the schema has no reasons
 */
export function createCannotAnnotate (state) {
  const spec = state.schema.cannot_annotate
  if (!spec || !Array.isArray(spec.reasons) || !spec.reasons.length) return { element: null, render () {} }
  const id = uniqueId('gtkit-cannot')
  const reason = el('select', { id, dataset: { role: 'cannot-annotate-reason' } },
    [el('option', { value: '', text: '— I can annotate it' }), ...spec.reasons.map(r => el('option', { value: r, text: r }))])
  const note = el('input', { type: 'text', maxlength: '2000', dataset: { role: 'cannot-annotate-note' }, 'aria-label': 'Note (optional)', placeholder: 'Note (optional)', hidden: true })
  const hint = el('p', { class: 'gtkit-hint', hidden: true, text: 'Submit now sends this reason and no segments. Your segments stay here if you change your mind.' })
  const element = el('section', { class: 'gtkit-panel gtkit-cannot', dataset: { role: 'cannot-annotate' } }, [
    el('label', { for: id, class: 'gtkit-cannot-label', text: `${spec.label || 'I cannot annotate this item'}: ` }), reason, note, hint
  ])
  reason.addEventListener('change', () => state.setCannotAnnotate(reason.value || null, reason.value ? note.value : ''))
  note.addEventListener('input', () => { if (reason.value) state.setCannotAnnotate(reason.value, note.value) })
  note.addEventListener('blur', () => state.breakCoalescing())

  function render () {
    const ca = state.cannotAnnotate
    setValueIfIdle(reason, ca ? ca.reason : '')
    setValueIfIdle(note, ca ? ca.note : '')
    note.hidden = !ca
    hint.hidden = !ca
    element.classList.toggle('gtkit-cannot-on', Boolean(ca))
  }
  render()
  return { element, render }
}
