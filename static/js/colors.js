// Track colours from the label schema. Pure.

/** A colour with alpha for region fills (#rrggbb exactly; any other CSS colour via color-mix). */
export function withAlpha (color, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(String(color || ''))
  if (!m) return `color-mix(in srgb, ${color || '#2b7bb9'} ${Math.round(alpha * 100)}%, transparent)`
  const n = parseInt(m[1], 16)
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`
}

const DEFAULT_COLORS = ['#2b7bb9', '#8a5cc2', '#c2410c', '#15803d', '#b91c1c', '#0e7490', '#a16207']

export function categoryColor (schema, categoryName) {
  const idx = schema.tracks.findIndex(c => c.name === categoryName)
  const cat = schema.tracks[idx]
  return cat?.color || DEFAULT_COLORS[(idx < 0 ? 0 : idx) % DEFAULT_COLORS.length]
}

const SHADES = [0, -0.3, 0.35, -0.5, 0.55]

/** A track's colour: its category's colour, shaded by the label's position so that tracks of one
 *  category (Speaker: Agent / Speaker: Customer) differ. */
export function trackColor (schema, track) {
  if (!track) return '#9ca3af'
  const base = categoryColor(schema, track.category)
  const labels = schema.tracks.find(c => c.name === track.category)?.labels || []
  const shade = SHADES[Math.max(0, labels.indexOf(track.label)) % SHADES.length]
  const m = /^#([0-9a-f]{6})$/i.exec(base)
  if (!m || !shade) return base
  const n = parseInt(m[1], 16)
  const mix = c => Math.round(shade > 0 ? c + (255 - c) * shade : c * (1 + shade))
  const rgb = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map(mix)
  return '#' + rgb.map(c => c.toString(16).padStart(2, '0')).join('')
}
