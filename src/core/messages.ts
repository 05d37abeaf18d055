/**
 * Wire schemas: every peer message (a tagged union) and the client API. Both the server and the
 * tests decode with these; a message that fails its schema never reaches the core.
 *
 * Message names follow Chand, Liu and Stoller (2016): Prepare = Phase1a, Promise = Phase1b,
 * Accept = Phase2a, Accepted = Phase2b. The rest is what a production Multi-Paxos adds: Nack
 * (preemption), Commit (decisions and heartbeats), Forward (follower to leader), catch-up and
 * snapshot transfer. Every message carries O(batch) data, except Snapshot, which carries the part
 * of the list the receiver lacks.
 */
import { Schema as S } from "effect"
import { LIMITS } from "./config.ts"
import { ADDRESS_LENGTH_MAX, INCARNATION_PATTERN, MEMBERS_MAX } from "./membership.ts"

export const Slot = S.Int.pipe(S.nonNegative())
export const Value = S.Int
/** A member id (docs/MEMBERSHIP.md): the initial members are 0 to n-1, added ones get the next unused id. */
export const NodeIndex = S.Int.pipe(S.between(0, LIMITS.memberIdMax))
export const CommandId = S.String.pipe(S.minLength(1), S.maxLength(LIMITS.commandIdLengthMax))
export const ClientId = S.String.pipe(S.minLength(1), S.maxLength(LIMITS.clientIdLengthMax))
export const Seq = S.Int.pipe(S.nonNegative())

export const Ballot = S.Struct({ round: Slot, leader: NodeIndex })

export const AppendCommand = S.TaggedStruct("Append", {
  id: CommandId,
  value: Value,
  client: S.optionalWith(ClientId, { exact: true }),
  seq: S.optionalWith(Seq, { exact: true })
})
export const ReadCommand = S.TaggedStruct("Read", { id: CommandId })

/** A member's address, `host:port`. */
export const MemberAddress = S.String.pipe(S.minLength(1), S.maxLength(ADDRESS_LENGTH_MAX))
/** An incarnation: 16 lowercase hex digits, minted by a data directory. */
export const Incarnation = S.String.pipe(S.pattern(INCARNATION_PATTERN))

/** A change of membership (membership.ts): applied in log order, with the same checks on every replica. */
export const Change = S.Union(
  S.TaggedStruct("Add", { address: MemberAddress }),
  S.TaggedStruct("Promote", { id: NodeIndex }),
  S.TaggedStruct("Remove", { id: NodeIndex }),
  S.TaggedStruct("Replace", { remove: NodeIndex, promote: NodeIndex }),
  S.TaggedStruct("Bind", { id: NodeIndex, incarnation: Incarnation })
)
export const ReconfigCommand = S.TaggedStruct("Reconfig", { id: CommandId, change: Change })

export const Command = S.Union(AppendCommand, ReadCommand, ReconfigCommand)
export type Command = typeof Command.Type
export type AppendCommand = typeof AppendCommand.Type

export const MemberSchema = S.Struct({ id: NodeIndex, address: MemberAddress, incarnation: S.NullOr(Incarnation), voter: S.Boolean })
export const ConfigSchema = S.Struct({
  epoch: S.Int.pipe(S.nonNegative()),
  members: S.Array(MemberSchema).pipe(S.maxItems(MEMBERS_MAX)),
  nextId: S.Int.pipe(S.between(0, LIMITS.memberIdMax + 1))
})
/** The configuration in force and a change not yet in force, as snapshots carry them. */
export const MembershipSchema = S.Struct({
  current: ConfigSchema,
  next: S.NullOr(S.Struct({ config: ConfigSchema, from: S.Int.pipe(S.nonNegative()) }))
})

/** The value of one slot: a batch of commands; an empty batch is a no-op. */
export const Batch = S.Array(Command).pipe(S.maxItems(LIMITS.batchCommandsMax))
export type Batch = typeof Batch.Type

export const Entry = S.Struct({ slot: Slot, value: Batch })
export type Entry = typeof Entry.Type
export const AcceptedEntry = S.Struct({ slot: Slot, ballot: Ballot, value: Batch })
export type AcceptedEntry = typeof AcceptedEntry.Type

/** What the replica remembers of a client for exactly-once: its latest applied request. */
export const ClientEntry = S.Struct({
  client: ClientId,
  seq: Seq,
  value: Value,
  index: S.Int.pipe(S.nonNegative()),
  slot: Slot
})
export type ClientEntry = typeof ClientEntry.Type

const entries = <A, I>(item: S.Schema<A, I>) => S.Array(item).pipe(S.maxItems(LIMITS.messageEntriesMax))

