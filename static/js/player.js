// Waveform + media element (wavesurfer.js) and the regions that mirror the segments in the state.
// With precomputed peaks the media element streams (HTTP Range) and nothing is decoded in the
// browser; without peaks wavesurfer fetches and decodes the file (fine for short media only).

import WaveSurfer from '../vendor/wavesurfer/wavesurfer.esm.js'
import RegionsPlugin from '../vendor/wavesurfer/plugins/regions.esm.js'
import ZoomPlugin from '../vendor/wavesurfer/plugins/zoom.esm.js'
import MinimapPlugin from '../vendor/wavesurfer/plugins/minimap.esm.js'
import SpectrogramPlugin from '../vendor/wavesurfer/plugins/spectrogram.esm.js'
import { formatTime } from './format.js'
import { Ruler } from './ruler.js'
import { trackColor, withAlpha } from './colors.js'
import { parsePeaks } from './peaks.js'
import { PrecomputedSpectrogram, fetchSpectrogram } from './spectrogram.js'
import { download, failureMessage, mediaErrorReason } from './failure.js'
import { EventEmitter } from './emitter.js'
import { TIME_STEP } from './contract.js'
import { snapTime } from './state.js'

export const MAX_PX_PER_SEC = 10000 // 10 px per millisecond
export const RATES = [0.5, 0.75, 1, 1.25, 1.5, 2]
const WAVE_HEIGHT = 168
const RECORDING_ID = 'gtkit-recording'
// Regions (DOM elements with handles) exist only for the segments in and near the visible window.
// When more than this many are there (the whole-file view of a long call), they are painted on
// one canvas instead, and become regions again once zooming in leaves fewer.
export const MAX_REGIONS = 150
// New regions per frame: a zoom or a jump paints at once, the rest of the window follows (visible first).
const REGIONS_PER_FRAME = 30
// Zoomed in at least this far, the pre-segments' words are written on the waveform.
export const WORDS_MIN_PX_PER_SEC = 80
const SNAP_PX = 8 // boundaries within this many pixels of a word edge snap to it (Alt: no snapping)

/** Fetch and check a peaks file (binary or JSON). Throws an Error with a readable message. */
export async function fetchPeaks (url, fetchImpl = globalThis.fetch) {
  return parsePeaks(await download(url, 'the waveform peaks', { fetchImpl }))
}

/**
 * What a Player emits: event name -> the arguments its listeners get (wavesurfer.js's
 * `WaveSurferEvents` style). Subscribe with `player.on(name, fn)`, which returns an unsubscribe
 * function; `once(name, fn)` is the same for one call. Any other name is refused (TypeError).
 * @typedef {object} PlayerEvents
 * @property {[duration: number]} ready the waveform is drawn and the media can play (once)
 * @property {[]} play playback started
 * @property {[]} pause playback paused (also at the end, and after a segment played alone)
 * @property {[currentTime: number]} time the playhead moved (many times a second while playing)
 * @property {[pxPerSec: number]} zoom the zoom level changed (0 = the whole file)
 * @property {[rate: number]} rate the playback rate changed (0.5 to 2)
 * @property {[recording: boolean]} recording a recording (R) began (true) or ended (false)
 * @property {[segmentId: string, start: number, end: number]} region-drag a segment's region is
 *   being dragged or resized: its times so far, not yet in the state (that follows on release)
 * @property {[segmentId: string]} segment-drawn a drag on the waveform created this segment
 * @property {[segmentId: string|null]} loop the selected segment began looping (its id) or the loop
 *   ended (null)
 * @property {[split: boolean]} channels one waveform per channel (true) or both in one (false)
 * @property {[shown: boolean]} spectrogram the spectrogram was shown (true) or hidden (false)
 * @property {[drawnAt: number]} spectrogram-drawn the precomputed spectrogram's first draw after
 *   a toggle, at this performance.now()
 */

/** @type {readonly (keyof PlayerEvents)[]} */
export const PLAYER_EVENTS = Object.freeze(['ready', 'play', 'pause', 'time', 'zoom', 'rate', 'recording',
  'region-drag', 'segment-drawn', 'loop', 'channels', 'spectrogram', 'spectrogram-drawn'])

