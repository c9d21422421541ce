// Local stand-in for Ground Truth's crowd-html-elements.js (not reachable offline).
// Only what a gtkit template uses: <crowd-form> and <crowd-button>. Like the real crowd-form, a
// submit dispatches a cancelable `submit` event on the crowd-form element (so `onsubmit` handlers
// and addEventListener('submit') can block it with preventDefault), then collects the named
// fields into one answer object and posts it: text-like fields as strings, checkbox and radio
// groups as {value: checked} maps (see ground-truth-contract.md section 4). The portal saves it
// as a worker response. Classic script, loaded before the form is parsed, as the original.
(() => {
  'use strict';

  // The worker UI keeps its autosaved copy until `crowd-standin-submitted` says the server took it.
  window.crowdStandin = { reportsResult: true };

  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';

  function collect(root) {
    const answer = {};
    for (const el of root.querySelectorAll('input[name], textarea[name], select[name]')) {
      if (el.disabled) continue;
      const name = el.name;
      const type = (el.type || '').toLowerCase();
      if (type === 'checkbox' || type === 'radio') {
        const group = answer[name] && typeof answer[name] === 'object' ? answer[name] : {};
        group[el.value || 'on'] = el.checked;
        answer[name] = group;
      } else if (type === 'submit' || type === 'button' || type === 'reset' || type === 'file') {
        continue;
      } else if (el.tagName === 'SELECT' && el.multiple) {
        answer[name] = Object.fromEntries([...el.options].map((o) => [o.value, o.selected]));
      } else {
        answer[name] = el.value;
      }
    }
    return answer;
  }

  function showError(message) {
    let box = document.querySelector('.crowd-standin-error');
    if (!box) {
      box = document.createElement('div');
      box.className = 'crowd-standin-error';
      box.setAttribute('role', 'alert');
      document.body.append(box);
    }
    box.textContent = message;
  }

  class CrowdForm extends HTMLElement {
    connectedCallback() {
      if (this._wired) return;
      this._wired = true;
      this.addEventListener('click', (event) => {
        const button = event.target.closest('crowd-button');
        if (!button || button.hasAttribute('disabled')) return;
        if (button.getAttribute('form-action') === 'submit') {
          event.preventDefault();
          this.requestSubmit();
        }
      });
    }

    // Fires `submit` (cancelable) and posts unless a handler prevented it.
    requestSubmit() {
      const event = new Event('submit', { bubbles: true, cancelable: true });
      if (!this.dispatchEvent(event)) return false;
      this.submit();
      return true;
    }

    // Posts without the event, like HTMLFormElement.submit().
    async submit() {
      if (this._posting) return;
      this._posting = true;
      const body = { answerContent: collect(this), acceptedAt: meta('gtkit-accepted-at') };
      try {
        const resp = await fetch(meta('gtkit-submit-url'), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRFToken': meta('csrf-token') },
          credentials: 'same-origin',
          body: JSON.stringify(body),
        });
        const data = await resp.json().catch(() => ({}));
        if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
        window.dispatchEvent(new CustomEvent('crowd-standin-submitted', { detail: data }));
        window.location.assign(data.next);
      } catch (err) {
        showError(`Submission failed: ${err.message}`);
        // The answer was not taken: the worker UI keeps it saved in this browser.
        window.dispatchEvent(new CustomEvent('gtkit:submit-failed', { detail: { message: err.message } }));
      } finally {
        this._posting = false;
      }
    }

    // Some templates read values through the form, as with a <form>.
    get elements() {
      return this.querySelectorAll('input, textarea, select');
    }
  }

  class CrowdButton extends HTMLElement {
    connectedCallback() {
      if (!this.hasAttribute('role')) this.setAttribute('role', 'button');
      if (!this.hasAttribute('tabindex')) this.tabIndex = 0;
      this.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          this.click();
        }
      });
    }

    get disabled() { return this.hasAttribute('disabled'); }
    set disabled(value) { this.toggleAttribute('disabled', Boolean(value)); }
  }

  if (!customElements.get('crowd-form')) customElements.define('crowd-form', CrowdForm);
  if (!customElements.get('crowd-button')) customElements.define('crowd-button', CrowdButton);
})();
