/**
 * Peer transport, on the same port as the client API (scripts/bench-transport.ts measures why):
 * one WebSocket per ordered pair of nodes, opened by the sender to `GET /peer/ws`, carrying one
 * JSON `PeerEnvelope` {cluster, from, to, messages} per text frame; the receiving side only
 * answers pings. A message too large for one frame goes alone as an HTTP POST to `/peer/envelope`
 * (the same envelope format, which tools and tests can also use).
 *
 * Sending: one bounded outbox per destination (messages already serialized; over the bound the
 * oldest are dropped and counted: Paxos tolerates loss, and the newest messages matter most).
 * After each batch the node calls `flush`, which coalesces what is queued for each destination
 * into one frame (at most messagesPerEnvelopeMax messages and ENVELOPE_MAX_BYTES) and sends it at
 * once on an open connection. Whatever cannot go at once is left to the destination's sender
 * fiber, which connects (with a timeout, and an exponential, jittered backoff after failures),
 * waits for a full socket buffer to drain, signs frames when there is a secret, and sends. A
 * keep-alive fiber pings every PING_INTERVAL; a connection that has not answered for DEAD_AFTER
 * is terminated and reopened, so a half-open connection (a partition, a peer that vanished) costs
 * at most that long.
 *
 * Receiving: `acceptEnvelope` checks an envelope's JSON, schema, cluster id, sender and receiver
 * before any of its messages reaches the core. The schema check is src/core/fast-decode.ts, proven
 * to accept exactly what the Schema of messages.ts accepts; the Schema itself runs only on an
 * envelope the fast check rejects, to name the problem.
 *
 * Authentication (with a cluster secret, src/auth/peer-auth.ts): the upgrade request and every POST
 * carry x-paxos-* headers, and every frame is `v1 <boot> <counter> <time> <mac>\n<envelope>`.
 * A receiver keeps one connection per sender (`InboundPeers`): a newer authenticated connection
 * from the same node replaces the older one. A connection refused (another secret, another
 * cluster) is logged with its cause on both sides; the sender, whose WebSocket client sees only
 * the status, asks the receiver why (`explainRefusal`).
 */
import { Duration, Effect, Either, FiberMap, Queue, Schedule, Schema as S } from "effect"
import { UPGRADE_BODY, type AuthFailure, type Signer } from "../auth/peer-auth.ts"
import { LIMITS } from "../core/config.ts"
import { fastDecodeEnvelope } from "../core/fast-decode.ts"
import { PeerEnvelope, strict } from "../core/messages.ts"
import { BadRequest } from "./errors.ts"
import { describeIssues, parseJson, PEER_BODY_MAX_BYTES } from "./body.ts"
import { dialName, parseAddress, type NodeAddress } from "./cluster-config.ts"
import type { Membership } from "../core/membership.ts"
import type { Log } from "./log.ts"
import type { Counters } from "./metrics.ts"

export const PEER_PATH = "/peer/envelope"
/** The header in which a POST /peer/envelope names the incarnation its sender speaks as (a connection: `incarnation=` in its query). */
export const INCARNATION_HEADER = "x-paxos-incarnation"
export const PEER_WS_PATH = "/peer/ws"
/** Messages waiting for one destination, at most; older ones are dropped past it. */
export const OUTBOX_MESSAGES_MAX = 20_000
/** Bytes waiting for one destination, at most. */
export const OUTBOX_BYTES_MAX = 128 * 1024 * 1024
/** One envelope carries at most this many bytes of messages (a single larger message goes alone). */
export const ENVELOPE_MAX_BYTES = 8 * 1024 * 1024
/** Frames above this go by HTTP POST instead (Bun's WebSocket servers take at most 16 MiB a frame). */
export const FRAME_MAX_BYTES = 15 * 1024 * 1024
/** Bytes a connection may hold unsent before the sender waits for it to drain. */
export const SOCKET_BUFFERED_MAX = 16 * 1024 * 1024
/** Opening a connection, or a POST, that takes longer is abandoned. */
export const CONNECT_TIMEOUT = Duration.millis(1_000)
export const POST_TIMEOUT = Duration.millis(5_000)
export const PING_INTERVAL = Duration.millis(250)
/** A connection that answered nothing (pong or message) for this long is given up. */
export const DEAD_AFTER_MS = 1_500
/** Backoff between connection attempts: 20 ms doubling, jittered, at most 500 ms. */
export const RECONNECT = Schedule.exponential(Duration.millis(20), 2).pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced(Duration.millis(500)))
)

