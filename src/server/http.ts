/**
 * The HTTP API (SPEC) and the peer endpoint, as an @effect/platform HttpRouter.
 *
 *   POST /append         {"value":5[,"client":"c1","seq":9]}  -> 200 {"value","index","list"}; ?list=false leaves list out
 *   GET  /list           -> 200 {"list":[...]}, a linearizable read through the log
 *   GET  /status         -> 200 JSON: node, role, leader, ballot, slots, peers, counters
 *   GET  /health         -> 200 once the node serves
 *   GET  /metrics        -> Prometheus text
 *   GET  /peer/ws        -> WebSocket of another node of this cluster: one PeerEnvelope a text frame
 *   POST /peer/envelope  -> 204; one PeerEnvelope (messages too large for a frame, tools, tests)
 *
 * Every error is `{"error":Tag,"message":...,"definite":bool}` with its status (errors.ts).
 *
 * Hardening (docs/SECURITY.md):
 *   - with a cluster secret, peer requests, connections and frames are authenticated before
 *     anything in them is parsed for the core (401 / close 1008 otherwise, counted by reason);
 *   - with a client token, /append and /list need `Authorization: Bearer <token>` (401);
 *   - client requests in flight are capped (503 at once past the cap), and so are concurrent
 *     peer POSTs, the bytes of bodies being read, and the time a body may take (408);
 *   - a request whose client went away is counted as client-gone, not as an error.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Chunk, Effect, Either, Option } from "effect"
import { checkBearer } from "../auth/client-token.ts"
import { AUTH_FAILURES, AUTH_HEADERS, Verifier, type AuthFailure, type Signed } from "../auth/peer-auth.ts"
import * as B from "../core/ballot.ts"
import {
  APPEND_EXAMPLE,
  ByteBudget,
  CLIENT_BODY_BUDGET_BYTES,
  CLIENT_BODY_MAX_BYTES,
  CLIENT_BODY_TIMEOUT_MS,
  decodeAppend,
  parseJson,
  PEER_BODY_BUDGET_BYTES,
  PEER_BODY_MAX_BYTES,
  PEER_BODY_TIMEOUT_MS,
  readBody,
  type BodyLimits
} from "./body.ts"
import type { ClusterConfig } from "./cluster-config.ts"
import { BadRequest, errorBody, InternalError, MethodNotAllowed, NotFound, Unauthorized, Unavailable, type ApiError } from "./errors.ts"
import type { Log } from "./log.ts"
import { processCpuSeconds, renderPrometheus, type Counters, type PeerAuthCounters } from "./metrics.ts"
import type { Node } from "./node.ts"
import { acceptEnvelope, acceptHello, InboundPeers, PEER_PATH, PEER_WS_PATH, type Outboxes } from "./peer.ts"
import type { SqliteStore } from "./storage.ts"

/** Client requests (every path but /health, /status, /metrics and /peer/...) in flight at once, at most. */
export const CLIENT_REQUESTS_MAX = 10_000
/** Concurrent POST /peer/envelope requests, at most (a peer sends one at a time). */
export const PEER_POSTS_MAX = 16

/** Peer authentication of this node: the verifier of what is addressed to it. */
export interface PeerAuth {
  readonly verifier: Verifier
}

/** What the HTTP layer counts and bounds, besides the node's counters. */
export class HttpState {
  clientRequests = 0
  peerPosts = 0
  readonly clientBodies: BodyLimits
  readonly peerBodies: BodyLimits
  readonly inbound = new InboundPeers()
  constructor(
    readonly clientRequestsMax = CLIENT_REQUESTS_MAX,
    clientBodyTimeoutMs = CLIENT_BODY_TIMEOUT_MS
  ) {
    this.clientBodies = { maxBytes: CLIENT_BODY_MAX_BYTES, budget: new ByteBudget(CLIENT_BODY_BUDGET_BYTES), timeoutMs: clientBodyTimeoutMs }
    this.peerBodies = { maxBytes: PEER_BODY_MAX_BYTES, budget: new ByteBudget(PEER_BODY_BUDGET_BYTES), timeoutMs: PEER_BODY_TIMEOUT_MS }
  }
}

