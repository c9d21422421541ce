// What the worker is told when a task file cannot be fetched (static/js/failure.js).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  FILE_KINDS, download, failureMessage, failureReason, fetchError, mediaErrorReason, probeUrl, urlHost
} from '../../static/js/failure.js'

const PRESIGNED = 'https://jobs-bucket.s3.eu-west-1.amazonaws.com/media/call%20one.wav?X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeef'
const ENV = { base: 'https://worker.example.org/task/1', pageOrigin: 'https://worker.example.org', offline: false }

test('urlHost keeps only the host: never the path or the presigned query', () => {
  assert.equal(urlHost(PRESIGNED), 'jobs-bucket.s3.eu-west-1.amazonaws.com')
  assert.equal(urlHost('/media/abc/call.wav', 'http://127.0.0.1:8080/task/0'), '127.0.0.1:8080')
  assert.equal(urlHost('http://[oops', undefined), '(an invalid URL)')
})

test('failureReason: HTTP statuses, offline, and what a refused fetch means', () => {
  assert.match(failureReason({ status: 403 }), /access denied \(HTTP 403\): the link has probably expired/)
  assert.match(failureReason({ status: 404 }), /not found \(HTTP 404\)/)
  assert.match(failureReason({ status: 503 }), /the server failed \(HTTP 503\)/)
  assert.match(failureReason({ status: 416 }), /refused \(HTTP 416\)/)
  assert.equal(failureReason({ network: true, offline: true }), 'this browser is offline')
  assert.match(failureReason({ network: true, pageOrigin: 'https://w.example' }),
    /network error, or the host does not allow this page's origin https:\/\/w\.example \(CORS: it must send Access-Control-Allow-Origin\)/)
  assert.equal(failureReason({}), '')
})

test('failureMessage: which file, which host, why; never the signature', () => {
  const msg = failureMessage('audio', PRESIGNED, { status: 403 }, ENV)
  assert.equal(msg, 'The audio could not be loaded from jobs-bucket.s3.eu-west-1.amazonaws.com: access denied (HTTP 403): the link has probably expired.')
  for (const kind of Object.keys(FILE_KINDS)) {
    const m = failureMessage(kind, PRESIGNED, { network: true }, ENV)
    assert.ok(!/deadbeef|X-Amz|call%20one/.test(m), m)
    assert.match(m, /^The /)
  }
  assert.match(failureMessage('sidecar', PRESIGNED, new Error('the file is not valid JSON'), ENV), /sidecar file\) could not be loaded from .*: the file is not valid JSON\.$/)
  assert.match(failureMessage('peaks', PRESIGNED, fetchError('the waveform peaks', { status: 404 }), ENV), /peaks could not be loaded from .*not found \(HTTP 404\)/)
})

test('fetchError carries the status or marks a refused fetch', () => {
  const http = fetchError('the spectrogram', { status: 403 })
  assert.equal(http.message, 'could not download the spectrogram (HTTP 403)')
  assert.equal(http.status, 403)
  assert.equal(http.network, false)
  const refused = fetchError('the spectrogram', { cause: new TypeError('Failed to fetch') })
  assert.equal(refused.message, 'could not download the spectrogram (Failed to fetch)')
  assert.equal(refused.network, true)
})

test('mediaErrorReason explains the media error code and never repeats the error message', () => {
  const leaky = new Error(`Failed to fetch ${PRESIGNED}: 403 (Forbidden)`)
  assert.equal(mediaErrorReason(leaky, { error: null }), 'it could not be read')
  assert.match(mediaErrorReason(leaky, { error: { code: 4 } }), /missing, not reachable, or in a format/)
  assert.match(mediaErrorReason(leaky, { error: { code: 2 } }), /network error/)
  assert.equal(mediaErrorReason(Object.assign(new Error('x'), { name: 'EncodingError' }), null), 'the file could not be decoded')
})

test('probeUrl: the status of an answer, network for a refused fetch, and the body is not read', async () => {
  const seen = []
  const answer = status => async (url, init) => {
    seen.push(init.signal)
    return { ok: status < 400, status }
  }
  assert.deepEqual(await probeUrl('https://h/x', { fetchImpl: answer(403) }), { ok: false, status: 403 })
  assert.deepEqual(await probeUrl('https://h/x', { fetchImpl: answer(206) }), { ok: true, status: 0 })
  assert.ok(seen.every(signal => signal.aborted), 'the download is cancelled once the head arrived')
  const refused = async () => { throw new TypeError('Failed to fetch') }
  assert.deepEqual(await probeUrl('https://h/x', { fetchImpl: refused }), { ok: false, network: true })
  const hangs = (url, init) => new Promise((resolve, reject) => init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))
  assert.deepEqual(await probeUrl('https://h/x', { fetchImpl: hangs, timeoutMs: 20 }), { ok: false, network: true })
})

test('download: the body, or a fetchError with the status or the refusal', async () => {
  const body = new Uint8Array([1, 2]).buffer
  const ok = async () => ({ ok: true, status: 200, arrayBuffer: async () => body, text: async () => '{"a":1}' })
  assert.equal(await download('https://h/p', 'the peaks', { fetchImpl: ok }), body)
  assert.equal(await download('https://h/p', 'the sidecar', { fetchImpl: ok, read: r => r.text() }), '{"a":1}')
  await assert.rejects(download('https://h/p', 'the peaks', { fetchImpl: async () => ({ ok: false, status: 403 }) }),
    err => err.status === 403 && err.message === 'could not download the peaks (HTTP 403)')
  await assert.rejects(download('https://h/p', 'the peaks', { fetchImpl: async () => { throw new TypeError('Failed to fetch') } }),
    err => err.network === true && err.status === 0)
  const cut = async () => ({ ok: true, status: 200, arrayBuffer: async () => { throw new TypeError('network error') } })
  await assert.rejects(download('https://h/p', 'the peaks', { fetchImpl: cut }), err => err.network === true)
})