/** A refusal of this node's connection is explained (one line, after asking the peer why) at most this often per peer. */
export const REFUSAL_LOG_MS = 5_000

/**
 * Why a node's peer authentication failed, said of the refused node ("it") and of `refuser`
 * ("this node" or "node 0"), in the line each side logs: the refusing side names the node it
 * refused, the refused side the node that refused it.
 */
export const AUTH_CAUSES: Record<AuthFailure, (refuser: string) => string> = {
  Missing: (r) => `it has no cluster secret (--secret-file), and ${r} requires one`,
  BadMac: (r) => `its cluster secret does not match ${r}'s (or its messages were altered on the way)`,
  Stale: (r) => `its clock and ${r}'s differ by more than 30 s (run NTP)`,
  Replayed: (r) => `${r} saw its authentication before (a replay)`,
  Malformed: () => "its authentication fields are malformed (another version of paxos?)"
}

/** The refused node's cause when the refuser belongs to another cluster (their config files differ). */
export const otherClusterCause = (refused: string, refuser: string, refuserName: string): string =>
  `it belongs to cluster ${refused}, ${refuserName} to cluster ${refuser}: their config files differ (every node needs the same lines in the same order)`

/** The close reason of a node without a cluster secret for a connection whose frames are signed. */
export const CLOSE_NO_SECRET_HERE = "signed frames, and this node has no cluster secret"

/** The cause when a node with a cluster secret connects to one without. */
export const noSecretHereCause = (refuser: string): string => `it has a cluster secret (its frames are signed), and ${refuser} has none (--secret-file)`

/** What one destination's link shows in /status. */
export interface PeerStatus {
  readonly node: string
  readonly id: number
  /** null until the first connection attempt ends. */
  readonly reachable: boolean | null
  readonly connected: boolean
  readonly outbox: number
  readonly sentEnvelopes: number
  readonly failures: number
  readonly dropped: number
  readonly lastError: string | null
}

class Link {
  readonly queue: string[] = []
  head = 0
  bytes = 0
  ws: WebSocket | null = null
  /** When the open connection last showed it is alive (open, pong). */
  heardAt = 0
  reachable: boolean | null = null
  sentEnvelopes = 0
  failures = 0
  dropped = 0
  lastError: string | null = null
  /** When a refusal of this node's connection was last explained, and how many since went unexplained. */
  refusedAt = 0
  refusedQuiet = 0
  readonly wake = Effect.runSync(Queue.sliding<true>(1))
  /** For a former member's link: when something was last queued for it (it closes once idle). */
  usedAt = 0

  constructor(
    readonly id: number,
    readonly address: NodeAddress,
    readonly wsUrl: string,
    readonly postUrl: string,
    readonly statusUrl: string,
    /** A link opened to answer a former member (see Outboxes.enqueue), not one to a member. */
    readonly former = false
  ) {}

  get length(): number {
    return this.queue.length - this.head
  }

  push(json: string): void {
    this.queue.push(json)
    this.bytes += json.length
  }

  shift(): string {
    const json = this.queue[this.head] as string
    this.queue[this.head] = ""
    this.head += 1
    this.bytes -= json.length
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    return json
  }
}

export interface OutboxOptions {
  readonly self: number
  /** This node's incarnation: every connection and POST names it (docs/MEMBERSHIP.md, "Identities"). */
  readonly incarnation: string
  /** The membership to start with: an outbox for every member of either configuration but this node (`follow` keeps up). */
  readonly membership: Membership
  readonly clusterId: string
  readonly counters: Counters
  readonly log: Log
  /** Signs what this node sends (null: peer traffic is not authenticated). */
  readonly signer: Signer | null
}