/** @extends {EventEmitter<PlayerEvents>} */
export class Player extends EventEmitter {
  /**
   * @param {object} o
   * @param {HTMLElement} o.waveEl container for the waveform
   * @param {HTMLCanvasElement} [o.rulerEl] canvas for the time ruler
   * @param {HTMLElement} o.spectrogramEl container for the spectrogram (hidden until toggled)
   * @param {HTMLElement} o.videoHost where the <video> goes in video mode
   * @param {string} o.mediaUrl
   * @param {'audio'|'video'} o.mediaType
   * @param {{peaks: Float32Array[], duration: number}|null} o.peaks precomputed peaks, if any
   * @param {string} [o.spectrogramUrl] precomputed spectrogram (used in peaks mode only)
   * @param {number} [o.durationHint] duration from the task input, used before metadata loads
   * @param {import('./state.js').AnswerState} o.state
   * @param {(msg: string) => void} o.onError a problem that leaves the task doable (playback)
   * @param {(err: Error, media: HTMLMediaElement) => void} [o.onMediaError] the media did not load
   *   (default: its reason through onError)
   */
  constructor ({ waveEl, rulerEl, spectrogramEl, videoHost, mediaUrl, mediaType, peaks, spectrogramUrl, durationHint, state, onError, onMediaError, onReady }) {
    super(PLAYER_EVENTS)
    this.state = state
    this.schema = state.schema
    this.waveEl = waveEl
    this.spectrogramEl = spectrogramEl
    this.onError = onError
    this.peaksMode = Boolean(peaks)
    // Without peaks the media is decoded and wavesurfer's plugin computes the spectrogram itself.
    this.spectrogramUrl = this.peaksMode && spectrogramUrl ? spectrogramUrl : null
    this._spectrogramData = null // the downloaded spectrogram, kept across toggles
    this.spectrogramDrawnAt = 0 // performance.now() of the last toggle's first draw (benchmarks)
    this.isVideo = mediaType === 'video'
    this.regionById = new Map()
    this.segmentByRegion = new WeakMap()
    this.ownRegions = new WeakSet()
    this.renderedSegment = new Map() // id -> segment record last synced (identity check)
    this.recording = null
    this.looping = null // id of the segment playing in a loop
    // Channels in the waveform: a stereo call's peaks keep agent and customer apart.
    this.channelCount = peaks ? peaks.peaks.length : 1
    this.splitChannels = false
    this.pxPerSec = 0 // 0 = fit the whole file
    this.rate = 1
    this.ready = false
    this.spectrogram = null

    const media = document.createElement(this.isVideo ? 'video' : 'audio')
    media.preload = this.peaksMode ? 'metadata' : 'auto'
    media.playsInline = true
    if (this.isVideo) {
      media.className = 'gtkit-video'
      media.setAttribute('aria-label', 'Video')
      media.addEventListener('click', () => this.playPause())
      videoHost.append(media)
      videoHost.hidden = false
    }
    this.media = media

    // gtkit serve's Content-Security-Policy allows wavesurfer's shadow-root <style> elements by this
    // nonce; elsewhere (Ground Truth, the local portal) there is no such tag and none is needed.
    const cspNonce = document.querySelector('meta[name="gtkit-csp-nonce"]')?.content || undefined
    this.regions = RegionsPlugin.create()
    this.zoomPlugin = ZoomPlugin.create({ scale: 0.25, maxZoom: MAX_PX_PER_SEC, exponentialZooming: true, iterations: 12 })
    this.minimap = MinimapPlugin.create({
      cspNonce,
      height: 26,
      waveColor: '#a9b6c6',
      progressColor: '#6f86a3',
      overlayColor: 'rgba(37, 99, 235, 0.18)',
      insertPosition: 'beforebegin'
    })

    const options = {
      cspNonce,
      container: waveEl,
      media,
      url: mediaUrl,
      height: WAVE_HEIGHT,
      waveColor: '#9aa9bb',
      progressColor: '#4b6584',
      cursorColor: '#dc2626',
      cursorWidth: 2,
      normalize: true,
      autoScroll: true,
      autoCenter: true,
      dragToSeek: false,
      hideScrollbar: false,
      plugins: [this.regions, this.zoomPlugin, this.minimap]
    }
    if (peaks) {
      options.peaks = peaks.peaks
      options.duration = peaks.duration
    }
    if (!(durationHint > 0) && peaks) durationHint = peaks.duration
    if (durationHint > 0) state.setMediaDuration(durationHint)

    this.ws = WaveSurfer.create(options)
    this._installLayoutCache()
    this.overview = document.createElement('canvas')
    this.overview.className = 'gtkit-overview'
    this.overview.dataset.role = 'segment-overview'
    this.overview.setAttribute('aria-hidden', 'true')
    this.overview.hidden = true
    this.overview.style.cssText = `position:absolute;left:0;top:0;width:100%;height:${WAVE_HEIGHT}px;pointer-events:none;z-index:4`
    waveEl.append(this.overview)
    this.overviewCount = 0 // segments painted on the overview canvas (0 = regions shown)
    this.wordsDrawn = 0 // words written on it (zoomed in)
    this._alt = false
    this._onAlt = ev => { this._alt = ev.altKey }
    for (const ev of ['pointerdown', 'pointermove', 'pointerup', 'keydown', 'keyup']) window.addEventListener(ev, this._onAlt, true)
    this._dragId = null
    this._syncFrame = false
    // With the segments on the overview canvas (no regions), a click in a lane still selects the
    // segment under the pointer (the click seeks as well, as on the bare waveform).
    this.ws.on('click', (relX, relY) => {
      if (!this.overviewCount) return
      const tracks = this.state.tracks
      const lane = tracks[Math.max(0, Math.min(tracks.length - 1, Math.floor(relY * tracks.length)))]
      const hit = this.state.segmentsAt(relX * this.duration).find(x => !lane || x.track === lane.id)
      if (hit) this.state.select(hit.id)
    })
    const resync = () => this._scheduleSync()
    for (const ev of ['scroll', 'zoom', 'resize']) this.ws.on(ev, resync)
    this.ruler = rulerEl ? new Ruler({ canvas: rulerEl, ws: this.ws }) : null
    this.ws.on('decode', () => { this.channelCount = this.ws.getDecodedData()?.numberOfChannels || this.channelCount })
    this.ws.on('ready', duration => {
      this.ready = true
      if (duration > 0) state.setMediaDuration(duration)
      this.syncRegions(true)
      this.emit('ready', duration)
      onReady?.(duration)
    })
    this.ws.on('error', err => {
      // A superseded load is not a failure.
      if (err && err.name === 'AbortError') return
      this.loadFailed = true
      if (onMediaError) onMediaError(err, media)
      else onError(`The media could not be loaded: ${mediaErrorReason(err, media)}.`)
    })
    media.addEventListener('loadedmetadata', () => {
      if (media.duration > 0 && Number.isFinite(media.duration)) state.setMediaDuration(media.duration)
    })
    this.ws.on('zoom', px => { this.pxPerSec = px; this.emit('zoom', px) })
    this.ws.on('play', () => this.emit('play'))
    this.ws.on('pause', () => {
      if (this.recording) this.stopRecording()
      if (this.looping && !this._relooping) this.stopLoop()
      this.emit('pause')
    })
    this.ws.on('finish', () => {
      if (this.recording) this.stopRecording()
    })
    this.ws.on('timeupdate', t => {
      if (this.recording) this._growRecording(t)
      if (this.looping) this._keepLooping(t)
      this.emit('time', t)
    })

    this.regions.on('region-created', region => this._onRegionCreated(region))
    this.regions.on('region-update', region => {
      const id = this.segmentByRegion.get(region)
      if (id) this._dragId = id // kept while the drag scrolls the view
      if (id) this.emit('region-drag', id, region.start, region.end)
    })
    this.regions.on('region-updated', region => {
      const id = this.segmentByRegion.get(region)
      this._dragId = null
      if (!id) return
      const [start, end] = this._snapEdit(state.segment(id), region.start, region.end)
      state.setSegmentTimes(id, start, end)
      // Snapped (or refused by the state): put the region where the segment is.
      const seg = state.segment(id)
      if (seg && (region.start !== seg.start || region.end !== seg.end)) region.setOptions({ start: seg.start, end: seg.end })
    })
    this.regions.on('region-clicked', region => {
      const id = this.segmentByRegion.get(region)
      if (id) state.select(id) // the click also seeks, as on the bare waveform
    })
    this.regions.on('region-double-clicked', (region, ev) => {
      const id = this.segmentByRegion.get(region)
      if (!id) return
      ev.stopPropagation()
      this.playSegment(id)
    })
    this.disableDragSelection = this.regions.enableDragSelection({ color: 'rgba(37, 99, 235, 0.25)' }, 4)
    // The plugin's drag-selected region ends 5 px past the pointer; take the times from the
    // pointer itself. (Window listener added now runs before the plugin's per-drag one.)
    this._drag = null
    this._onPointerDown = ev => {
      if (ev.button !== 0) return
      this._drag = { from: this.timeAtClientX(ev.clientX), to: null, track: this.trackAtClientY(ev.clientY) }
      // Pressed on a segment's body (not a resize handle): releasing it over another lane moves it there.
      const path = ev.composedPath()
      const handle = path.some(n => n instanceof Element && n.matches('[part~="region-handle"]'))
      const regionEl = path.find(n => n instanceof HTMLElement && n.dataset.regionFor)
      this._laneDrag = regionEl && !handle ? { id: regionEl.dataset.regionFor, y: ev.clientY } : null
    }
    this._onPointerUp = ev => {
      if (this._drag) this._drag.to = this.timeAtClientX(ev.clientX)
      const lane = this._laneDrag
      this._laneDrag = null
      if (!lane || Math.abs(ev.clientY - lane.y) < 4) return
      const track = this.trackAtClientY(ev.clientY)
      const seg = this.state.segment(lane.id)
      if (track && seg && seg.track !== track) this.state.setSegmentTrack(lane.id, track)
    }
    this.ws.getWrapper().addEventListener('pointerdown', this._onPointerDown)
    window.addEventListener('pointerup', this._onPointerUp)

    this.unsubscribe = state.subscribe(change => {
      // Text and attributes are not drawn on the waveform: a keystroke costs the regions nothing.
      if (change.kind === 'segments' && change.layout === false) return
      if (change.kind === 'segments' || change.kind === 'tracks' || change.kind === 'all') this.syncRegions(change.kind !== 'segments')
      else if (change.kind === 'selection') { this._styleSelection(); if (this.overviewCount) this._scheduleSync() }
    })
  }

