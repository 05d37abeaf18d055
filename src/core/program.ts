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
import { emptyOutput, type Envelope, type Event, type Input, type NodeState, type Output, type Reply, type Write } from "./state.ts"

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

const FLUSH: Input = { _tag: "Flush" }

/**
 * Steps every input of a batch and then a Flush (pure): the next state and the outputs of the
 * whole batch. The Flush is where the leader proposes everything the batch queued, in as few slots
 * as the batch limit allows.
 */
export function stepBatch(state: NodeState, inputs: readonly Input[]): { readonly state: NodeState; readonly output: Output } {
  let s = state
  const output = emptyOutput()
  for (const input of [...inputs, FLUSH]) {
    const r = step(s, input)
    s = r.state
    pushAll(output.early, r.output.early)
    pushAll(output.persist, r.output.persist)
    pushAll(output.send, r.output.send)
    pushAll(output.replies, r.output.replies)
    pushAll(output.events, r.output.events)
  }
  return { state: s, output }
}

/** Carries out a batch's outputs in the order above. */
export const perform = (output: Output, state: NodeState): Effect.Effect<void, StorageError, Storage | Network | Clients> =>
  Effect.gen(function* () {
    const network = yield* Network
    if (output.early.length > 0) yield* network.send(output.early)
    if (output.persist.length > 0) yield* (yield* Storage).persist(output.persist)
    if (output.send.length > 0) yield* network.send(output.send)
    if (output.replies.length > 0) yield* (yield* Clients).reply(output.replies, state)
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

function pushAll<A>(into: A[], from: readonly A[]): void {
  for (const x of from) into.push(x)
}