/** Former members whose addresses are remembered (to answer one that asks), at most. */
export const FORMER_MAX = 16
/** A link opened to answer a former member closes once nothing was queued for it for this long. */
export const FORMER_IDLE_MS = 10_000

/**
 * The outboxes, connections and sender fibers of one node: one per member of its membership, this
 * node left out, and for a while one to a former member the core answers (a removed node that
 * missed its removal asks its old peers, and learns it from their answer).
 */
export class Outboxes {
  /** By member id. */
  private readonly links: Array<Link | undefined> = []
  /** Addresses of members gone, by id, oldest first (at most FORMER_MAX). */
  private readonly former = new Map<number, NodeAddress>()
  /** The same links, in a dense list. */
  private all: Link[] = []
  private readonly header: string
  private readonly hello: string
  /** The membership the links were made for. */
  private membership: Membership | null = null
  /** Set while `run` runs: starts a link's fibers, stops them. */
  private fibers: { readonly start: (link: Link) => void; readonly stop: (id: number) => void } | null = null

  constructor(private readonly o: OutboxOptions) {
    this.hello = `?cluster=${encodeURIComponent(o.clusterId)}&from=${o.self}&incarnation=${o.incarnation}`
    this.header = `{"cluster":${JSON.stringify(o.clusterId)},"from":${o.self},"to":`
    this.follow(o.membership)
  }

  /**
   * Keeps one outbox per member of `m` (either configuration): opens one to a member added, closes
   * the one of a member gone (its queued messages are dropped, as a lossy network would). The node
   * calls it whenever its membership changes.
   */
  follow(m: Membership): void {
    if (m === this.membership) return
    this.membership = m
    const want = new Map<number, string>()
    for (const c of m.next === null ? [m.current] : [m.current, m.next.config]) for (const x of c.members) if (x.id !== this.o.self) want.set(x.id, x.address)
    for (const link of this.all) {
      if (want.get(link.id) === link.address.name) continue
      this.close(link, "no longer a member")
      if (link.former) continue
      this.former.delete(link.id)
      this.former.set(link.id, link.address)
      for (const id of this.former.keys()) if (this.former.size > FORMER_MAX) this.former.delete(id)
      this.o.log("peer-removed", { peer: link.address.name, id: link.id })
    }
    for (const [id, name] of want) {
      if (this.links[id] !== undefined) continue
      const a = parseAddress(name)
      if (typeof a === "string") {
        this.o.log.limited(`bad-address-${id}`, REFUSAL_LOG_MS, "peer-address-unusable", { id, address: name, reason: a })
        continue
      }
      this.former.delete(id)
      this.link(id, a, false)
      if (this.all.length > 0 || this.fibers !== null) this.o.log("peer-added", { peer: a.name, id })
    }
    this.all = this.links.filter((l): l is Link => l !== undefined)
  }

  /** A new link to `id` at `a`, its fibers started if the outboxes run. */
  private link(id: number, a: NodeAddress, former: boolean): Link {
    const link = new Link(id, a, `ws://${dialName(a)}${PEER_WS_PATH}${this.hello}`, `http://${dialName(a)}${PEER_PATH}`, `http://${dialName(a)}/status`, former)
    this.links[id] = link
    this.fibers?.start(link)
    return link
  }

  /** Closes a link: its fibers stop, its connection closes, what was queued for it is dropped. */
  private close(link: Link, reason: string): void {
    if (this.links[link.id] === link) this.links[link.id] = undefined
    this.fibers?.stop(link.id)
    link.ws?.close(1000, reason)
    link.ws = null
    this.o.counters.peerMessagesDropped += link.length
  }