  /**
   * The Regions plugin virtualises each region by reading the waveform's width and scroll
   * position (getWidth, getScroll, the regions container's clientWidth) and then appending or
   * removing that region. With many segments those reads and writes interleave, forcing one
   * full layout per region: O(n^2), seconds for ~1000 segments on load or zoom. Serve the reads
   * from a cache that lives until the next frame and is refreshed on zoom, scroll and resize
   * (these listeners are registered before any region's, so they run first).
   */
  _installLayoutCache () {
    const ws = this.ws
    const rc = ws.getWrapper().querySelector('[part~="regions-container"]')
    const widthOf = Object.getOwnPropertyDescriptor(Element.prototype, 'clientWidth')
    if (!rc || !widthOf?.get) return
    const origWidth = ws.getWidth.bind(ws)
    const origScroll = ws.getScroll.bind(ws)
    let cache = null
    const read = () => {
      if (!cache) {
        cache = { width: origWidth(), scroll: origScroll(), inner: widthOf.get.call(rc) }
        requestAnimationFrame(() => { cache = null })
      }
      return cache
    }
    const invalidate = () => { cache = null }
    for (const ev of ['zoom', 'scroll', 'resize', 'redraw', 'ready']) ws.on(ev, invalidate)
    ws.getWidth = () => read().width
    ws.getScroll = () => read().scroll
    Object.defineProperty(rc, 'clientWidth', { configurable: true, get: () => read().inner })
  }