export interface ApiDeps {
  readonly node: Node
  readonly cluster: ClusterConfig
  readonly self: number
  readonly outboxes: Outboxes
  readonly counters: Counters
  readonly store: SqliteStore
  readonly log: Log
  readonly startedAt: number
  /** null: peer traffic is not authenticated (no secret). */
  readonly peerAuth: PeerAuth | null
  readonly peerAuthFailures: PeerAuthCounters
  /** null: the client API needs no token. */
  readonly clientToken: string | null
  readonly http: HttpState
}

/** Paths this server knows, with their methods: other methods get 405, other paths 404. */
const ROUTES: Record<string, readonly string[]> = {
  "/append": ["POST"],
  "/list": ["GET"],
  "/status": ["GET"],
  "/health": ["GET"],
  "/metrics": ["GET"],
  [PEER_PATH]: ["POST"],
  [PEER_WS_PATH]: ["GET"]
}

const JSON_TYPE = "application/json"

const ok = (json: string, status = 200) => HttpServerResponse.text(json, { status, contentType: JSON_TYPE })

/** The error's JSON response. */
export function errorResponse(e: ApiError): HttpServerResponse.HttpServerResponse {
  const b = errorBody(e)
  return HttpServerResponse.text(b.json, { status: b.status, contentType: JSON_TYPE, headers: b.headers })
}

/** The web Request behind an Effect server request (Bun's). */
const webRequest = (req: HttpServerRequest.HttpServerRequest): Request => req.source as Request

const LIST_YES = Either.right(true)
const LIST_NO = Either.right(false)

/** `?list=false` (or 0/no) leaves the list out; `true`, `1`, `yes` or absent keeps it. */
export function wantList(url: string): Either.Either<boolean, BadRequest> {
  const q = url.indexOf("?")
  if (q === -1) return LIST_YES
  // The query clients send, answered without a URLSearchParams (a native object per request).
  const query = url.slice(q + 1)
  if (query === "list=false") return LIST_NO
  if (query === "list=true") return LIST_YES
  const params = new URLSearchParams(query)
  const v = params.get("list")
  if (v === null) return Either.right(true)
  if (["false", "0", "no"].includes(v.toLowerCase())) return Either.right(false)
  if (["true", "1", "yes", ""].includes(v.toLowerCase())) return Either.right(true)
  return Either.left(new BadRequest({ message: `query parameter "list" must be true or false, got ${JSON.stringify(v)}` }))
}

/** The client token check of /append and /list (nothing when the node has no token). */
function clientAuth(d: ApiDeps, req: HttpServerRequest.HttpServerRequest): Effect.Effect<void, Unauthorized> {
  const e = clientAuthError(d, webRequest(req), remoteOf(req))
  return e === null ? Effect.void : Effect.fail(e)
}

/** Why a client request is not authorized (null: it is, or the node needs no token); counted and logged. */
export function clientAuthError(d: ApiDeps, req: Request, remote: string | undefined): Unauthorized | null {
  const token = d.clientToken
  if (token === null) return null
  const r = checkBearer(req.headers.get("authorization"), token)
  if (r === "ok") return null
  d.counters.clientAuthFailures += 1
  d.log.limited(`client-auth-${r}`, 10_000, "client-auth-failed", { reason: r, remote })
  const message =
    r === "Missing"
      ? "this node needs a client token: send the header Authorization: Bearer <token> (paxos client --token-file F)"
      : "the client token is wrong"
  return new Unauthorized({ message, reason: r, bearer: true })
}

