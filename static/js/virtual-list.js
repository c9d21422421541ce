// Windowed rendering of a long list (the segment list, the transcript): only the items near the
// scroller's viewport have DOM; the rest is padding of the measured row height. A 180-minute call
// with 10,000 turns keeps a few dozen rows alive, so memory and the cost of a change do not grow
// with the number of segments. Short lists (up to `eager` items) render every item, as before.

/**
 * Which items [first, last] to render for a scroll position. Pure.
 * @param {{scrollTop: number, viewport: number, stride: number, count: number, overscan?: number}} o
 *   scrollTop: the list's own scroll offset (px above its first item that are scrolled away);
 *   viewport: visible height; stride: one item's height plus the gap between items
 * @returns {{first: number, last: number}} last < first when there is nothing to render
 */
export function windowRange ({ scrollTop, viewport, stride, count, overscan = 3 }) {
  if (!(count > 0)) return { first: 0, last: -1 }
  const s = Math.max(1, stride)
  const top = Math.max(0, scrollTop)
  const first = Math.min(count - 1, Math.max(0, Math.floor(top / s) - overscan))
  const last = Math.min(count - 1, Math.max(first, Math.ceil((top + Math.max(0, viewport)) / s) + overscan))
  return { first, last }
}

/**
 * @template Item, Handle
 * @param {object} o
 * @param {HTMLElement} o.scroller the element that scrolls (overflow: auto)
 * @param {HTMLElement} o.list the container of the item elements (inside the scroller)
 * @param {number} [o.eager] up to this many items every one is rendered
 * @param {number} [o.estimate] item height (px) until one is measured
 * @param {number} [o.gap] px between items (CSS gap)
 * @param {(item: Item) => Handle & {li: HTMLElement}} o.create
 * @param {(handle: Handle, item: Item) => void} o.update bring an item's DOM up to date (cheap when unchanged)
 * @param {(handle: Handle) => void} [o.dispose] its DOM left the window
 */
export function createVirtualList ({ scroller, list, eager = 200, estimate = 100, gap = 0, create, update, dispose = () => {} }) {
  /** @type {Map<string, any>} */
  const handles = new Map()
  let items = []
  let stride = estimate
  let measured = false
  let window_ = { first: 0, last: -1 }

  /** Offset of the list's top inside the scroller's content. */
  function listTop () {
    return list.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop
  }

  const virtual = () => items.length > eager

  function range () {
    if (!virtual()) return { first: 0, last: items.length - 1 }
    return windowRange({ scrollTop: scroller.scrollTop - listTop(), viewport: scroller.clientHeight || 600, stride, count: items.length })
  }

  /** Render the window of `next` (the whole, ordered item list; omitted: the current one). */
  function render (next) {
    if (next) items = next
    window_ = range()
    const { first, last } = window_
    const keep = new Set()
    for (let i = first; i <= last; i++) keep.add(items[i].id)
    // Drop what left the window first: then the rows that stay are already in order and only the
    // new ones are inserted (moving every row of the window would re-attach each, textareas and all).
    for (const [id, handle] of handles) {
      if (!keep.has(id)) {
        handle.li.remove()
        handles.delete(id)
        dispose(handle)
      }
    }
    let prev = null
    for (let i = first; i <= last; i++) {
      const item = items[i]
      let handle = handles.get(item.id)
      if (!handle) {
        handle = create(item)
        handles.set(item.id, handle)
      }
      update(handle, item)
      const want = prev ? prev.nextSibling : list.firstChild
      if (want !== handle.li) list.insertBefore(handle.li, want)
      prev = handle.li
    }
    if (virtual() && !measured && handles.size) measure()
    list.style.paddingTop = virtual() ? `${first * stride}px` : ''
    list.style.paddingBottom = virtual() ? `${Math.max(0, items.length - 1 - last) * stride}px` : ''
  }

  /** The median height of the rendered items (once: changing it later would make scrolling jump). */
  function measure () {
    const heights = [...handles.values()].map(h => h.li.offsetHeight).filter(h => h > 0).sort((a, b) => a - b)
    if (!heights.length) return
    stride = heights[heights.length >> 1] + gap
    measured = true
  }

  let queued = false
  scroller.addEventListener('scroll', () => {
    if (!virtual() || queued) return
    queued = true
    requestAnimationFrame(() => { queued = false; render() })
  }, { passive: true })

  return {
    render,
    /** The handle of an item that has DOM now, or undefined. */
    handle: id => handles.get(id),
    handles: () => handles.values(),
    get window () { return { ...window_ } },
    get stride () { return stride },
    /** Scroll (the scroller only) so that item `index` is rendered and in view; returns its handle. */
    reveal (index) {
      if (index < 0 || index >= items.length) return undefined
      const id = items[index].id
      if (!handles.has(id) && virtual()) {
        scroller.scrollTop = listTop() + index * stride - (scroller.clientHeight || 600) / 3
        render()
      }
      const handle = handles.get(id)
      if (handle) {
        const top = handle.li.getBoundingClientRect().top - scroller.getBoundingClientRect().top
        const bottom = top + handle.li.offsetHeight
        if (top < 0) scroller.scrollTop += top - 8
        else if (bottom > scroller.clientHeight) scroller.scrollTop += bottom - scroller.clientHeight + 8
        if (virtual()) render()
      }
      return handles.get(id)
    }
  }
}
