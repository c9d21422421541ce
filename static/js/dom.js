// Tiny DOM builder. Text always goes in through textContent / .value, never as HTML.

/**
 * el('button', {class: 'x', dataset: {action: 'play'}, text: 'Play', on: {click: fn}}, [children])
 * attrs: class, text, dataset, on, style, and plain attributes (booleans toggle the attribute).
 */
export function el (tag, attrs = {}, children = []) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = String(value)
    else if (key === 'value') node.value = String(value)
    else if (key === 'dataset') Object.assign(node.dataset, value)
    else if (key === 'style') Object.assign(node.style, value)
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn)
    else if (key === 'checked' || key === 'disabled' || key === 'hidden' || key === 'selected') node[key] = Boolean(value)
    else node.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

/** Set an input's value unless the worker is typing in it (never clobber a focused field). */
export function setValueIfIdle (input, value) {
  const v = value === undefined || value === null ? '' : String(value)
  if (input.value === v) return
  if (input.ownerDocument.activeElement === input) return
  input.value = v
}

let uid = 0
export function uniqueId (prefix = 'gtkit') {
  uid += 1
  return `${prefix}-${uid}`
}
