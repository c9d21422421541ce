// Entry point of the worker UI: <script type="module" src=".../static/js/main.js">.
// It auto-mounts on #gtkit-app (contract: docs/worker-ui.md). It imports nothing statically, so it
// runs as soon as it is fetched and starts the waveform-peaks download while the rest of the UI
// (app.js and its modules) is still loading; on long media that download is most of the wait.

const appModule = import('./app.js')

function readUrl (root, name) {
  const v = (root.getAttribute(`data-${name}`) || '').trim()
  return v && v !== 'null' && v !== 'undefined' && v !== 'None' ? v : ''
}

// Downloads the peaks off the main thread. A JSON peaks file (text starting with `{`) is parsed here
// (a multi-megabyte JSON.parse would otherwise block the page for a few hundred ms) and comes back
// with Float32Array channels, transferred. Anything else, i.e. the binary file `manifest build
// --peaks` writes, comes back as its ArrayBuffer, transferred: peaks.js knows that format (and says
// what is wrong with a file that is neither) and turns it into Float32Arrays in a few ms.
// A blob worker, because a worker script from the (cross-origin) asset host is not allowed.
const PEAKS_WORKER = `self.onmessage = async (e) => {
  let res
  try { res = await fetch(e.data.url) } catch (err) { self.postMessage({ ok: false, network: true, message: 'could not download the waveform peaks (' + ((err && err.message) || 'network error') + ')' }); return }
  if (!res.ok) { self.postMessage({ ok: false, status: res.status, message: 'could not download the waveform peaks (HTTP ' + res.status + ')' }); return }
  let buf
  try { buf = await res.arrayBuffer() } catch (err) { self.postMessage({ ok: false, network: true, message: 'could not download the waveform peaks (' + ((err && err.message) || 'network error') + ')' }); return }
  const head = new Uint8Array(buf, 0, Math.min(buf.byteLength, 64))
  let i = 0
  while (i < head.length && [32, 9, 10, 13, 0xef, 0xbb, 0xbf].includes(head[i])) i++
  if (head[i] !== 123) { self.postMessage({ ok: true, binary: buf }, [buf]); return }
  let json
  try { json = JSON.parse(new TextDecoder().decode(buf)) } catch (err) { self.postMessage({ ok: false, message: 'the waveform peaks file is not valid JSON' }); return }
  if (!json || typeof json !== 'object' || !Array.isArray(json.data)) { self.postMessage({ ok: true, json }); return }
  const data = json.data.map((ch) => (Array.isArray(ch) ? new Float32Array(ch) : ch))
  self.postMessage({ ok: true, json: Object.assign({}, json, { data }) }, data.filter((d) => d instanceof Float32Array).map((d) => d.buffer))
}`

/** Resolves to the binary file's ArrayBuffer or the parsed PeaksFile JSON (channels as
 *  Float32Array), both what peaks.js's parsePeaks takes. Rejects with err.fallback = true
 *  when a worker cannot be used here (then the UI fetches on the main thread). */
function loadPeaksInWorker (url) {
  return new Promise((resolve, reject) => {
    let worker, blobUrl
    const fail = (message, fallback, { status = 0, network = false } = {}) => reject(Object.assign(new Error(message), { fallback, status, network }))
    try {
      blobUrl = URL.createObjectURL(new Blob([PEAKS_WORKER], { type: 'text/javascript' }))
      worker = new Worker(blobUrl)
    } catch (err) {
      if (blobUrl) URL.revokeObjectURL(blobUrl)
      fail(`no worker: ${err.message}`, true)
      return
    }
    const done = () => { worker.terminate(); URL.revokeObjectURL(blobUrl) }
    worker.onmessage = e => {
      done()
      if (e.data && e.data.ok) resolve(e.data.binary || e.data.json)
      else fail((e.data && e.data.message) || 'could not load the waveform peaks', false, e.data || {})
    }
    worker.onerror = e => {
      e.preventDefault()
      done()
      fail('the peaks worker failed', true)
    }
    // Resolve against the page: a blob worker has no useful base URL.
    worker.postMessage({ url: new URL(url, document.baseURI).href })
  })
}

/** Start downloads the UI will need; failures are reported later by the UI, not here. */
function prefetch (root) {
  const peaksUrl = readUrl(root, 'peaks-url')
  if (!peaksUrl) return {}
  const peaks = loadPeaksInWorker(peaksUrl)
  peaks.catch(() => {}) // handled when the UI awaits it
  return { peaksUrl, peaks }
}

/**
 * Mount the UI into `root` (the #gtkit-app element). Resolves to the app object, also exposed as
 * window.gtkit: {state, player, wavesurfer, getAnswer(), validate(), ...}.
 */
export async function mount (root, options = {}) {
  const app = await appModule
  return app.mount(root, options)
}

/** Tell the page's boot fail-safe (the template's inline script) that the UI could not start; without
 *  one (a hand-made page) show the reason here. reason: 'load' (a module was refused) or 'task'. */
function bootFailed (root, reason, err) {
  const message = (err && err.message) || String(err)
  console.error('gtkit: could not start the worker UI:', message)
  const handled = !root.dispatchEvent(new CustomEvent('gtkit:boot-failed', { bubbles: true, cancelable: true, detail: { reason, message } }))
  if (handled || root.gtkitApp || root.querySelector('[data-role=fatal-error]')) return
  const box = document.createElement('div')
  box.className = 'gtkit-fatal'
  box.setAttribute('role', 'alert')
  box.dataset.role = 'fatal-error'
  box.textContent = `The labeling tool could not start: ${message}. Do not submit this task: reload the page, and if this stays, release (return) it.`
  root.replaceChildren(box)
}

function autoMount () {
  const root = document.getElementById('gtkit-app')
  if (!root || root.gtkitApp) return
  const prefetched = prefetch(root)
  appModule.then(app => {
    try {
      app.mount(root, { prefetched })
    } catch (err) {
      bootFailed(root, 'task', err)
      return
    }
    root.dispatchEvent(new CustomEvent('gtkit:started', { bubbles: true }))
  }, err => bootFailed(root, 'load', err))
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoMount, { once: true })
  else autoMount()
}
