// PeaksFile JSON (toolkit/models/manifest.py PeaksFile, written by `gtkit peaks`) -> wavesurfer
// `peaks` + `duration`. Pure: no fetch, no DOM.

/**
 * @param {object} json {version: 1, sample_rate, peaks_per_second, duration, channels,
 *                       data: [[min, max, min, max, ...] per channel]} (channels may also be
 *                       Float32Arrays)
 * @returns {{peaks: Float32Array[], duration: number, peaksPerSecond: number}}
 */
export function parsePeaks (json) {
  if (!json || typeof json !== 'object') throw new Error('the waveform peaks file is not a JSON object')
  if (json.version !== 1) throw new Error(`unsupported waveform peaks version ${JSON.stringify(json.version)}`)
  const duration = Number(json.duration)
  if (!(duration > 0)) throw new Error('the waveform peaks file has no positive duration')
  if (!Array.isArray(json.data) || !json.data.length) throw new Error('the waveform peaks file has no data')
  const peaks = json.data.map((channel, i) => {
    const typed = channel instanceof Float32Array
    if (!(typed || Array.isArray(channel)) || channel.length < 2) throw new Error(`waveform peaks channel ${i} is empty`)
    // Float32Array channels (parsed in a worker by main.js) are checked in place, not copied.
    const out = typed ? channel : new Float32Array(channel.length)
    for (let j = 0; j < channel.length; j++) {
      const v = Number(channel[j])
      // Clamp: wavesurfer expects [-1, 1]; a bad value must not flatten the whole drawing.
      out[j] = Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0
    }
    return out
  })
  return { peaks, duration, peaksPerSecond: Number(json.peaks_per_second) || 0 }
}