  /**
   * The link to a former member the core answers: opened for the while (it closes once idle for
   * FORMER_IDLE_MS), if its address is remembered; undefined otherwise (the message is dropped).
   */
  private formerLink(to: number): Link | undefined {
    const a = this.former.get(to)
    if (a === undefined || to === this.o.self) return undefined
    const link = this.link(to, a, true)
    this.all = [...this.all, link]
    this.o.counters.formerMemberLinks += 1
    this.o.log.limited(`former-${to}`, REFUSAL_LOG_MS, "peer-former-member-answered", { peer: a.name, id: to, note: "a former member asked; it is answered through an outbox opened for the while" })
    return link
  }

  /** Queues one serialized message for `to` (sent at the next `flush`); drops the oldest past the outbox bounds. */
  enqueue(to: number, json: string): void {
    const link = this.links[to] ?? this.formerLink(to)
    if (link === undefined) {
      this.o.counters.peerMessagesDropped += 1
      return
    }
    if (link.former) link.usedAt = Date.now()
    link.push(json)
    while (link.length > 1 && (link.length > OUTBOX_MESSAGES_MAX || link.bytes > OUTBOX_BYTES_MAX)) {
      link.shift()
      link.dropped += 1
      this.o.counters.peerMessagesDropped += 1
    }
  }

  /**
   * Sends what was queued since the last flush (the node calls it after each batch's messages).
   * Where that needs no waiting (an open connection with room in its buffer, and frames that fit)
   * it is sent here and now, signed when there is a secret, one frame per destination, with no
   * fiber involved; anything else wakes the link's sender fiber, which connects or waits.
   */
  flush(): void {
    for (const link of this.all) {
      if (link.length === 0) continue
      const ws = link.ws
      if (ws !== null) {
        while (link.length > 0 && ws.readyState === WebSocket.OPEN && ws.bufferedAmount <= SOCKET_BUFFERED_MAX) {
          if ((link.queue[link.head] as string).length > FRAME_MAX_BYTES - 1024) break
          const { body, count } = this.takeEnvelope(link)
          this.sendFrame(link, ws, body, count)
        }
      }
      if (link.length > 0) link.wake.unsafeOffer(true)
    }
  }

  status(): PeerStatus[] {
    const out: PeerStatus[] = []
    for (const l of this.all) {
      out.push({
        node: l.address.name,
        id: l.id,
        reachable: l.reachable,
        connected: l.ws !== null,
        outbox: l.length,
        sentEnvelopes: l.sentEnvelopes,
        failures: l.failures,
        dropped: l.dropped,
        lastError: l.lastError
      })
    }
    return out
  }