/** Phase1a: a candidate asks for a promise covering every slot from `from` on. */
export const Prepare = S.TaggedStruct("Prepare", { ballot: Ballot, from: Slot })
/** Phase1b: the promise, with what this acceptor accepted at or above `from`, and its snapshot slot. */
export const Promise = S.TaggedStruct("Promise", {
  ballot: Ballot,
  snapshot: Slot,
  accepted: S.Array(AcceptedEntry).pipe(S.maxItems(LIMITS.promiseEntriesMax))
})
/** Phase2a: proposals of the leader, and its commit watermark. */
export const Accept = S.TaggedStruct("Accept", { ballot: Ballot, entries: entries(Entry), commit: Slot })
/** Phase2b: the acceptor accepted these slots at this ballot (durably). */
export const Accepted = S.TaggedStruct("Accepted", { ballot: Ballot, slots: entries(Slot) })
/** The acceptor promised a higher ballot than the one of the message it refuses. */
export const Nack = S.TaggedStruct("Nack", { ballot: Ballot, promised: Ballot })
/**
 * Leader heartbeat: every slot up to `commit` is decided. `quorum`: the leader heard from a quorum
 * (itself included) within the last election timeout, which tells its followers whether it can
 * still decide anything (their readiness): sent in heartbeats. Absent, the sender claims nothing, and
 * a follower keeps what the last heartbeat said.
 */
export const Commit = S.TaggedStruct("Commit", { ballot: Ballot, commit: Slot, quorum: S.optionalWith(S.Boolean, { exact: true }) })
/** A follower's answer to a heartbeat; lets the leader notice a lost quorum. */
export const CommitAck = S.TaggedStruct("CommitAck", { ballot: Ballot, applied: Slot })
/** Client commands that reached a follower, sent on to the leader. */
export const Forward = S.TaggedStruct("Forward", {
  commands: S.Array(Command).pipe(S.maxItems(LIMITS.messageEntriesMax))
})
/** The receiver of a Forward is not leader or is full; the sender's clients learn at once. */
export const ForwardReject = S.TaggedStruct("ForwardReject", {
  ids: entries(CommandId),
  reason: S.String.pipe(S.maxLength(LIMITS.reasonLengthMax))
})
/** A lagging replica asks for decided slots from `from` on; `listLength` is the length of its list. */
export const CatchupRequest = S.TaggedStruct("CatchupRequest", {
  from: Slot,
  listLength: S.Int.pipe(S.nonNegative()),
  /** The requester joined with no state: it needs a snapshot (with the membership) before any entry. */
  snapshot: S.optionalWith(S.Boolean, { exact: true })
})
export const CatchupReply = S.TaggedStruct("CatchupReply", { entries: entries(Entry) })
/**
 * Part of the sender's list from `listFrom` on. The last chunk (`complete`) reaches the end of the
 * sender's list at `slot` and carries the whole client table and the membership at `slot`; earlier
 * chunks carry neither and are staged by the receiver until it has the rest.
 */
export const Snapshot = S.TaggedStruct("Snapshot", {
  slot: Slot,
  listFrom: S.Int.pipe(S.nonNegative()),
  values: S.Array(Value).pipe(S.maxItems(LIMITS.snapshotChunkValuesMax)),
  clients: S.Array(ClientEntry).pipe(S.maxItems(LIMITS.clientTableMax)),
  complete: S.Boolean,
  membership: S.optionalWith(MembershipSchema, { exact: true })
})
/** A leader that leaves the configuration asks a caught-up voter to campaign at once (a hand-over). */
export const Campaign = S.TaggedStruct("Campaign", { ballot: Ballot })

export const Message = S.Union(
  Prepare,
  Promise,
  Accept,
  Accepted,
  Nack,
  Commit,
  CommitAck,
  Forward,
  ForwardReject,
  CatchupRequest,
  CatchupReply,
  Snapshot,
  Campaign
)
export type Message = typeof Message.Type
export type MessageTag = Message["_tag"]

/** One HTTP body of peer traffic: messages from one node to another. */
export const PeerEnvelope = S.Struct({
  cluster: S.String.pipe(S.maxLength(128)),
  from: NodeIndex,
  to: NodeIndex,
  messages: S.Array(Message).pipe(S.maxItems(LIMITS.messagesPerEnvelopeMax))
})
export type PeerEnvelope = typeof PeerEnvelope.Type

// ---------------------------------------------------------------------------------------------
// Client API (README, "HTTP API"): bodies are decoded with onExcessProperty "error", so extra fields fail.

export const AppendRequest = S.Struct({
  value: Value,
  client: S.optionalWith(ClientId, { exact: true }),
  seq: S.optionalWith(Seq, { exact: true })
})
export type AppendRequest = typeof AppendRequest.Type

export const AppendResponse = S.Struct({
  value: Value,
  index: S.Int.pipe(S.nonNegative()),
  list: S.optionalWith(S.Array(Value), { exact: true })
})
export const ListResponse = S.Struct({ list: S.Array(Value) })
export const ErrorResponse = S.Struct({ error: S.String, message: S.String, definite: S.Boolean })

export const strict = { onExcessProperty: "error" } as const