  // ---- regions <-> state --------------------------------------------------------------------

  _onRegionCreated (region) {
    if (this._adding || this.ownRegions.has(region) || region.id === RECORDING_ID) return
    // A drag-selection on the waveform: replace the temporary region by a real segment.
    let { start, end } = region
    const drag = this._drag
    this._drag = null
    if (drag && drag.to !== null) {
      start = Math.max(0, Math.min(drag.from, drag.to))
      end = Math.min(this.duration, Math.max(drag.from, drag.to))
    }
    region.remove()
    start = this.snap(start)
    end = this.snap(end)
    if (!(end - start > TIME_STEP)) return // it would round to an empty segment
    // A drag inside a track's lane creates the segment on that track (and makes it the active one).
    const laneTrack = drag && drag.track && this.state.track(drag.track) ? drag.track : null
    if (laneTrack) this.state.setActiveTrack(laneTrack)
    const track = laneTrack || this.state.ensureActiveTrack()
    const id = this.state.addSegment({ track, start, end })
    this.state.select(id)
    if (this.state.segment(id)) this.emit('segment-drawn', id) // (not when merged into another)
  }

  /** t moved to the nearest word edge within SNAP_PX at this zoom, unless Alt is held. */
  snap (t) {
    if (this._alt || !this.state.words.size) return t
    const tol = SNAP_PX / Math.max(this.pxPerSec, this.fitPxPerSec())
    return snapTime(t, this.state.wordEdgesBetween(t - tol, t + tol), tol)
  }

  /** A drag or resize of `old` ended at [start, end]: snap the edge that moved (both move together). */
  _snapEdit (old, start, end) {
    if (!old) return [start, end]
    const moved = Math.abs((end - start) - (old.end - old.start)) < TIME_STEP
    if (moved) {
      const s = this.snap(start)
      const delta = s !== start ? s - start : this.snap(end) - end
      return [start + delta, end + delta]
    }
    return [Math.abs(start - old.start) >= TIME_STEP ? this.snap(start) : start,
      Math.abs(end - old.end) >= TIME_STEP ? this.snap(end) : end]
  }

