/**
 * The simulator's view of the globally decided log, and from it the configuration of every slot.
 *
 * The "at most one value chosen per slot" check must know which acceptors' votes count in slot t.
 * It takes that from here, never from a node: every value any node learned is replayed in slot
 * order, its changes of membership applied with the rules of membership.ts (the specification the
 * nodes implement), and a change decided in slot s governs the slots from s + ALPHA on. So a node
 * whose own idea of a slot's configuration is wrong (a planted bug) is judged against this one.
 */
import { ALPHA, applyChange, latestConfig, settle, startMembership, type Change, type Config, type Membership, type Refusal } from "../core/membership.ts"
import type { Batch } from "../core/messages.ts"

/** One change of membership as the decided log applied it (or refused it). */
export interface Applied {
  readonly slot: number
  readonly change: Change
  readonly refusal: Refusal | null
  /** The membership after the change. */
  readonly membership: Membership
}

export class DecidedLog {
  /** Every slot up to this one has been replayed. */
  applied = 0
  membership: Membership
  /** Values learned above `applied`, waiting for the gap below them. */
  private readonly waiting = new Map<number, Batch>()
  /** The voters' configurations in order: config(t) is the last one whose `from` <= t. */
  private readonly history: Array<{ readonly from: number; readonly config: Config }>

  constructor(initial: Config) {
    this.membership = startMembership(initial)
    this.history = [{ from: 1, config: initial }]
  }

  /** The latest configuration known: the pending one if a change is on its way in. */
  get latest(): Config {
    return latestConfig(this.membership)
  }

  /**
   * Records that `slot` was decided with `value` (the first value learned; the checks compare the
   * others with it), then replays every slot it can. Returns the changes of membership replayed.
   */
  learn(slot: number, value: Batch): Applied[] {
    if (slot <= this.applied || this.waiting.has(slot)) return []
    this.waiting.set(slot, value)
    const out: Applied[] = []
    for (;;) {
      const slot = this.applied + 1
      const batch = this.waiting.get(slot)
      if (batch === undefined) break
      this.waiting.delete(slot)
      for (const cmd of batch) if (cmd._tag === "Reconfig") out.push(this.change(slot, cmd.change))
      this.applied = slot
      this.membership = settle(this.membership, slot + 1)
    }
    return out
  }

  private change(slot: number, change: Change): Applied {
    const r = applyChange(this.membership, slot, change)
    if ("_tag" in r) return { slot, change, refusal: r, membership: this.membership }
    this.membership = r.membership
    const next = r.membership.next
    // A binding changes no voter: only changes that do make a new entry of the history.
    if (change._tag !== "Bind" && next !== null) this.history.push({ from: next.from, config: next.config })
    return { slot, change, refusal: null, membership: r.membership }
  }

  /** The configuration of slot `t`, or undefined while it still depends on slots not replayed. */
  configOf(t: number): Config | undefined {
    if (t > this.applied + ALPHA) return undefined
    for (let i = this.history.length - 1; i >= 0; i--) {
      const h = this.history[i] as { from: number; config: Config }
      if (h.from <= t) return h.config
    }
    return this.history[0]?.config
  }
}
