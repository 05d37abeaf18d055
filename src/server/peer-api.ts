/**
 * The peers' endpoints:
 *   - GET /peer/ws (hot): a peer's WebSocket connection (Bun's server WebSockets), one
 *     PeerEnvelope a text frame;
 *   - POST /peer/envelope (cold): one PeerEnvelope, for messages too large for a frame, tools and
 *     tests; 204.
 * With a cluster secret, requests, connections and frames are authenticated before anything in
 * them is parsed for the core (401 / close 1008 otherwise, counted by reason). Envelopes are
 * checked (schema, cluster, sender, receiver) and a bad one is refused with the reason (400 /
 * close 1008), counted and logged.
 */
import { Effect, Either } from "effect"
import { LIMITS } from "../core/config.ts"
import { derivedIncarnation, INCARNATION_PATTERN, latestConfig, memberById, type Membership } from "../core/membership.ts"
import { AUTH_HEADERS, decodeFrame, UPGRADE_BODY, Verifier, type AuthFailure, type Signed } from "../auth/peer-auth.ts"
import { CLIENT_GONE, readBody } from "./body.ts"
import { BadRequest, Unauthorized, Unavailable, type ApiError } from "./errors.ts"
import { countClientGone, PEER_POSTS_MAX, truncateUtf8, type Answer, type ApiDeps, type Call, type PeerSide } from "./http.ts"
import {
  acceptEnvelope,
  acceptHello,
  AUTH_CAUSES,
  CLOSE_NO_SECRET_HERE,
  CLOSE_REPLACED,
  INCARNATION_HEADER,
  noSecretHereCause,
  otherClusterCause,
  PEER_WS_PATH,
  REFUSAL_LOG_MS,
  type InboundConnection
} from "./peer.ts"

/** One inbound peer connection: what the WebSocket handlers need. */
export class PeerConnection implements InboundConnection {
  ws: Bun.ServerWebSocket<PeerConnection> | null = null
  closed = false
  private closing: { code: number; reason: string } | null = null
  onFrame: (data: string | Buffer) => void = () => undefined
  /** The membership `refusal` was judged under: judged again only when the membership changes. */
  checkedFor: Membership | null = null
  /** Whether the sender is heard under that membership. */
  verdict: Verdict = NON_MEMBER

  constructor(
    readonly d: ApiDeps,
    readonly from: number,
    /** The incarnation the sender speaks as (its hello's). */
    readonly incarnation: string
  ) {}

  close(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    if (code === CLOSE_REPLACED) this.d.counters.peerConnectionsReplaced += 1
    const r = truncateUtf8(reason, 120)
    if (this.ws === null) this.closing = { code, reason: r }
    else this.ws.close(code, r)
  }

  opened(ws: Bun.ServerWebSocket<PeerConnection>): void {
    this.ws = ws
    if (this.closing !== null) ws.close(this.closing.code, this.closing.reason)
  }
}

/** The WebSocket handlers of Bun.serve for the peers' connections. */
export const peerSocketHandlers: Bun.WebSocketHandler<PeerConnection> = {
  open(ws) {
    ws.data.opened(ws)
  },
  message(ws, data) {
    ws.data.onFrame(data)
  },
  close(ws) {
    const c = ws.data
    c.closed = true
    c.d.http.inbound.release(c.from, c)
  }
}

/**
 * GET /peer/ws: a peer's connection. Its cluster and sender are checked before upgrading (400),
 * and with a secret its authentication (401); a newer connection from the same peer replaces an
 * older one. Then each text frame is an envelope (with a secret: `v1 ...` header line, then the
 * envelope); a bad one closes the connection with 1008 and the reason.
 */
export function upgrade(c: Call): Answer {
  const { d, req } = c
  const remote = () => c.server.requestIP(req)?.address
  const hello = acceptHelloFor(d, c.url, remote)
  if (Either.isLeft(hello)) return hello.left
  const from = hello.right
  const auth = d.peerAuth
  if (auth !== null) {
    const h = authHeaders(d, (k) => req.headers.get(k), from)
    if (typeof h === "string") return authFailed(d, h, "upgrade", from, remote())
    const bad = auth.verifier.verify(from, h.signed, UPGRADE_BODY, Date.now())
    if (bad !== null) return authFailed(d, bad, "upgrade", from, remote())
  }
  const incarnation = claimedIncarnation(from, new URLSearchParams(c.url.slice(c.url.indexOf("?") + 1)).get("incarnation"))
  if (incarnation instanceof BadRequest) return incarnation
  const conn = new PeerConnection(d, from, incarnation)
  conn.onFrame = frameHandler(d, conn)
  if (!(c.server as Bun.Server<PeerConnection>).upgrade(req, { data: conn })) return new BadRequest({ message: `${PEER_WS_PATH} needs a WebSocket upgrade` })
  d.http.inbound.adopt(from, conn)
  return undefined
}

