// A typed event emitter in the style of wavesurfer.js's (src/event-emitter.ts): each event has a
// name and a payload tuple declared in an event map, listeners subscribe per event with
// on(name, fn) and get an unsubscribe function back. Unlike wavesurfer's, the set of names is
// fixed when the emitter is made: on(), once() and emit() refuse any other name, so a typo fails
// where it is written instead of subscribing to an event that never comes. Pure (no DOM).

/**
 * @template {Record<string, unknown[]>} Events event name -> the arguments its listeners get
 */
export class EventEmitter {
  /** @param {readonly (keyof Events & string)[]} names every event this emitter can emit */
  constructor (names) {
    /** @type {Map<string, Set<Function>>} */
    this._eventListeners = new Map(names.map(name => [name, new Set()]))
  }

  /** The event names, in declaration order. */
  get eventNames () { return [...this._eventListeners.keys()] }

  _listenersOf (event) {
    const set = this._eventListeners.get(event)
    if (!set) throw new TypeError(`unknown event ${JSON.stringify(event)}; known: ${this.eventNames.join(', ')}`)
    return set
  }

  /**
   * Subscribe to one event. Returns a function that unsubscribes (idempotent).
   * @template {keyof Events & string} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   * @param {{once?: boolean}} [options] once: unsubscribe after the first call
   * @returns {() => void}
   */
  on (event, listener, { once = false } = {}) {
    const set = this._listenersOf(event)
    if (typeof listener !== 'function') throw new TypeError(`the listener of ${JSON.stringify(event)} is not a function`)
    const fn = once ? (...args) => { set.delete(fn); listener(...args) } : listener
    set.add(fn)
    return () => { set.delete(fn) }
  }

  /**
   * Subscribe for the next emission only.
   * @template {keyof Events & string} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void}
   */
  once (event, listener) {
    return this.on(event, listener, { once: true })
  }

  /** Remove every listener of every event (on destroy). */
  unAll () {
    for (const set of this._eventListeners.values()) set.clear()
  }

  /**
   * Call the event's listeners in subscription order. A listener added or removed during an
   * emission takes effect from the next one.
   * @template {keyof Events & string} K
   * @param {K} event
   * @param {Events[K]} args
   */
  emit (event, ...args) {
    const set = this._listenersOf(event)
    if (!set.size) return
    for (const fn of [...set]) fn(...args)
  }
}
