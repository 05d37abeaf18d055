/**
 * The node as an Effect program. `step` decides; this program carries out what it decided, with
 * storage, network and client replies as services that whoever runs it provides: the simulator
 * deterministic in-memory layers, the server Bun ones. Order matters and is fixed here:
 *   1. messages that depend on no write (`early`) leave;
 *   2. client replies leave: they report decided commands, which a quorum holds durably already
 *      (every vote is sent only once durable, the node's own included), so they wait for no write;
 *   3. the batch's writes are committed, in one transaction;
 *   4. the messages that depend on them (`send`: promises and votes) are handed over to leave once
 *      every write committed so far is durable.
 * The program never waits for a disk: the shell makes commits durable in commit order (one fsync
 * may cover many commits) and holds the messages of step 4 until then, while later batches run.
 * So a batch may be stepped on a state whose writes are not yet durable: what makes that safe is
 * that nothing revealing acceptor state leaves before it is durable (step 4), and that a leader
 * starts Phase 2 only once its own promise is durable (see `onPromise` in leader.ts and
 * docs/PROTOCOL.md). A failed commit is a typed StorageError: nothing that depended on it is sent.
 * An invariant violation inside `step` is a defect (it dies), never a typed error.
 */
import { Context, Data, Effect } from "effect"
import { Ctx } from "./ctx.ts"
import { stepInto } from "./node.ts"
import { type Envelope, type Event, type Input, type NodeState, type Output, type Reply, type Write } from "./state.ts"

export class StorageError extends Data.TaggedError("StorageError")<{ readonly message: string; readonly cause?: unknown }> {}

export class Storage extends Context.Tag("paxos/Storage")<
  Storage,
  {
    /**
     * Applies a batch's writes now, in one transaction. They become durable later, in the order
     * they were committed; the commit's own failure is a StorageError.
     */
    readonly commit: (writes: readonly Write[]) => Effect.Effect<void, StorageError>
  }
>() {}

export class Network extends Context.Tag("paxos/Network")<
  Network,
  {
    /** Sends now. */
    readonly send: (envelopes: readonly Envelope[]) => Effect.Effect<void>
    /** Sends once every write committed so far is durable (at once when it already is). */
    readonly sendWhenDurable: (envelopes: readonly Envelope[]) => Effect.Effect<void>
  }
>() {}

export class Clients extends Context.Tag("paxos/Clients")<
  Clients,
  { readonly reply: (replies: readonly Reply[], state: NodeState) => Effect.Effect<void> }
>() {}

export interface BatchResult {
  readonly state: NodeState
  readonly events: readonly Event[]
  readonly writes: number
}

const FLUSH: Input = { _tag: "Flush" }

/**
 * Steps every input of a batch and then a Flush (pure): the next state and the outputs of the
 * whole batch. The Flush is where the leader proposes everything the batch queued, in as few slots
 * as the batch limit allows.
 */
export function stepBatch(state: NodeState, inputs: readonly Input[]): { readonly state: NodeState; readonly output: Output } {
  const c = new Ctx(state)
  for (const input of inputs) stepInto(c, input)
  stepInto(c, FLUSH)
  return { state: c.s, output: c.out }
}

/**
 * Carries out a batch's outputs in the order above. Written with combinators, not `Effect.gen`:
 * it runs once per batch, and JavaScriptCore kept recompiling the generator (140 optimizations of
 * it in a minute on a leader at 32 clients, 10 to 20 ms each on a JIT thread; docs/PERFORMANCE.md).
 * Every service's effect does its work when it runs, not when it is made, so the four are made
 * first and then run in this order.
 */
export const perform = (output: Output, state: NodeState): Effect.Effect<void, StorageError, Storage | Network | Clients> =>
  Effect.contextWithEffect((services: Context.Context<Storage | Network | Clients>) => {
    const network = Context.get(services, Network)
    const early = output.early.length > 0 ? network.send(output.early) : Effect.void
    const replies = output.replies.length > 0 ? Context.get(services, Clients).reply(output.replies, state) : Effect.void
    const commit = output.persist.length > 0 ? Context.get(services, Storage).commit(output.persist) : Effect.void
    const held = output.send.length > 0 ? network.sendWhenDurable(output.send) : Effect.void
    return Effect.zipRight(early, Effect.zipRight(replies, Effect.zipRight(commit, held)))
  })

/** Steps every input of the batch, then performs the outputs (when there are any). */
export const runBatch = (
  state: NodeState,
  inputs: readonly Input[]
): Effect.Effect<BatchResult, StorageError, Storage | Network | Clients> =>
  Effect.suspend(() => {
    const { state: next, output } = stepBatch(state, inputs)
    const result: BatchResult = { state: next, events: output.events, writes: output.persist.length }
    const idle = output.early.length + output.persist.length + output.send.length + output.replies.length === 0
    return idle ? Effect.succeed(result) : Effect.as(perform(output, next), result)
  })