const frameDecoder = new TextDecoder()

/** What to do with each frame of a connection: verify it (with a secret), then hand it to the node. */
function frameHandler(d: ApiDeps, conn: PeerConnection): (data: string | Buffer) => void {
  const from = conn.from
  const deliver = (text: string): void => {
    if (conn.closed) return
    const r = receiveEnvelope(d, text, from, conn)
    if (r._tag === "Rejected") conn.close(1008, r.error.message)
  }
  const auth = d.peerAuth
  if (auth === null) {
    return (data) => {
      const text = typeof data === "string" ? data : frameDecoder.decode(data)
      // A signed frame ("v1 <boot> ..."): the sender has a cluster secret and this node has none.
      if (text.startsWith("v1 ")) return refuseSigned(d, conn)
      deliver(text)
    }
  }
  // Verified as it comes (the MAC is synchronous), so frames reach the node in the order they came.
  return (data) => {
    if (conn.closed) return
    const frame = decodeFrame(typeof data === "string" ? data : frameDecoder.decode(data))
    const bad: AuthFailure | null = typeof frame === "string" ? frame : auth.verifier.verify(from, frame.signed, frame.body, Date.now())
    if (bad !== null || typeof frame === "string") return conn.close(1008, authFailed(d, bad ?? "Malformed", "frame", from, undefined).message)
    deliver(frame.body)
  }
}

/** Closes a connection whose frames are signed, on a node without a cluster secret: counted and logged with the cause. */
function refuseSigned(d: ApiDeps, conn: PeerConnection): void {
  d.counters.peerEnvelopesRejected += 1
  const who = `node ${conn.from} (${d.nameOf(conn.from)})`
  d.log.limited(`peer-signed-${conn.from}`, REFUSAL_LOG_MS, "peer-connection-rejected", { from: conn.from, reason: "NoSecretHere", cause: `${who} was refused: ${noSecretHereCause("this node")}` })
  conn.close(1008, CLOSE_NO_SECRET_HERE)
}

/**
 * POST /peer/envelope: one envelope; 204, 401 when not authenticated, or 400 naming what is wrong
 * with it. At most PEER_POSTS_MAX at once (503 past it). An Effect program: a cold path.
 */
export function postEnvelope(c: Call): Effect.Effect<Response, ApiError> {
  const { d, req } = c
  const remote = () => c.server.requestIP(req)?.address
  return Effect.gen(function* () {
    let from: number | null = null
    let signed: Signed | null = null
    if (d.peerAuth !== null) {
      // Before the body is even read: a request without (well-formed) authentication costs nothing.
      const h = authHeaders(d, (k) => req.headers.get(k), null)
      if (typeof h === "string") return yield* authFailed(d, h, "post", null, remote())
      from = h.from
      signed = h.signed
    }
    const body = yield* Effect.promise(() => readBody(req, d.http.peerBodies, c.watch))
    if (body === CLIENT_GONE) return countClientGone(d)
    if (!("text" in body)) return yield* Effect.fail(body)
    if (d.peerAuth !== null && signed !== null && from !== null) {
      const bad = d.peerAuth.verifier.verify(from, signed, body.text, Date.now())
      if (bad !== null) return yield* authFailed(d, bad, "post", from, remote())
    }
    const r = receiveEnvelope(d, body.text, from, { incarnation: req.headers.get(INCARNATION_HEADER) })
    // A POST from a member that speaks as another incarnation is refused like any bad envelope.
    if (r._tag === "Dropped") d.counters.peerEnvelopesRejected += 1
    if (r._tag !== "Delivered") return yield* Effect.fail(r.error)
    return new Response(null, { status: 204 })
  }).pipe(limitPeerPosts(d))
}

