/**
 * The node as an Effect program. `step` decides; this program carries out what it decided, with
 * storage, network and client replies as services that whoever runs it provides: the simulator
 * deterministic in-memory layers, the server Bun ones. Order matters and is fixed here:
 *   1. messages that depend on no write of the batch leave (`early`),
 *   2. the batch's writes are made durable, in one group commit,
 *   3. only then do the messages and replies that depend on them leave.
 * A failed write is a typed StorageError: nothing that depended on it is sent. An invariant
 * violation inside `step` is a defect (it dies), never a typed error.
 */
import { Context, Data, Effect } from "effect"
import { step } from "./node.ts"
import type { Envelope, Event, Input, NodeState, Reply, Write } from "./state.ts"

export class StorageError extends Data.TaggedError("StorageError")<{ readonly message: string; readonly cause?: unknown }> {}

export class Storage extends Context.Tag("paxos/Storage")<
  Storage,
  { readonly persist: (writes: readonly Write[]) => Effect.Effect<void, StorageError> }
>() {}

export class Network extends Context.Tag("paxos/Network")<
  Network,
  { readonly send: (envelopes: readonly Envelope[]) => Effect.Effect<void> }
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

/** Steps every input of the batch, then performs the outputs in the order above. */
export const runBatch = (
  state: NodeState,
  inputs: readonly Input[]
): Effect.Effect<BatchResult, StorageError, Storage | Network | Clients> =>
  Effect.gen(function* () {
    let s = state
    const early: Envelope[] = []
    const writes: Write[] = []
    const send: Envelope[] = []
    const replies: Reply[] = []
    const events: Event[] = []
    for (const input of inputs) {
      const r = step(s, input)
      s = r.state
      pushAll(early, r.output.early)
      pushAll(writes, r.output.persist)
      pushAll(send, r.output.send)
      pushAll(replies, r.output.replies)
      pushAll(events, r.output.events)
    }
    const network = yield* Network
    if (early.length > 0) yield* network.send(early)
    if (writes.length > 0) yield* (yield* Storage).persist(writes)
    if (send.length > 0) yield* network.send(send)
    if (replies.length > 0) yield* (yield* Clients).reply(replies, s)
    return { state: s, events, writes: writes.length }
  })

function pushAll<A>(into: A[], from: readonly A[]): void {
  for (const x of from) into.push(x)
}
