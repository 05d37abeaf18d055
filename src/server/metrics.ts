/**
 * The node's counters (monotonic) and their Prometheus text rendering. Gauges (role, slots, queue
 * lengths) are read from the node's state when /status or /metrics is asked.
 */

/** CPU time this process has used, user and system, in seconds. */
export function processCpuSeconds(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

export interface Counters {
  clientAppends: number
  clientReads: number
  /** Changes of membership asked of this node (paxos member, --join). */
  membershipRequests: number
  clientOk: number
  clientBadRequests: number
  clientUnavailable: number
  clientUnknown: number
  /** Client commands the leader proposed. */
  proposals: number
  proposedSlots: number
  /** Slots this node learned decided. */
  decisions: number
  elections: number
  becameLeader: number
  leaderChanges: number
  snapshotsTaken: number
  snapshotsInstalled: number
  snapshotsSent: number
  catchupRequests: number
  catchupsServed: number
  retransmittedSlots: number
  forwardedCommands: number
  duplicatesAnswered: number
  batches: number
  batchInputs: number
  /** Inputs refused because the input queue was full. */
  inputsDropped: number
  peerEnvelopesSent: number
  peerMessagesSent: number
  peerBytesSent: number
  peerSendFailures: number
  /** Messages dropped from a full outbox or with a failed envelope. */
  peerMessagesDropped: number
  peerEnvelopesReceived: number
  peerMessagesReceived: number
  peerBytesReceived: number
  peerEnvelopesRejected: number
  /** Envelopes from an id that is no member here (removed, or not added here yet): the core ignores them but for a hand-over. */
  peerEnvelopesFromNonMembers: number
  /** Envelopes dropped because their sender speaks as another incarnation than its id is bound to (or is not bound yet). */
  peerEnvelopesWrongIncarnation: number
  /** Outboxes opened for the while to answer a former member that asked (a removed node that missed its removal). */
  formerMemberLinks: number
  /** Envelopes a peer refused (4xx from it). */
  peerEnvelopesRefusedByPeer: number
  /** Connections to a peer that it refused (authentication, another cluster): each logged with its cause. */
  peerConnectionsRefusedByPeer: number
  /** Peer requests, connections and frames refused by peer authentication (by reason: PeerAuthCounters). */
  peerAuthFailures: number
  /** Inbound peer connections closed because a newer one from the same peer arrived. */
  peerConnectionsReplaced: number
  /** Client requests refused for a missing or wrong bearer token. */
  clientAuthFailures: number
  /** Requests refused at once (503) because the node had too many in flight or too many body bytes. */
  requestsOverloaded: number
  /** Requests whose body did not arrive in time (408). */
  requestsSlowBody: number
  /** Requests whose client went away before the answer (aborted, timed out, disconnected). */
  clientGone: number
  /** fdatasyncs of the WAL that completed (each covers every commit made before it started). */
  fsyncs: number
  /** SQLite commits (one per batch with writes), and the writes in them. */
  commits: number
  writes: number
  /** Time spent in batches (stepping, committing, sending), and in SQLite commits alone. */
  batchMicros: number
  persistMicros: number
  /** Time from the start of each fdatasync to its end being seen on the event loop, summed. */
  syncMicros: number
}

export const newCounters = (): Counters => ({
  clientAppends: 0,
  clientReads: 0,
  membershipRequests: 0,
  clientOk: 0,
  clientBadRequests: 0,
  clientUnavailable: 0,
  clientUnknown: 0,
  proposals: 0,
  proposedSlots: 0,
  decisions: 0,
  elections: 0,
  becameLeader: 0,
  leaderChanges: 0,
  snapshotsTaken: 0,
  snapshotsInstalled: 0,
  snapshotsSent: 0,
  catchupRequests: 0,
  catchupsServed: 0,
  retransmittedSlots: 0,
  forwardedCommands: 0,
  duplicatesAnswered: 0,
  batches: 0,
  batchInputs: 0,
  inputsDropped: 0,
  peerEnvelopesSent: 0,
  peerMessagesSent: 0,
  peerBytesSent: 0,
  peerSendFailures: 0,
  peerMessagesDropped: 0,
  peerEnvelopesReceived: 0,
  peerMessagesReceived: 0,
  peerBytesReceived: 0,
  peerEnvelopesRejected: 0,
  peerEnvelopesFromNonMembers: 0,
  peerEnvelopesWrongIncarnation: 0,
  formerMemberLinks: 0,
  peerEnvelopesRefusedByPeer: 0,
  peerConnectionsRefusedByPeer: 0,
  peerAuthFailures: 0,
  peerConnectionsReplaced: 0,
  clientAuthFailures: 0,
  requestsOverloaded: 0,
  requestsSlowBody: 0,
  clientGone: 0,
  fsyncs: 0,
  commits: 0,
  writes: 0,
  batchMicros: 0,
  persistMicros: 0,
  syncMicros: 0
})

/** Peer authentication failures by reason (peer-auth.ts's AuthFailure). */
export interface PeerAuthCounters {
  Missing: number
  BadMac: number
  Stale: number
  Replayed: number
  Malformed: number
}

export const newPeerAuthCounters = (): PeerAuthCounters => ({ Missing: 0, BadMac: 0, Stale: 0, Replayed: 0, Malformed: 0 })

/** A counter with one label, e.g. paxos_peer_auth_failures_by_reason_total{reason="BadMac"}. */
export interface Labeled {
  readonly name: string
  readonly label: string
  readonly values: Readonly<Record<string, number>>
}

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/**
 * Prometheus text format (version 0.0.4): counters as `paxos_<name>_total`, gauges as
 * `paxos_<name>`, labeled counters as `paxos_<name>_total{label=...}` and labeled gauges as
 * `paxos_<name>{label=...}`.
 */
export function renderPrometheus(
  node: string,
  counters: Counters,
  gauges: Record<string, number>,
  labeled: readonly Labeled[] = [],
  version?: string,
  labeledGauges: readonly Labeled[] = []
): string {
  const nodeLabel = `node="${node.replace(/["\\]/g, "")}"`
  const label = `{${nodeLabel}}`
  const lines: string[] = []
  // The build, as Prometheus exporters report it: a gauge of 1 whose labels carry the facts.
  if (version !== undefined) lines.push("# TYPE paxos_build_info gauge", `paxos_build_info{${nodeLabel},version="${version.replace(/["\\]/g, "")}"} 1`)
  for (const [k, v] of Object.entries(counters)) {
    const name = `paxos_${snake(k)}_total`
    lines.push(`# TYPE ${name} counter`, `${name}${label} ${v}`)
  }
  for (const [k, v] of Object.entries(gauges)) {
    const name = `paxos_${snake(k)}`
    lines.push(`# TYPE ${name} gauge`, `${name}${label} ${v}`)
  }
  for (const [l, type] of [...labeled.map((l) => [l, "counter"] as const), ...labeledGauges.map((l) => [l, "gauge"] as const)]) {
    const name = `paxos_${snake(l.name)}${type === "counter" ? "_total" : ""}`
    lines.push(`# TYPE ${name} ${type}`)
    for (const [k, v] of Object.entries(l.values)) lines.push(`${name}{${nodeLabel},${l.label}="${k}"} ${v}`)
  }
  return lines.join("\n") + "\n"
}
