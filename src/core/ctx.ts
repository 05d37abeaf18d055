/**
 * The context of one `step`: a draft of the next state and the outputs collected so far.
 * Handlers assign new (persistent) values to the draft's fields; the input state is never changed.
 */
import type { Message } from "./messages.ts"
import { nextInt } from "./prng.ts"
import { emptyOutput, type Event, type NodeState, type Output, type Reply, type Write } from "./state.ts"

export type Draft = { -readonly [K in keyof NodeState]: NodeState[K] }

export class Ctx {
  readonly s: Draft
  readonly out: Output = emptyOutput()
  /**
   * Set when this batch advanced what the leader knows is decided and no Accept to every node has
   * carried the new commit point since: the batch's Flush then tells the followers who wait for
   * it (`awaitingCommit`) with a Commit.
   */
  commitChanged = false
  /**
   * The members whose forwarded commands the leader applied in this batch: their clients wait until
   * they hear that the slots are decided.
   */
  awaitingCommit: number[] = []

  constructor(state: NodeState) {
    this.s = { ...state }
  }

  get id(): number {
    return this.s.cfg.id
  }

  /** A message that depends on no write of this step: it may leave before them. */
  early(to: number, msg: Message): void {
    this.out.early.push({ to, msg })
  }

  /** A message sent only once this step's writes are durable. */
  send(to: number, msg: Message): void {
    this.out.send.push({ to, msg })
  }

  /** To every other member (`self` false) or to every member including this one. */
  broadcast(msg: Message, opts: { self: boolean; early: boolean }): void {
    for (const to of this.s.peers) {
      if (to === this.id && !opts.self) continue
      if (opts.early && to !== this.id) this.early(to, msg)
      else this.send(to, msg)
    }
  }

  persist(w: Write): void {
    this.out.persist.push(w)
  }

  reply(r: Reply): void {
    this.out.replies.push(r)
  }

  event(e: Event): void {
    this.out.events.push(e)
  }

  /** An integer in [lo, hi) from the node's seeded PRNG. */
  random(lo: number, hi: number): number {
    const [v, rng] = nextInt(this.s.rng, lo, hi)
    this.s.rng = rng
    return v
  }

  /** A randomized election deadline, stretched by the current backoff. */
  electionDeadline(): number {
    const t = this.s.cfg.electionTicks * this.s.backoff
    return this.s.now + t + this.random(0, t)
  }
}
