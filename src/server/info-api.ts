/**
 * What a node says about itself: GET /status (JSON), GET /health (liveness: it serves), GET /ready
 * (readiness: it knows a leader that holds a quorum and has applied what that leader committed)
 * and GET /metrics (Prometheus text). Cold paths: Effect programs that read the node's state and
 * counters.
 */
import { Effect } from "effect"
import { AUTH_FAILURES } from "../auth/peer-auth.ts"
import * as B from "../core/ballot.ts"
import { quorumSize, voters } from "../core/membership.ts"
import { readiness, type NotReadyReason } from "../core/readiness.ts"
import { NotReady } from "./errors.ts"
import { VERSION } from "../cli/version.ts"
import { nodeName, okJson, type ApiDeps, type Call } from "./http.ts"
import { processCpuSeconds, renderPrometheus } from "./metrics.ts"

/** GET /status -> 200 JSON: node, role, leader, ballot, slots, peers, counters. */
export const getStatus = (c: Call): Effect.Effect<Response> => Effect.sync(() => okJson(JSON.stringify(status(c.d))))

/** GET /health -> 200 once the node serves. */
export const getHealth = (c: Call): Effect.Effect<Response> => Effect.sync(() => okJson(JSON.stringify({ status: "ok", node: nodeName(c.d) })))

/**
 * GET /ready -> 200 {status, node, leader, applied, leaderCommit} while the node knows a leader
 * that heard from a quorum within the last election timeout and has applied what that leader
 * committed; else 503 NotReady with the reason (NoLeader, LeaderWithoutQuorum, Behind) and the
 * same fields.
 */
export const getReady = (c: Call): Effect.Effect<Response, NotReady> =>
  Effect.suspend(() => {
    const r = ready(c.d)
    const fields = { node: nodeName(c.d), leader: r.leader, applied: r.applied, leaderCommit: r.leaderCommit }
    if (r.reason === null) return Effect.succeed(okJson(JSON.stringify({ status: "ready", ...fields })))
    return Effect.fail(new NotReady({ message: r.message, reason: r.reason, fields }))
  })

interface Ready {
  readonly reason: NotReadyReason | null
  /** One line saying why not (empty when ready). */
  readonly message: string
  /** The leader's name; null with NoLeader. */
  readonly leader: string | null
  readonly applied: number
  readonly leaderCommit: number
}

/** The node's readiness (src/core/readiness.ts), with names and milliseconds for people. */
function ready(d: ApiDeps): Ready {
  const s = d.node.state
  const r = readiness(s)
  const name = d.nameOf
  const ms = (ticks: number): number => ticks * d.node.tickMs
  const timeout = `the last election timeout (${ms(s.cfg.electionTicks)} ms)`
  const q = `a quorum (${quorumSize(s.membership.current)} of ${voters(s.membership.current).length} voters)`
  let message = ""
  switch (r.reason) {
    case "NoLeader":
      message =
        r.silent !== null
          ? `no leader: ${name(r.silent.leader)} has not been heard from for ${ms(r.silent.ticks)} ms, more than an election timeout`
          : s.role._tag === "Candidate"
            ? "no leader: an election is under way (this node campaigns)"
            : "no leader is known yet"
      break
    case "LeaderWithoutQuorum":
      message =
        r.leader === d.self
          ? `this node leads but has not heard from ${q} within ${timeout}`
          : `the leader ${name(r.leader as number)} has not heard from ${q} within ${timeout}`
      break
    case "Behind":
      message = `behind: applied up to slot ${r.applied}, the leader ${r.leader === d.self ? "(this node) " : `${name(r.leader as number)} `}has committed up to slot ${r.leaderCommit}`
      break
    case null:
      break
  }
  return { reason: r.reason, message, leader: r.leader === null ? null : name(r.leader), applied: r.applied, leaderCommit: r.leaderCommit }
}

/** GET /metrics -> Prometheus text. */
export const getMetrics = (c: Call): Effect.Effect<Response> =>
  Effect.sync(() => new Response(metrics(c.d), { headers: { "content-type": "text/plain; version=0.0.4" } }))

