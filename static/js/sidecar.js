// The sidecar file (`sidecar-ref`): the pre-segments and/or transcription that did not fit in the
// manifest line. Without it the worker would label without them, so a failed download blocks Submit.

import { SIDECAR_KEYS as KEY } from './contract.js'
import { download, failureMessage } from './failure.js'

async function fetchSidecar (url) {
  const text = await download(url, 'the sidecar', { read: res => res.text() })
  try {
    return JSON.parse(text)
  } catch {
    throw new Error('the file is not valid JSON') // not the parser's message: it quotes the text
  }
}

/**
 * @param {object} o
 * @param {string} o.url
 * @param {import('./state.js').AnswerState} o.state
 * @param {() => boolean} o.isRestored the state holds restored work: leave its segments alone
 * @param {(text: string) => void} o.onTranscription the sidecar's transcription, when it has one
 * @param {(pre: object[]) => void} [o.onPresegments] the sidecar's pre-segments (a review starts from them)
 * @param {object} o.alerts from alerts.js
 * @returns {{load: () => void}} load() downloads and applies it (again after "start over")
 */
export function createSidecar ({ url, state, isRestored, onTranscription, onPresegments = () => {}, alerts }) {
  return {
    load () {
      fetchSidecar(url).then(sidecar => {
        const pre = sidecar && (sidecar[KEY.pre_segments] || sidecar.pre_segments)
        if (Array.isArray(pre)) onPresegments(pre)
        if (!isRestored() && Array.isArray(pre) && !state.segments.length) state.loadPresegments(pre)
        else if (isRestored()) state.attachWords(pre) // restored work: only the word timings
        const text = sidecar && typeof sidecar[KEY.transcription] === 'string' ? sidecar[KEY.transcription] : ''
        if (text) onTranscription(text)
      }).catch(err => {
        alerts.blockTask('sidecar', failureMessage('sidecar', url, err))
      })
    }
  }
}
