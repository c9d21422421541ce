// Precomputed spectrogram (toolkit/spectrogram.py: `gtkit peaks --spectrogram`, the task's
// `spectrogram-ref`) for long media streamed with peaks, where the browser never decodes the audio.
// Only the visible window is drawn, on one canvas as wide as the waveform's viewport, redrawn (once
// per animation frame) on scroll, zoom and resize: cost and memory follow the screen, not the media
// length. (wavesurfer's Spectrogram plugin `frequenciesDataUrl` wants a JSON array of float frames,
// ~100 MB for 3 hours, and draws canvases for the whole scroll width.)

import { readBinaryHeader } from './binary.js'
import { download } from './failure.js'
import { SPECTROGRAM_MAGIC, SPECTROGRAM_VERSION } from './contract.js'

/**
 * Parse the file bytes: `GTSG`, uint32 LE header length, JSON header (SpectrogramHeader), then
 * frames x bins uint8, frame-major. Pure; throws an Error with a readable message.
 * @param {ArrayBuffer} buffer
 * @returns {{header: object, data: Uint8Array}}
 */
export function parseSpectrogram (buffer) {
  const { header, offset } = readBinaryHeader(buffer, SPECTROGRAM_MAGIC, 'spectrogram')
  if (!header || header.version !== SPECTROGRAM_VERSION) throw new Error(`unsupported spectrogram version ${JSON.stringify(header && header.version)}`)
  const { frames, bins } = header
  if (!(Number.isInteger(frames) && frames > 0 && Number.isInteger(bins) && bins > 0)) throw new Error('the spectrogram header has no frames or bins')
  if (!(header.frames_per_second > 0) || !(header.frequency_max > 0)) throw new Error('the spectrogram header has no frame rate or frequency range')
  const data = new Uint8Array(buffer, offset)
  if (data.length !== frames * bins) throw new Error(`the spectrogram has ${data.length} bytes of data, expected ${frames * bins}`)
  return { header, data }
}

/** Download and parse a spectrogram file (gzip on the wire is undone by fetch: Content-Encoding). */
export async function fetchSpectrogram (url, fetchImpl = globalThis.fetch) {
  return parseSpectrogram(await download(url, 'the spectrogram', { fetchImpl }))
}

const STOPS = [ // magma-like: dark for quiet, bright for loud
  [0, 0, 0, 4], [0.25, 59, 15, 112], [0.5, 140, 41, 129], [0.75, 222, 73, 104], [1, 252, 253, 191]
]

/** 256 colours as little-endian RGBA uint32 (what a Uint32Array over ImageData.data holds). */
export function colorTable () {
  const lut = new Uint32Array(256)
  for (let v = 0; v < 256; v++) {
    const x = v / 255
    let i = 0
    while (i < STOPS.length - 2 && x > STOPS[i + 1][0]) i++
    const [x0, r0, g0, b0] = STOPS[i]
    const [x1, r1, g1, b1] = STOPS[i + 1]
    const f = (x - x0) / (x1 - x0)
    const r = Math.round(r0 + (r1 - r0) * f)
    const g = Math.round(g0 + (g1 - g0) * f)
    const b = Math.round(b0 + (b1 - b0) * f)
    lut[v] = (255 << 24 | b << 16 | g << 8 | r) >>> 0
  }
  return lut
}

/**
 * Frame range [from, to) for each of `width` pixel columns showing media time [start, end).
 * Every column gets at least one frame (the one under its left edge) while inside the media; columns
 * past the end get from === to (drawn empty).
 */
export function columnFrames (start, end, width, framesPerSecond, frames) {
  const from = new Int32Array(width)
  const to = new Int32Array(width)
  const span = Math.max(1e-9, end - start)
  for (let x = 0; x < width; x++) {
    const t0 = start + (x / width) * span
    const t1 = start + ((x + 1) / width) * span
    const a = Math.max(0, Math.floor(t0 * framesPerSecond))
    const b = Math.min(frames, Math.max(a + 1, Math.floor(t1 * framesPerSecond)))
    from[x] = Math.min(a, frames)
    to[x] = b
  }
  return { from, to }
}

/**
 * Fill `out` (width x bins uint32 pixels, row 0 = highest band) from the uint8 frames. A column
 * spanning several frames shows, per band, the loudest of them all, so a short noise stays visible
 * at any zoom. Cost: O(visible frames x bins), ~7 M byte reads for a whole 3-hour file at the
 * default 10 frames/s x 64 bands (~10 ms), far less once zoomed in.
 */
export function renderColumns (data, bins, cols, lut, out, width) {
  const { from, to } = cols
  const loud = new Uint8Array(bins)
  for (let x = 0; x < width; x++) {
    const a = from[x]
    const b = to[x]
    loud.fill(0)
    for (let f = a; f < b; f++) {
      const row = f * bins
      for (let k = 0; k < bins; k++) {
        const d = data[row + k]
        if (d > loud[k]) loud[k] = d
      }
    }
    for (let k = 0; k < bins; k++) out[(bins - 1 - k) * width + x] = b > a ? lut[loud[k]] : 0
  }
}

