// What the worker is told when a task file cannot be fetched: which file, from which host, and
// why (HTTP status, or the browser refusing it). Task URLs are presigned: their path and query carry
// the signature, so a message or a log line only ever names the host (pure, except probeUrl).

/** What each task URL holds, as a message names it. */
export const FILE_KINDS = {
  audio: 'the audio',
  video: 'the video',
  peaks: 'the waveform peaks',
  spectrogram: 'the spectrogram',
  sidecar: 'the task\'s transcription and pre-segments (sidecar file)',
  review: 'the workers\' answers to review (review file)'
}

/** host[:port] of `url` resolved against `base`, never its path or query. */
export function urlHost (url, base) {
  try {
    return new URL(url, base).host || '(no host)'
  } catch {
    return '(an invalid URL)'
  }
}

/** An Error for a failed download: `status` for an HTTP answer, `network` when fetch() threw. */
export function fetchError (what, { status = 0, cause = null } = {}) {
  const err = new Error(status ? `could not download ${what} (HTTP ${status})` : `could not download ${what} (${cause?.message || 'network error'})`)
  err.status = status
  err.network = !status
  return err
}

/**
 * GET `url` and read its body (`read`, default the ArrayBuffer). Any failure is a fetchError
 * naming `what`: the HTTP status, or `network` when the browser refused or lost the download.
 */
export async function download (url, what, { fetchImpl = globalThis.fetch, read = res => res.arrayBuffer() } = {}) {
  let res
  try {
    res = await fetchImpl(url)
  } catch (err) {
    throw fetchError(what, { cause: err })
  }
  if (!res.ok) throw fetchError(what, { status: res.status })
  try {
    return await read(res)
  } catch (err) {
    throw fetchError(what, { cause: err })
  }
}

/** Why a download failed, in words (pure): from the HTTP status, or why a browser refuses one. */
export function failureReason ({ status = 0, network = false, offline = false, pageOrigin = '' } = {}) {
  if (status === 403) return 'access denied (HTTP 403): the link has probably expired'
  if (status === 401) return 'not authorised (HTTP 401)'
  if (status === 404) return 'not found (HTTP 404)'
  if (status === 410) return 'gone (HTTP 410)'
  if (status >= 500) return `the server failed (HTTP ${status})`
  if (status >= 400) return `refused (HTTP ${status})`
  if (network && offline) return 'this browser is offline'
  if (network) {
    return `the browser could not fetch it: a network error, or the host does not allow this page's origin ${pageOrigin || '(unknown)'} ` +
      '(CORS: it must send Access-Control-Allow-Origin)'
  }
  return ''
}

/** Where the page is (the defaults of failureMessage's `env`; none outside a browser). */
export function pageEnv () {
  return {
    base: globalThis.document?.baseURI,
    pageOrigin: globalThis.location?.origin,
    offline: globalThis.navigator?.onLine === false
  }
}

/**
 * The message for a task file that failed (pure given `env`). `kind` is a key of FILE_KINDS;
 * `failure` is {status, network} (a fetchError, a probeUrl result), or {reason} / an Error whose
 * message says what else went wrong (a file that does not parse, a decoding error).
 */
export function failureMessage (kind, url, failure = {}, env = pageEnv()) {
  const what = FILE_KINDS[kind] || kind
  const reason = failureReason({ status: failure.status, network: failure.network, ...env }) ||
    failure.reason || failure.message || 'unknown error'
  return `${what[0].toUpperCase()}${what.slice(1)} could not be loaded from ${urlHost(url, env.base)}: ${reason}.`
}

/** Why the media element (or wavesurfer's download of the media) failed, in words. Never the
 *  error's own message: wavesurfer's names the full (presigned) URL. */
export function mediaErrorReason (err, media) {
  const code = media?.error?.code
  const reasons = {
    1: 'loading was aborted',
    2: 'a network error stopped the download (the link may have expired: reload the page)',
    3: 'the file could not be decoded',
    4: 'the file is missing, not reachable, or in a format this browser cannot play'
  }
  if (reasons[code]) return reasons[code]
  if (err?.name === 'EncodingError') return reasons[3]
  return 'it could not be read'
}

/** What the worker does when the task cannot be done (appended to blocking messages). */
export const RELEASE_ADVICE = 'Reload the page; if this stays, release (return) the task. Do not submit it: Submit is disabled.'

/**
 * Fetch `url` once to learn why a media element could not load it (the element only says "error"):
 * {ok, status} or {network: true}. Only the response head is awaited; the body is cancelled.
 */
export async function probeUrl (url, { fetchImpl = globalThis.fetch, timeoutMs = 5000 } = {}) {
  const ctrl = new AbortController()
  const timer = setTimeout(() => ctrl.abort(), timeoutMs)
  try {
    const res = await fetchImpl(url, { signal: ctrl.signal, cache: 'no-store' })
    return { ok: res.ok, status: res.ok ? 0 : res.status }
  } catch {
    return { ok: false, network: true }
  } finally {
    clearTimeout(timer)
    ctrl.abort()
  }
}
