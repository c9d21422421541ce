// What the page says about the task: the data attributes of #gtkit-app (contract in
// docs/worker-ui.md), read once into a plain object. Pure but for reading the attributes.

import { TASK_INPUT_KEYS as KEY } from './contract.js'

/** A URL attribute; '', 'null', 'undefined' and 'None' (what templates print for nothing) are ''. */
export function readUrl (root, name) {
  const v = (root.getAttribute(`data-${name}`) || '').trim()
  return v && v !== 'null' && v !== 'undefined' && v !== 'None' ? v : ''
}

/** A JSON attribute, or null when absent and not required. Throws an Error naming it. */
export function readJson (root, name, required) {
  const raw = root.getAttribute(`data-${name}`)
  if (raw === null || raw.trim() === '') {
    if (required) throw new Error(`the page is missing data-${name}`)
    return null
  }
  try {
    return JSON.parse(raw)
  } catch (err) {
    throw new Error(`data-${name} is not valid JSON (${err.message})`)
  }
}

/**
 * @typedef {object} Task
 * @property {object} schema the LabelSchema (snake_case keys)
 * @property {object} taskInput the task input = the manifest line (dashed keys)
 * @property {string} mediaUrl
 * @property {string} peaksUrl '' = none
 * @property {string} spectrogramUrl '' = none
 * @property {string} sidecarUrl '' = none
 * @property {string} reviewUrl '' = none (review tasks whose review data is in a file: `review-ref`)
 * @property {'audio'|'video'} mediaType
 * @property {number} durationHint seconds from the task input, 0 when unknown
 * @property {string|null} interactionId
 * @property {string} taskKey what the autosave is keyed by
 * @property {unknown} presegments the task input's pre-segments as given (not checked)
 * @property {string} transcription the task input's transcription, '' when none
 * @property {unknown} preContent the task input's model answers to content fields (not checked)
 */

/** Read the task from `root`. Throws an Error saying what is wrong with the schema or task input. */
export function readTask (root) {
  const schema = readJson(root, 'schema', true)
  if (!schema || !Array.isArray(schema.tracks) || !schema.tracks.length) throw new Error('data-schema has no tracks')
  const taskInput = readJson(root, 'task-input', false) || {}
  if (typeof taskInput !== 'object' || Array.isArray(taskInput)) throw new Error('data-task-input is not a JSON object')
  const mediaUrl = readUrl(root, 'media-url')
  const transcription = taskInput[KEY.transcription]
  return {
    schema,
    taskInput,
    mediaUrl,
    peaksUrl: readUrl(root, 'peaks-url'),
    spectrogramUrl: readUrl(root, 'spectrogram-url'),
    sidecarUrl: readUrl(root, 'sidecar-url'),
    reviewUrl: readUrl(root, 'review-url'),
    mediaType: schema.media === 'video' || taskInput[KEY.media_type] === 'video' || root.dataset.variant === 'video' ? 'video' : 'audio',
    durationHint: Number(taskInput[KEY.duration_seconds]) || 0,
    interactionId: taskInput[KEY.interaction_id] ?? null,
    taskKey: root.getAttribute('data-task-key') || taskInput[KEY.interaction_id] || mediaUrl || 'default',
    presegments: taskInput[KEY.pre_segments],
    transcription: typeof transcription === 'string' ? transcription : '',
    preContent: taskInput[KEY.pre_content]
  }
}
