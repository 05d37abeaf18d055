/**
 * Peer authentication: every peer envelope carries an HMAC-SHA256 over what gives it meaning
 * (cluster, sender, receiver, the sender's boot id, a counter, a timestamp, and the body), keyed by
 * the cluster's shared secret. A receiver checks the MAC in constant time, then rejects stale and
 * replayed envelopes: the timestamp must be within `skewMs` of its own clock, and each
 * (sender, boot) counter is accepted once, within a sliding window of recent counters.
 *
 * Why an HMAC and not mutual TLS: peers already talk HTTP on the client port, a shared secret file
 * is one thing to deploy (no CA, no certificates to rotate), and Paxos needs integrity and
 * authenticity of peers, not secrecy of the list (which any client may read). Replays cannot break
 * Paxos's safety (it tolerates duplicated and delayed messages); the replay check keeps a recorded
 * envelope from being reused to disturb liveness. See docs/SECURITY.md.
 *
 * Uses WebCrypto only, so it runs on Bun and Deno alike.
 */

export const AUTH_HEADERS = {
  mac: "x-paxos-mac",
  boot: "x-paxos-boot",
  counter: "x-paxos-counter",
  time: "x-paxos-time"
} as const

/** How far a peer's clock may differ from ours, and how long a recorded envelope stays usable. */
export const DEFAULT_SKEW_MS = 30_000
/** Counters below the highest seen minus this are refused (IPsec-style anti-replay window). */
export const REPLAY_WINDOW = 4_096
/** Shortest secret accepted (bytes, after trimming whitespace). */
export const SECRET_MIN_BYTES = 16

export type AuthFailure = "Missing" | "BadMac" | "Stale" | "Replayed" | "Malformed"

export interface Signed {
  readonly mac: string
  readonly boot: string
  readonly counter: number
  readonly time: number
}

const encoder = new TextEncoder()

/** Imports the shared secret as an HMAC key. The secret is the file's content, whitespace trimmed. */
export async function importSecret(secret: string): Promise<CryptoKey> {
  const bytes = encoder.encode(secret.trim())
  if (bytes.length < SECRET_MIN_BYTES) {
    throw new Error(`the cluster secret must be at least ${SECRET_MIN_BYTES} bytes (it has ${bytes.length})`)
  }
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])
}

/** The bytes the MAC covers: a header line binding the envelope's context, then the body. */
function material(cluster: string, from: number, to: number, s: Omit<Signed, "mac">, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`paxos-peer-v1\n${cluster}\n${from}\n${to}\n${s.boot}\n${s.counter}\n${s.time}\n`)
  const out = new Uint8Array(head.length + body.length)
  out.set(head, 0)
  out.set(body, head.length)
  return out
}

const toHex = (buf: ArrayBuffer): string => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("")

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Signs envelopes of one sender for one boot; counters grow by one per envelope. */
export class Signer {
  private counter = 0
  constructor(
    private readonly key: CryptoKey,
    private readonly cluster: string,
    private readonly from: number,
    readonly boot: string
  ) {}

  async sign(to: number, body: Uint8Array, now: number): Promise<Signed> {
    this.counter += 1
    const s = { boot: this.boot, counter: this.counter, time: Math.floor(now) }
    const mac = await crypto.subtle.sign("HMAC", this.key, material(this.cluster, this.from, to, s, body))
    return { ...s, mac: toHex(mac) }
  }
}

/** Per sender: its current boot and the counters seen recently. */
interface Seen {
  boot: string
  bootTime: number
  highest: number
  recent: Set<number>
}

/** Verifies envelopes addressed to node `to`; remembers counters per sender against replay. */
export class Verifier {
  private readonly seen = new Map<number, Seen>()
  constructor(
    private readonly key: CryptoKey,
    private readonly cluster: string,
    private readonly to: number,
    private readonly skewMs = DEFAULT_SKEW_MS
  ) {}

  /** Reads the auth headers; null when any is missing or malformed. */
  static parse(get: (name: string) => string | null): Signed | AuthFailure {
    const mac = get(AUTH_HEADERS.mac)
    const boot = get(AUTH_HEADERS.boot)
    const counter = get(AUTH_HEADERS.counter)
    const time = get(AUTH_HEADERS.time)
    if (mac === null || boot === null || counter === null || time === null) return "Missing"
    const c = Number(counter)
    const t = Number(time)
    if (!/^[0-9a-z]{1,32}$/.test(boot) || !Number.isSafeInteger(c) || c < 1 || !Number.isSafeInteger(t)) return "Malformed"
    return { mac: mac.toLowerCase(), boot, counter: c, time: t }
  }

  /** null when the envelope is authentic, fresh and not seen before; else why it is refused. */
  async verify(from: number, s: Signed, body: Uint8Array, now: number): Promise<AuthFailure | null> {
    const mac = fromHex(s.mac)
    if (mac === null) return "Malformed"
    const ok = await crypto.subtle.verify("HMAC", this.key, mac, material(this.cluster, from, this.to, s, body))
    if (!ok) return "BadMac"
    if (Math.abs(now - s.time) > this.skewMs) return "Stale"
    return this.remember(from, s) ? null : "Replayed"
  }

  /** Records (boot, counter); false if it was seen, or is too old for the window. */
  private remember(from: number, s: Signed): boolean {
    let e = this.seen.get(from)
    if (e === undefined || (e.boot !== s.boot && s.time > e.bootTime)) {
      // A sender that restarted has a new boot id; an older boot's envelopes are then refused.
      e = { boot: s.boot, bootTime: s.time, highest: 0, recent: new Set() }
      this.seen.set(from, e)
    } else if (e.boot !== s.boot) return false
    if (s.counter <= e.highest - REPLAY_WINDOW || e.recent.has(s.counter)) return false
    e.recent.add(s.counter)
    if (s.counter > e.highest) e.highest = s.counter
    if (e.recent.size > 2 * REPLAY_WINDOW) {
      for (const c of e.recent) if (c <= e.highest - REPLAY_WINDOW) e.recent.delete(c)
    }
    return true
  }
}
