// Boot fail-safe of the worker task page. toolkit/template.py inlines this file as a classic
// script element ahead of everything else: it needs no CORS and no asset host, so it still runs when the
// browser refuses every module of the UI. Until the UI says it started (the `gtkit:started` event
// from main.js, or #gtkit-app.gtkitApp), it watches the boot; when the entry module fails to load
// (its `error` event: CORS, integrity mismatch, network, a failing static import), when main.js
// reports `gtkit:boot-failed`, or when nothing started within data-boot-timeout seconds, it tells
// the worker what failed and what to do, and makes Submit unusable, so that Ground Truth never
// records an empty answer. A timeout is undone if the UI starts after all.
// Text only through textContent. No Liquid delimiters anywhere, not even in a comment: Ground
// Truth renders this page with Liquid (toolkit/template.py checks).
var gtkitBootFailsafe = (function () {
  'use strict'

  // The form's submit controls (static/js/submit.js disables the same ones, marked data-gtkit-blocked).
  var SUBMITTERS = 'crowd-button[form-action=submit], button[type=submit], input[type=submit]'

  /** Origin (scheme://host:port) of `url` resolved against `base`: where the UI's files come from. */
  function originOf (url, base) {
    try {
      return new URL(url, base).origin
    } catch (err) {
      return String(url || '(unknown)')
    }
  }

  /** `location.origin` as the requester must allow it; a sandboxed frame's is the string "null". */
  function describeOrigin (origin) {
    if (!origin || origin === 'null') return 'null (an opaque origin, e.g. a sandboxed frame: only Access-Control-Allow-Origin: * admits it)'
    return origin
  }

  function seconds (s) {
    return String(Math.round(s * 10) / 10) + ' s'
  }

  /**
   * The message for a boot failure (pure): {title, lines}.
   * reason: 'load' (a file of the UI was refused), 'timeout' (nothing started in time) or
   * 'task' (the UI loaded but could not show this task; `detail` says why).
   */
  function bootFailureMessage (o) {
    var page = describeOrigin(o.pageOrigin)
    var allow = 'This page\'s origin is ' + page + ': the requester must allow it on ' + o.assetOrigin +
      ' (CORS: Access-Control-Allow-Origin) and serve the files exactly as rendered.'
    if (o.reason === 'task') {
      return {
        title: 'This task cannot be shown. Do not submit it.',
        lines: [
          'What failed: ' + (o.detail || 'the labeling tool stopped while reading the task') + '.',
          'What to do: release (return) this task and tell the requester. Submit is disabled, so no empty answer can be sent.'
        ]
      }
    }
    if (o.reason === 'timeout') {
      return {
        title: 'The labeling tool has not started. Do not submit this task yet.',
        lines: [
          'What failed: its files from ' + o.assetOrigin + ' have not loaded after ' + seconds(o.timeoutSeconds) +
            ' (blocked by the browser, very slow, or unreachable).',
          allow,
          'What to do: wait a moment or reload the page; if this message stays, release (return) the task. ' +
            'Do not submit it: Submit is disabled until the tool starts.'
        ]
      }
    }
    return {
      title: 'The labeling tool could not be loaded. Do not submit this task.',
      lines: [
        'What failed: the browser refused or could not fetch the tool\'s files from ' + o.assetOrigin +
          ' (the host does not allow this page\'s origin, a file does not match its integrity hash, or the network failed' +
          (o.detail ? ': ' + o.detail : '') + ').',
        allow,
        'What to do: release (return) this task so that it can be fixed, and do not submit it. ' +
          'Submit is disabled: an empty answer would be recorded.'
      ]
    }
  }

  /** Watch the boot of the page `doc` (window `win`); `script` is this script's element. */
  function install (doc, win, script) {
    var data = script.dataset || {}
    var timeoutSeconds = Number(data.bootTimeout) > 0 ? Number(data.bootTimeout) : 10
    var assetOrigin = originOf(data.assetsBase || '', doc.baseURI)
    var state = 'booting' // booting | timed-out | started | failed
    var box = null

    function appRoot () { return doc.getElementById('gtkit-app') }
    function theForm () {
      var root = appRoot()
      return (root && root.closest('crowd-form, form')) || doc.querySelector('crowd-form')
    }
    function started () {
      var root = appRoot()
      return state === 'started' || Boolean(root && root.gtkitApp)
    }
    function blocking () { return state === 'timed-out' || state === 'failed' }

    function setSubmitters (disabled) {
      var form = theForm()
      if (!form) return
      var buttons = form.querySelectorAll(SUBMITTERS)
      for (var i = 0; i < buttons.length; i++) {
        var b = buttons[i]
        if (disabled) {
          b.setAttribute('data-gtkit-failsafe-disabled', '')
          b.setAttribute('disabled', '')
          b.setAttribute('aria-disabled', 'true')
        } else if (b.hasAttribute('data-gtkit-failsafe-disabled')) {
          b.removeAttribute('data-gtkit-failsafe-disabled')
          if (!b.hasAttribute('data-gtkit-blocked')) { // the started UI may have its own reason
            b.removeAttribute('disabled')
            b.removeAttribute('aria-disabled')
          }
        }
      }
    }

    // Capture phase on the window: before crowd-form's own listeners, whatever they do. The
    // composed path also sees a button inside crowd-form's shadow DOM, if it renders one.
    function guard (ev) {
      if (!blocking()) return
      var form = theForm()
      var path = ev.composedPath ? ev.composedPath() : [ev.target]
      if (!form || path.indexOf(form) < 0) return
      if (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ') return
      if (ev.type === 'click') {
        var onSubmitter = false
        for (var i = 0; i < path.length && path[i] !== form; i++) {
          if (path[i].nodeType === 1 && path[i].matches(SUBMITTERS)) onSubmitter = true
        }
        if (!onSubmitter) return
      }
      ev.preventDefault()
      ev.stopImmediatePropagation()
    }
    win.addEventListener('submit', guard, true)
    win.addEventListener('click', guard, true)
    win.addEventListener('keydown', guard, true)

    function render (msg) {
      var root = appRoot()
      var parent = root ? root.parentNode : theForm()
      if (!parent) { // not parsed yet: this script runs before the form
        win.setTimeout(function () { if (blocking()) render(msg) }, 50)
        return
      }
      if (!box) {
        box = doc.createElement('div')
        box.className = 'gtkit-boot-error'
        box.setAttribute('role', 'alert')
        box.setAttribute('data-role', 'boot-error')
        // Inline styles: the stylesheet comes from the same asset host and may be refused too.
        var s = box.style
        s.border = '2px solid #b42318'
        s.background = '#fef3f2'
        s.color = '#7a271a'
        s.padding = '12px 16px'
        s.margin = '8px 0'
        s.borderRadius = '6px'
        s.font = '15px/1.45 system-ui, sans-serif'
      }
      var title = doc.createElement('strong')
      title.textContent = msg.title
      var children = [title]
      for (var i = 0; i < msg.lines.length; i++) {
        var p = doc.createElement('p')
        p.style.margin = '6px 0 0'
        p.textContent = msg.lines[i]
        children.push(p)
      }
      box.replaceChildren.apply(box, children)
      if (root) {
        var loading = root.querySelector('.gtkit-loading')
        if (loading) loading.hidden = true
        root.parentNode.insertBefore(box, root)
      } else {
        parent.insertBefore(box, parent.firstChild)
      }
      setSubmitters(true)
    }

    function fail (reason, detail) {
      if (state === 'failed' || (reason === 'timeout' && (state !== 'booting' || started()))) return
      state = reason === 'timeout' ? 'timed-out' : 'failed'
      win.clearTimeout(timer)
      var msg = bootFailureMessage({ reason: reason, detail: detail, assetOrigin: assetOrigin, pageOrigin: win.location.origin, timeoutSeconds: timeoutSeconds })
      if (win.console) win.console.error('gtkit: ' + msg.title + ' ' + msg.lines[0])
      render(msg)
    }

    function onStarted () {
      if (state === 'failed' || state === 'started') return
      var wasBlocking = blocking()
      state = 'started'
      win.clearTimeout(timer)
      if (wasBlocking) {
        if (box) box.remove()
        setSubmitters(false)
      }
    }

    var timer = win.setTimeout(function () { if (!started()) fail('timeout') }, timeoutSeconds * 1000)
    // A resource `error` does not bubble: listen in the capture phase for the entry module's.
    win.addEventListener('error', function (ev) {
      var t = ev.target
      if (t && t.nodeType === 1 && t.hasAttribute('data-gtkit-entry')) fail('load')
    }, true)
    doc.addEventListener('gtkit:started', onStarted)
    doc.addEventListener('gtkit:boot-failed', function (ev) {
      ev.preventDefault() // tells main.js the message is shown here
      var d = ev.detail || {}
      fail(d.reason === 'task' ? 'task' : 'load', d.message)
    })
    return { fail: fail, get state () { return state } }
  }

  return { originOf: originOf, describeOrigin: describeOrigin, bootFailureMessage: bootFailureMessage, install: install }
}())
if (typeof document !== 'undefined' && document.currentScript) {
  gtkitBootFailsafe.controller = gtkitBootFailsafe.install(document, window, document.currentScript)
}
