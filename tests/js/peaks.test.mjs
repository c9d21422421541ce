import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeBinaryPeaks, isBinaryPeaks, parsePeaks } from '../../static/js/peaks.js'
import { runPython } from './helpers.mjs'

/** The layout toolkit/ingest/peaks.py writes: GTPK, uint32 LE header length, JSON header, int16 LE. */
function binary (header, values, { magic = 'GTPK', pad = '' } = {}) {
  const json = new TextEncoder().encode(JSON.stringify(header) + pad)
  const out = new Uint8Array(8 + json.length + 2 * values.length)
  out.set(new TextEncoder().encode(magic), 0)
  const view = new DataView(out.buffer)
  view.setUint32(4, json.length, true)
  out.set(json, 8)
  values.forEach((v, i) => view.setInt16(8 + json.length + 2 * i, v, true))
  return out.buffer
}

const HEADER = { version: 2, sample_rate: 8000, peaks_per_second: 2, duration: 1.5, channels: 2, length: 2, scale: 32767 }
const VALUES = [-32767, 32767, -16384, 16383, -1, 1, 0, 32767]

test('decodeBinaryPeaks reads int16 pairs per channel as floats in [-1, 1]', () => {
  for (const pad of ['', ' ']) { // an odd header length puts the int16 data at an odd offset
    const buf = binary(HEADER, VALUES, { pad })
    assert.ok(isBinaryPeaks(buf))
    const out = parsePeaks(buf)
    assert.equal(out.duration, 1.5)
    assert.equal(out.peaksPerSecond, 2)
    assert.equal(out.peaks.length, 2)
    assert.ok(out.peaks.every(ch => ch instanceof Float32Array && ch.length === 4))
    assert.deepEqual([...out.peaks[0]].map(v => Math.round(v * 1000) / 1000), [-1, 1, -0.5, 0.5])
    assert.deepEqual([...out.peaks[1]].map(v => Math.round(v * 1000) / 1000), [-0, 0, 0, 1])
  }
})

test('parsePeaks also takes JSON bytes, and explains a bad binary file', () => {
  const json = new TextEncoder().encode(JSON.stringify({ version: 1, duration: 2, peaks_per_second: 1, data: [[-0.25, 0.25, 0, 0.5]] })).buffer
  assert.deepEqual([...parsePeaks(json).peaks[0]], [-0.25, 0.25, 0, 0.5])
  assert.throws(() => parsePeaks(new TextEncoder().encode('{"version": 1,').buffer), /not valid JSON/)
  assert.throws(() => decodeBinaryPeaks(binary(HEADER, VALUES.slice(1))), /has 7 values, expected 8/)
  assert.throws(() => decodeBinaryPeaks(binary({ ...HEADER, version: 3 }, VALUES)), /unsupported waveform peaks version 3/)
  assert.throws(() => decodeBinaryPeaks(binary({ ...HEADER, length: 0 }, [])), /no channels, length or scale/)
  assert.throws(() => decodeBinaryPeaks(binary(HEADER, VALUES).slice(0, 12)), /header is truncated/)
  assert.throws(() => parsePeaks(binary(HEADER, VALUES, { magic: 'XXXX' })), /not valid JSON/)
})

test('a file written by toolkit/ingest/peaks.py decodes to the same peaks as its JSON', (t) => {
  const out = runPython(
    'import base64, json\nfrom toolkit.ingest.peaks import compute_peaks, peaks_binary, peaks_json\n' +
    'p = compute_peaks("examples/media/call_001.wav", peaks_per_second=20, channels=2)\n' +
    'print(json.dumps({"bin": base64.b64encode(peaks_binary(p)).decode(), "json": peaks_json(p).decode()}))', null)
  if (out === null) return t.skip('no .venv')
  const bytes = Buffer.from(out.bin, 'base64')
  const fromBinary = parsePeaks(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
  const fromJson = parsePeaks(JSON.parse(out.json))
  assert.equal(fromBinary.duration, fromJson.duration)
  assert.equal(fromBinary.peaks.length, 2)
  for (let c = 0; c < 2; c++) {
    assert.equal(fromBinary.peaks[c].length, fromJson.peaks[c].length)
    const worst = fromBinary.peaks[c].reduce((m, v, i) => Math.max(m, Math.abs(v - fromJson.peaks[c][i])), 0)
    assert.ok(worst < 1e-4, `channel ${c} differs by ${worst}`)
  }
})