/** POST /append: decode (limit, JSON, schema), submit, wait for the core's answer. */
function appendHandler(d: ApiDeps) {
  return Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    yield* clientAuth(d, req)
    const list = yield* wantList(req.url)
    const text = yield* readBody(webRequest(req), d.http.clientBodies)
    const json = yield* parseJson(text, APPEND_EXAMPLE)
    const body = yield* decodeAppend(json)
    return ok(yield* d.node.append(body.value, body.client, body.seq, list))
  }).pipe(
    Effect.tapError((e) => Effect.sync(() => countAppendError(d, e)))
  )
}

/** Counts an /append error by kind (the node counts how answered requests ended). */
export function countAppendError(d: ApiDeps, e: ApiError): void {
  if (e._tag === "BadRequest" || e._tag === "PayloadTooLarge") d.counters.clientBadRequests += 1
  if (e._tag === "RequestTimeout") d.counters.requestsSlowBody += 1
  if (e._tag === "Unavailable" && e.reason === "Overloaded") d.counters.requestsOverloaded += 1
}

const envelopeCheck = (d: ApiDeps) => ({ self: d.self, n: d.cluster.nodes.length, clusterId: d.cluster.clusterId })

/** One envelope's text from `from` (null: any sender): counted, checked, handed to the node. Left: why it was rejected. */
export function receiveEnvelope(d: ApiDeps, text: string, from: number | null): Either.Either<void, BadRequest> {
  d.counters.peerEnvelopesReceived += 1
  d.counters.peerBytesReceived += text.length
  const env = acceptEnvelope(text, envelopeCheck(d))
  const bad = Either.isLeft(env)
    ? env.left
    : from !== null && env.right.from !== from
      ? new BadRequest({ message: `envelope from node ${env.right.from} on the connection of node ${from}` })
      : null
  if (bad !== null || Either.isLeft(env)) {
    const e = bad ?? new BadRequest({ message: "rejected" })
    d.counters.peerEnvelopesRejected += 1
    d.log.limited(`reject-${from}-${e.message.slice(0, 40)}`, 5_000, "peer-envelope-rejected", { from: from ?? undefined, reason: e.message })
    return Either.left(e)
  }
  d.counters.peerMessagesReceived += env.right.messages.length
  d.node.receive(env.right.from, env.right.messages)
  return Either.right(undefined)
}

/** The sender named by a connection request's query (`?cluster=...&from=N`); a rejection is counted and logged. */
export function acceptHelloFor(d: ApiDeps, url: string): Either.Either<number, BadRequest> {
  const hello = acceptHello(url, envelopeCheck(d))
  if (Either.isLeft(hello)) {
    d.counters.peerEnvelopesRejected += 1
    d.log.limited("reject-hello", 5_000, "peer-connection-rejected", { reason: hello.left.message })
  }
  return hello
}

/** Counts and logs (rate-limited) a peer authentication failure; the 401 to answer with. */
export function authFailed(d: ApiDeps, reason: AuthFailure, via: string, from: number | null, remote: string | undefined): Unauthorized {
  d.counters.peerAuthFailures += 1
  d.peerAuthFailures[reason] += 1
  d.log.limited(`peer-auth-${reason}-${via}`, 5_000, "peer-auth-failed", { via, reason, from: from ?? undefined, remote })
  return new Unauthorized({ message: `peer authentication failed: ${AUTH_REASONS[reason]}`, reason, bearer: false })
}

const AUTH_REASONS: Record<AuthFailure, string> = {
  Missing: "no x-paxos-* authentication (does every node have the same --secret-file?)",
  BadMac: "the MAC does not match (another secret, another cluster, or an altered message)",
  Stale: "the timestamp is outside the accepted window (are the nodes' clocks in sync?)",
  Replayed: "this message was seen before",
  Malformed: "the authentication fields are malformed"
}

const remoteOf = (req: HttpServerRequest.HttpServerRequest): string | undefined => Option.getOrUndefined(req.remoteAddress)