  /**
   * Runs the sender and keep-alive fibers of every destination until interrupted (then closes
   * all), those of members added meanwhile too.
   */
  run(): Effect.Effect<void> {
    const self = this
    return Effect.scoped(
      Effect.gen(function* () {
        const map = yield* FiberMap.make<number>()
        const fork = yield* FiberMap.runtime(map)<never>()
        self.fibers = {
          start: (link) => void fork(link.id, Effect.all([self.sender(link), self.keepAlive(link)], { concurrency: "unbounded", discard: true })),
          stop: (id) => void Effect.runFork(FiberMap.remove(map, id))
        }
        for (const link of self.all) self.fibers.start(link)
        return yield* Effect.never
      })
    ).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          self.fibers = null
          for (const l of self.all) l.ws?.close(1001, "node stopping")
        })
      )
    )
  }

  /** Connects, then sends whatever is queued, frame by frame; reconnects when the connection goes. */
  private sender(link: Link): Effect.Effect<never> {
    const self = this
    return Effect.gen(function* () {
      const backoff = yield* Schedule.driver(RECONNECT)
      for (;;) {
        if (link.ws === null) {
          if (!(yield* self.connect(link))) {
            yield* Effect.ignore(backoff.next(undefined))
            continue
          }
          yield* backoff.reset
        }
        if (link.length === 0) yield* Queue.take(link.wake)
        yield* self.drain(link)
      }
    })
  }

  /** Sends queued messages while the connection is open, waiting when its buffer is full. */
  private drain(link: Link): Effect.Effect<void> {
    const self = this
    return Effect.gen(function* () {
      while (link.length > 0 && link.ws !== null) {
        if (link.ws.bufferedAmount > SOCKET_BUFFERED_MAX) {
          yield* Effect.sleep(Duration.millis(5))
          continue
        }
        const { body, count } = self.takeEnvelope(link)
        if (body.length > FRAME_MAX_BYTES) {
          yield* self.post(link, body, count)
          continue
        }
        self.sendFrame(link, link.ws, body, count)
      }
    })
  }

  /** Sends one frame of `count` messages on `ws`, signed when there is a secret. */
  private sendFrame(link: Link, ws: WebSocket, body: string, count: number): void {
    const signer = this.o.signer
    const frame = signer === null ? body : signer.frame(link.id, body, Date.now())
    ws.send(frame)
    this.sent(link, frame, count)
  }

  private sent(link: Link, body: string, count: number): void {
    const c = this.o.counters
    link.sentEnvelopes += 1
    c.peerEnvelopesSent += 1
    c.peerMessagesSent += count
    c.peerBytesSent += body.length
  }

  private lost(link: Link, count: number): void {
    link.failures += 1
    link.dropped += count
    this.o.counters.peerSendFailures += 1
    this.o.counters.peerMessagesDropped += count
  }

  /** Opens the connection; true when it is open. */
  private connect(link: Link): Effect.Effect<boolean> {
    const signer = this.o.signer
    const headers: Effect.Effect<Record<string, string> | null> =
      signer === null ? Effect.succeed(null) : Effect.sync(() => signer.headers(link.id, UPGRADE_BODY, Date.now()))
    const open = Effect.flatMap(headers, (h) => this.open(link, h))
    return open.pipe(
      Effect.timeoutFail({ duration: CONNECT_TIMEOUT, onTimeout: () => `no connection within ${Duration.toMillis(CONNECT_TIMEOUT)} ms` }),
      Effect.either,
      Effect.flatMap((r) => {
        if (Either.isLeft(r)) {
          link.failures += 1
          this.markReachable(link, false, r.left)
          const refused = /Expected 101 status code: (400|401)\b/.exec(r.left)
          return refused === null ? Effect.succeed(false) : Effect.as(this.explainRefusal(link, Number(refused[1])), false)
        }
        this.adopt(link, r.right)
        return Effect.succeed(true)
      })
    )
  }

  /**
   * The link's node refused this node's connection (400 or 401 to the upgrade, whose body a
   * WebSocket client never sees): asks it why, once per REFUSAL_LOG_MS, and logs one line naming
   * the cause, e.g. "node 1 was refused by node 0 (host:5000): its cluster secret does not match".
   */
  private explainRefusal(link: Link, status: number): Effect.Effect<void> {
    this.o.counters.peerConnectionsRefusedByPeer += 1
    const now = Date.now()
    if (now - link.refusedAt < REFUSAL_LOG_MS) {
      link.refusedQuiet += 1
      return Effect.void
    }
    link.refusedAt = now
    const suppressed = link.refusedQuiet > 0 ? link.refusedQuiet : undefined
    link.refusedQuiet = 0
    const head = `node ${this.o.self} was refused by node ${link.id} (${link.address.name})`
    return Effect.tryPromise({
      try: (signal) => this.refusalCause(link, status, signal),
      catch: (e) => (e instanceof Error ? e.message : String(e))
    }).pipe(
      Effect.timeoutFail({ duration: CONNECT_TIMEOUT, onTimeout: () => "it did not say why in time" }),
      Effect.either,
      Effect.map((r) => {
        const { reason, why } = Either.isRight(r) ? r.right : { reason: `status ${status}`, why: `it answered ${status} (asked why: ${r.left.split("\n")[0]})` }
        this.o.log("peer-refused-this-node", { peer: link.address.name, reason, cause: `${head}: ${why}`, suppressed })
      })
    )
  }

  /** Why the link's node answered the upgrade with `status`: its own answer, asked again without the upgrade. */
  private async refusalCause(link: Link, status: number, signal: AbortSignal): Promise<{ reason: string; why: string }> {
    const signer = this.o.signer
    const refuser = `node ${link.id}`
    if (status === 401 && signer === null) return { reason: "Missing", why: AUTH_CAUSES.Missing(refuser) }
    if (status === 400) {
      // A connection is checked for its cluster first: the other node's /status says which it is in.
      const st = (await (await fetch(link.statusUrl, { signal })).json()) as { cluster?: unknown }
      if (typeof st.cluster === "string" && st.cluster !== this.o.clusterId) {
        return { reason: "OtherCluster", why: otherClusterCause(this.o.clusterId, st.cluster, refuser) }
      }
    }
    // The same checks as the upgrade, without the upgrade: its answer names the reason.
    const headers = signer === null ? undefined : signer.headers(link.id, UPGRADE_BODY, Date.now())
    const res = await fetch(link.wsUrl.replace(/^ws:/, "http:"), { headers, signal })
    const body = (await res.json().catch(() => ({}))) as { reason?: unknown; message?: unknown }
    const reason = typeof body.reason === "string" ? body.reason : ""
    if (res.status === 401 && Object.hasOwn(AUTH_CAUSES, reason)) return { reason, why: AUTH_CAUSES[reason as AuthFailure](refuser) }
    return { reason: `status ${res.status}`, why: `it answered ${res.status}${typeof body.message === "string" ? `: ${body.message.slice(0, 200)}` : ""}` }
  }

  /** Opens a WebSocket to the link's node, with the upgrade's auth headers when there are any. */
  private open(link: Link, headers: Record<string, string> | null): Effect.Effect<WebSocket, string> {
    return Effect.async<WebSocket, string>((resume) => {
      let settled = false
      const settle = (r: Effect.Effect<WebSocket, string>) => {
        if (settled) return
        settled = true
        resume(r)
      }
      const ws = headers === null ? new WebSocket(link.wsUrl) : new WebSocket(link.wsUrl, { headers })
      ws.onopen = () => settle(Effect.succeed(ws))
      ws.onerror = (ev) => settle(Effect.fail(errorText(ev)))
      ws.onclose = (ev) => settle(Effect.fail(`closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`))
      return Effect.sync(() => {
        if (!settled) ws.terminate()
      })
    })
  }

  /** Makes an open socket the link's connection. */
  private adopt(link: Link, ws: WebSocket): void {
    link.ws = ws
    link.heardAt = Date.now()
    ws.onmessage = () => (link.heardAt = Date.now())
    ws.addEventListener("pong", () => (link.heardAt = Date.now()))
    ws.onerror = null
    ws.onclose = (ev) => {
      if (link.ws !== ws) return
      link.ws = null
      const reason = `connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`
      if (ev.code === 1008 && ev.reason === CLOSE_NO_SECRET_HERE) {
        this.o.counters.peerConnectionsRefusedByPeer += 1
        const cause = `node ${this.o.self} was refused by node ${link.id} (${link.address.name}): ${noSecretHereCause(`node ${link.id}`)}`
        this.o.log.limited(`refused-${link.id}`, REFUSAL_LOG_MS, "peer-refused-this-node", { peer: link.address.name, reason: "NoSecretThere", cause })
      } else if (ev.code === 1008) {
        this.o.counters.peerEnvelopesRefusedByPeer += 1
        this.o.log.limited(`refused-${link.id}`, 5_000, "peer-refused-envelope", { peer: link.address.name, reason: ev.reason })
      }
      this.markReachable(link, false, reason)
      link.wake.unsafeOffer(true)
    }
    this.markReachable(link, true, null)
  }

  /** Pings the open connection; terminates it when it has been silent for DEAD_AFTER_MS. A former member's link closes once idle. */
  private keepAlive(link: Link): Effect.Effect<void> {
    const check = Effect.sync(() => {
      if (link.former && link.length === 0 && Date.now() - link.usedAt > FORMER_IDLE_MS) {
        this.close(link, "idle")
        this.all = this.all.filter((l) => l !== link)
        return
      }
      const ws = link.ws
      if (ws === null) return
      if (Date.now() - link.heardAt > DEAD_AFTER_MS) {
        link.ws = null
        ws.terminate()
        link.failures += 1
        this.markReachable(link, false, `no answer to pings for ${DEAD_AFTER_MS} ms`)
        link.wake.unsafeOffer(true)
        return
      }
      try {
        ws.ping()
      } catch {
        // closing: its close event reopens the link
      }
    })
    return Effect.repeat(check, Schedule.spaced(PING_INTERVAL)).pipe(Effect.asVoid)
  }

  /** Takes queued messages into one envelope body. */
  private takeEnvelope(link: Link): { body: string; count: number } {
    const parts: string[] = []
    let bytes = 0
    while (link.length > 0 && parts.length < LIMITS.messagesPerEnvelopeMax) {
      const next = link.queue[link.head] as string
      if (parts.length > 0 && bytes + next.length > ENVELOPE_MAX_BYTES) break
      parts.push(link.shift())
      bytes += next.length
    }
    return { body: `${this.header}${link.id},"messages":[${parts.join(",")}]}`, count: parts.length }
  }

  /** POSTs one (large) envelope. Never fails: errors are counted and logged. */
  private post(link: Link, body: string, count: number): Effect.Effect<void> {
    const log = this.o.log
    if (body.length > PEER_BODY_MAX_BYTES) {
      this.lost(link, count)
      log.limited(`oversize-${link.id}`, 5_000, "peer-envelope-too-large", { peer: link.address.name, bytes: body.length, limit: PEER_BODY_MAX_BYTES })
      return Effect.void
    }
    const signer = this.o.signer
    return Effect.tryPromise({
      try: async (signal) => {
        const auth = signer === null ? {} : signer.headers(link.id, body, Date.now())
        const headers = { "content-type": "application/json", [INCARNATION_HEADER]: this.o.incarnation, ...auth }
        return fetch(link.postUrl, { method: "POST", body, headers, signal }).then(async (r) => ({
          status: r.status,
          text: r.status === 204 ? "" : (await r.text()).slice(0, 300)
        }))
      },
      catch: (e) => (e instanceof Error ? e.message : String(e))
    }).pipe(
      Effect.timeoutFail({ duration: POST_TIMEOUT, onTimeout: () => `no answer within ${Duration.toMillis(POST_TIMEOUT)} ms` }),
      Effect.either,
      Effect.map((r) => {
        if (Either.isRight(r) && r.right.status === 204) return this.sent(link, body, count)
        this.lost(link, count)
        const error = Either.isLeft(r) ? r.left : `status ${r.right.status}: ${r.right.text}`
        if (Either.isRight(r) && r.right.status < 500) this.o.counters.peerEnvelopesRefusedByPeer += 1
        log.limited(`post-${link.id}`, 5_000, "peer-post-failed", { peer: link.address.name, bytes: body.length, error })
      })
    )
  }

  /** Logs transitions between reachable and unreachable, once each. */
  private markReachable(link: Link, reachable: boolean, error: string | null): void {
    if (error !== null) link.lastError = error
    if (link.reachable === reachable) return
    const before = link.reachable
    link.reachable = reachable
    if (reachable && before === false) this.o.log("peer-up", { peer: link.address.name })
    if (!reachable) this.o.log("peer-down", { peer: link.address.name, error: error ?? undefined })
  }
}

