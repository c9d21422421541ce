// Peaks files (toolkit/peaks.py, `gtkit peaks`, `gtkit manifest build --peaks`) -> wavesurfer
// `peaks` + `duration`. Two encodings of the same peaks: the PeaksFile JSON (version 1) and the
// binary file (`GTPK`, a PeaksHeader, int16 pairs), which needs no JSON.parse of millions of
// numbers. Pure: no fetch, no DOM.

import { readBinaryHeader } from './binary.js'
import { PEAKS_BINARY_VERSION, PEAKS_JSON_VERSION, PEAKS_MAGIC } from './contract.js'

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** True when `buffer` holds the binary encoding (by its first bytes, whatever the URL says). */
export function isBinaryPeaks (buffer) {
  return buffer instanceof ArrayBuffer && buffer.byteLength >= 4 &&
    String.fromCharCode(...new Uint8Array(buffer, 0, 4)) === PEAKS_MAGIC
}

/**
 * The binary encoding -> {version: 2, sample_rate, peaks_per_second, duration, channels,
 * data: Float32Array[] in [-1, 1]}. Throws an Error with a readable message.
 * @param {ArrayBuffer} buffer
 */
export function decodeBinaryPeaks (buffer) {
  const { header, offset } = readBinaryHeader(buffer, PEAKS_MAGIC, 'waveform peaks')
  if (!header || header.version !== PEAKS_BINARY_VERSION) throw new Error(`unsupported waveform peaks version ${JSON.stringify(header && header.version)}`)
  const { channels, length: pairs, scale } = header
  if (!(Number.isInteger(channels) && channels > 0 && Number.isInteger(pairs) && pairs > 0 && scale > 0)) {
    throw new Error('the waveform peaks header has no channels, length or scale')
  }
  const count = channels * 2 * pairs
  if (buffer.byteLength - offset !== 2 * count) {
    throw new Error(`the waveform peaks file has ${(buffer.byteLength - offset) / 2} values, expected ${count}`)
  }
  // An Int16Array view needs an even offset and the platform's byte order to be little-endian.
  const ints = LITTLE_ENDIAN
    ? new Int16Array(offset % 2 ? buffer.slice(offset) : buffer, offset % 2 ? 0 : offset, count)
    : (view => Int16Array.from({ length: count }, (_, i) => view.getInt16(offset + 2 * i, true)))(new DataView(buffer))
  const data = []
  for (let c = 0; c < channels; c++) {
    const out = new Float32Array(2 * pairs)
    const base = c * 2 * pairs
    for (let j = 0; j < out.length; j++) out[j] = Math.max(-1, Math.min(1, ints[base + j] / scale))
    data.push(out)
  }
  return { ...header, data }
}

/**
 * A peaks file as fetched (ArrayBuffer, binary or JSON text) or already parsed (a PeaksFile object,
 * whose channels may be arrays or Float32Arrays) -> wavesurfer input.
 * @param {ArrayBuffer|object} input
 * @returns {{peaks: Float32Array[], duration: number, peaksPerSecond: number}}
 */
export function parsePeaks (input) {
  let json = input
  if (input instanceof ArrayBuffer) {
    if (isBinaryPeaks(input)) {
      json = decodeBinaryPeaks(input)
    } else {
      try {
        json = JSON.parse(new TextDecoder().decode(input))
      } catch {
        throw new Error('the waveform peaks file is not valid JSON')
      }
    }
  }
  if (!json || typeof json !== 'object') throw new Error('the waveform peaks file is not a JSON object')
  if (json.version !== PEAKS_JSON_VERSION && !(json.version === PEAKS_BINARY_VERSION && json.data?.every?.(ch => ch instanceof Float32Array))) {
    throw new Error(`unsupported waveform peaks version ${JSON.stringify(json.version)}`)
  }
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
