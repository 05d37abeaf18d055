/**
 * A node before it runs (docs/MEMBERSHIP.md, "Bootstrap"): the endpoint that says who it is, the
 * bootstrap of an initial member that starts on an empty data directory, and what the node serves
 * meanwhile.
 *
 *   - GET /peer/identity?cluster=C&from=N (a peer endpoint, also once the node runs): this node's
 *     cluster id, member id, incarnation, the configuration it was bound in (null until bound) and
 *     the membership it runs with (null before it runs). With a cluster secret the request is
 *     authenticated like any peer request (its MAC covers IDENTITY_BODY in place of a body), and
 *     the answer is signed the same way, so that a node on the path cannot forge one.
 *   - `bootstrap`: asks every initial member for its identity, round after round, until
 *     src/core/identity.ts decides: bind the first configuration, or refuse to run (this identity
 *     voted before under another data directory). It says whom it waits for every
 *     BOOTSTRAP_LOG_MS.
 *   - `startingRouter`: until the node runs, /status and /metrics say what it waits for, /health,
 *     /ready and everything else answer 503 with the reason (the node does not serve yet), and
 *     /peer/identity answers once the node knows its own.
 */
import { Effect, Either, Schema as S } from "effect"
import { Verifier, type AuthFailure } from "../auth/peer-auth.ts"
import { decideBootstrap, type BootstrapDecision, type IdentityAnswer } from "../core/identity.ts"
import { ConfigSchema, Incarnation, MembershipSchema, NodeIndex } from "../core/messages.ts"
import { VERSION } from "../cli/version.ts"
import { dialName, type NodeAddress } from "./cluster-config.ts"
import { errorResponse, okJson, pathOf, type IdentitySide, type PeerSide } from "./http.ts"
import { NotReady, Unavailable, type ApiError } from "./errors.ts"
import { renderPrometheus } from "./metrics.ts"
import { acceptHelloFor, authFailed, authHeaders } from "./peer-api.ts"
import { AUTH_CAUSES, otherClusterCause, REFUSAL_LOG_MS } from "./peer.ts"
import type { Router } from "./routes.ts"

export const IDENTITY_PATH = "/peer/identity"
/** What the MAC of an identity request covers in place of a body. */
export const IDENTITY_BODY = "paxos-peer-identity"
/** An identity request unanswered this long is given up (asked again next round). */
export const IDENTITY_TIMEOUT_MS = 1_000
/** An identity answer larger than this is not read. */
export const IDENTITY_ANSWER_MAX_BYTES = 256 * 1024
/** Between two rounds of asking. */
export const BOOTSTRAP_ROUND_MS = 200
/** Whom a bootstrapping node waits for is logged at most this often. */
export const BOOTSTRAP_LOG_MS = 5_000

const decodeAnswer = S.decodeUnknownEither(
  S.parseJson(
    S.Struct({
      cluster: S.String.pipe(S.maxLength(128)),
      id: NodeIndex,
      incarnation: Incarnation,
      initial: S.NullOr(ConfigSchema),
      membership: S.NullOr(MembershipSchema)
    })
  )
)

/** GET /peer/identity?cluster=C&from=N -> 200 {cluster, id, incarnation, initial, membership}; 400, 401 as other peer requests. */
export function answerIdentity(d: IdentitySide, req: Request, url: string, remote: () => string | undefined): Effect.Effect<Response, ApiError> {
  return Effect.suspend((): Effect.Effect<Response, ApiError> => {
    const hello = acceptHelloFor(d, url, remote)
    if (Either.isLeft(hello)) return Effect.fail(hello.left)
    const from = hello.right
    if (d.peerAuth !== null) {
      const h = authHeaders(d, (k) => req.headers.get(k), from)
      if (typeof h === "string") return Effect.fail(authFailed(d, h, "identity", from, remote()))
      const bad = d.peerAuth.verifier.verify(from, h.signed, IDENTITY_BODY, Date.now())
      if (bad !== null) return Effect.fail(authFailed(d, bad, "identity", from, remote()))
    }
    const w = d.who()
    const json = JSON.stringify({ cluster: d.clusterId, id: d.self, incarnation: w.incarnation, initial: w.initial, membership: d.membership() })
    const signed = d.peerAuth === null ? {} : d.peerAuth.signer.headers(from, json, Date.now())
    return Effect.succeed(new Response(json, { headers: { "content-type": "application/json", ...signed } }))
  })
}

/** What came of asking one member who it is. */
export type Asked =
  | { readonly _tag: "Answer"; readonly answer: IdentityAnswer }
  /** It refused the request (400, 401): `reason` and `why` say why, as the log line does. */
  | { readonly _tag: "Refused"; readonly reason: string; readonly why: string }
  | { readonly _tag: "NoAnswer"; readonly error: string }

