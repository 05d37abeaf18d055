/**
 * The node's HTTP front: one `Bun.serve` for the client API and the peers.
 *
 * Three paths carry all the load, and they are served here by plain handlers, without an Effect
 * fiber per request (docs/PERFORMANCE.md measured two thirds of the leader's CPU in the fiber
 * runtime around each request when the Effect router served them):
 *   - POST /append with a Content-Length body (every client sends one),
 *   - GET /list,
 *   - GET /peer/ws, the peers' WebSocket connections (native Bun server WebSockets).
 * Every other request (/status, /health, /metrics, POST /peer/envelope, 404 and 405, an /append
 * with a chunked body) goes to the Effect HttpRouter app of http.ts, which also implements
 * /append and /list in full. Both paths share the same checks, limits, counters and errors:
 *   - the client token (401), the cap on client requests in flight (503 at once),
 *   - the body's size (413, on its Content-Length), the bytes of bodies being read at once (503),
 *     the time the body may take (408), UTF-8 and JSON and the wire schema (400),
 *   - a client that goes away while its request waits is counted as client-gone, and its waiter
 *     is dropped (its command may still be applied).
 */
import { Either } from "effect"
import { decodeFrame, UPGRADE_BODY, type AuthFailure } from "../auth/peer-auth.ts"
import { APPEND_EXAMPLE, decodeAppend, parseJson } from "./body.ts"
import { BadRequest, errorBody, InternalError, PayloadTooLarge, RequestTimeout, Unavailable, type ApiError } from "./errors.ts"
import {
  acceptHelloFor,
  authFailed,
  authHeaders,
  clientAuthError,
  countAppendError,
  countClientGone,
  receiveEnvelope,
  takeClientSlot,
  truncateUtf8,
  wantList,
  type ApiDeps
} from "./http.ts"
import type { Done } from "./node.ts"
import { CLOSE_REPLACED, PEER_WS_PATH, type InboundConnection } from "./peer.ts"

const JSON_HEADERS = { "content-type": "application/json" } as const
/** Answered to a request whose client went away (nobody reads it). */
const GONE = 499
const utf8 = new TextDecoder("utf-8", { fatal: true })

export interface FrontOptions {
  readonly port: number
  readonly hostname: string
  readonly idleTimeout: number
  readonly maxRequestBodySize: number
}

/** One inbound peer connection: what the WebSocket handlers need. */
class PeerConnection implements InboundConnection {
  ws: Bun.ServerWebSocket<PeerConnection> | null = null
  closed = false
  private closing: { code: number; reason: string } | null = null
  onFrame: (data: string | Buffer) => void = () => undefined