const errorText = (ev: Event): string => {
  const e = ev as ErrorEvent & { error?: { code?: string } }
  return e.error?.code ?? e.message ?? "connection failed"
}

/** The Schema's decode: the definition of a valid envelope, and the source of its error messages. */
const decodeEnvelope = S.decodeUnknownEither(PeerEnvelope, { ...strict, errors: "first" })

export interface EnvelopeCheck {
  readonly self: number
  readonly n: number
  readonly clusterId: string
}

/** Validates an envelope's text; Left with a BadRequest naming the problem. */
export function acceptEnvelope(text: string, k: EnvelopeCheck): Either.Either<PeerEnvelope, BadRequest> {
  try {
    return acceptEnvelopeUnsafe(text, k)
  } catch (e) {
    // A pathological input (e.g. nesting deep enough to exhaust the stack) is just a bad envelope.
    return Either.left(new BadRequest({ message: `peer envelope could not be decoded: ${e instanceof Error ? e.name : "error"}` }))
  }
}

function acceptEnvelopeUnsafe(text: string, k: EnvelopeCheck): Either.Either<PeerEnvelope, BadRequest> {
  const json = parseJson(text, '{"cluster":"...","from":0,"to":1,"messages":[...]}')
  if (Either.isLeft(json)) return Either.left(json.left)
  // The hand-written validator accepts exactly what the Schema accepts, ~50 times faster
  // (test/core/fast-decode.test.ts, scripts/bench-decode.ts); only an envelope it rejects goes
  // through the Schema, which then says what is wrong.
  let env = fastDecodeEnvelope(json.right)
  if (env === undefined) {
    const r = decodeEnvelope(json.right)
    if (Either.isLeft(r)) return Either.left(new BadRequest({ message: `peer envelope: ${describeIssues(r.left, json.right)}` }))
    env = r.right
  }
  if (env.cluster !== k.clusterId) {
    return Either.left(new BadRequest({ message: `peer envelope is for cluster ${JSON.stringify(env.cluster)}, this node belongs to cluster ${k.clusterId}` }))
  }
  if (env.to !== k.self) return Either.left(new BadRequest({ message: `peer envelope is addressed to node ${env.to}, this is node ${k.self}` }))
  if (env.from === k.self || env.from >= k.n) {
    return Either.left(new BadRequest({ message: `peer envelope comes from unknown node ${env.from} (the cluster has nodes 0..${k.n - 1}, this is ${k.self})` }))
  }
  return Either.right(env)
}

