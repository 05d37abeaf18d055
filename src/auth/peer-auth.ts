/**
 * Peer authentication: every peer envelope carries an HMAC-SHA256 over what gives it meaning
 * (cluster, sender, receiver, the sender's boot id, a counter, a timestamp, and the body), keyed by
 * the cluster's shared secret. A receiver checks the MAC in constant time, then rejects stale and
 * replayed envelopes: the timestamp must be within `skewMs` of its own clock, and each
 * (sender, boot) counter is accepted once, within a sliding window of recent counters.
 *
 * Three carriers, one MAC (see docs/SECURITY.md for the wire format):
 *   - POST /peer/envelope: the x-paxos-* headers (AUTH_HEADERS), the MAC over the body's bytes;
 *   - GET /peer/ws (the upgrade request): the same headers, the MAC over UPGRADE_BODY, so that a
 *     connection is authenticated before it is upgraded;
 *   - each WebSocket text frame: `v1 <boot> <counter> <time> <mac>\n<envelope JSON>` (encodeFrame),
 *     the MAC over the envelope JSON, so that an on-path attacker cannot inject frames.
 *
 * Why an HMAC and not mutual TLS: peers already talk HTTP on the client port, a shared secret file
 * is one thing to deploy (no CA, no certificates to rotate), and Paxos needs integrity and
 * authenticity of peers, not secrecy of the list (which any client may read). Replays cannot break
 * Paxos's safety (it tolerates duplicated and delayed messages); the replay check keeps a recorded
 * envelope from being reused to disturb liveness. See docs/SECURITY.md.
 *
 * The MAC is `node:crypto`'s createHmac, which Bun and Deno both have, and it is synchronous: a
 * frame is signed where it is sent and verified where it arrives, with no promise and no thread in
 * between. WebCrypto's `crypto.subtle.sign`, used before, took 55-66 µs per frame here (it hands
 * every call to a worker thread and back) against about 1 µs, and a 3-node cluster with a secret
 * made a third fewer appends than one without (docs/PERFORMANCE.md, "Peer authentication").
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto"

export const AUTH_HEADERS = {
  mac: "x-paxos-mac",
  boot: "x-paxos-boot",
  counter: "x-paxos-counter",
  time: "x-paxos-time",
  /** The sender's node index (POST only: a connection's sender is in its query, `from=`). */
  from: "x-paxos-from"
} as const

/** How far a peer's clock may differ from ours, and how long a recorded envelope stays usable. */
export const DEFAULT_SKEW_MS = 30_000
/** Counters below the highest seen minus this are refused (IPsec-style anti-replay window). */
export const REPLAY_WINDOW = 4_096
/** Boots of one sender remembered at once (a boot is forgotten once all its envelopes are stale). */
export const BOOTS_MAX = 16
/** Shortest secret accepted (bytes, after trimming whitespace). */
export const SECRET_MIN_BYTES = 16
/** What the MAC of a WebSocket upgrade request covers in place of a body. */
export const UPGRADE_BODY = "paxos-peer-ws-upgrade"
/** The first word of an authenticated WebSocket frame. */
export const FRAME_VERSION = "v1"
/** An authenticated frame's header line is at most this long (5 fields, the MAC is 64 hex digits). */
const FRAME_HEADER_MAX = 160

export type AuthFailure = "Missing" | "BadMac" | "Stale" | "Replayed" | "Malformed"
export const AUTH_FAILURES: readonly AuthFailure[] = ["Missing", "BadMac", "Stale", "Replayed", "Malformed"]

export interface Signed {
  readonly mac: string
  readonly boot: string
  readonly counter: number
  readonly time: number
}

/** A body to sign or verify: bytes, or text (its UTF-8 bytes are what is covered). */
export type Body = Uint8Array | string

const encoder = new TextEncoder()

/** The shared secret as an HMAC-SHA256 key. */
export type PeerKey = KeyObject

/** The shared secret as an HMAC key. The secret is the file's content, whitespace trimmed. Throws when it is too short. */
export function importSecret(secret: string): PeerKey {
  const bytes = encoder.encode(secret.trim())
  if (bytes.length < SECRET_MIN_BYTES) {
    throw new Error(`the cluster secret must be at least ${SECRET_MIN_BYTES} bytes (it has ${bytes.length})`)
  }
  return createSecretKey(bytes)
}

/** HMAC-SHA256 of the header line and the body (text is covered as its UTF-8 bytes). */
function mac(key: PeerKey, head: string, body: Body): Buffer {
  return createHmac("sha256", key).update(head).update(body).digest()
}

/** A fresh boot id: 16 random hex digits, new at every start of a node. */
export function newBootId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("")
}

/** The header line the MAC covers before the body: it binds the envelope's context. */
function header(cluster: string, from: number, to: number, s: Omit<Signed, "mac">): string {
  return `paxos-peer-v1\n${cluster}\n${from}\n${to}\n${s.boot}\n${s.counter}\n${s.time}\n`
}

const HEX_MAC = /^[0-9a-f]{64}$/

/** Signs envelopes of one sender for one boot; counters grow by one per envelope (any receiver). */
export class Signer {
  private counter = 0
  constructor(
    private readonly key: PeerKey,
    private readonly cluster: string,
    private readonly from: number,
    readonly boot: string
  ) {}

  sign(to: number, body: Body, now: number): Signed {
    this.counter += 1
    const s = { boot: this.boot, counter: this.counter, time: Math.floor(now) }
    return { ...s, mac: mac(this.key, header(this.cluster, this.from, to, s), body).toString("hex") }
  }

