// Media loading: the waveform peaks (main.js's early download, else fetched here) and what a failed
// download still allows, the Player over the media, and what the worker sees while it loads or when
// it cannot load (which file, which host, why; a media failure also blocks Submit).

import { Player, fetchPeaks } from './player.js'
import { parsePeaks } from './peaks.js'
import { failureMessage, mediaErrorReason, probeUrl } from './failure.js'
import { PEAKS_JSON_VERSION } from './contract.js'

// Above this length, decoding the whole file in the browser is what the peaks exist to avoid.
const MAX_DECODE_SECONDS = 20 * 60
const SLOW_LOAD_MS = 20000

/** Peaks from main.js's worker (started while the modules loaded), else fetched here. */
async function downloadPeaks (peaksUrl, prefetched) {
  const early = prefetched.peaks && prefetched.peaksUrl === peaksUrl ? prefetched.peaks : null
  if (early) {
    try {
      return parsePeaks(await early)
    } catch (err) {
      if (!err.fallback) throw err
    }
  }
  return fetchPeaks(peaksUrl)
}

/**
 * The task's peaks (`timings.peaks` marks their arrival), or null to let wavesurfer decode the
 * media. The peaks only draw the waveform, so a failure leaves the task doable: a notice and
 * decoding, or for media too long to decode, a flat waveform and an error.
 * @param {import('./task-data.js').Task} task with a peaksUrl
 */
export async function loadPeaks ({ peaksUrl, durationHint }, { prefetched, alerts, timings }) {
  try {
    const peaks = await downloadPeaks(peaksUrl, prefetched)
    timings.peaks = performance.now()
    return peaks
  } catch (err) {
    const why = failureMessage('peaks', peaksUrl, err)
    if (durationHint > MAX_DECODE_SECONDS) {
      // Decoding this much audio could exhaust the tab: keep playback and segments, draw flat.
      alerts.showError(`${why} The waveform stays flat; you can still play the media and make segments.`)
      return parsePeaks({ version: PEAKS_JSON_VERSION, duration: durationHint, data: [[0, 0]] })
    }
    alerts.showNotice(`${why} Decoding the media in the browser instead.`)
    return null
  }
}

/** The media did not load: say which host and why (asked again by a probe fetch, since a media
 *  element only reports "error"), and block Submit: there is nothing to label. */
async function mediaFailed ({ mediaType, mediaUrl }, alerts, err, media) {
  const decodeFailed = media?.error?.code === 3 || err?.name === 'EncodingError'
  const reason = mediaErrorReason(err, media)
  alerts.blockTask('media', failureMessage(mediaType, mediaUrl, { reason }))
  if (decodeFailed || !mediaUrl) return
  const probe = await probeUrl(mediaUrl)
  if (!probe.ok) alerts.blockTask('media', failureMessage(mediaType, mediaUrl, probe))
}

/**
 * The Player over the task's media in the layout's stage, with the loading line kept current.
 * @param {object} o
 * @param {import('./task-data.js').Task} o.task
 * @param {object} o.layout from layout.js
 * @param {object} o.alerts from alerts.js
 * @param {import('./state.js').AnswerState} o.state
 * @param {object|null} o.peaks from loadPeaks
 * @param {() => void} o.onReady the waveform is ready (after the loading line is hidden)
 */
export function createPlayer ({ task, layout, alerts, state, peaks, onReady }) {
  const { mediaUrl, mediaType, spectrogramUrl, durationHint } = task
  const { waveEl, rulerEl, spectrogramEl, videoHost, loading, mediaError } = layout
  if (!mediaUrl) alerts.blockTask('media', 'The media could not be loaded: the task has no media URL.')
  const player = new Player({
    waveEl, rulerEl, spectrogramEl, videoHost, mediaUrl, mediaType, peaks, spectrogramUrl, durationHint, state,
    onError: alerts.showError,
    onMediaError: (err, media) => mediaFailed(task, alerts, err, media),
    onReady: () => {
      loading.hidden = true
      onReady()
    }
  })
  player.ws.on('loading', pct => { loading.textContent = `Loading media… ${pct}%` })
  setTimeout(() => {
    if (!player.ready && mediaError.hidden) {
      loading.textContent = 'The media is taking a long time to load… (a very long file may not load without precomputed peaks)'
    }
  }, SLOW_LOAD_MS)
  return player
}
