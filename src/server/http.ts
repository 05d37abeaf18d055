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
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { Cause, Effect, Either } from "effect"
import * as B from "../core/ballot.ts"
import { CLIENT_BODY_MAX_BYTES, decodeAppend, parseJson, readBody, APPEND_EXAMPLE, PEER_BODY_MAX_BYTES } from "./body.ts"
import type { ClusterConfig } from "./cluster-config.ts"
import { BadRequest, errorBody, InternalError, MethodNotAllowed, NotFound, type ApiError } from "./errors.ts"
import type { Log } from "./log.ts"
import { renderPrometheus, type Counters } from "./metrics.ts"
import type { Node } from "./node.ts"
import { acceptEnvelope, acceptHello, PEER_PATH, PEER_WS_PATH, type Outboxes } from "./peer.ts"
import type { SqliteStore } from "./storage.ts"

export interface ApiDeps {
  readonly node: Node
  readonly cluster: ClusterConfig
  readonly self: number
  readonly outboxes: Outboxes
  readonly counters: Counters
  readonly store: SqliteStore
  readonly log: Log
  readonly startedAt: number
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

/** `?list=false` (or 0/no) leaves the list out; `true`, `1`, `yes` or absent keeps it. */
function wantList(url: string): Either.Either<boolean, BadRequest> {
  const q = url.indexOf("?")
  if (q === -1) return Either.right(true)
  const params = new URLSearchParams(url.slice(q + 1))
  const v = params.get("list")
  if (v === null) return Either.right(true)
  if (["false", "0", "no"].includes(v.toLowerCase())) return Either.right(false)
  if (["true", "1", "yes", ""].includes(v.toLowerCase())) return Either.right(true)
  return Either.left(new BadRequest({ message: `query parameter "list" must be true or false, got ${JSON.stringify(v)}` }))
}

/** POST /append: decode (limit, JSON, schema), submit, wait for the core's answer. */
function appendHandler(d: ApiDeps) {
  return Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const list = yield* wantList(req.url)
    const text = yield* readBody(webRequest(req), CLIENT_BODY_MAX_BYTES)
    const json = yield* parseJson(text, APPEND_EXAMPLE)
    const body = yield* decodeAppend(json)
    return ok(yield* d.node.append(body.value, body.client, body.seq, list))
  }).pipe(
    Effect.tapError((e) =>
      Effect.sync(() => {
        if (e._tag === "BadRequest" || e._tag === "PayloadTooLarge") d.counters.clientBadRequests += 1
      })
    )
  )
}

const envelopeCheck = (d: ApiDeps) => ({ self: d.self, n: d.cluster.nodes.length, clusterId: d.cluster.clusterId })

/** One envelope's text from `from` (null: any sender): counted, checked, handed to the node. Left: why it was rejected. */
function receiveEnvelope(d: ApiDeps, text: string, from: number | null): Either.Either<void, BadRequest> {
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

/** POST /peer/envelope: one envelope; 204, or 400 naming what is wrong with it. */
function peerPostHandler(d: ApiDeps) {
  return Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const text = yield* readBody(webRequest(req), PEER_BODY_MAX_BYTES)
    yield* receiveEnvelope(d, text, null)
    return HttpServerResponse.empty({ status: 204 })
  })
}

/**
 * GET /peer/ws: a peer's connection. Its cluster and sender are checked before upgrading (400);
 * then each text frame is an envelope, and a bad one closes the connection with 1008 and the reason.
 */
