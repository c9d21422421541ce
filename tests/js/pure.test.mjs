import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parsePeaks } from '../../static/js/peaks.js'
import { formatTime, parseTime, timelineSpacing } from '../../static/js/format.js'
import { trackColor, withAlpha } from '../../static/js/colors.js'

test('parsePeaks turns a PeaksFile into wavesurfer peaks + duration', () => {
  const out = parsePeaks({ version: 1, sample_rate: 8000, peaks_per_second: 2, duration: 1.5, channels: 1, data: [[-0.5, 0.5, -1.5, 2, -0.1, 0.1]] })
  assert.equal(out.duration, 1.5)
  assert.equal(out.peaksPerSecond, 2)
  assert.equal(out.peaks.length, 1)
  assert.ok(out.peaks[0] instanceof Float32Array)
  assert.deepEqual([...out.peaks[0]].map(v => Math.round(v * 10) / 10), [-0.5, 0.5, -1, 1, -0.1, 0.1])
})

test('parsePeaks explains what is wrong with a bad file', () => {
  assert.throws(() => parsePeaks(null), /not a JSON object/)
  assert.throws(() => parsePeaks({ version: 2, duration: 1, data: [[0, 0]] }), /unsupported waveform peaks version 2/)
  assert.throws(() => parsePeaks({ version: 1, duration: 0, data: [[0, 0]] }), /no positive duration/)
  assert.throws(() => parsePeaks({ version: 1, duration: 1, data: [] }), /no data/)
  assert.throws(() => parsePeaks({ version: 1, duration: 1, data: [[0]] }), /channel 0 is empty/)
})

test('formatTime shows milliseconds and hours when needed', () => {
  assert.equal(formatTime(0), '0:00.000')
  assert.equal(formatTime(83.4567), '1:23.457')
  assert.equal(formatTime(59.9996), '1:00.000')
  assert.equal(formatTime(3723.5), '1:02:03.500')
  assert.equal(formatTime(5, { ms: false }), '0:05')
  assert.equal(formatTime(NaN), '0:00.000')
})

test('parseTime reads what formatTime writes', () => {
  for (const t of [0, 1.5, 83.457, 3723.5]) assert.equal(parseTime(formatTime(t)), t)
  assert.ok(Number.isNaN(parseTime('abc')))
  assert.ok(Number.isNaN(parseTime('1::2')))
})

test('track colours: schema colour, shaded per label so tracks of one category differ', () => {
  const schema = { tracks: [{ name: 'speaker', labels: ['Customer', 'Agent'], color: '#2b7bb9' }, { name: 'language', labels: ['English'] }] }
  const customer = trackColor(schema, { category: 'speaker', label: 'Customer' })
  const agent = trackColor(schema, { category: 'speaker', label: 'Agent' })
  assert.equal(customer, '#2b7bb9')
  assert.match(agent, /^#[0-9a-f]{6}$/)
  assert.notEqual(agent, customer)
  assert.equal(trackColor(schema, { category: 'language', label: 'English' }), '#8a5cc2', 'second default colour')
  assert.equal(withAlpha('#2b7bb9', 0.3), 'rgba(43, 123, 185, 0.3)')
  assert.equal(withAlpha('teal', 0.3), 'color-mix(in srgb, teal 30%, transparent)')
})

test('ruler spacing: ticks >= 8 px apart, labels >= 90 px, from whole hours down to milliseconds', () => {
  assert.deepEqual(timelineSpacing(60, 21), { tick: 0.2, label: 2, every: 10 })
  assert.deepEqual(timelineSpacing(10000, 10800), { tick: 0.001, label: 0.01, every: 10 })
  const overview = timelineSpacing(1200 / 10800, 10800)
  assert.ok(overview.tick * (1200 / 10800) >= 8 && overview.label * (1200 / 10800) >= 90)
  assert.deepEqual(timelineSpacing(100, 10800, { maxNotches: 1200 }).tick, 10)
})