/** The authenticated sender named by a request's headers (POST) or query (upgrade): its signature, or why not. */
export function authHeaders(d: ApiDeps, get: (name: string) => string | null, from: number | null): { from: number; signed: Signed } | AuthFailure {
  const signed = Verifier.parse(get)
  if (typeof signed === "string") return signed
  const fromText = get(AUTH_HEADERS.from)
  if (from === null) {
    if (fromText === null) return "Missing"
    if (!/^\d{1,2}$/.test(fromText)) return "Malformed"
    from = Number(fromText)
  } else if (fromText !== null && fromText !== String(from)) return "Malformed"
  if (from >= d.cluster.nodes.length || from === d.self) return "Malformed"
  return { from, signed }
}

/** POST /peer/envelope: one envelope; 204, 401 when not authenticated, or 400 naming what is wrong with it. */
function peerPostHandler(d: ApiDeps) {
  return Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const web = webRequest(req)
    let from: number | null = null
    let signed: Signed | null = null
    if (d.peerAuth !== null) {
      // Before the body is even read: a request without (well-formed) authentication costs nothing.
      const h = authHeaders(d, (k) => web.headers.get(k), null)
      if (typeof h === "string") return yield* authFailed(d, h, "post", null, remoteOf(req))
      from = h.from
      signed = h.signed
    }
    const text = yield* readBody(web, d.http.peerBodies)
    if (d.peerAuth !== null && signed !== null && from !== null) {
      const bad = d.peerAuth.verifier.verify(from, signed, text, Date.now())
      if (bad !== null) return yield* authFailed(d, bad, "post", from, remoteOf(req))
    }
    yield* receiveEnvelope(d, text, from)
    return HttpServerResponse.empty({ status: 204 })
  }).pipe(limitPeerPosts(d))
}

/** At most PEER_POSTS_MAX peer POSTs at once; more get 503 at once. */
const limitPeerPosts =
  (d: ApiDeps) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Unavailable, R> =>
    Effect.suspend((): Effect.Effect<A, E | Unavailable, R> => {
      if (d.http.peerPosts >= PEER_POSTS_MAX) {
        d.counters.requestsOverloaded += 1
        return Effect.fail(new Unavailable({ message: `${PEER_POSTS_MAX} peer requests are being received already; try again later`, reason: "Overloaded" }))
      }
      d.http.peerPosts += 1
      return Effect.ensuring(self, Effect.sync(() => (d.http.peerPosts -= 1)))
    })

/** The routes, with every ApiError turned into its JSON response. */
export function makeRouter(d: ApiDeps): HttpRouter.HttpRouter<never, never> {
  const append = appendHandler(d)
  const list = Effect.gen(function* () {
    yield* clientAuth(d, yield* HttpServerRequest.HttpServerRequest)
    return ok(yield* d.node.read())
  })
  const peer = peerPostHandler(d)
  const router = HttpRouter.empty.pipe(
    HttpRouter.post("/append", append),
    HttpRouter.get("/list", list),
    HttpRouter.get("/status", Effect.sync(() => ok(JSON.stringify(status(d))))),
    HttpRouter.get("/health", Effect.sync(() => ok(JSON.stringify({ status: "ok", node: nodeName(d) })))),
    HttpRouter.get("/metrics", Effect.sync(() => HttpServerResponse.text(metrics(d), { contentType: "text/plain; version=0.0.4" }))),
    HttpRouter.post(PEER_PATH, peer)
  )
  return router.pipe(
    HttpRouter.catchAll((e: ApiError) =>
      Effect.sync(() => errorResponse(e))
    ),
    HttpRouter.catchAllCause((cause) => Effect.succeed(internal(d, cause)))
  ) as HttpRouter.HttpRouter<never, never>
}

/** Paths outside the cap on client requests: answered at once, or the peers' own (bounded apart). */
const UNCAPPED = new Set(["/health", "/status", "/metrics", PEER_PATH, PEER_WS_PATH])

