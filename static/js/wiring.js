// What keeps the page in step with the state and the player: a burst of state changes (one drag is
// many) becomes one render per microtask, the playhead one highlight per animation frame, and the
// player's events update the toolbar and the worker's viewing preferences. (Player itself keeps
// its regions in step with the state.)

/**
 * Call fn(kinds, detail) once per microtask with the set of change kinds since the last call.
 * detail.layout: something moved, was added or removed, or a track changed (false when only the
 * text or attributes of detail.segments changed: a keystroke, which must not cost O(segments)).
 */
export function coalesceChanges (state, fn) {
  let pending = null
  let detail = null
  return state.subscribe(change => {
    if (!pending) {
      pending = new Set()
      detail = { layout: false, segments: new Set() }
      queueMicrotask(() => {
        const kinds = pending
        const d = detail
        pending = null
        detail = null
        fn(kinds, d)
      })
    }
    pending.add(change.kind)
    if (change.kind === 'segments') {
      for (const id of change.ids || []) detail.segments.add(id)
      if (change.layout !== false) detail.layout = true
    } else if (change.kind === 'all' || change.kind === 'tracks') {
      detail.layout = true
    }
  })
}

/**
 * fn() once, `delayMs` after the last call and when the page is idle: work that is O(segments)
 * (validating and serialising the whole answer) kept off the typing path.
 */
export function idleDebounce (fn, delayMs = 300) {
  let timer = null
  const run = () => {
    timer = null
    fn()
  }
  return {
    schedule () {
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => {
        if (typeof requestIdleCallback === 'function') requestIdleCallback(run, { timeout: 1000 })
        else run()
      }, delayMs)
    },
    /** Run now if scheduled. */
    flush () {
      if (timer === null) return
      clearTimeout(timer)
      run()
    }
  }
}

/** A function that calls fn with its latest argument at most once per animation frame. */
export function perFrame (fn) {
  let queued = false
  let latest
  return value => {
    latest = value
    if (queued) return
    queued = true
    requestAnimationFrame(() => {
      queued = false
      fn(latest)
    })
  }
}

// Every Player event but the playhead and a drag in progress changes something the toolbar shows.
const TOOLBAR_EVENTS = ['ready', 'play', 'pause', 'zoom', 'rate', 'recording', 'loop', 'channels', 'spectrogram', 'spectrogram-drawn']

/** Player events -> the views (views.js), and the rate and spectrogram choices -> preferences. */
export function wirePlayer (player, views, prefs) {
  player.on('time', perFrame(t => views.highlight(t)))
  player.on('region-drag', (id, start, end) => views.list.previewTimes(id, start, end))
  // A segment drawn on the waveform: its row comes into view (in the list only) with the text box
  // focused, once the list has rendered it (the render is queued in a microtask).
  player.on('segment-drawn', id => requestAnimationFrame(() => views.list.focusSegment(id, 'text', { pageScroll: false })))
  for (const name of TOOLBAR_EVENTS) player.on(name, () => views.toolbar.update())
  player.on('rate', rate => prefs.save({ rate }))
  player.on('spectrogram', shown => prefs.save({ spectrogram: shown }))
}

/** The worker's saved viewing preferences: the rate now, the spectrogram once the media is ready
 *  (after the ready handlers, as a click would come) and only where this task can show one. */
export function applyPreferences (player, preferred) {
  if (preferred.rate) player.setRate(preferred.rate)
  player.once('ready', () => queueMicrotask(() => {
    if (preferred.spectrogram && !player.spectrogram && !player.spectrogramUnavailableReason()) player.toggleSpectrogram()
  }))
}