/** Checks the query of a connection request (`?cluster=...&from=N`) before upgrading it. */
export function acceptHello(url: string, k: EnvelopeCheck): Either.Either<number, BadRequest> {
  const q = url.indexOf("?")
  const params = new URLSearchParams(q === -1 ? "" : url.slice(q + 1))
  const cluster = params.get("cluster")
  const fromText = params.get("from") ?? ""
  if (cluster !== k.clusterId) {
    return Either.left(new BadRequest({ message: `peer connection is for cluster ${JSON.stringify(cluster)}, this node belongs to cluster ${k.clusterId}` }))
  }
  const from = /^\d+$/.test(fromText) ? Number(fromText) : -1
  if (from < 0 || from >= k.n || from === k.self) {
    return Either.left(new BadRequest({ message: `peer connection from unknown node ${JSON.stringify(fromText)} (the cluster has nodes 0..${k.n - 1}, this is ${k.self})` }))
  }
  return Either.right(from)
}

/** One inbound peer connection, as the registry knows it. */
export interface InboundConnection {
  /** Closes the connection with this code and reason (a no-op once closed). */
  close(code: number, reason: string): void
}

/** Close code of a connection replaced by a newer one from the same peer. */
export const CLOSE_REPLACED = 4000

/**
 * The inbound peer connections of a node: at most one per sender. A newer connection from the
 * same sender (which opens one only after it gave up on the old) replaces the older one, so a
 * peer holds at most one connection here whatever it (or someone replaying its upgrade) does.
 */
export class InboundPeers {
  private readonly conns = new Map<number, InboundConnection>()

  /** Registers `conn` as `from`'s connection; closes and returns the one it replaces. */
  adopt(from: number, conn: InboundConnection): InboundConnection | undefined {
    const old = this.conns.get(from)
    this.conns.set(from, conn)
    if (old !== undefined && old !== conn) old.close(CLOSE_REPLACED, "replaced by a newer connection from the same node")
    return old
  }

  /** Forgets `conn` when it ends (unless a newer one already replaced it). */
  release(from: number, conn: InboundConnection): void {
    if (this.conns.get(from) === conn) this.conns.delete(from)
  }

  get size(): number {
    return this.conns.size
  }
}
