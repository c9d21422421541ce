// Time ruler under the waveform, drawn on a canvas for the visible window only.
// (wavesurfer's Timeline plugin builds a DOM node for every tick of the whole file and measures
// each one, which costs seconds per zoom step on long media; this costs O(visible ticks).)

import { formatTime, timelineSpacing } from './format.js'

export class Ruler {
  constructor ({ canvas, ws }) {
    this.canvas = canvas
    this.ws = ws
    this.view = { start: 0, end: 0 }
    this.queued = false
    const redraw = () => this.schedule()
    ws.on('scroll', (start, end) => { this.view = { start, end }; this.schedule() })
    for (const ev of ['ready', 'zoom', 'redraw', 'resize']) ws.on(ev, () => { this.view = null; redraw() })
    this.resizeObserver = new ResizeObserver(redraw)
    this.resizeObserver.observe(canvas)
  }

  schedule () {
    if (this.queued) return
    this.queued = true
    requestAnimationFrame(() => { this.queued = false; this.draw() })
  }

  /** Visible [start, end] in seconds. */
  visibleRange () {
    const duration = this.ws.getDuration()
    if (this.view) return this.view
    const wrapper = this.ws.getWrapper()
    const total = wrapper.scrollWidth || 1
    const start = (this.ws.getScroll() / total) * duration
    const end = ((this.ws.getScroll() + this.ws.getWidth()) / total) * duration
    this.view = { start, end }
    return this.view
  }

  draw () {
    const { canvas } = this
    const duration = this.ws.getDuration()
    const cssWidth = canvas.clientWidth
    const cssHeight = canvas.clientHeight || 22
    if (!(duration > 0) || !cssWidth) return
    const dpr = window.devicePixelRatio || 1
    if (canvas.width !== Math.round(cssWidth * dpr)) canvas.width = Math.round(cssWidth * dpr)
    if (canvas.height !== Math.round(cssHeight * dpr)) canvas.height = Math.round(cssHeight * dpr)
    const ctx = canvas.getContext('2d')
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, cssWidth, cssHeight)
    const { start, end } = this.visibleRange()
    const span = Math.max(1e-6, end - start)
    const pxPerSec = cssWidth / span
    const { tick, every } = timelineSpacing(pxPerSec, duration)
    const showMs = tick * every < 1
    ctx.strokeStyle = '#9aa5b1'
    ctx.fillStyle = '#4b5563'
    ctx.font = '11px system-ui, sans-serif'
    ctx.textBaseline = 'top'
    ctx.beginPath()
    const first = Math.max(0, Math.floor(start / tick))
    for (let i = first; i * tick <= Math.min(end, duration) + 1e-9; i++) {
      const t = i * tick
      const x = Math.round((t - start) * pxPerSec) + 0.5
      const major = i % every === 0
      ctx.moveTo(x, 0)
      ctx.lineTo(x, major ? cssHeight * 0.55 : cssHeight * 0.25)
      if (major) ctx.fillText(formatTime(t, { ms: showMs }), x + 3, cssHeight * 0.3)
    }
    ctx.stroke()
  }

  destroy () {
    this.resizeObserver.disconnect()
  }
}
