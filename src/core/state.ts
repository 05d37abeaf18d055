/**
 * The node's state, inputs and outputs. NodeState is immutable: collections are Effect HashMaps
 * (persistent) and the list is a PList, so `step` returns a new state and never changes its input.
 */
import { HashMap } from "effect"
import * as B from "./ballot.ts"
import type { Ballot } from "./ballot.ts"
import type { NodeConfig } from "./config.ts"
import { memberIds, startMembership, type Change, type Config, type Membership } from "./membership.ts"
import type { AcceptedEntry, Batch, ClientEntry, Command, Message } from "./messages.ts"
import { PList } from "./plist.ts"
import { nextU32, type Rng } from "./prng.ts"

// ---------------------------------------------------------------------------------------------
// Roles (a tagged union, frankenpaxos style)

export interface Follower {
  readonly _tag: "Follower"
}

/** Phase 1 in progress at `ballot`, for every slot from `from` on. */
export interface Candidate {
  readonly _tag: "Candidate"
  readonly ballot: Ballot
  readonly from: number
  readonly promises: HashMap.HashMap<number, { readonly snapshot: number; readonly accepted: readonly AcceptedEntry[] }>
  readonly deadline: number
}

export interface Proposal {
  readonly value: Batch
  readonly votes: readonly number[]
  readonly sentAt: number
  /** The configuration of the proposal's slot: only its voters' votes count. */
  readonly config: Config
}

/**
 * Phase 2 at `ballot`: proposals in flight, and when each follower last answered.
 * `committed` is the watermark this leader advertises: every slot up to it is either at or below the
 * election floor (decided before, never proposed at this ballot) or was accepted by a quorum at this
 * ballot. `chosenAbove` holds slots above it already chosen at this ballot (pipelining decides out of
 * order). Decisions learned any other way (catch-up) never raise it: a follower that accepted a slot
 * at this ballot treats it as decided once the slot is under `committed`.
 */
export interface Leader {
  readonly _tag: "Leader"
  readonly ballot: Ballot
  readonly committed: number
  readonly chosenAbove: readonly number[]
  /** The next slot to propose. */
  readonly next: number
  readonly inflight: HashMap.HashMap<number, Proposal>
  /** When each member (by id) last answered; undefined: not since this leader began. */
  readonly heardFrom: readonly (number | undefined)[]
  readonly since: number
  readonly heartbeatAt: number
  /** The members that promised this ballot: a slot is proposed only while they hold a quorum of its configuration. */
  readonly promisedBy: readonly number[]
  /** Values reported by promises for slots from `next` on (the highest ballot each), proposed when their slot comes. */
  readonly recovered: HashMap.HashMap<number, AcceptedEntry>
  /** The highest slot a promise reported: slots up to it are re-proposed (a no-op where nothing was reported). */
  readonly top: number
  /** When this leader may next ask members of a configuration it holds no quorum of to promise. */
  readonly prepareAt: number
  /** When this leader may next propose to promote a caught-up learner. */
  readonly promoteAt: number
  /** Only with the planted bug reconfig-concurrent: this leader proposed a change not yet applied. */
  readonly changing: boolean
}

export type Role = Follower | Candidate | Leader

/** A client request of this node that waits for its command to be applied. */
export interface Pending {
  readonly rid: number
  /** Whether the command left this node (forwarded or proposed): then its outcome is unknown. */
  readonly sent: boolean
  readonly deadline: number
}