  /** Id of the track whose lane is under a viewport y coordinate, or null with fewer than 2 lanes. */
  trackAtClientY (clientY) {
    const tracks = this.state.tracks
    if (tracks.length < 2) return null
    const wrapper = this.ws.getWrapper()
    const container = wrapper.querySelector('[part~="regions-container"]') || wrapper
    const rect = container.getBoundingClientRect()
    if (!rect.height) return null
    const lane = Math.floor(((clientY - rect.top) / rect.height) * tracks.length)
    return tracks[Math.max(0, Math.min(tracks.length - 1, lane))].id
  }

  /** Media time under a viewport x coordinate (follows zoom and scroll). */
  timeAtClientX (clientX) {
    const rect = this.ws.getWrapper().getBoundingClientRect()
    if (!rect.width) return 0
    return Math.max(0, Math.min(this.duration, ((clientX - rect.left) / rect.width) * this.duration))
  }

  _addRegion (params) {
    this._adding = true
    try {
      const region = this.regions.addRegion(params)
      this.ownRegions.add(region)
      return region
    } finally {
      this._adding = false
    }
  }

  /** [start, end] of the media time the waveform shows now. */
  visibleRange () {
    const d = this.duration
    if (!(d > 0)) return [0, 0]
    const total = Math.max(this.pxPerSec, this.fitPxPerSec()) * d
    if (!this.pxPerSec || !(total > 0)) return [0, d]
    const scroll = this.ws.getScroll()
    const view = this.ws.getWidth()
    return [Math.max(0, (scroll / total) * d), Math.min(d, ((scroll + view) / total) * d)]
  }

  _scheduleSync () {
    if (this._syncFrame) return
    this._syncFrame = true
    requestAnimationFrame(() => { this._syncFrame = false; this.syncRegions(false) })
  }

  /** Bring regions in line with the segments in and near the visible window (a quarter of a view
   *  either side, so scrolling shows regions at once). Only changed segments are touched. */
  syncRegions (relayoutAll = false) {
    const { state } = this
    const trackIndex = new Map(state.tracks.map((t, i) => [t.id, i]))
    const lanes = Math.max(1, state.tracks.length)
    const [from, to] = this.visibleRange()
    const margin = (to - from) / 4
    const near = this.duration > 0 ? state.segmentsBetween(from - margin, to + margin) : state.sortedSegments()
    const overview = near.length > MAX_REGIONS
    // The visible ones first, then the margins.
    const inView = x => x.end >= from && x.start <= to
    const wanted = overview ? [] : [...near.filter(inView), ...near.filter(x => !inView(x))]
    if (overview) {
      // The selected and the dragged segment keep their regions (handles to resize them).
      for (const id of [state.selectedSegmentId, this._dragId]) {
        const seg = id && state.segment(id)
        if (seg && !wanted.includes(seg)) wanted.push(seg)
      }
    }
    const live = new Set()
    let created = 0
    let deferred = false
    for (const seg of wanted) {
      live.add(seg.id)
      let region = this.regionById.get(seg.id)
      const last = this.renderedSegment.get(seg.id)
      if (!region) {
        if (created >= REGIONS_PER_FRAME) { deferred = true; continue }
        created++
        region = this._addRegion({ id: seg.id, start: seg.start, end: Math.max(seg.end, seg.start), drag: true, resize: true, minLength: TIME_STEP })
        this.regionById.set(seg.id, region)
        this.segmentByRegion.set(region, seg.id)
      } else if (last !== seg && (region.start !== seg.start || region.end !== seg.end)) {
        region.setOptions({ start: seg.start, end: Math.max(seg.end, seg.start) })
      }
      if (relayoutAll || last !== seg) this._layoutRegion(region, seg, trackIndex.get(seg.track) ?? 0, lanes)
      this.renderedSegment.set(seg.id, seg)
    }
    for (const [id, region] of this.regionById) {
      if (!live.has(id) && id !== this._dragId) {
        this.regionById.delete(id)
        this.renderedSegment.delete(id)
        region.remove()
      }
    }
    if (deferred) this._scheduleSync()
    const zoomedIn = Math.max(this.pxPerSec, this.fitPxPerSec()) >= WORDS_MIN_PX_PER_SEC && state.words.size > 0
    this._drawOverlay(overview ? state.segmentsBetween(from, to) : null, zoomedIn ? near : null, from, to, trackIndex, lanes)
    this._styleSelection()
  }