/** Asks member `id` at `address` who it is (GET /peer/identity), as member `d.self`. Never throws. */
export async function askIdentity(d: PeerSide, id: number, address: NodeAddress): Promise<Asked> {
  const base = `http://${dialName(address)}`
  const url = `${base}${IDENTITY_PATH}?cluster=${encodeURIComponent(d.clusterId)}&from=${d.self}`
  try {
    const headers = d.peerAuth === null ? undefined : d.peerAuth.signer.headers(id, IDENTITY_BODY, Date.now())
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(IDENTITY_TIMEOUT_MS) })
    const length = Number(res.headers.get("content-length") ?? 0)
    if (length > IDENTITY_ANSWER_MAX_BYTES) {
      await res.body?.cancel()
      return { _tag: "NoAnswer", error: `an answer of ${length} bytes` }
    }
    const text = await res.text()
    if (res.status !== 200) return await refused(d, id, base, res.status, text)
    if (d.peerAuth !== null) {
      const signed = Verifier.parse((k) => res.headers.get(k))
      const bad = typeof signed === "string" ? signed : d.peerAuth.verifier.verify(id, signed, text, Date.now())
      if (bad !== null) return { _tag: "Refused", reason: bad, why: `its answer failed authentication: ${AUTH_CAUSES[bad](`node ${id}`).replace(/^it /, "the answerer ")}` }
    }
    const a = decodeAnswer(text)
    if (Either.isLeft(a)) return { _tag: "NoAnswer", error: "a malformed answer" }
    return { _tag: "Answer", answer: a.right }
  } catch (e) {
    return { _tag: "NoAnswer", error: e instanceof Error ? e.message : String(e) }
  }
}

/** Why member `id` refused an identity request with `status` and `text`. */
async function refused(d: PeerSide, id: number, base: string, status: number, text: string): Promise<Asked> {
  let body: { reason?: unknown; message?: unknown } = {}
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    // not our error body
  }
  const reason = typeof body.reason === "string" ? body.reason : ""
  const refuser = `node ${id}`
  if (status === 401 && Object.hasOwn(AUTH_CAUSES, reason)) return { _tag: "Refused", reason, why: AUTH_CAUSES[reason as AuthFailure](refuser) }
  if (status === 400) {
    // A request is checked for its cluster first: the other node's /status says which it is in.
    try {
      const st = (await (await fetch(`${base}/status`, { signal: AbortSignal.timeout(IDENTITY_TIMEOUT_MS) })).json()) as { cluster?: unknown }
      if (typeof st.cluster === "string" && st.cluster !== d.clusterId) return { _tag: "Refused", reason: "OtherCluster", why: otherClusterCause(d.clusterId, st.cluster, refuser) }
    } catch {
      // it said 400: its message says why
    }
  }
  if (status === 400 || status === 401) {
    return { _tag: "Refused", reason: reason || `status ${status}`, why: `it answered ${status}${typeof body.message === "string" ? `: ${body.message.slice(0, 200)}` : ""}` }
  }
  return { _tag: "NoAnswer", error: `status ${status}${typeof body.message === "string" ? `: ${body.message.slice(0, 200)}` : ""}` }
}

export interface BootstrapDeps {
  /** This node as a peer: its cluster, member id, counters, log, keys. */
  readonly side: PeerSide
  readonly incarnation: string
  /** The config file's nodes: the initial members 0 to n-1. */
  readonly members: readonly NodeAddress[]
  /** Told the names of the members waited for after every round (for /status). */
  readonly waiting: (names: readonly string[]) => void
}

/**
 * Asks every other initial member who it is, round after round (each round asks all of them at
 * once, anew), until the answers decide: bind the first configuration or refuse to run
 * (src/core/identity.ts; a configuration made from answers needs two rounds that agree). Never
 * fails; waits for as long as it takes (every initial member must have started once), saying
 * whom it waits for.
 */