/** At most PEER_POSTS_MAX peer POSTs at once; more get 503 at once. */
const limitPeerPosts =
  (d: ApiDeps) =>
  <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E | Unavailable> =>
    Effect.suspend((): Effect.Effect<A, E | Unavailable> => {
      if (d.http.peerPosts >= PEER_POSTS_MAX) {
        d.counters.requestsOverloaded += 1
        return Effect.fail(new Unavailable({ message: `${PEER_POSTS_MAX} peer requests are being received already; try again later`, reason: "Overloaded" }))
      }
      d.http.peerPosts += 1
      return Effect.ensuring(self, Effect.sync(() => (d.http.peerPosts -= 1)))
    })

const envelopeCheck = (d: PeerSide) => ({ self: d.self, n: LIMITS.memberIdMax + 1, clusterId: d.clusterId })

/**
 * What came of one envelope: handed to the node; rejected (malformed, or not for this node: a
 * connection is closed for it, a POST answered 400); or dropped, from a member id that is bound to
 * another incarnation or to none yet (a POST is answered 400; a connection stays open, for its
 * sender may be bound a moment later).
 */
export type Received =
  | { readonly _tag: "Delivered" }
  | { readonly _tag: "Rejected"; readonly error: BadRequest }
  | { readonly _tag: "Dropped"; readonly error: BadRequest }

const DELIVERED: Received = { _tag: "Delivered" }

/**
 * One envelope's text from `from` (null: any sender), from a sender that speaks as `claim`'s
 * incarnation: counted, checked, handed to the node. A connection (`claim` is its PeerConnection)
 * keeps the verdict on its sender until the membership changes: one comparison per envelope.
 */
export function receiveEnvelope(d: ApiDeps, text: string, from: number | null, claim: PeerConnection | { readonly incarnation: string | null }): Received {
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
    return { _tag: "Rejected", error: e }
  }
  const sender = env.right.from
  const membership = d.node.state.membership
  let verdict: Verdict
  if (claim instanceof PeerConnection) {
    if (claim.checkedFor !== membership) {
      claim.verdict = speaksFor(membership, sender, claim.incarnation)
      claim.checkedFor = membership
    }
    verdict = claim.verdict
  } else {
    const incarnation = claimedIncarnation(sender, claim.incarnation)
    verdict = incarnation instanceof BadRequest ? { heard: false, message: incarnation.message } : speaksFor(membership, sender, incarnation)
  }
  if (!verdict.heard) {
    d.counters.peerEnvelopesWrongIncarnation += 1
    d.log.limited(`drop-${sender}`, REFUSAL_LOG_MS, "peer-envelope-dropped", { from: sender, reason: verdict.message })
    return { _tag: "Dropped", error: new BadRequest({ message: verdict.message }) }
  }
  if (!verdict.member) {
    // No member here (removed, or added where this node has not applied it yet): the core hears
    // nothing from it but a leader's hand-over, and decides that itself.
    d.counters.peerEnvelopesFromNonMembers += 1
    d.log.limited(`non-member-${sender}`, REFUSAL_LOG_MS, "peer-envelope-from-non-member", { from: sender, note: `node ${sender} is no member of this cluster as node ${d.self} knows it` })
  }
  d.counters.peerMessagesReceived += env.right.messages.length
  d.node.receive(sender, env.right.messages)
  return DELIVERED
}

/**
 * The incarnation a sender speaks as: the one it names (a connection's `incarnation=`, a POST's
 * INCARNATION_HEADER); a sender that names none (a binary of the format before incarnations) speaks
 * as the one derived from its id, which is what a cluster upgraded from that format is bound to.
 */
export function claimedIncarnation(from: number, named: string | null): string | BadRequest {
  if (named === null) return derivedIncarnation(from)
  if (!INCARNATION_PATTERN.test(named)) return new BadRequest({ message: `the incarnation of node ${from} must be 16 lowercase hex digits, got ${JSON.stringify(named.slice(0, 40))}` })
  return named
}

/**
 * Whether member `from`, speaking as `incarnation`, is heard under `m`: a member of the
 * configuration in force or of the one pending is heard only from the incarnation it is bound to;
 * a data dir that lost what it promised and voted (a wiped disk) has another incarnation, so its
 * messages never count (docs/MEMBERSHIP.md, "Identities"). An id that is no member is heard (the
 * core ignores it but for a hand-over).
 */