  /** The headers of a POST (or of a WebSocket upgrade, with `body` = UPGRADE_BODY). */
  headers(to: number, body: Body, now: number): Record<string, string> {
    return signedHeaders(this.from, this.sign(to, body, now))
  }

  /** One authenticated WebSocket frame carrying `body`. */
  frame(to: number, body: string, now: number): string {
    return encodeFrame(this.sign(to, body, now), body)
  }
}

/** The x-paxos-* headers of a signature. */
export function signedHeaders(from: number, s: Signed): Record<string, string> {
  return {
    [AUTH_HEADERS.from]: String(from),
    [AUTH_HEADERS.boot]: s.boot,
    [AUTH_HEADERS.counter]: String(s.counter),
    [AUTH_HEADERS.time]: String(s.time),
    [AUTH_HEADERS.mac]: s.mac
  }
}

/** `v1 <boot> <counter> <time> <mac>\n<body>`. */
export function encodeFrame(s: Signed, body: string): string {
  return `${FRAME_VERSION} ${s.boot} ${s.counter} ${s.time} ${s.mac}\n${body}`
}

/** Splits an authenticated frame into its signature and body; a bare envelope is "Missing". */
export function decodeFrame(text: string): { readonly signed: Signed; readonly body: string } | AuthFailure {
  if (!text.startsWith(`${FRAME_VERSION} `)) return /^\s*[{[]/.test(text.slice(0, 64)) ? "Missing" : "Malformed"
  const nl = text.indexOf("\n")
  if (nl === -1 || nl > FRAME_HEADER_MAX) return "Malformed"
  const parts = text.slice(0, nl).split(" ")
  if (parts.length !== 5) return "Malformed"
  const [, boot, counter, time, mac] = parts as [string, string, string, string, string]
  const fields: Record<string, string> = { [AUTH_HEADERS.boot]: boot, [AUTH_HEADERS.counter]: counter, [AUTH_HEADERS.time]: time, [AUTH_HEADERS.mac]: mac }
  const signed = Verifier.parse((k) => fields[k] ?? null)
  if (typeof signed === "string") return signed
  return { signed, body: text.slice(nl + 1) }
}

/** What is remembered of one boot of a sender. */
interface Boot {
  /** The latest timestamp among its accepted envelopes: once it is stale, so is every one of them. */
  lastTime: number
  highest: number
  recent: Set<number>
}

/** Verifies envelopes addressed to node `to`; remembers counters per sender and boot against replay. */
export class Verifier {
  private readonly seen = new Map<number, Map<string, Boot>>()
  constructor(
    private readonly key: PeerKey,
    private readonly cluster: string,
    private readonly to: number,
    private readonly skewMs = DEFAULT_SKEW_MS
  ) {}

  /** Reads the auth headers: "Missing" when any is absent, "Malformed" when any is not well-formed. */
  static parse(get: (name: string) => string | null): Signed | AuthFailure {
    const mac = get(AUTH_HEADERS.mac)
    const boot = get(AUTH_HEADERS.boot)
    const counter = get(AUTH_HEADERS.counter)
    const time = get(AUTH_HEADERS.time)
    if (mac === null || boot === null || counter === null || time === null) return "Missing"
    if (!/^\d{1,16}$/.test(counter) || !/^\d{1,16}$/.test(time)) return "Malformed"
    const c = Number(counter)
    const t = Number(time)
    if (!/^[0-9a-z]{1,32}$/.test(boot) || !Number.isSafeInteger(c) || c < 1 || !Number.isSafeInteger(t)) return "Malformed"
    if (!/^[0-9a-fA-F]{64}$/.test(mac)) return "Malformed"
    return { mac: mac.toLowerCase(), boot, counter: c, time: t }
  }

  /** null when the envelope is authentic, fresh and not seen before; else why it is refused. */
  verify(from: number, s: Signed, body: Body, now: number): AuthFailure | null {
    if (!HEX_MAC.test(s.mac)) return "Malformed"
    // Compared in constant time: how long it takes says nothing of how much of a forged MAC was right.
    if (!timingSafeEqual(mac(this.key, header(this.cluster, from, this.to, s), body), Buffer.from(s.mac, "hex"))) return "BadMac"
    if (Math.abs(now - s.time) > this.skewMs) return "Stale"
    return this.remember(from, s, now) ? null : "Replayed"
  }

  /**
   * Records (boot, counter); false if it was seen, is too old for the window, or the sender has
   * BOOTS_MAX boots whose envelopes are still fresh. A boot's record is dropped once the latest
   * timestamp it was seen with is older than the skew window: every envelope of it is then refused
   * as stale, so forgetting it lets no replay through.
   */
  private remember(from: number, s: Signed, now: number): boolean {
    let boots = this.seen.get(from)
    if (boots === undefined) {
      boots = new Map()
      this.seen.set(from, boots)
    }
    let b = boots.get(s.boot)
    if (b === undefined) {
      for (const [id, old] of boots) if (now - old.lastTime > this.skewMs) boots.delete(id)
      if (boots.size >= BOOTS_MAX) return false
      b = { lastTime: s.time, highest: 0, recent: new Set() }
      boots.set(s.boot, b)
    }
    if (s.counter <= b.highest - REPLAY_WINDOW || b.recent.has(s.counter)) return false
    b.recent.add(s.counter)
    if (s.counter > b.highest) b.highest = s.counter
    if (s.time > b.lastTime) b.lastTime = s.time
    if (b.recent.size > 2 * REPLAY_WINDOW) {
      for (const c of b.recent) if (c <= b.highest - REPLAY_WINDOW) b.recent.delete(c)
    }
    return true
  }
}
