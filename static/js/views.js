// The panels around the player (toolbar, tracks, segment list, transcript, content form, help) and
// what each set of state changes makes them redraw.

import { createToolbar, createTracksPanel } from './panels.js'
import { createSegmentsList } from './segments-list.js'
import { createContentForm } from './content-form.js'
import { createTranscript } from './transcript.js'
import { createHelpOverlay } from './keyboard.js'
import { noticeButton } from './alerts.js'

/**
 * @param {object} o
 * @param {import('./state.js').AnswerState} o.state
 * @param {import('./player.js').Player} o.player
 * @param {'audio'|'video'} o.mediaType
 * @param {string} o.transcription the machine transcription, '' when none (yet)
 * @param {object} o.alerts from alerts.js (the tracks panel's notices)
 * @param {{render: () => void}} o.lanes the lane labels (layout.js)
 * @param {[string, string][]} [o.shortcuts] more rows for the help overlay (a review task's keys)
 */
export function createViews ({ state, player, mediaType, transcription, alerts, lanes, shortcuts = [] }) {
  const help = createHelpOverlay(shortcuts)
  const views = {
    help,
    toolbar: createToolbar({ state, player, onHelp: () => help.toggle() }),
    tracks: createTracksPanel({
      state,
      onMessage: (message, { undo = false } = {}) => {
        const actions = undo ? [noticeButton('undo-notice', 'Undo', () => { state.undo(); alerts.hideNotice() })] : []
        alerts.showNotice(message, { actions })
      }
    }),
    list: createSegmentsList({ state, player }),
    transcript: createTranscript({ state, player, transcription }),
    content: createContentForm({ state, title: mediaType === 'video' ? 'About the whole video' : 'About the whole recording' }),

    /** Re-render what a set of change kinds (state.js ChangeKind) touched; detail from
     *  wiring.js coalesceChanges (a keystroke touches its own row and transcript line only). */
    render (kinds, detail = { layout: true, segments: new Set() }) {
      const all = kinds.has('all') || kinds.has('tracks')
      if (kinds.has('segments') && !all && !detail.layout) {
        views.list.refresh(detail.segments)
        views.transcript.refresh(detail.segments)
      } else if (all || kinds.has('segments')) {
        views.tracks.render()
        views.list.render({ kind: all ? 'all' : 'segments' })
        views.transcript.render()
        lanes.render()
      } else if (kinds.has('selection')) {
        views.tracks.render()
        lanes.render()
      }
      if (kinds.has('selection')) views.list.renderSelection()
      if (all || kinds.has('content')) views.content.render()
      views.toolbar.update()
    },

    /** The playhead is at `t`: the time display and what plays now in the list and transcript. */
    highlight (t) {
      views.toolbar.updateTime(t)
      views.list.highlight(t)
      views.transcript.highlight(t)
    },

    /** A machine transcription arrived late (the sidecar): show it in a fresh transcript panel. */
    setTranscription (text) {
      const fresh = createTranscript({ state, player, transcription: text })
      views.transcript.element.replaceWith(fresh.element)
      views.transcript = fresh
      fresh.render()
    }
  }
  return views
}