export interface NodeState {
  readonly cfg: NodeConfig
  readonly rng: Rng
  readonly bootId: string
  readonly now: number
  /** The highest ballot seen anywhere; a new campaign goes above it. */
  readonly seen: Ballot
  // acceptor: durable
  readonly promised: Ballot
  readonly accepted: HashMap.HashMap<number, AcceptedEntry>
  // replica: snapshot durable, the rest rebuilt from it and from peers
  readonly snapSlot: number
  readonly snapLen: number
  readonly applied: number
  readonly list: PList
  readonly clients: HashMap.HashMap<string, ClientEntry>
  /** Decided slots above `applied`, waiting for the gap below them to fill. */
  readonly decided: HashMap.HashMap<number, Batch>
  /** Applied slots above the snapshot, kept to serve catch-up. */
  readonly log: HashMap.HashMap<number, Batch>
  /** Every slot up to this one is known to be decided (its value may still be unknown here). */
  readonly knownDecided: number
  /** The node that told us of the newest decisions: where catch-up requests go. */
  readonly source: number | null
  readonly catchupAt: number
  /**
   * The list extended by values of snapshot chunks received so far, while a chunked transfer is
   * under way (null otherwise). Chunks cut from states at different slots still extend one another:
   * every list is a prefix of one order.
   */
  readonly staged: PList | null
  /**
   * This node joined the cluster with no state (`--join`): it applies nothing until it installed a
   * snapshot, which brings the membership its first slots were decided under.
   */
  readonly joining: boolean
  /** The configuration in force for the slot after `applied`, and a change decided but not yet in force (docs/MEMBERSHIP.md). */
  readonly membership: Membership
  /** The ids of every member of either configuration, ascending: whom broadcasts go to. */
  readonly peers: readonly number[]
  // roles
  readonly role: Role
  readonly leader: number | null
  /** When this node last heard from its leader (an Accept or Commit of the leader's ballot). */
  readonly leaderHeardAt: number
  /** The commit watermark the leader advertised last (the highest of its Accepts and Commits). */
  readonly leaderCommit: number
  /** What the leader's last heartbeat said: it heard from a quorum within the last election timeout. */
  readonly leaderQuorum: boolean
  readonly electionAt: number
  readonly backoff: number
  // this node's clients
  readonly queue: PList<Command>
  readonly pending: HashMap.HashMap<string, Pending>
  readonly nextId: number
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs of `step`

export type Input =
  | { readonly _tag: "Tick" }
  /** End of a batch of inputs: propose (leader) or forward (follower) what queued up during it. */
  | { readonly _tag: "Flush" }
  | { readonly _tag: "Receive"; readonly from: number; readonly msg: Message }
  | { readonly _tag: "Append"; readonly rid: number; readonly value: number; readonly client?: string; readonly seq?: number }
  | { readonly _tag: "Read"; readonly rid: number }
  /** A change of membership asked for by a client (`paxos member`); answered once applied. */
  | { readonly _tag: "Reconfig"; readonly rid: number; readonly change: Change }
  /**
   * The shell's clock says the clients of these requests are about to give up: end them now, as at
   * their deadline (503 if never sent on, else 504). Requests answered already are left alone.
   */
  | { readonly _tag: "Expire"; readonly rids: ReadonlySet<number> }

export interface Envelope {
  readonly to: number
  readonly msg: Message
}

/** Writes the shell makes durable before it sends `send` of the same output (and of any later one). */
export type Write =
  | { readonly _tag: "Promise"; readonly promised: Ballot }
  | { readonly _tag: "Accept"; readonly promised: Ballot; readonly entries: readonly AcceptedEntry[] }
  /** The durable list becomes its first `from` values followed by `values`; accepted slots <= slot are dropped. */
  | {
      readonly _tag: "Snapshot"
      readonly slot: number
      readonly from: number
      readonly values: readonly number[]
      readonly clients: readonly ClientEntry[]
      readonly membership: Membership
    }

/**
 * Why a request failed. `Refused`: a change of membership the log refused (invalid, or another in
 * flight). `Removed`: this node is no longer a member.
 */
export type RejectReason = "NoLeader" | "Overloaded" | "Timeout" | "StaleSeq" | "Refused" | "Removed"

export type Reply =
  | { readonly _tag: "Appended"; readonly rid: number; readonly value: number; readonly index: number }
  | { readonly _tag: "ReadDone"; readonly rid: number; readonly length: number }
  /** A change of membership applied at `slot`; the membership after it. */
  | { readonly _tag: "Reconfigured"; readonly rid: number; readonly slot: number; readonly membership: Membership }
  | { readonly _tag: "Rejected"; readonly rid: number; readonly definite: boolean; readonly reason: RejectReason; readonly message: string }

/** Things that happened, for counters, logs and the simulator's checks. */
export type Event =
  | { readonly _tag: "ElectionStarted"; readonly ballot: Ballot }
  /** `changes`: re-proposed slots that hold a change of membership; `configs`: configurations whose quorum promised. */
  | { readonly _tag: "BecameLeader"; readonly ballot: Ballot; readonly reproposed: number; readonly noops: number; readonly changes: number; readonly configs: number }
  /** A leader asked the voters of a configuration coming into its window to promise its ballot. */
  | { readonly _tag: "PromisesAsked"; readonly epoch: number }
  | { readonly _tag: "SteppedDown"; readonly ballot: Ballot; readonly reason: "preempted" | "lost-quorum" | "higher-ballot" | "removed" }
  | { readonly _tag: "Proposed"; readonly slots: number; readonly commands: number }
  | { readonly _tag: "Decided"; readonly slot: number; readonly value: Batch }
  | { readonly _tag: "Applied"; readonly slot: number }
  | { readonly _tag: "SnapshotTaken"; readonly slot: number }
  | { readonly _tag: "SnapshotInstalled"; readonly slot: number }
  | { readonly _tag: "SnapshotChunkStaged"; readonly values: number }
  | { readonly _tag: "SnapshotSent"; readonly to: number; readonly values: number }
  | { readonly _tag: "CatchupServed"; readonly to: number; readonly entries: number }
  | { readonly _tag: "CatchupRequested"; readonly from: number }
  | { readonly _tag: "DuplicateFromTable" }
  | { readonly _tag: "DuplicateApplied" }
  | { readonly _tag: "Retransmitted"; readonly slots: number }
  | { readonly _tag: "Forwarded"; readonly commands: number }
  /** A change of membership applied at `slot` (it governs the slots from `from` on), or refused. */
  | { readonly _tag: "MembershipChanged"; readonly slot: number; readonly change: Change; readonly from: number; readonly epoch: number }
  | { readonly _tag: "ChangeRefused"; readonly slot: number; readonly change: Change; readonly reason: string; readonly inFlight: boolean }
  /** The leader proposed to promote a caught-up learner on its own. */
  | { readonly _tag: "PromotionProposed"; readonly id: number }
  /** A former member campaigned or asked for slots: it was sent the decided slots it lacks. */
  | { readonly _tag: "FormerMemberAnswered"; readonly to: number }
  /** A leader left the configuration and asked `to` to campaign. */
  | { readonly _tag: "HandedOver"; readonly to: number | null }

export interface Output {
  readonly early: Envelope[]
  readonly persist: Write[]
  readonly send: Envelope[]
  readonly replies: Reply[]
  readonly events: Event[]
}

export const emptyOutput = (): Output => ({ early: [], persist: [], send: [], replies: [], events: [] })

export interface StepResult {
  readonly state: NodeState
  readonly output: Output
}

// ---------------------------------------------------------------------------------------------
// Durable state and start-up

/** What storage holds for a node, and what it loads at start. */
export interface DurableState {
  readonly promised: Ballot
  readonly accepted: readonly AcceptedEntry[]
  readonly snapshot: {
    readonly slot: number
    readonly list: readonly number[]
    readonly clients: readonly ClientEntry[]
    /** Membership at the snapshot; absent: the initial configuration (NodeConfig.initial). */
    readonly membership?: Membership
  }
}

export const emptyDurable: DurableState = {
  promised: B.ZERO,
  accepted: [],
  snapshot: { slot: 0, list: [], clients: [] }
}

/** A node starting (or restarting) from what its storage holds. Slots are numbered from 1. */
export function restore(cfg: NodeConfig, durable: DurableState, seed: number): NodeState {
  const [a, r1] = nextU32(seed)
  const [b, r2] = nextU32(r1)
  const snap = durable.snapshot
  const membership = snap.membership ?? startMembership(cfg.initial)
  return {
    cfg,
    rng: r2,
    bootId: (a.toString(36) + b.toString(36)).slice(0, 10),
    now: 0,
    seen: durable.promised,
    promised: durable.promised,
    accepted: HashMap.fromIterable(
      durable.accepted.filter((e) => e.slot > snap.slot).map((e) => [e.slot, e] as const)
    ),
    snapSlot: snap.slot,
    snapLen: snap.list.length,
    applied: snap.slot,
    list: PList.from(snap.list),
    clients: HashMap.fromIterable(snap.clients.map((c) => [c.client, c] as const)),
    decided: HashMap.empty(),
    log: HashMap.empty(),
    knownDecided: snap.slot,
    source: null,
    catchupAt: 0,
    staged: null,
    joining: snap.slot === 0 && cfg.joining === true,
    membership,
    peers: memberIds(membership),
    role: { _tag: "Follower" },
    leader: null,
    leaderHeardAt: 0,
    leaderCommit: 0,
    leaderQuorum: false,
    // A restarted node listens for a full election timeout before it campaigns.
    electionAt: cfg.electionTicks + (a % cfg.electionTicks),
    backoff: 1,
    queue: PList.empty(),
    pending: HashMap.empty(),
    nextId: 0
  }
}
