/**
 * Limits and timing of a node. Time inside the core is counted in ticks, never read from a clock:
 * the server ticks every `tickMs` milliseconds, the simulator ticks a virtual clock.
 * Every queue, batch and message has a bound here (TigerBeetle style: units last in names).
 */

import { indexedConfig, type Config } from "./membership.ts"

/** Hard limits that the wire schemas enforce too; a message over them is rejected at decode. */
export const LIMITS = {
  /** Nodes of a config file (the first members), at most. */
  nodesMax: 9,
  /** Member ids are never reused, so they grow with every member added: at most this. */
  memberIdMax: 65_535,
  batchCommandsMax: 256,
  messageEntriesMax: 512,
  messagesPerEnvelopeMax: 4096,
  /** A Promise reports every accepted slot above the snapshot: bounded by compaction, checked here. */
  promiseEntriesMax: 1_000_000,
  commandIdLengthMax: 64,
  clientIdLengthMax: 128,
  /** Values in one Snapshot message, at most: a larger transfer goes in chunks. */
  snapshotChunkValuesMax: 250_000,
  clientTableMax: 100_000,
  reasonLengthMax: 200
} as const

export type BugName =
  | "forget-promise"
  | "accept-lower-ballot"
  | "ignore-phase1-values"
  | "stale-read"
  | "send-before-durable"
  | "sync-covers-newer"
  | "reconfig-too-early"
  | "reconfig-old-quorum"
  | "reconfig-concurrent"
  | "reconfig-phase1-new-only"
  | "wipe-rejoins-as-voter"
export const BUG_NAMES: readonly BugName[] = [
  "forget-promise",
  "accept-lower-ballot",
  "ignore-phase1-values",
  "stale-read",
  "send-before-durable",
  "sync-covers-newer",
  "reconfig-too-early",
  "reconfig-old-quorum",
  "reconfig-concurrent",
  "reconfig-phase1-new-only",
  "wipe-rejoins-as-voter"
]

export interface NodeConfig {
  /** This node's index in the cluster's node list. */
  readonly id: number
  /** Number of nodes the cluster started with. */
  readonly n: number
  /**
   * The configuration the cluster started with (docs/MEMBERSHIP.md); later ones come from the log.
   * For a node that joined, the configuration it was bound in.
   */
  readonly initial: Config
  /** This node joined a running cluster (`--join`): until it installs a snapshot it applies nothing. */
  readonly joining?: boolean
  /** As leader, promote a learner once it has caught up (the simulator turns it off in some runs, to keep learners around). */
  readonly promoteLearners: boolean
  /** Slots proposed but not yet decided, at most. */
  readonly windowSlots: number
  /** Commands batched into one slot, at most. */
  readonly batchCommandsMax: number
  /** Commands waiting to be proposed or forwarded, at most; more are refused (503). */
  readonly queueCommandsMax: number
  /** Client requests of this node awaiting an answer, at most; more are refused (503). */
  readonly pendingRequestsMax: number
  /** Entries of one Accept, Promise or CatchupReply message, at most. */
  readonly messageEntriesMax: number
  /** A snapshot is taken every this many applied slots; older slots are then compacted. */
  readonly snapshotEverySlots: number
  /** Values sent in one Snapshot chunk during catch-up (at most LIMITS.snapshotChunkValuesMax). */
  readonly snapshotChunkValues: number
  /** Distinct clients remembered for exactly-once; the least recently applied are evicted. */
  readonly clientTableMax: number
  /** Heartbeat period of the leader. */
  readonly heartbeatTicks: number
  /** Followers wait between electionTicks and 2*electionTicks without a leader before campaigning. */
  readonly electionTicks: number
  /** Undecided proposals are re-sent after this many ticks. */
  readonly retransmitTicks: number
  /** A client request unanswered for this long fails (503 if never sent on, 504 otherwise). */
  readonly requestTicks: number
  /** Minimum gap between two catch-up requests. */
  readonly catchupTicks: number
  /** Planted bugs: set only by the simulator (`bun run sim --bug NAME`); the server has no way to set them. */
  readonly bugs: ReadonlySet<BugName>
}

export const defaultConfig = (id: number, n: number, overrides: Partial<NodeConfig> = {}): NodeConfig => ({
  id,
  n,
  initial: overrides.initial ?? indexedConfig(n),
  windowSlots: 64,
  batchCommandsMax: 128,
  queueCommandsMax: 20_000,
  pendingRequestsMax: 20_000,
  messageEntriesMax: 256,
  snapshotEverySlots: 1_000,
  snapshotChunkValues: 250_000,
  clientTableMax: 50_000,
  heartbeatTicks: 5,
  electionTicks: 30,
  retransmitTicks: 20,
  requestTicks: 500,
  catchupTicks: 10,
  promoteLearners: true,
  bugs: new Set(),
  ...overrides
})

export const quorum = (n: number): number => Math.floor(n / 2) + 1

export const hasBug = (cfg: NodeConfig, bug: BugName): boolean => cfg.bugs.size > 0 && cfg.bugs.has(bug)
