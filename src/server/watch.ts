/**
 * Deadlines of requests in flight, kept without a timer or an AbortSignal per request: each is
 * garbage the collector must reclaim, and its pauses stop every request at once (measured on the
 * leader at 32 clients). One interval timer looks at all of them.
 *
 * A deadline belongs to a lane of one fixed delay (the client body timeout, the peer body timeout,
 * the wait after which a request starts listening for its client going away). Within a lane,
 * deadlines come in the order they were set, so a sweep stops at the first that is still in time.
 */

/** How often deadlines are looked at (their resolution). */
export const WATCH_EVERY_MS = 50

interface Entry {
  readonly since: number
  readonly due: () => void
}

export class Watch {
  /** One lane per delay, each a Map in insertion order (the order of `since`). */
  private readonly lanes = new Map<number, Map<number, Entry>>()
  private next = 1
  private readonly timer: ReturnType<typeof setInterval>

  constructor(private readonly now: () => number = Date.now) {
    this.timer = setInterval(() => this.sweep(this.now()), WATCH_EVERY_MS)
    this.timer.unref?.()
  }

  /** Runs `due` once if `cancel` has not been called within `delayMs`. Returns the id for `cancel`. */
  after(delayMs: number, due: () => void): number {
    let lane = this.lanes.get(delayMs)
    if (lane === undefined) {
      lane = new Map()
      this.lanes.set(delayMs, lane)
    }
    const id = this.next++
    lane.set(id, { since: this.now(), due })
    return id
  }

  /** Forgets the deadline `id` (0 and ids already due are ignored). */
  cancel(id: number): void {
    if (id === 0) return
    for (const lane of this.lanes.values()) if (lane.delete(id)) return
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Runs every deadline that is due at `now` (the timer calls it; tests may too). */
  sweep(now: number): void {
    for (const [delayMs, lane] of this.lanes) {
      const cutoff = now - delayMs
      for (const [id, e] of lane) {
        if (e.since > cutoff) break
        lane.delete(id)
        e.due()
      }
    }
  }
}
