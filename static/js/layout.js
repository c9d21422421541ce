// The page skeleton inside #gtkit-app: header (title, description, instructions), the alert boxes,
// the stage (video, waveform, ruler, lane labels, spectrogram) and where the panels go once the
// player exists. Elements only; what fills them lives in the other modules.

import { el } from './dom.js'

/** The task cannot be shown at all (its data is unreadable): say so in place of the UI. */
export function showFatal (root, message) {
  root.append(el('div', { class: 'gtkit-fatal', role: 'alert', dataset: { role: 'fatal-error' }, text: `This task cannot be shown: ${message}.` }))
}

/**
 * Build the skeleton into `root` (appended: header, media error, notice, stage).
 * @param {HTMLElement} root
 * @param {object} schema
 * @param {{instructionsOpen: boolean}} o a returning worker has read the instructions: start them collapsed
 */
export function createLayout (root, schema, { instructionsOpen }) {
  const header = el('header', { class: 'gtkit-header' }, [
    el('h2', { class: 'gtkit-title', text: schema.title || 'Segment the media' }),
    schema.description ? el('p', { class: 'gtkit-description', text: schema.description }) : null,
    schema.instructions
      ? el('details', { class: 'gtkit-instructions', open: instructionsOpen }, [el('summary', { text: 'Instructions' }), el('div', { class: 'gtkit-instructions-text', text: schema.instructions })])
      : null
  ])
  const mediaError = el('div', { class: 'gtkit-alert gtkit-alert-error', role: 'alert', dataset: { role: 'media-error' }, hidden: true })
  const notice = el('div', { class: 'gtkit-alert gtkit-alert-info', role: 'status', dataset: { role: 'notice' }, hidden: true })
  const loading = el('div', { class: 'gtkit-loading', role: 'status', dataset: { role: 'loading' }, text: 'Loading media…' })
  const videoHost = el('div', { class: 'gtkit-video-host', hidden: true })
  const laneLabels = el('div', { class: 'gtkit-lanes', 'aria-hidden': 'true' })
  const waveEl = el('div', { class: 'gtkit-wave', dataset: { role: 'waveform' } })
  const rulerEl = el('canvas', { class: 'gtkit-ruler', 'aria-hidden': 'true' })
  const waveWrap = el('div', { class: 'gtkit-wave-wrap' }, [waveEl, rulerEl, laneLabels, loading])
  const spectrogramEl = el('div', { class: 'gtkit-spectrogram', hidden: true })
  const stage = el('div', { class: 'gtkit-stage' }, [videoHost, waveWrap, spectrogramEl])
  root.append(header, mediaError, notice, stage)
  return { root, form: root.closest('crowd-form, form'), mediaError, notice, loading, videoHost, laneLabels, waveEl, waveWrap, rulerEl, spectrogramEl, stage }
}

/** Put the panels in: the toolbar under the stage, the two columns under it, then `tail` (summary, help). */
export function placePanels (layout, { toolbar, tracks, list, transcript, content }, tail) {
  const left = el('div', { class: 'gtkit-col gtkit-col-main' }, [tracks.element, list.element])
  const right = el('div', { class: 'gtkit-col gtkit-col-side' }, [transcript.element, content.element])
  layout.stage.after(toolbar.element)
  toolbar.element.after(el('div', { class: 'gtkit-columns' }, [left, right]))
  layout.root.append(...tail)
}

/** The lane labels over the waveform: one per track ("2 Customer"), the active one marked. */
export function createLaneLabels (container, state) {
  let lastKey = ''
  return {
    render () {
      const key = state.tracks.map(t => `${t.id}:${t.label}:${t.id === state.activeTrackId}`).join('|')
      if (key === lastKey) return
      lastKey = key
      container.replaceChildren(...state.tracks.map((t, i) => el('div', {
        class: `gtkit-lane${t.id === state.activeTrackId ? ' gtkit-lane-active' : ''}`,
        style: { top: `${(i / state.tracks.length) * 100}%`, height: `${100 / state.tracks.length}%` }
      }, [el('span', { text: `${i + 1} ${t.label}` })])))
    }
  }
}
