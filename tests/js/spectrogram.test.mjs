import { test } from 'node:test'
import assert from 'node:assert/strict'
import { colorTable, columnFrames, parseSpectrogram, renderColumns } from '../../static/js/spectrogram.js'

/** The layout toolkit/ingest/spectrogram.py writes: GTSG, uint32 LE header length, JSON header, uint8 frames. */
function file (header, data, { magic = 'GTSG' } = {}) {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  out.set(new TextEncoder().encode(magic), 0)
  new DataView(out.buffer).setUint32(4, json.length, true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out.buffer
}

const HEADER = { version: 1, sample_rate: 16000, frames_per_second: 10, hop: 1600, fft_size: 2048, duration: 0.3, frames: 3, bins: 2, frequency_max: 8000, scale: 'linear', db_min: -100, db_max: 0 }

test('parseSpectrogram reads the header and the uint8 matrix without copying', () => {
  const { header, data } = parseSpectrogram(file(HEADER, Uint8Array.from([1, 2, 3, 4, 5, 6])))
  assert.equal(header.frames, 3)
  assert.equal(header.bins, 2)
  assert.deepEqual([...data], [1, 2, 3, 4, 5, 6])
})

test('parseSpectrogram explains what is wrong with a bad file', () => {
  assert.throws(() => parseSpectrogram(new ArrayBuffer(3)), /empty or truncated/)
  assert.throws(() => parseSpectrogram(file(HEADER, new Uint8Array(6), { magic: 'XXXX' })), /not a spectrogram file/)
  assert.throws(() => parseSpectrogram(file({ ...HEADER, version: 2 }, new Uint8Array(6))), /unsupported spectrogram version 2/)
  assert.throws(() => parseSpectrogram(file({ ...HEADER, bins: 0 }, new Uint8Array(6))), /no frames or bins/)
  assert.throws(() => parseSpectrogram(file(HEADER, new Uint8Array(5))), /5 bytes of data, expected 6/)
  const bad = new Uint8Array(file(HEADER, new Uint8Array(6)))
  bad[8] = 0x7b + 1 // corrupt the JSON
  assert.throws(() => parseSpectrogram(bad.buffer), /not valid JSON/)
})

test('columnFrames maps pixel columns to frame ranges of the visible window', () => {
  // 10 frames/s, 100 frames (10 s); 4 columns over [2, 4) s: 5 frames each.
  const a = columnFrames(2, 4, 4, 10, 100)
  assert.deepEqual([...a.from], [20, 25, 30, 35])
  assert.deepEqual([...a.to], [25, 30, 35, 40])
  // Zoomed in past one frame per column: every column still shows the frame under it.
  const b = columnFrames(1.0, 1.2, 4, 10, 100)
  assert.deepEqual([...b.from], [10, 10, 11, 11])
  assert.deepEqual([...b.to], [11, 11, 12, 12])
  // Past the end of the media: empty columns.
  const c = columnFrames(9, 11, 4, 10, 100)
  assert.deepEqual([...c.from], [90, 95, 100, 100])
  assert.deepEqual([...c.to], [95, 100, 100, 100])
})

test('renderColumns draws high bands on top and keeps short loud frames visible when zoomed out', () => {
  const bins = 2
  const frames = 64
  const data = new Uint8Array(frames * bins)
  data[37 * bins + 1] = 255 // one loud frame in the top band
  const lut = colorTable()
  const out = new Uint32Array(2 * bins)
  renderColumns(data, bins, columnFrames(0, 6.4, 2, 10, frames), lut, out, 2)
  // Row 0 is the top band: column 1 (frames 32..63) shows its one loud frame.
  assert.equal(out[0 * 2 + 1], lut[255])
  assert.equal(out[0 * 2 + 0], lut[0])
  assert.equal(out[1 * 2 + 0], lut[0])
  assert.equal(out[1 * 2 + 1], lut[0])
})

test('colorTable is opaque and goes from dark to bright', () => {
  const lut = colorTable()
  const lum = v => (v & 255) + ((v >>> 8) & 255) + ((v >>> 16) & 255)
  assert.equal(lut.length, 256)
  assert.ok(lut.every(v => v >>> 24 === 255))
  assert.ok(lum(lut[0]) < 10 && lum(lut[255]) > 600)
})