/** The body of GET /status. */
function status(d: ApiDeps) {
  const s = d.node.state
  const role = s.role._tag.toLowerCase()
  const ballot = s.role._tag === "Follower" ? s.promised : s.role.ballot
  const c = d.counters
  return {
    node: nodeName(d),
    version: VERSION,
    id: d.self,
    cluster: d.clusterId,
    // The data dir that speaks for this member id (docs/MEMBERSHIP.md): not a secret.
    incarnation: d.who().incarnation,
    role,
    leader: s.leader === null ? null : d.nameOf(s.leader),
    ready: readyStatus(d),
    ballot: { round: ballot.round, leader: ballot.leader, text: B.show(ballot) },
    promised: B.show(s.promised),
    committed: Math.max(s.applied, s.knownDecided),
    applied: s.applied,
    snapshot: s.snapSlot,
    listLength: s.list.length,
    membership: membershipStatus(d),
    snapshotSize: s.snapLen,
    peers: d.outboxes.status(),
    queue: { inputs: d.node.queuedInputs, waiting: d.node.waitingCount, commands: s.queue.length },
    peerAuth: d.peerAuth !== null,
    peerAuthFailures: { ...d.peerAuthFailures },
    clientAuth: d.clientToken !== null,
    // false only with --unsafe-no-fsync
    fsync: d.store.fsync,
    http: {
      clientRequests: d.http.clientRequests,
      clientRequestsMax: d.http.clientRequestsMax,
      peerPosts: d.http.peerPosts,
      peerConnections: d.http.inbound.size,
      clientBodyBytes: d.http.clientBodies.budget.used,
      peerBodyBytes: d.http.peerBodies.budget.used
    },
    uptimeMs: Date.now() - d.startedAt,
    pid: process.pid,
    memory: memory(),
    // What the bench reads of a node on another machine.
    cpuSeconds: processCpuSeconds(),
    counters: { ...c, peerBytesPerDecision: c.decisions === 0 ? 0 : Math.round(c.peerBytesSent / c.decisions) }
  }
}

/** /status's `membership`: the epoch in force, its voters and learners, and a change not yet in force. */
function membershipStatus(d: ApiDeps) {
  const m = d.node.state.membership
  const c = m.current
  return {
    epoch: c.epoch,
    voters: c.members.filter((x) => x.voter).map((x) => x.address),
    learners: c.members.filter((x) => !x.voter).map((x) => x.address),
    member: d.node.state.peers.includes(d.self),
    pending: m.next === null ? null : { from: m.next.from, epoch: m.next.config.epoch }
  }
}

/** /status's `ready`: GET /ready's verdict, with its reason (null when ready). */
function readyStatus(d: ApiDeps): { ok: boolean; reason: NotReadyReason | null } {
  const r = ready(d)
  return { ok: r.reason === null, reason: r.reason }
}

/** The process's memory in bytes: resident, and the JavaScript heap's size and use. */
function memory(): { rss: number; heapTotal: number; heapUsed: number; external: number } {
  const m = process.memoryUsage()
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external }
}

/** The text of GET /metrics. */
function metrics(d: ApiDeps): string {
  const s = d.node.state
  const roles = { follower: 0, candidate: 1, leader: 2 } as const
  const inForce = s.membership.current.members
  const members = { name: "members", label: "role", values: { voter: inForce.filter((m) => m.voter).length, learner: inForce.filter((m) => !m.voter).length } }
  return renderPrometheus(nodeName(d), d.counters, {
    // The count of changes of membership in force here, and whether another is decided but not yet in force.
    membershipEpoch: s.membership.current.epoch,
    membershipPending: s.membership.next === null ? 0 : 1,
    role: roles[s.role._tag.toLowerCase() as keyof typeof roles],
    isLeader: s.role._tag === "Leader" ? 1 : 0,
    // 1 while GET /ready answers 200
    ready: readiness(s).ok ? 1 : 0,
    committedSlot: Math.max(s.applied, s.knownDecided),
    appliedSlot: s.applied,
    snapshotSlot: s.snapSlot,
    listLength: s.list.length,
    snapshotSize: s.snapLen,
    promisedRound: s.promised.round,
    inputQueue: d.node.queuedInputs,
    waitingRequests: d.node.waitingCount,
    queuedCommands: s.queue.length,
    peerAuth: d.peerAuth === null ? 0 : 1,
    clientAuth: d.clientToken === null ? 0 : 1,
    fsync: d.store.fsync ? 1 : 0,
    clientRequestsInFlight: d.http.clientRequests,
    peerConnections: d.http.inbound.size,
    uptimeSeconds: Math.round((Date.now() - d.startedAt) / 1000)
  }, [{ name: "peerAuthFailuresByReason", label: "reason", values: Object.fromEntries(AUTH_FAILURES.map((r) => [r, d.peerAuthFailures[r]])) }], VERSION, [members])
}