const pathOf = (url: string): string => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

/** The router as an app, with 404 and 405 for unknown paths and methods, and the cap on client requests. */
export const makeApp = (d: ApiDeps) =>
  Effect.flatMap(HttpRouter.toHttpApp(makeRouter(d)), (app) => {
    const routed = app.pipe(
      Effect.catchTag("RouteNotFound", (e) => Effect.succeed(errorResponse(notFound(e.request.method, e.request.url)))),
      Effect.catchAllCause((cause) => Effect.succeed(internal(d, cause)))
    )
    const capped = Effect.flatMap(HttpServerRequest.HttpServerRequest, (req) => {
      if (UNCAPPED.has(pathOf(req.url))) return routed
      const refused = takeClientSlot(d)
      if (refused !== null) return Effect.succeed(errorResponse(refused))
      return Effect.ensuring(routed, Effect.sync(() => (d.http.clientRequests -= 1)))
    })
    return Effect.succeed(capped)
  })

/**
 * Takes one of the client request slots (give it back with `d.http.clientRequests -= 1`); past
 * the cap, the 503 to answer with, counted and logged.
 */
export function takeClientSlot(d: ApiDeps): Unavailable | null {
  const h = d.http
  if (h.clientRequests >= h.clientRequestsMax) {
    d.counters.requestsOverloaded += 1
    d.log.limited("overloaded", 5_000, "client-requests-refused", { reason: "Overloaded", inFlight: h.clientRequests })
    return new Unavailable({ message: `${h.clientRequestsMax} client requests are in flight on this node already; not applied, try again later`, reason: "Overloaded" })
  }
  h.clientRequests += 1
  return null
}

/** Counts (and logs, rate-limited) a request whose client went away before its answer. */
export function countClientGone(d: ApiDeps): void {
  d.counters.clientGone += 1
  d.log.limited("client-gone", 60_000, "client-gone", { note: "requests whose client went away before the answer (counted in clientGone)" })
}

/**
 * A defect while handling a request: logged, answered 500 (outcome unknown). A request whose
 * client went away (aborted, timed out, disconnected) is interrupted: that is no defect, and it is
 * only counted (and logged as client-gone, rate-limited); nobody is there to read the answer.
 */
function internal(d: ApiDeps, cause: Cause.Cause<unknown>): HttpServerResponse.HttpServerResponse {
  if (clientGone(cause)) {
    countClientGone(d)
    return HttpServerResponse.empty({ status: 499 })
  }
  const line = Cause.pretty(cause).split("\n")[0] ?? "unknown"
  d.log.limited("internal-error", 5_000, "internal-error", { error: line })
  return errorResponse(new InternalError({ message: `internal error: ${line}` }))
}

/** Whether a cause is interruptions only (or nothing): no failure and no defect in it. */
export function clientGone(cause: Cause.Cause<unknown>): boolean {
  return Cause.isInterruptedOnly(cause) || (Chunk.isEmpty(Cause.failures(cause)) && Chunk.isEmpty(Cause.defects(cause)))
}

function notFound(method: string, url: string): ApiError {
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  const allow = ROUTES[path]
  if (allow !== undefined) return new MethodNotAllowed({ message: `${method} is not allowed on ${path}; use ${allow.join(" or ")}`, allow })
  return new NotFound({ message: `no such path: ${path.slice(0, 200)} (paths: ${Object.keys(ROUTES).join(", ")})` })
}

/** At most `max` bytes of UTF-8 (a WebSocket close reason is at most 123 bytes). */
export function truncateUtf8(s: string, max: number): string {
  let out = s.slice(0, max)
  while (new TextEncoder().encode(out).length > max) out = out.slice(0, -1)
  return out
}

const nodeName = (d: ApiDeps): string => (d.cluster.nodes[d.self] as { name: string }).name

/** GET /status. */
export function status(d: ApiDeps) {
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

/** GET /metrics. */
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