  /** Paint the overlay canvas: the segments when there are too many for regions, and the words of
   *  the segments in view when zoomed in (null: none of either; both null hides the canvas). */
  _drawOverlay (segments, wordSegments, from, to, trackIndex, lanes) {
    const c = this.overview
    this.overviewCount = segments ? segments.length : 0
    this.wordsDrawn = 0
    if (!segments && !wordSegments) {
      if (!c.hidden) c.hidden = true
      return
    }
    c.hidden = false
    const dpr = globalThis.devicePixelRatio || 1
    const w = Math.max(1, Math.round((this.ws.getWidth() || this.waveEl.clientWidth || 1000) * dpr))
    const h = Math.round(WAVE_HEIGHT * dpr)
    if (c.width !== w) c.width = w
    if (c.height !== h) c.height = h
    const ctx = c.getContext('2d')
    ctx.clearRect(0, 0, w, h)
    const span = Math.max(1e-9, to - from)
    const xOf = t => ((t - from) / span) * w
    const laneH = h / lanes
    if (segments) {
      const colors = new Map(this.state.tracks.map(t => [t.id, withAlpha(trackColor(this.schema, t), 0.35)]))
      const sel = this.state.selectedSegmentId
      for (const seg of segments) {
        if (seg.id === sel) continue // its own region shows it
        const x = xOf(seg.start)
        ctx.fillStyle = colors.get(seg.track) || 'rgba(37, 99, 235, 0.3)'
        ctx.fillRect(x, (trackIndex.get(seg.track) ?? 0) * laneH + 1, Math.max(1, xOf(seg.end) - x), laneH - 2)
      }
    }
    if (wordSegments) {
      ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`
      ctx.textBaseline = 'bottom'
      for (const seg of wordSegments) {
        const bottom = ((trackIndex.get(seg.track) ?? 0) + 1) * laneH - 3 * dpr
        for (const [a, b, text] of this.state.words.get(seg.id) || []) {
          if (b < from || a > to) continue
          const x = xOf(a)
          const x2 = xOf(b)
          ctx.fillStyle = 'rgba(17, 24, 39, 0.35)'
          ctx.fillRect(x, bottom - 14 * dpr, Math.max(1, dpr), 14 * dpr) // the word's start edge
          ctx.save()
          ctx.beginPath()
          ctx.rect(x, bottom - 16 * dpr, Math.max(1, x2 - x), 16 * dpr)
          ctx.clip()
          ctx.fillStyle = '#111827'
          ctx.fillText(text, x + 2 * dpr, bottom)
          ctx.restore()
          this.wordsDrawn++
        }
      }
    }
  }

  _layoutRegion (region, seg, lane, lanes) {
    const el = region.element
    if (!el) return
    const track = this.state.track(seg.track)
    const color = withAlpha(trackColor(this.schema, track), 0.3)
    if (region.color !== color) region.setOptions({ color })
    el.style.top = `${(lane / lanes) * 100}%`
    el.style.height = `${100 / lanes}%`
    el.dataset.regionFor = seg.id
    el.setAttribute('title', `${track ? track.label : ''} ${formatTime(seg.start)}–${formatTime(seg.end)}`)
    this._flag(region, seg.id)
  }

  /** A review: the segments a disagreement is about (id -> {kinds, text}, review-logic.js
   *  flaggedSegments) are striped orange on the editable lane, like the ghost lanes' bands. */
  setFlagged (flagged) {
    this.flagged = flagged
    for (const [id, region] of this.regionById) this._flag(region, id)
  }

  _flag (region, id) {
    const el = region.element
    if (!el) return
    const f = this.flagged?.get(id)
    // Inline styles: the regions live in wavesurfer's shadow root, out of the page's stylesheet.
    el.style.backgroundImage = f ? 'repeating-linear-gradient(135deg, rgba(234, 88, 12, 0.45) 0 3px, transparent 3px 8px)' : ''
    el.style.boxShadow = f ? 'inset 0 -3px 0 #c2410c' : ''
    if (f) {
      el.dataset.disagreement = f.kinds.join(' ')
      const title = el.getAttribute('title') || ''
      if (!title.includes(' – ')) el.setAttribute('title', `${title} – ${f.text}`)
    } else if (el.dataset.disagreement) {
      delete el.dataset.disagreement
      el.setAttribute('title', (el.getAttribute('title') || '').split(' – ')[0])
    }
  }

  _styleSelection () {
    const sel = this.state.selectedSegmentId
    if (this._selectedRegionId && this._selectedRegionId !== sel) {
      const prev = this.regionById.get(this._selectedRegionId)
      if (prev?.element) {
        prev.element.style.outline = ''
        prev.element.style.zIndex = ''
      }
    }
    const region = sel ? this.regionById.get(sel) : null
    if (region?.element) {
      region.element.style.outline = '2px solid #111827'
      region.element.style.outlineOffset = '-2px'
      region.element.style.zIndex = '3'
    }
    this._selectedRegionId = sel
  }

  // ---- playback -----------------------------------------------------------------------------

  get duration () { return this.ws.getDuration() || this.state.mediaDuration || 0 }
  get currentTime () { return this.ws.getCurrentTime() }
  get isPlaying () { return this.ws.isPlaying() }

  playPause () {
    return this.ws.playPause().catch(err => this._playFailed(err))
  }

  play () { return this.ws.play().catch(err => this._playFailed(err)) }
  pause () { this.ws.pause() }

  _playFailed (err) {
    if (err && err.name === 'AbortError') return
    this.onError(`Playback failed: ${err?.message || 'the media could not be played'}`)
  }

  seek (seconds) {
    const d = this.duration
    if (!(d > 0)) return
    const t = Math.max(0, Math.min(d, seconds))
    this.ws.setTime(t)
    // wavesurfer only notes a seek asked for while the media is still seeking (readyState below
    // HAVE_FUTURE_DATA), then forgets it when the earlier seek's `seeking` event arrives: J then
    // ArrowRight, faster than the media seeks, ended on J's target. Media with metadata takes a new
    // position at any time and the last one wins, so give it the position ourselves.
    const media = this.ws.getMediaElement()
    if (media && media.readyState >= 1 && media.currentTime !== t) media.currentTime = t
  }

  skip (delta) { this.seek(this.currentTime + delta) }

  /** Seek to a segment start and keep it in view. */
  seekToSegment (id) {
    const seg = this.state.segment(id)
    if (!seg) return
    this.seek(seg.start)
    if (this.pxPerSec > 0) this.ws.setScrollTime(Math.max(0, seg.start - 0.5))
  }

  /** Play one segment alone (stops at its end). */
  playSegment (id) {
    const seg = this.state.segment(id)
    if (!seg) return
    this.ws.play(seg.start, seg.end).catch(err => this._playFailed(err))
  }

  /** Play the segment over and over (again: stop). Returns whether it loops now. */
  toggleLoop (id) {
    if (this.looping) {
      const was = this.looping
      this.stopLoop()
      if (was === id || !id) return false
    }
    const seg = id && this.state.segment(id)
    if (!seg) return false
    this.looping = id
    this.seek(seg.start)
    this.play()
    this.emit('loop', id)
    return true
  }

  stopLoop () {
    if (!this.looping) return
    this.looping = null
    this.emit('loop', null)
  }

  _keepLooping (t) {
    const seg = this.state.segment(this.looping)
    // Gone, or the worker moved the playhead elsewhere: the loop ends.
    if (!seg || t < seg.start - 0.25 || t > seg.end + 0.5) { this.stopLoop(); return }
    if (t >= seg.end) this.seek(seg.start)
  }

  /** Seconds one nudge moves a boundary: about 5 px at the current zoom, 1 ms to 1 s. */
  nudgeStep () {
    const px = Math.max(this.pxPerSec, this.fitPxPerSec())
    return Math.min(1, Math.max(TIME_STEP, Math.round((5 / px) * 1000) / 1000))
  }

  setRate (rate) {
    const r = Math.min(2, Math.max(0.5, Number(rate) || 1))
    this.rate = r
    // Also the default: loading the media resets playbackRate to defaultPlaybackRate.
    if (this.media) this.media.defaultPlaybackRate = r
    this.ws.setPlaybackRate(r, true)
    this.emit('rate', r)
  }

  stepRate (dir) {
    const idx = RATES.findIndex(r => r >= this.rate - 1e-9)
    const next = RATES[Math.min(RATES.length - 1, Math.max(0, (idx < 0 ? 2 : idx) + dir))]
    this.setRate(next)
  }

  // ---- zoom ---------------------------------------------------------------------------------

  fitPxPerSec () {
    const width = this.waveEl.clientWidth || 1000
    return this.duration > 0 ? width / this.duration : 1
  }

  zoomTo (px) {
    if (!this.ready) return // wavesurfer cannot zoom before the waveform exists
    const fit = this.fitPxPerSec()
    const next = px <= fit * 1.01 ? 0 : Math.min(MAX_PX_PER_SEC, px)
    this.pxPerSec = next
    this.ws.zoom(next)
    this.emit('zoom', next)
  }

  zoomIn () { this.zoomTo(Math.max(this.pxPerSec, this.fitPxPerSec()) * 2) }
  zoomOut () { this.zoomTo(Math.max(this.pxPerSec, this.fitPxPerSec()) / 2) }
  zoomFit () { this.zoomTo(0) }

  /** Human description of the zoom level, e.g. "whole file" or "10 px/ms". */
  zoomLabel () {
    if (!this.pxPerSec) return 'whole file'
    return this.pxPerSec >= 1000 ? `${Math.round(this.pxPerSec / 100) / 10} px/ms` : `${Math.round(this.pxPerSec)} px/s`
  }

  // ---- recording (press R while playing) ----------------------------------------------------

  get isRecording () { return Boolean(this.recording) }

  toggleRecording () {
    if (this.recording) this.stopRecording()
    else this.startRecording()
  }

  startRecording () {
    if (this.recording || !(this.duration > 0)) return
    const start = this.currentTime
    const trackIds = this.state.recordTargets()
    const region = this._addRegion({ id: RECORDING_ID, start, end: Math.min(this.duration, start + 0.01), drag: false, resize: false, color: 'rgba(220, 38, 38, 0.25)' })
    this.recording = { start, trackIds, region }
    if (!this.isPlaying) this.play()
    this.emit('recording', true)
  }

  _growRecording (t) {
    const r = this.recording
    if (t > r.start) r.region.setOptions({ end: t })
  }

  stopRecording () {
    const r = this.recording
    if (!r) return
    this.recording = null
    const end = this.currentTime
    r.region.remove()
    this.emit('recording', false)
    if (end - r.start < 0.05) return // a double tap, not a segment
    const tracks = r.trackIds.filter(t => this.state.track(t))
    if (!tracks.length) tracks.push(this.state.ensureActiveTrack())
    // One segment per track; the first is selected (each add is its own undo step).
    const ids = tracks.map(track => this.state.addSegment({ track, start: r.start, end }))
    this.state.select(ids[0])
  }

  // ---- channels ---------------------------------------------------------------------------------

  /** One waveform per channel (stacked, the same total height: lane N over channel N when the
   *  tracks are one per channel), or both in one (channel 1 above the axis, channel 2 below). */
  toggleChannels () {
    if (this.channelCount < 2) return false
    this.splitChannels = !this.splitChannels
    const height = Math.floor(WAVE_HEIGHT / this.channelCount)
    const colors = { waveColor: '#9aa9bb', progressColor: '#4b6584' }
    this.ws.setOptions({
      splitChannels: this.splitChannels ? Array.from({ length: this.channelCount }, () => ({ ...colors, height })) : undefined,
      height: WAVE_HEIGHT
    })
    this.emit('channels', this.splitChannels)
    return this.splitChannels
  }

  // ---- spectrogram --------------------------------------------------------------------------

  /** Why the spectrogram cannot be shown, or null when it can. */
  spectrogramUnavailableReason () {
    if (this.spectrogramUrl) return null // precomputed: no decoding needed
    if (this.peaksMode) {
      return 'Spectrogram unavailable: this task streams long media with precomputed peaks, so the audio is never decoded in the browser.'
    }
    if (!this.ready) return 'Spectrogram available once the media has loaded.'
    return null
  }

  toggleSpectrogram () {
    if (this.spectrogram) {
      this.spectrogram.destroy()
      this.spectrogram = null
      this.spectrogramEl.replaceChildren()
      this.spectrogramEl.hidden = true
      this.emit('spectrogram', false)
      return false
    }
    if (this.spectrogramUnavailableReason()) return false
    this.spectrogramEl.hidden = false
    if (this.spectrogramUrl) {
      this.spectrogramDrawnAt = 0
      this.spectrogram = new PrecomputedSpectrogram({
        container: this.spectrogramEl,
        ws: this.ws,
        load: () => (this._spectrogramData ||= fetchSpectrogram(this.spectrogramUrl).catch(err => {
          this._spectrogramData = null // a later toggle retries
          // Optional view: say what failed (host only), but the task stays doable.
          throw Object.assign(new Error(failureMessage('spectrogram', this.spectrogramUrl, err)), { described: true })
        })),
        onDrawn: at => { this.spectrogramDrawnAt = at; this.emit('spectrogram-drawn', at) }
      })
      this.emit('spectrogram', true)
      return true
    }
    this.spectrogram = this.ws.registerPlugin(SpectrogramPlugin.create({
      container: this.spectrogramEl,
      height: 128,
      labels: true,
      scale: 'mel',
      frequencyMax: Math.min(8000, (this.ws.getDecodedData()?.sampleRate || 16000) / 2)
    }))
    this.emit('spectrogram', true)
    return true
  }

  destroy () {
    this.unAll()
    this.unsubscribe()
    this.overview.remove()
    for (const ev of ['pointerdown', 'pointermove', 'pointerup', 'keydown', 'keyup']) window.removeEventListener(ev, this._onAlt, true)
    this.ruler?.destroy()
    window.removeEventListener('pointerup', this._onPointerUp)
    this.disableDragSelection?.()
    this.ws.destroy()
    this.media.remove()
  }
}