function peerSocketHandler(d: ApiDeps) {
  const decoder = new TextDecoder()
  return Effect.gen(function* () {
    const req = yield* HttpServerRequest.HttpServerRequest
    const hello = acceptHello(req.url, envelopeCheck(d))
    if (Either.isLeft(hello)) {
      d.counters.peerEnvelopesRejected += 1
      d.log.limited("reject-hello", 5_000, "peer-connection-rejected", { reason: hello.left.message })
      return yield* hello.left
    }
    const from = hello.right
    const socket = yield* HttpServerRequest.upgrade.pipe(Effect.mapError(() => new BadRequest({ message: `${PEER_WS_PATH} needs a WebSocket upgrade` })))
    const write = yield* socket.writer
    const onFrame = (data: string | Uint8Array) => {
      const r = receiveEnvelope(d, typeof data === "string" ? data : decoder.decode(data), from)
      if (Either.isLeft(r)) return Effect.ignore(write(new Socket.CloseEvent(1008, truncateUtf8(r.left.message, 120))))
    }
    yield* socket.runRaw(onFrame).pipe(Effect.ignore)
    return HttpServerResponse.empty()
  }).pipe(Effect.scoped)
}

/** The routes, with every ApiError turned into its JSON response. */
export function makeRouter(d: ApiDeps): HttpRouter.HttpRouter<never, never> {
  const append = appendHandler(d)
  const list = Effect.suspend(() => d.node.read()).pipe(Effect.map((json) => ok(json)))
  const peer = peerPostHandler(d)
  const peerSocket = peerSocketHandler(d)
  const router = HttpRouter.empty.pipe(
    HttpRouter.post("/append", append),
    HttpRouter.get("/list", list),
    HttpRouter.get("/status", Effect.sync(() => ok(JSON.stringify(status(d))))),
    HttpRouter.get("/health", Effect.sync(() => ok(JSON.stringify({ status: "ok", node: nodeName(d) })))),
    HttpRouter.get("/metrics", Effect.sync(() => HttpServerResponse.text(metrics(d), { contentType: "text/plain; version=0.0.4" }))),
    HttpRouter.post(PEER_PATH, peer),
    HttpRouter.get(PEER_WS_PATH, peerSocket)
  )
  return router.pipe(
    HttpRouter.catchAll((e: ApiError) =>
      Effect.sync(() => errorResponse(e))
    ),
    HttpRouter.catchAllCause((cause) => Effect.succeed(internal(d, cause)))
  ) as HttpRouter.HttpRouter<never, never>
}

/** The router as an app, with 404 and 405 for unknown paths and methods. */
export const makeApp = (d: ApiDeps) =>
  Effect.flatMap(HttpRouter.toHttpApp(makeRouter(d)), (app) =>
    Effect.succeed(
      app.pipe(
        Effect.catchTag("RouteNotFound", (e) => Effect.succeed(errorResponse(notFound(e.request.method, e.request.url)))),
        Effect.catchAllCause((cause) => Effect.succeed(internal(d, cause)))
      )
    )
  )

/** A defect while handling a request: logged, answered 500 (outcome unknown). Interruptions are not defects. */
function internal(d: ApiDeps, cause: Cause.Cause<unknown>): HttpServerResponse.HttpServerResponse {
  // A request whose client went away (or a peer connection that ended) is interrupted: no error.
  if (Cause.isInterruptedOnly(cause)) return HttpServerResponse.empty({ status: 499 })
  const line = Cause.pretty(cause).split("\n")[0] ?? "unknown"
  d.log.limited("internal-error", 5_000, "internal-error", { error: line })
  return errorResponse(new InternalError({ message: `internal error: ${line}` }))
}

function notFound(method: string, url: string): ApiError {
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  const allow = ROUTES[path]
  if (allow !== undefined) return new MethodNotAllowed({ message: `${method} is not allowed on ${path}; use ${allow.join(" or ")}`, allow })
  return new NotFound({ message: `no such path: ${path.slice(0, 200)} (paths: ${Object.keys(ROUTES).join(", ")})` })
}

/** At most `max` bytes of UTF-8 (a WebSocket close reason is at most 123 bytes). */
function truncateUtf8(s: string, max: number): string {
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
    uptimeMs: Date.now() - d.startedAt,
    counters: { ...c, peerBytesPerDecision: c.decisions === 0 ? 0 : Math.round(c.peerBytesSent / c.decisions) }
  }
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
    uptimeSeconds: Math.round((Date.now() - d.startedAt) / 1000)
  })
}
