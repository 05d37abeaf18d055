/**
 * The simulator's durable store: an in-memory copy of what a node's disk holds. It exists only for
 * the simulator; the server writes to SQLite. Writes reach it only through Storage.persist, so a
 * node that crashes before persisting loses exactly what a real crash before fsync loses.
 */
import * as B from "../core/ballot.ts"
import type { AcceptedEntry, ClientEntry } from "../core/messages.ts"
import type { Membership } from "../core/membership.ts"
import type { DurableState, Write } from "../core/state.ts"

export class MemStore {
  private promised = B.ZERO
  private accepted = new Map<number, AcceptedEntry>()
  private snapSlot = 0
  private list: number[] = []
  private clients: readonly ClientEntry[] = []
  /** The membership of the snapshot (undefined: the initial configuration). */
  membership: Membership | undefined = undefined
  writes = 0
  syncs = 0

  apply(ws: readonly Write[]): void {
    this.syncs++
    for (const w of ws) {
      this.writes++
      switch (w._tag) {
        case "Promise":
          this.promised = B.max(this.promised, w.promised)
          break
        case "Accept":
          this.promised = B.max(this.promised, w.promised)
          for (const e of w.entries) if (e.slot > this.snapSlot) this.accepted.set(e.slot, e)
          break
        case "Snapshot":
          this.snapSlot = w.slot
          this.list.length = Math.min(this.list.length, w.from)
          for (const v of w.values) this.list.push(v)
          this.clients = w.clients
          this.membership = w.membership
          for (const slot of this.accepted.keys()) if (slot <= w.slot) this.accepted.delete(slot)
          break
      }
    }
  }

  load(): DurableState {
    return {
      promised: this.promised,
      accepted: Array.from(this.accepted.values()),
      snapshot: { slot: this.snapSlot, list: this.list.slice(), clients: this.clients, ...(this.membership === undefined ? {} : { membership: this.membership }) }
    }
  }
}
