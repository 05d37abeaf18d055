/**
 * What a node says about itself: GET /status (JSON), GET /health (liveness) and GET /metrics
 * (Prometheus text). Cold paths: Effect programs that read the node's state and counters.
 */
import { Effect } from "effect"
import { AUTH_FAILURES } from "../auth/peer-auth.ts"
import * as B from "../core/ballot.ts"
import { nodeName, okJson, type ApiDeps, type Call } from "./http.ts"
import { processCpuSeconds, renderPrometheus } from "./metrics.ts"

/** GET /status -> 200 JSON: node, role, leader, ballot, slots, peers, counters. */
export const getStatus = (c: Call): Effect.Effect<Response> => Effect.sync(() => okJson(JSON.stringify(status(c.d))))

/** GET /health -> 200 once the node serves. */
export const getHealth = (c: Call): Effect.Effect<Response> => Effect.sync(() => okJson(JSON.stringify({ status: "ok", node: nodeName(c.d) })))

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
    id: d.self,
    cluster: d.cluster.clusterId,
    role,
    leader: s.leader === null ? null : (d.cluster.nodes[s.leader]?.name ?? null),
    ballot: { round: ballot.round, leader: ballot.leader, text: B.show(ballot) },
    promised: B.show(s.promised),
    committed: Math.max(s.applied, s.knownDecided),
    applied: s.applied,
    snapshot: s.snapSlot,
    listLength: s.list.length,
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

/** The process's memory in bytes: resident, and the JavaScript heap's size and use. */
function memory(): { rss: number; heapTotal: number; heapUsed: number; external: number } {
  const m = process.memoryUsage()
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external }
}

/** The text of GET /metrics. */
function metrics(d: ApiDeps): string {
  const s = d.node.state
  const roles = { follower: 0, candidate: 1, leader: 2 } as const
  return renderPrometheus(nodeName(d), d.counters, {
    role: roles[s.role._tag.toLowerCase() as keyof typeof roles],
    isLeader: s.role._tag === "Leader" ? 1 : 0,
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
  }, [{ name: "peerAuthFailuresByReason", label: "reason", values: Object.fromEntries(AUTH_FAILURES.map((r) => [r, d.peerAuthFailures[r]])) }])
}