function formatHz (hz) {
  return hz >= 1000 ? `${Math.round(hz / 100) / 10} kHz` : `${Math.round(hz)} Hz`
}

/** The spectrogram panel under the waveform, following its scroll and zoom. */
export class PrecomputedSpectrogram {
  /**
   * @param {object} o
   * @param {HTMLElement} o.container
   * @param {object} o.ws the WaveSurfer instance (getDuration, getScroll, getWidth, getWrapper, on)
   * @param {() => Promise<{header: object, data: Uint8Array}>} o.load
   * @param {(ms: number) => void} [o.onDrawn] after the first draw
   * @param {(msg: string) => void} [o.onError]
   */
  constructor ({ container, ws, load, height = 128, onDrawn, onError }) {
    this.container = container
    this.ws = ws
    this.height = height
    this.onDrawn = onDrawn
    this.onError = onError
    this.spec = null
    this.lut = colorTable()
    this.queued = false
    this.destroyed = false
    this.drawnAt = 0
    this.canvas = document.createElement('canvas')
    this.canvas.className = 'gtkit-spectrogram-canvas'
    this.canvas.dataset.role = 'spectrogram-canvas'
    this.canvas.setAttribute('role', 'img')
    this.canvas.setAttribute('aria-label', 'Spectrogram')
    this.canvas.style.height = `${height}px`
    this.top = document.createElement('span')
    this.top.className = 'gtkit-spectrogram-label gtkit-spectrogram-top'
    this.bottom = document.createElement('span')
    this.bottom.className = 'gtkit-spectrogram-label gtkit-spectrogram-bottom'
    this.status = document.createElement('div')
    this.status.className = 'gtkit-spectrogram-status'
    this.status.dataset.role = 'spectrogram-status'
    this.status.textContent = 'Loading spectrogram…'
    container.classList.add('gtkit-spectrogram-precomputed')
    container.replaceChildren(this.canvas, this.top, this.bottom, this.status)
    this.unsubs = ['scroll', 'zoom', 'redraw', 'resize', 'ready'].map(ev => ws.on(ev, () => this.schedule()))
    this.resizeObserver = new ResizeObserver(() => this.schedule())
    this.resizeObserver.observe(container)
    load().then(spec => {
      if (this.destroyed) return
      this.spec = spec
      this.status.hidden = true
      this.top.textContent = formatHz(spec.header.frequency_max)
      this.bottom.textContent = '0 Hz'
      this.schedule()
    }, err => {
      if (this.destroyed) return
      this.status.textContent = err.described ? err.message : `Spectrogram unavailable: ${err.message}.`
      this.status.classList.add('gtkit-error')
      this.onError?.(err.message)
    })
  }

  schedule () {
    if (this.queued || this.destroyed) return
    this.queued = true
    requestAnimationFrame(() => { this.queued = false; this.draw() })
  }

  /** Visible media time [start, end) of the waveform viewport (as the time ruler computes it). */
  visibleRange () {
    const duration = this.ws.getDuration() || this.spec.header.duration
    const total = this.ws.getWrapper().scrollWidth || 1
    const scroll = this.ws.getScroll()
    return { start: (scroll / total) * duration, end: ((scroll + this.ws.getWidth()) / total) * duration }
  }

  draw () {
    if (!this.spec || this.destroyed) return
    const cssWidth = this.ws.getWidth() || this.container.clientWidth
    if (!cssWidth) return
    const { header, data } = this.spec
    const dpr = window.devicePixelRatio || 1
    const width = Math.max(1, Math.round(cssWidth * dpr))
    const bins = header.bins
    const canvas = this.canvas
    canvas.style.width = `${cssWidth}px`
    if (canvas.width !== width) canvas.width = width
    if (canvas.height !== bins) canvas.height = bins
    const ctx = canvas.getContext('2d')
    if (!this.image || this.image.width !== width || this.image.height !== bins) this.image = ctx.createImageData(width, bins)
    const { start, end } = this.visibleRange()
    const cols = columnFrames(start, end, width, header.frames_per_second, header.frames)
    renderColumns(data, bins, cols, this.lut, new Uint32Array(this.image.data.buffer), width)
    ctx.putImageData(this.image, 0, 0)
    this.view = { start, end }
    if (!this.drawnAt) {
      this.drawnAt = performance.now()
      this.onDrawn?.(this.drawnAt)
    }
  }

  destroy () {
    this.destroyed = true
    for (const off of this.unsubs) off?.()
    this.resizeObserver.disconnect()
    this.container.classList.remove('gtkit-spectrogram-precomputed')
    this.container.replaceChildren()
  }
}