export function bootstrap(b: BootstrapDeps): Effect.Effect<Exclude<BootstrapDecision, { _tag: "Wait" }>> {
  const { side, members } = b
  const log = side.log
  const names = members.map((m) => m.name)
  return Effect.gen(function* () {
    const others = members.map((_, id) => id).filter((id) => id !== side.self)
    let previous: Map<number, IdentityAnswer> | null = null
    let loggedAt = 0
    for (;;) {
      const answers = new Map<number, IdentityAnswer>()
      const results = yield* Effect.promise(() => Promise.all(others.map((id) => askIdentity(side, id, members[id] as NodeAddress))))
      results.forEach((r, i) => {
        const id = others[i] as number
        if (r._tag === "Answer") answers.set(id, r.answer)
        if (r._tag === "Refused") {
          side.counters.peerConnectionsRefusedByPeer += 1
          log.limited(`refused-${id}`, REFUSAL_LOG_MS, "peer-refused-this-node", {
            peer: names[id],
            reason: r.reason,
            cause: `node ${side.self} was refused by node ${id} (${names[id]}): ${r.why}`
          })
        }
      })
      const d = decideBootstrap({ cluster: side.clusterId, self: side.self, incarnation: b.incarnation, addresses: names, answers, previous })
      if (d._tag !== "Wait") return d
      // Every member answered, unbound, and this round was not itself a confirmation: the next
      // round confirms it at once.
      const confirm = d.missing.length === 0 && d.problems.length === 0 && previous === null
      previous = d.missing.length === 0 ? answers : null
      if (confirm) continue
      const waitingFor = d.missing.map((id) => names[id] as string)
      b.waiting(waitingFor)
      if (Date.now() - loggedAt >= BOOTSTRAP_LOG_MS) {
        loggedAt = Date.now()
        log("bootstrap-waiting", {
          for: waitingFor.join(","),
          problems: d.problems.length === 0 ? undefined : d.problems.join("; "),
          why: "an initial member votes only once it knows every initial member's incarnation; each must have started once (docs/MEMBERSHIP.md)"
        })
      }
      yield* Effect.sleep(BOOTSTRAP_ROUND_MS * (0.75 + Math.random() / 2))
    }
  })
}

/** What a node serves before it runs. */
export interface Starting {
  readonly address: string
  /** What it does: bootstrapping (an initial member binding), or joining. */
  phase: "Bootstrapping" | "Joining"
  /** Whom it waits for (addresses). */
  waitingFor: readonly string[]
  /** Who it is, once it knows its cluster and member id (null before: a node that joins). */
  side: IdentitySide | null
  readonly counters: PeerSide["counters"]
  readonly peerAuthFailures: PeerSide["peerAuthFailures"]
  readonly startedAt: number
}

/** The router of a node that does not run yet (see the top of this file). */
export function startingRouter(st: Starting): Router {
  return (req, server) => {
    const path = pathOf(req.url)
    const method = req.method === "HEAD" ? "GET" : req.method
    const remote = () => server.requestIP(req)?.address
    const waiting = () =>
      st.phase === "Bootstrapping"
        ? `this node does not serve yet: it waits for the identities of ${st.waitingFor.join(", ") || "the initial members"} (every initial member must have started once)`
        : `this node does not serve yet: it waits to join the cluster through ${st.waitingFor.join(", ") || "its members"}`
    // Not serving yet: /health says so (a 503), /status and /metrics say why.
    if (method === "GET" && path === "/health") {
      return new Response(JSON.stringify({ status: st.phase.toLowerCase(), node: st.address, waitingFor: st.waitingFor }), { status: 503, headers: { "content-type": "application/json", "retry-after": "1" } })
    }
    if (method === "GET" && path === "/status") return okJson(JSON.stringify(startingStatus(st)))
    if (method === "GET" && path === "/metrics") {
      const text = renderPrometheus(st.address, st.counters, { ready: 0, starting: 1, uptimeSeconds: Math.round((Date.now() - st.startedAt) / 1000) }, [], VERSION)
      return new Response(text, { headers: { "content-type": "text/plain; version=0.0.4" } })
    }
    if (method === "GET" && path === "/ready") {
      return errorResponse(new NotReady({ message: waiting(), reason: st.phase, fields: { node: st.address, leader: null, applied: 0, leaderCommit: 0 } }))
    }
    if (method === "GET" && path === IDENTITY_PATH && st.side !== null) {
      const side = st.side
      return Effect.runPromise(Effect.merge(Effect.mapError(answerIdentity(side, req, req.url, remote), errorResponse)))
    }
    return errorResponse(new Unavailable({ message: `${waiting()}; not applied`, reason: st.phase }))
  }
}

/** GET /status before the node runs: the fields `paxos status` reads, and what it waits for. */
function startingStatus(st: Starting) {
  return {
    node: st.address,
    version: VERSION,
    id: st.side?.self ?? null,
    cluster: st.side?.clusterId ?? null,
    role: st.phase.toLowerCase(),
    waitingFor: st.waitingFor,
    leader: null,
    ready: { ok: false, reason: st.phase },
    ballot: { round: 0, leader: 0, text: "-" },
    committed: 0,
    applied: 0,
    snapshot: 0,
    listLength: 0,
    peerAuth: st.side?.peerAuth != null,
    peerAuthFailures: { ...st.peerAuthFailures },
    uptimeMs: Date.now() - st.startedAt,
    pid: process.pid,
    counters: { ...st.counters }
  }
}
