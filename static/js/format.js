// Time formatting shared by the views. Pure.

/** 83.4567 -> "1:23.457"; 3723.5 -> "1:02:03.500". Millisecond precision, never rounds up past 59.999. */
export function formatTime (seconds, { ms = true } = {}) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0
  const totalMs = Math.round(seconds * 1000)
  const h = Math.floor(totalMs / 3600000)
  const m = Math.floor((totalMs % 3600000) / 60000)
  const s = Math.floor((totalMs % 60000) / 1000)
  const frac = totalMs % 1000
  const ss = String(s).padStart(2, '0')
  const tail = ms ? `.${String(frac).padStart(3, '0')}` : ''
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}${tail}` : `${m}:${ss}${tail}`
}

/** Parse "1:23.456", "83.456" or "1:02:03.5" into seconds; NaN when unreadable. */
export function parseTime (text) {
  const parts = String(text).trim().split(':')
  if (!parts.length || parts.length > 3 || parts.some(p => p.trim() === '' || !/^\d*\.?\d*$/.test(p.trim()))) return NaN
  return parts.reduce((acc, p) => acc * 60 + Number(p), 0)
}

const NICE_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]

/**
 * Timeline spacing for a zoom level: ticks at least `minTickPx` apart, labels at least
 * `minLabelPx` apart, and optionally no more than `maxNotches` ticks over the whole file.
 * Returns {tick, label, every} in seconds; `every` = label every N ticks.
 */
export function timelineSpacing (pxPerSec, duration, { minTickPx = 8, minLabelPx = 90, maxNotches = Infinity } = {}) {
  const px = pxPerSec > 0 ? pxPerSec : 1
  const d = duration > 0 ? duration : 1
  const tick = NICE_STEPS.find(v => v * px >= minTickPx && d / v <= maxNotches) ?? NICE_STEPS[NICE_STEPS.length - 1]
  const label = NICE_STEPS.find(v => v >= tick && v * px >= minLabelPx && isMultiple(v, tick)) ?? tick * 10
  return { tick, label, every: Math.max(1, Math.round(label / tick)) }
}

function isMultiple (a, b) {
  const r = a / b
  return Math.abs(r - Math.round(r)) < 1e-9
}
