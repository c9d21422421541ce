// Autosave of the whole answer in localStorage, keyed by the task, so a reload, a crash or an
// expired session never loses work. Storage and timers are injected so this is testable in node.

export const STORAGE_PREFIX = 'gtkit:answer:'
export const FORMAT_VERSION = 1

export function storageKey (taskKey) {
  return STORAGE_PREFIX + String(taskKey || 'default')
}

/**
 * @param {object} opts
 * @param {Storage|null} opts.storage localStorage (or a fake); null disables autosave
 * @param {string} opts.taskKey unique per task (data-task-key)
 * @param {number} [opts.delayMs] at most one write per this many ms (the first edit starts it)
 * @param {(e: Error) => void} [opts.onError] quota or privacy-mode failures
 * @param {() => string} [opts.now] ISO clock
 * @param {(fn: () => void) => void} [opts.whenIdle] runs the write when the page is idle
 */
export function createAutosave ({ storage, taskKey, delayMs = 1000, onError = () => {}, now = () => new Date().toISOString(), setTimer = setTimeout, clearTimer = clearTimeout, whenIdle = defaultWhenIdle }) {
  const key = storageKey(taskKey)
  let timer = null
  let pending = null

  function write (answer) {
    if (!storage) return false
    try {
      storage.setItem(key, JSON.stringify({ v: FORMAT_VERSION, savedAt: now(), answer }))
      return true
    } catch (err) {
      onError(err)
      return false
    }
  }

  return {
    key,
    /**
     * Save soon. Off the typing path: a call only keeps getAnswer (no work), the timer is not
     * restarted by later calls (so continuous typing still saves once per delayMs), and the
     * answer (~500 KB at 3,000 segments) is built and written when the page is idle.
     */
    save (getAnswer) {
      pending = getAnswer
      if (timer !== null) return
      timer = setTimer(() => {
        whenIdle(() => {
          timer = null
          const fn = pending
          pending = null
          if (fn) write(fn())
        })
      }, delayMs)
    },
    /** Write now (page hide / before unload). */
    flush () {
      if (timer !== null) clearTimer(timer)
      timer = null
      const fn = pending
      pending = null
      return fn ? write(fn()) : false
    },
    saveNow (answer) {
      return write(answer)
    },
    /** {savedAt, answer} or null when nothing (valid) is stored. */
    load () {
      if (!storage) return null
      let raw
      try {
        raw = storage.getItem(key)
      } catch (err) {
        onError(err)
        return null
      }
      if (!raw) return null
      try {
        const data = JSON.parse(raw)
        if (!data || data.v !== FORMAT_VERSION || !data.answer || typeof data.answer !== 'object') return null
        return { savedAt: data.savedAt || null, answer: data.answer }
      } catch {
        return null
      }
    },
    /** Forget the saved answer (after submit, or when the worker discards it). */
    clear () {
      if (timer !== null) clearTimer(timer)
      timer = null
      pending = null
      if (!storage) return
      try {
        storage.removeItem(key)
      } catch (err) {
        onError(err)
      }
    }
  }
}

/** requestIdleCallback (bounded, so a busy page still saves), else at once. */
function defaultWhenIdle (fn) {
  if (typeof globalThis.requestIdleCallback === 'function') globalThis.requestIdleCallback(fn, { timeout: 2000 })
  else fn()
}

/** window.localStorage, or null where it is unavailable (sandboxed iframes, privacy modes). */
export function defaultStorage () {
  try {
    const s = globalThis.localStorage
    const probe = '__gtkit_probe__'
    s.setItem(probe, '1')
    s.removeItem(probe)
    return s
  } catch {
    return null
  }
}

export const PREFERENCES_KEY = 'gtkit:prefs'
const PREFERENCE_CHECKS = {
  spectrogram: v => typeof v === 'boolean',
  rate: v => typeof v === 'number' && v >= 0.5 && v <= 2
}

/**
 * The worker's own viewing preferences (spectrogram shown, playback rate), kept across tasks in
 * this browser. Only known keys with valid values are read back, so a stale or edited entry is
 * ignored rather than breaking the page.
 * @param {object} opts
 * @param {Storage|null} opts.storage
 */
export function createPreferences ({ storage, onError = () => {} }) {
  function load () {
    if (!storage) return {}
    let data
    try {
      data = JSON.parse(storage.getItem(PREFERENCES_KEY) || '{}')
    } catch {
      return {}
    }
    const out = {}
    for (const [key, ok] of Object.entries(PREFERENCE_CHECKS)) {
      if (data && ok(data[key])) out[key] = data[key]
    }
    return out
  }
  return {
    load,
    /** Merge `changes` into the stored preferences (invalid values are dropped). */
    save (changes) {
      if (!storage) return
      const next = { ...load() }
      for (const [key, value] of Object.entries(changes)) {
        if (PREFERENCE_CHECKS[key]?.(value)) next[key] = value
      }
      try {
        storage.setItem(PREFERENCES_KEY, JSON.stringify(next))
      } catch (err) {
        onError(err)
      }
    }
  }
}
