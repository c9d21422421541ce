// Transcript panel: segment texts in time order (click to seek), plus the machine transcription
// from the task input when there is one. Everything is rendered as text. Long transcripts are
// windowed (virtual-list.js): only the lines near the viewport exist.

import { el } from './dom.js'
import { formatTime } from './format.js'
import { trackColor } from './colors.js'
import { createVirtualList } from './virtual-list.js'

export const EAGER_LINES = 200

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
  let current = new Set()
  const lines = createVirtualList({
    scroller: element,
    list,
    eager: EAGER_LINES,
    estimate: 26,
    create: seg => {
      const time = el('span', { class: 'gtkit-tr-time' })
      const who = el('span', { class: 'gtkit-tr-who' })
      const text = el('span', { class: 'gtkit-tr-text' })
      const btn = el('button', { type: 'button', class: 'gtkit-tr-item', dataset: { transcriptSegmentId: seg.id, action: 'seek-segment' } }, [time, who, text])
      btn.addEventListener('click', () => { state.select(seg.id); player.seekToSegment(seg.id) })
      if (current.has(seg.id)) btn.classList.add('gtkit-playing')
      return { id: seg.id, li: el('li', {}, [btn]), btn, time, who, text, seg: null, track: null }
    },
    update: fill
  })

  function fill (item, seg) {
    const track = state.track(seg.track)
    if (item.seg === seg && item.track === track) return
    item.time.textContent = formatTime(seg.start)
    item.who.textContent = track ? track.label : '?'
    item.who.style.color = trackColor(schema, track)
    item.text.textContent = seg.text || '…'
    item.text.classList.toggle('gtkit-muted', !seg.text)
    item.seg = seg
    item.track = track
  }

  function render () {
    const sorted = state.sortedSegments()
    lines.render(sorted)
    empty.hidden = sorted.length > 0
  }

  /** Only these segments' text changed. */
  function refresh (ids) {
    for (const id of ids) {
      const item = lines.handle(id)
      const seg = state.segment(id)
      if (item && seg) fill(item, seg)
    }
  }

  function highlight (t) {
    const next = new Set(state.segmentsAt(t).map(s => s.id))
    for (const id of current) if (!next.has(id)) lines.handle(id)?.btn.classList.remove('gtkit-playing')
    for (const id of next) if (!current.has(id)) lines.handle(id)?.btn.classList.add('gtkit-playing')
    current = next
  }

  return { element, render, refresh, highlight }
}
