/**
 * What every HTTP handler of the node shares: the dependencies it is given (ApiDeps), the
 * request it handles (Call), what it may answer (Answer), and the checks that several endpoints
 * make: the client token, the cap on client requests in flight, client-gone accounting.
 *
 * The endpoints themselves are listed in one table, routes.ts, and implemented once each in
 * client-api.ts, peer-api.ts and info-api.ts. Every error is
 * `{"error":Tag,"message":...,"definite":bool}` with its status (errors.ts).
 */
import { checkBearer } from "../auth/client-token.ts"
import type { Signer, Verifier } from "../auth/peer-auth.ts"
import { ByteBudget, CLIENT_BODY_BUDGET_BYTES, CLIENT_BODY_MAX_BYTES, CLIENT_BODY_TIMEOUT_MS, PEER_BODY_BUDGET_BYTES, PEER_BODY_MAX_BYTES, PEER_BODY_TIMEOUT_MS, type BodyLimits } from "./body.ts"
import { errorBody, Unauthorized, Unavailable, type ApiError } from "./errors.ts"
import type { Log } from "./log.ts"
import type { Counters, PeerAuthCounters } from "./metrics.ts"
import type { Node } from "./node.ts"
import { InboundPeers, type Outboxes } from "./peer.ts"
import type { Membership } from "../core/membership.ts"
import type { NodeIdentity, SqliteStore } from "./storage.ts"
import type { Watch } from "./watch.ts"

/** Client requests (the routes marked `client`) in flight at once, at most. */
export const CLIENT_REQUESTS_MAX = 10_000
/** Concurrent POST /peer/envelope requests, at most (a peer sends one at a time). */
export const PEER_POSTS_MAX = 16

/** Peer authentication of this node: the verifier of what is addressed to it, the signer of what it sends. */
export interface PeerAuth {
  readonly verifier: Verifier
  readonly signer: Signer
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

/** What the checks of peer requests need: also before the node runs (bootstrap.ts). */
export interface PeerSide {
  /** This node's member id. */
  readonly self: number
  readonly clusterId: string
  readonly counters: Counters
  readonly peerAuthFailures: PeerAuthCounters
  readonly log: Log
  /** null: peer traffic is not authenticated (no secret). */
  readonly peerAuth: PeerAuth | null
  /** The address of member `id` as far as this node knows (its membership), for logs and answers. */
  readonly nameOf: (id: number) => string
}

/** What answers GET /peer/identity (bootstrap.ts): the checks of a peer request, and who this node is now. */
export interface IdentitySide extends PeerSide {
  /** Who this node is: its address, incarnation, cluster and member id, the configuration it was bound in. */
  who(): NodeIdentity
  /** The membership the node runs with; null before it runs. */
  membership(): Membership | null
}

export interface ApiDeps extends IdentitySide {
  readonly node: Node
  readonly outboxes: Outboxes
  readonly store: SqliteStore
  readonly startedAt: number
  /** null: the client API needs no token. */
  readonly clientToken: string | null
  readonly http: HttpState
}

/** One request as a handler sees it. */
export interface Call {
  readonly d: ApiDeps
  readonly req: Request
  /** The whole URL, as Bun gives it. */
  readonly url: string
  readonly server: Bun.Server<unknown>
  /** The deadlines of requests in flight (body timeouts, client-gone checks). */
  readonly watch: Watch
}

/** Answered to a request whose client went away (nobody reads it). */
export const GONE = 499

/**
 * What a handler answers: a response, an error (turned into its JSON response by the router), or
 * undefined once the request was upgraded to a WebSocket.
 */
export type Answer = Response | ApiError | undefined

const JSON_HEADERS = { "content-type": "application/json" } as const
const OK_INIT = { headers: JSON_HEADERS } as const

/** A 200 with a JSON body. */
export const okJson = (json: string): Response => new Response(json, OK_INIT)

/** The error's JSON response. */
export function errorResponse(e: ApiError): Response {
  const b = errorBody(e)
  return new Response(b.json, { status: b.status, headers: { ...JSON_HEADERS, ...b.headers } })
}

/** Why a client request is not authorized (null: it is, or the node needs no token); counted and logged. */
export function clientAuthError(d: ApiDeps, req: Request, remote: () => string | undefined): Unauthorized | null {
  const token = d.clientToken
  if (token === null) return null
  const r = checkBearer(req.headers.get("authorization"), token)
  if (r === "ok") return null
  d.counters.clientAuthFailures += 1
  d.log.limited(`client-auth-${r}`, 10_000, "client-auth-failed", { reason: r, remote: remote() })
  const message =
    r === "Missing"
      ? "this node needs a client token: send the header Authorization: Bearer <token> (paxos client --token-file F)"
      : "the client token is wrong"
  return new Unauthorized({ message, reason: r, bearer: true })
}

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
export function countClientGone(d: ApiDeps): Response {
  d.counters.clientGone += 1
  d.log.limited("client-gone", 60_000, "client-gone", { note: "requests whose client went away before the answer (counted in clientGone)" })
  return new Response(null, { status: GONE })
}

/** Counts a client request's error by kind (the node counts how answered requests ended). */
export function countClientError(d: ApiDeps, e: ApiError): void {
  if (e._tag === "BadRequest" || e._tag === "PayloadTooLarge") d.counters.clientBadRequests += 1
  if (e._tag === "RequestTimeout") d.counters.requestsSlowBody += 1
  if (e._tag === "Unavailable" && e.reason === "Overloaded") d.counters.requestsOverloaded += 1
}

/** At most `max` bytes of UTF-8 (a WebSocket close reason is at most 123 bytes). */
export function truncateUtf8(s: string, max: number): string {
  let out = s.slice(0, max)
  while (new TextEncoder().encode(out).length > max) out = out.slice(0, -1)
  return out
}

/** The node's name (its address, `host:port`). */
export const nodeName = (d: ApiDeps): string => d.who().address

/** The path of a request's URL (as Bun gives it: absolute), without its query. */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2)
  const q = url.indexOf("?", start)
  return q === -1 ? url.slice(start) : url.slice(start, q)
}
