// Full-content fields (questions about the whole media), built from schema.content_fields as
// native inputs named `content-<name>` inside the crowd-form, so Ground Truth posts them the way
// crowd-form posts native inputs. The answer JSON carries the same values (state.content).

import { CONTENT_FIELD_PREFIX, FIELD_DEFAULTS } from './contract.js'
import { el, setValueIfIdle, uniqueId } from './dom.js'
import { displayName } from './validation.js'

/** [value, text] of each step of a rating scale (the model's min/max defaults when unset). */
function ratingValues ({ min = FIELD_DEFAULTS.min, max = FIELD_DEFAULTS.max }) {
  return Array.from({ length: max - min + 1 }, (_, i) => [min + i, String(min + i)])
}

export function createContentForm ({ state, title = 'About the whole recording' }) {
  const specs = state.schema.content_fields || []
  const controls = new Map()
  const element = el('section', { class: 'gtkit-panel gtkit-content', 'aria-labelledby': 'gtkit-content-h', hidden: !specs.length }, [
    el('h3', { id: 'gtkit-content-h', text: title })
  ])

  for (const spec of specs) {
    const name = CONTENT_FIELD_PREFIX + spec.name
    const id = uniqueId('gtkit-content')
    const title = displayName(spec) + (spec.required ? ' *' : '')
    const error = el('div', { class: 'gtkit-error', role: 'alert', hidden: true, id: `${id}-err` })
    const help = spec.help ? el('p', { class: 'gtkit-hint', text: spec.help }) : null
    let read, write, inputs, wrap
    const group = (type, values) => {
      inputs = values.map(([value, text]) => el('input', { type, name, value: String(value), 'aria-describedby': error.id }))
      wrap = el('fieldset', { class: `gtkit-field gtkit-choices${spec.type === 'rating' ? ' gtkit-rating' : ''}`, dataset: { field: spec.name } }, [
        el('legend', { text: title }), help,
        el('div', { class: 'gtkit-options' }, inputs.map((input, i) => el('label', { class: 'gtkit-check' }, [input, ' ' + values[i][1]]))),
        error
      ])
    }
    if (spec.type === 'text') {
      const input = el('textarea', { id, name, rows: '3', 'aria-describedby': error.id })
      inputs = [input]
      wrap = el('div', { class: 'gtkit-field', dataset: { field: spec.name } }, [el('label', { for: id, text: title }), help, input, error])
      read = () => input.value
      write = v => setValueIfIdle(input, typeof v === 'string' ? v : '')
      input.addEventListener('blur', () => state.breakCoalescing())
    } else if (spec.type === 'single_choice' || spec.type === 'rating' || (spec.type === 'boolean' && spec.required)) {
      const values = spec.type === 'single_choice'
        ? spec.options.map(o => [o, o])
        : spec.type === 'rating'
          ? ratingValues(spec)
          : [['true', 'Yes'], ['false', 'No']]
      group('radio', values)
      read = () => {
        const hit = inputs.find(i => i.checked)
        if (!hit) return null
        if (spec.type === 'rating') return Number(hit.value)
        if (spec.type === 'boolean') return hit.value === 'true'
        return hit.value
      }
      write = v => { for (const i of inputs) i.checked = v !== undefined && v !== null && i.value === String(v) }
    } else if (spec.type === 'multiple_choice') {
      group('checkbox', spec.options.map(o => [o, o]))
      read = () => inputs.filter(i => i.checked).map(i => i.value)
      write = v => { const chosen = Array.isArray(v) ? v : []; for (const i of inputs) i.checked = chosen.includes(i.value) }
    } else if (spec.type === 'boolean') {
      const input = el('input', { type: 'checkbox', id, name, value: 'true', 'aria-describedby': error.id })
      inputs = [input]
      wrap = el('div', { class: 'gtkit-field', dataset: { field: spec.name } }, [el('label', { class: 'gtkit-check', for: id }, [input, ' ' + title]), help, error])
      read = () => input.checked
      write = v => { input.checked = v === true }
    } else {
      continue
    }
    const onEdit = () => state.setContent(spec.name, read())
    for (const input of inputs) {
      input.addEventListener(spec.type === 'text' ? 'input' : 'change', onEdit)
    }
    controls.set(spec.name, { spec, inputs, write, error, wrap })
    element.append(wrap)
  }

  function render () {
    for (const [name, c] of controls) c.write(state.content[name])
  }

  function showProblems (problems) {
    const byField = new Map()
    for (const p of problems) if (p.path.startsWith('content.')) byField.set(p.field, [...(byField.get(p.field) || []), p.message])
    for (const [name, c] of controls) {
      const msgs = byField.get(name) || []
      c.error.hidden = !msgs.length
      c.error.textContent = msgs.join('; ')
      c.wrap.classList.toggle('gtkit-field-invalid', msgs.length > 0)
      for (const i of c.inputs) i.setAttribute('aria-invalid', String(msgs.length > 0))
    }
  }

  function focusField (name) {
    const c = controls.get(name)
    if (!c) return
    c.wrap.scrollIntoView({ block: 'center' })
    c.inputs[0]?.focus()
  }

  /** The wrapper of a field (a review page adds the workers' answers to it), or null. */
  const fieldElement = name => controls.get(name)?.wrap ?? null

  return { element, render, showProblems, focusField, fieldElement }
}