function speaksFor(m: Membership, from: number, incarnation: string): Verdict {
  const member = memberById(latestConfig(m), from) ?? memberById(m.current, from)
  if (member === undefined) return NON_MEMBER
  if (member.incarnation === incarnation) return MEMBER
  // Bound where this node has not applied the binding yet (it lags): heard, as a learner is; where it
  // is a learner here its votes count in no quorum, and this node learns the binding from it.
  if (member.incarnation === null) return NON_MEMBER
  return {
    heard: false,
    message:
      `peer envelope from node ${from} (${member.address}) speaks as incarnation ${incarnation}, but node ${from} is bound to ${member.incarnation}: ` +
      `another data directory speaks for it (wiped and restarted?); dropped. Replace it: paxos member remove, paxos member add, then --join`
  }
}

/** Whether a sender is heard (and is a member), or why not. */
type Verdict = { readonly heard: true; readonly member: boolean } | { readonly heard: false; readonly message: string }
const MEMBER: Verdict = { heard: true, member: true }
const NON_MEMBER: Verdict = { heard: true, member: false }

/**
 * The sender named by a connection request's query (`?cluster=...&from=N`); a rejection is
 * counted and logged (once per REFUSAL_LOG_MS per sender) with its cause: a node of another
 * cluster is told apart from a malformed request.
 */
export function acceptHelloFor(d: PeerSide, url: string, remote: () => string | undefined): Either.Either<number, BadRequest> {
  const hello = acceptHello(url, envelopeCheck(d))
  if (Either.isLeft(hello)) {
    d.counters.peerEnvelopesRejected += 1
    const params = new URLSearchParams(url.includes("?") ? url.slice(url.indexOf("?") + 1) : "")
    const cluster = params.get("cluster")
    const from = params.get("from") ?? "?"
    const who = `node ${from} of ${cluster === null ? "no cluster" : `cluster ${cluster}`} (at ${remote() ?? "an unknown address"})`
    const why = cluster !== null && cluster !== d.clusterId ? otherClusterCause(cluster, d.clusterId, "this node") : hello.left.message
    d.log.limited(`reject-hello-${cluster}-${from}`, REFUSAL_LOG_MS, "peer-connection-rejected", { from, remote: remote(), reason: hello.left.message, cause: `${who} was refused: ${why}` })
  }
  return hello
}

/** Counts and logs (rate-limited, per sender) a peer authentication failure with its cause; the 401 to answer with. */
export function authFailed(d: PeerSide, reason: AuthFailure, via: string, from: number | null, remote: string | undefined): Unauthorized {
  d.counters.peerAuthFailures += 1
  d.peerAuthFailures[reason] += 1
  const who = from === null ? `a peer at ${remote ?? "an unknown address"}` : `node ${from} (${d.nameOf(from)}${remote === undefined ? "" : `, at ${remote}`})`
  d.log.limited(`peer-auth-${reason}-${via}-${from}`, REFUSAL_LOG_MS, "peer-auth-failed", {
    via,
    reason,
    from: from ?? undefined,
    remote,
    cause: `${who} was refused: ${AUTH_CAUSES[reason]("this node")}`
  })
  return new Unauthorized({ message: `peer authentication failed: ${AUTH_REASONS[reason]}`, reason, bearer: false })
}

const AUTH_REASONS: Record<AuthFailure, string> = {
  Missing: "no x-paxos-* authentication (does every node have the same --secret-file?)",
  BadMac: "the MAC does not match (another secret, another cluster, or an altered message)",
  Stale: "the timestamp is outside the accepted window (are the nodes' clocks in sync?)",
  Replayed: "this message was seen before",
  Malformed: "the authentication fields are malformed"
}

/** The authenticated sender named by a request's headers (POST) or query (upgrade): its signature, or why not. */
export function authHeaders(d: PeerSide, get: (name: string) => string | null, from: number | null): { from: number; signed: Signed } | AuthFailure {
  const signed = Verifier.parse(get)
  if (typeof signed === "string") return signed
  const fromText = get(AUTH_HEADERS.from)
  if (from === null) {
    if (fromText === null) return "Missing"
    if (!/^\d{1,5}$/.test(fromText)) return "Malformed"
    from = Number(fromText)
  } else if (fromText !== null && fromText !== String(from)) return "Malformed"
  if (from > LIMITS.memberIdMax || from === d.self) return "Malformed"
  return { from, signed }
}
