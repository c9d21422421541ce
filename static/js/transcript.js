// Transcript panel: segment texts in time order (click to seek), plus the machine transcription
// from the task input when there is one. Everything is rendered as text.

import { el } from './dom.js'
import { formatTime } from './format.js'
import { trackColor } from './colors.js'

export function createTranscript ({ state, player, transcription = '' }) {
  const { schema } = state
  const list = el('ol', { class: 'gtkit-transcript-list', 'aria-label': 'Transcript' })
  const empty = el('p', { class: 'gtkit-hint', text: 'Segment texts appear here in time order.' })
  const children = [el('h3', { id: 'gtkit-transcript-h', text: 'Transcript' }), empty, list]
  if (typeof transcription === 'string' && transcription.trim()) {
    const pre = el('p', { class: 'gtkit-machine-text', text: transcription })
    children.push(el('details', { class: 'gtkit-machine' }, [el('summary', { text: 'Machine transcription (from the task)' }), pre]))
  }
  const element = el('section', { class: 'gtkit-panel gtkit-transcript', 'aria-labelledby': 'gtkit-transcript-h' }, children)
  const items = new Map() // id -> {li, btn, time, who, text, seg, track}
  let current = new Set()

  function render () {
    const sorted = state.sortedSegments()
    const live = new Set()
    let prev = null
    for (const seg of sorted) {
      live.add(seg.id)
      let item = items.get(seg.id)
      if (!item) {
        const time = el('span', { class: 'gtkit-tr-time' })
        const who = el('span', { class: 'gtkit-tr-who' })
        const text = el('span', { class: 'gtkit-tr-text' })
        const btn = el('button', { type: 'button', class: 'gtkit-tr-item', dataset: { transcriptSegmentId: seg.id, action: 'seek-segment' } }, [time, who, text])
        btn.addEventListener('click', () => { state.select(seg.id); player.seekToSegment(seg.id) })
        item = { li: el('li', {}, [btn]), btn, time, who, text, seg: null, track: null }
        items.set(seg.id, item)
      }
      const track = state.track(seg.track)
      if (item.seg !== seg || item.track !== track) {
        item.time.textContent = formatTime(seg.start)
        item.who.textContent = track ? track.label : '?'
        item.who.style.color = trackColor(schema, track)
        item.text.textContent = seg.text || '…'
        item.text.classList.toggle('gtkit-muted', !seg.text)
        item.seg = seg
        item.track = track
      }
      const want = prev ? prev.nextSibling : list.firstChild
      if (want !== item.li) list.insertBefore(item.li, want)
      prev = item.li
    }
    for (const [id, item] of items) {
      if (!live.has(id)) {
        item.li.remove()
        items.delete(id)
      }
    }
    empty.hidden = sorted.length > 0
  }

  function highlight (t) {
    const next = new Set()
    for (const seg of state.segments) if (seg.start <= t && t < seg.end) next.add(seg.id)
    for (const id of current) if (!next.has(id)) items.get(id)?.btn.classList.remove('gtkit-playing')
    for (const id of next) if (!current.has(id)) items.get(id)?.btn.classList.add('gtkit-playing')
    current = next
  }

  return { element, render, highlight }
}