  constructor(
    readonly d: ApiDeps,
    readonly from: number
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

/** How often requests in flight are looked at: one timer for all of them, not one each. */
const WATCH_EVERY_MS = 50
/** A request that waits this long for the node gets an abort listener, so a client that went away is noticed. */
const WATCH_ABORT_AFTER_MS = 50

/**
 * The deadlines of requests in flight, kept without a timer or an AbortSignal per request (each
 * is garbage the collector must reclaim, and its pauses stop every request at once: see
 * docs/PERFORMANCE.md). A body still unread after the body timeout is answered 408; a request
 * that waits for the node longer than WATCH_ABORT_AFTER_MS starts listening for its client going
 * away. Requests are kept in the order they came, and all have the same timeouts, so a sweep stops
 * at the first that is still in time.
 */
class Watch {
  private readonly bodies = new Map<number, { readonly since: number; readonly timeout: () => void }>()
  private readonly waits = new Map<number, { readonly since: number; readonly slow: () => void }>()
  private next = 1
  private readonly timer: ReturnType<typeof setInterval>

  constructor(private readonly bodyTimeoutMs: number) {
    this.timer = setInterval(() => this.sweep(Date.now()), WATCH_EVERY_MS)
    this.timer.unref?.()
  }

  /** A body being read: `timeout` runs if it is still unread after the body timeout. Returns its id for `done`. */
  body(timeout: () => void): number {
    const id = this.next++
    this.bodies.set(id, { since: Date.now(), timeout })
    return id
  }

  /** A request waiting for the node: `slow` runs once if it is still waiting after WATCH_ABORT_AFTER_MS. */
  wait(slow: () => void): number {
    const id = this.next++
    this.waits.set(id, { since: Date.now(), slow })
    return id
  }

  done(id: number): void {
    if (!this.bodies.delete(id)) this.waits.delete(id)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private sweep(now: number): void {
    const bodyDeadline = now - this.bodyTimeoutMs
    for (const [id, b] of this.bodies) {
      if (b.since > bodyDeadline) break
      this.bodies.delete(id)
      b.timeout()
    }
    const waitDeadline = now - WATCH_ABORT_AFTER_MS
    for (const [id, w] of this.waits) {
      if (w.since > waitDeadline) break
      this.waits.delete(id)
      w.slow()
    }
  }
}

/** The server and what else serving needs stopped. */
export interface Front {
  readonly server: Bun.Server<PeerConnection>
  stop(): void
}

/** Serves the node until `stop`; throws when it cannot listen. */
export function serveFront(o: FrontOptions, d: ApiDeps, cold: (req: Request) => Promise<Response>): Front {
  const watch = new Watch(d.http.clientBodies.timeoutMs)
  try {
    const server = listen(o, d, cold, watch)
    return {
      server,
      stop: () => {
        watch.stop()
        void server.stop()
      }
    }
  } catch (e) {
    watch.stop()
    throw e
  }
}

function listen(o: FrontOptions, d: ApiDeps, cold: (req: Request) => Promise<Response>, watch: Watch): Bun.Server<PeerConnection> {
  return Bun.serve<PeerConnection>({
    port: o.port,
    hostname: o.hostname,
    idleTimeout: o.idleTimeout,
    maxRequestBodySize: o.maxRequestBodySize,
    fetch(req, server) {
      const url = req.url
      const start = url.indexOf("/", url.indexOf("//") + 2)
      const q = url.indexOf("?", start)
      const path = q === -1 ? url.slice(start) : url.slice(start, q)
      const method = req.method
      if (path === "/append" && method === "POST") {
        const length = contentLength(req)
        if (length !== null) return append(d, watch, req, url, length)
      } else if (path === "/list" && method === "GET") return list(d, watch, req)
      else if (path === PEER_WS_PATH && method === "GET") return upgrade(d, req, url, server)
      return cold(req)
    },
    websocket: {
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
    },
    error(e) {
      d.log.limited("internal-error", 5_000, "internal-error", { error: e instanceof Error ? e.message : String(e) })
      return errorResponse(new InternalError({ message: "internal error" }))
    }
  })
}

/** The Content-Length, when it is a plain number the fast path can take (else the Effect app reads the body). */
function contentLength(req: Request): number | null {
  const text = req.headers.get("content-length")
  if (text === null || text.length > 12 || !/^\d+$/.test(text)) return null
  return Number(text)
}

const OK_INIT = { headers: JSON_HEADERS } as const
const okResponse = (body: string): Response => new Response(body, OK_INIT)

function errorResponse(e: ApiError): Response {
  const b = errorBody(e)
  return new Response(b.json, { status: b.status, headers: { ...JSON_HEADERS, ...b.headers } })
}

/**
 * Waits for the node's answer to the request `submit` makes. A client that goes away meanwhile is
 * counted as client-gone and its waiter dropped (noticed once the request has waited
 * WATCH_ABORT_AFTER_MS: most are answered sooner and never need an AbortSignal).
 */
function awaitNode(d: ApiDeps, watch: Watch, req: Request, submit: (done: Done) => number): Promise<Response> {
  return new Promise<Response>((resolve) => {
    let id = 0
    const rid = submit((body, error) => {
      if (id !== 0) watch.done(id)
      resolve(error === null ? okResponse(body as string) : errorResponse(error))
    })
    if (rid === 0) return
    id = watch.wait(() => {
      const onAbort = () => {
        if (!d.node.abandon(rid)) return
        countClientGone(d)
        resolve(new Response(null, { status: GONE }))
      }
      const signal = req.signal
      if (signal.aborted) onAbort()
      else signal.addEventListener("abort", onAbort, { once: true })
    })
  })
}

type BodyResult = { readonly text: string } | ApiError | "gone"

/**
 * The body of `declared` bytes as UTF-8 text, within the body budget and the client body timeout.
 * Bun reads exactly Content-Length bytes.
 */
async function readBody(d: ApiDeps, watch: Watch, req: Request, declared: number): Promise<BodyResult> {
  const { maxBytes, budget, timeoutMs } = d.http.clientBodies
  if (declared > maxBytes) return new PayloadTooLarge({ message: `body of ${declared} bytes is over the limit of ${maxBytes} bytes` })
  if (!budget.take(declared)) {
    return new Unavailable({ message: `the node is reading ${budget.max} bytes of request bodies already; not applied, try again later`, reason: "Overloaded" })
  }
  let id = 0
  try {
    const bytes = await new Promise<Uint8Array | "timeout" | "gone">((resolve) => {
      id = watch.body(() => resolve("timeout"))
      req.bytes().then(resolve, () => resolve("gone"))
    })
    if (bytes === "timeout") return new RequestTimeout({ message: `the body did not arrive within ${timeoutMs} ms of the headers; not applied` })
    if (bytes === "gone") return "gone"
    try {
      return { text: utf8.decode(bytes) }
    } catch {
      return new BadRequest({ message: "body is not valid UTF-8" })
    }
  } finally {
    watch.done(id)
    budget.give(declared)
  }
}

/** POST /append with a Content-Length body. */
async function append(d: ApiDeps, watch: Watch, req: Request, url: string, declared: number): Promise<Response> {
  const refused = takeClientSlot(d)
  if (refused !== null) return errorResponse(refused)
  try {
    const r = await appendIn(d, watch, req, url, declared)
    if (r instanceof Response) return r
    countAppendError(d, r)
    return errorResponse(r)
  } finally {
    d.http.clientRequests -= 1
  }
}

async function appendIn(d: ApiDeps, watch: Watch, req: Request, url: string, declared: number): Promise<Response | ApiError> {
  const denied = clientAuthError(d, req, undefined)
  if (denied !== null) return denied
  const list = wantList(url)
  if (Either.isLeft(list)) return list.left
  const body = await readBody(d, watch, req, declared)
  if (body === "gone") {
    countClientGone(d)
    return new Response(null, { status: GONE })
  }
  if (!("text" in body)) return body
  const json = parseJson(body.text, APPEND_EXAMPLE)
  if (Either.isLeft(json)) return json.left
  const a = decodeAppend(json.right)
  if (Either.isLeft(a)) return a.left
  const { value, client, seq } = a.right
  return awaitNode(d, watch, req, (done) => d.node.appendWith(value, client, seq, list.right, done))
}

/** GET /list. */
async function list(d: ApiDeps, watch: Watch, req: Request): Promise<Response> {
  const refused = takeClientSlot(d)
  if (refused !== null) return errorResponse(refused)
  try {
    const denied = clientAuthError(d, req, undefined)
    if (denied !== null) return errorResponse(denied)
    return await awaitNode(d, watch, req, (done) => d.node.readWith(done))
  } finally {
    d.http.clientRequests -= 1
  }
}

/**
 * GET /peer/ws: a peer's connection. Its cluster and sender are checked before upgrading (400),
 * and with a secret its authentication (401); a newer connection from the same peer replaces an
 * older one. Then each text frame is an envelope (with a secret: `v1 ...` header line, then the
 * envelope); a bad one closes the connection with 1008 and the reason.
 */
async function upgrade(d: ApiDeps, req: Request, url: string, server: Bun.Server<PeerConnection>): Promise<Response | undefined> {
  const hello = acceptHelloFor(d, url)
  if (Either.isLeft(hello)) return errorResponse(hello.left)
  const from = hello.right
  const auth = d.peerAuth
  if (auth !== null) {
    const h = authHeaders(d, (k) => req.headers.get(k), from)
    if (typeof h === "string") return errorResponse(authFailed(d, h, "upgrade", from, undefined))
    const bad = auth.verifier.verify(from, h.signed, UPGRADE_BODY, Date.now())
    if (bad !== null) return errorResponse(authFailed(d, bad, "upgrade", from, undefined))
  }
  const conn = new PeerConnection(d, from)
  conn.onFrame = frameHandler(d, conn)
  if (!server.upgrade(req, { data: conn })) return errorResponse(new BadRequest({ message: `${PEER_WS_PATH} needs a WebSocket upgrade` }))
  d.http.inbound.adopt(from, conn)
  return undefined
}

const frameDecoder = new TextDecoder()

/** What to do with each frame of a connection: verify it (with a secret), then hand it to the node. */
function frameHandler(d: ApiDeps, conn: PeerConnection): (data: string | Buffer) => void {
  const from = conn.from
  const deliver = (text: string): void => {
    if (conn.closed) return
    const r = receiveEnvelope(d, text, from)
    if (Either.isLeft(r)) conn.close(1008, r.left.message)
  }
  const auth = d.peerAuth
  if (auth === null) return (data) => deliver(typeof data === "string" ? data : frameDecoder.decode(data))
  // Verified as it comes (the MAC is synchronous), so frames reach the node in the order they came.
  return (data) => {
    if (conn.closed) return
    const frame = decodeFrame(typeof data === "string" ? data : frameDecoder.decode(data))
    const bad: AuthFailure | null = typeof frame === "string" ? frame : auth.verifier.verify(from, frame.signed, frame.body, Date.now())
    if (bad !== null || typeof frame === "string") return conn.close(1008, authFailed(d, bad ?? "Malformed", "frame", from, undefined).message)
    deliver(frame.body)
  }
}
