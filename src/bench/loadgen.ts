/**
 * The closed-loop load generator: `concurrency` connections, each with exactly one request in
 * flight; when its answer arrives the next request leaves at once. A warm-up (answers not
 * recorded), then a measured window (by time, or until `maxOps` answers), then the in-flight
 * requests are drained and every connection is closed.
 *
 * Two HTTP clients, chosen with `client`:
 *  - "raw": HTTP/1.1 keep-alive written directly on a TCP socket (Bun.connect), a minimal response
 *    parser (Content-Length or chunked; bodies of 200 answers are counted, not kept). This is the
 *    default: it costs the bench process a fraction of what fetch costs (see docs/PERFORMANCE.md).
 *  - "fetch": Bun's fetch with its keep-alive pool, one loop per connection.
 *
 * Bounded in count and time: the window ends after `durationMs` (or `maxOps`), a request slower
 * than `timeoutMs` is counted as an error and its connection replaced, and the drain at the end
 * waits at most `timeoutMs`. Only the endpoints given are contacted (the callers pass loopback).
 */
import type { Socket } from "bun"
import { Samples } from "./stats.ts"

export interface Endpoint {
  readonly host: string
  readonly port: number
}

/** What each request is: method, path (with query) and the body of request number `seq`. */
export interface Workload {
  readonly method: "POST" | "GET"
  readonly path: string
  readonly contentType: string
  /** Extra request headers (e.g. Authorization for a cluster with a client token). */
  readonly headers?: Readonly<Record<string, string>>
  body(seq: number): string
}

export type ClientKind = "raw" | "fetch"

export interface LoadOptions {
  /** Connection k talks to endpoints[k % endpoints.length]. */
  readonly endpoints: readonly Endpoint[]
  readonly concurrency: number
  readonly workload: Workload
  readonly client: ClientKind
  readonly warmupMs: number
  /** Length of the measured window; Infinity with maxOps. */
  readonly durationMs: number
  /** End the window after this many successful answers. */
  readonly maxOps?: number
  /** A request unanswered this long is an error ("timeout") and its connection is replaced. */
  readonly timeoutMs: number
  /** Called when the measured window starts (e.g. to read server counters); awaited before the window's clock starts. */
  readonly onWindowStart?: () => Promise<void>
  /** Called the moment the measured window ends (not awaited by the load; awaited before runLoad returns). */
  readonly onWindowEnd?: () => Promise<void>
  /** Called every `progressEvery` successful measured answers with their count so far. */
  readonly progressEvery?: number
  readonly onProgress?: (ops: number, elapsedMs: number, latencies: Samples) => void
  /** Called every `countEvery` successful measured answers with their count and the errors so far (a progress line). */
  readonly countEvery?: number
  readonly onCount?: (ops: number, errors: number) => void
}

export interface LoadResult {
  /** Successful answers (200) in the measured window. */
  readonly ops: number
  /** Failed requests in the window: non-200 answers, timeouts, broken connections. */
  readonly errors: number
  readonly errorKinds: Record<string, number>
  readonly elapsedMs: number
  /** Latencies of the successful answers in the window, in completion order. */
  readonly latencies: Samples
  /** Response bytes received in the window (headers and bodies). */
  readonly bytesReceived: number
}

const ERROR_BODY_MAX = 2_048

/** Shared by all connections of one load run. */
class Driver {
  measuring = false
  stopping = false
  windowStart = 0
  ops = 0
  errors = 0
  bytes = 0
  readonly errorKinds: Record<string, number> = {}
  readonly latencies = new Samples(1 << 16)
  seq = 0
  /** The workload's extra headers as HTTP/1.1 lines (the raw client's). */
  readonly extraHeaders: string
  private endWindow: (() => void) | null = null

  constructor(readonly o: LoadOptions) {
    this.extraHeaders = Object.entries(o.workload.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")
  }

  /** The answer to one request: `ms` after it left; kind null for success. */
  done(ms: number, kind: string | null, bytes: number): void {
    if (!this.measuring) return
    this.bytes += bytes
    if (kind !== null) {
      this.errors += 1
      this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1
      return
    }
    this.ops += 1
    this.latencies.add(ms)
    const every = this.o.progressEvery
    if (every !== undefined && this.ops % every === 0) this.o.onProgress?.(this.ops, performance.now() - this.windowStart, this.latencies)
    const countEvery = this.o.countEvery
    if (countEvery !== undefined && this.ops % countEvery === 0) this.o.onCount?.(this.ops, this.errors)
    if (this.o.maxOps !== undefined && this.ops >= this.o.maxOps) this.finishWindow()
  }

  /** Resolves when the window ends (time or maxOps). */
  window(): Promise<void> {
    return new Promise((resolve) => {
      this.endWindow = resolve
      if (Number.isFinite(this.o.durationMs)) setTimeout(() => this.finishWindow(), this.o.durationMs)
    })
  }

  /** What onWindowEnd returned, once the window has ended. */
  windowEnded: Promise<void> = Promise.resolve()

  finishWindow(): void {
    if (!this.measuring) return
    this.measuring = false
    if (this.o.onWindowEnd !== undefined) this.windowEnded = this.o.onWindowEnd()
    this.stopping = true
    const end = this.endWindow
    this.endWindow = null
    end?.()
  }
}

interface Conn {
  /** Starts the connection's loop; resolves once it is idle after `stopping`. */
  start(): void
  readonly idle: Promise<void>
  /** Time the in-flight request left (performance.now()), or -1. */
  readonly inflightSince: number
  /** Abandons the in-flight request (timeout): counts it and replaces the connection. */
  abandon(): void
  close(): void
}

const errorKind = (status: number, body: string): string => {
  try {
    const j = JSON.parse(body) as { error?: unknown }
    if (typeof j.error === "string" && j.error.length < 40 && /^[A-Za-z]+$/.test(j.error)) return `HTTP${status}:${j.error}`
  } catch {
    // not JSON: the status alone
  }
  return `HTTP${status}`
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over Bun.connect

const CRLFCRLF = Buffer.from("\r\n\r\n")

class RawConn implements Conn {
  private socket: Socket<RawConn> | null = null
  private connecting = false
  /** Bytes of the current response not yet parsed (header part, or a chunked body). */
  private pending: Buffer | null = null
  private headersDone = false
  private status = 0
  /** Body bytes still expected (Content-Length), or -1 for chunked, -2 for read-until-close. */
  private remaining = 0
  private errorBody = ""
  private responseBytes = 0
  private closeAfter = false
  private unsent: string | null = null
  inflightSince = -1
  private resolveIdle: () => void = () => {}
  readonly idle: Promise<void>

  constructor(
    private readonly d: Driver,
    private readonly ep: Endpoint
  ) {
    this.idle = new Promise((r) => (this.resolveIdle = r))
  }

  start(): void {
    this.next()
  }

  private next(): void {
    if (this.d.stopping) {
      this.resolveIdle()
      return
    }
    if (this.socket === null) {
      this.connect()
      return
    }
    const w = this.d.o.workload
    const body = w.body(this.d.seq++)
    const req =
      `${w.method} ${w.path} HTTP/1.1\r\nHost: ${this.ep.host}:${this.ep.port}\r\n${this.d.extraHeaders}` +
      (w.method === "POST" ? `Content-Type: ${w.contentType}\r\nContent-Length: ${body.length}\r\n\r\n${body}` : "\r\n")
    this.headersDone = false
    this.pending = null
    this.responseBytes = 0
    this.errorBody = ""
    this.closeAfter = false
    this.inflightSince = performance.now()
    const n = this.socket.write(req)
    this.unsent = n < req.length ? req.slice(Math.max(0, n)) : null
  }

  private connect(): void {
    if (this.connecting) return
    this.connecting = true
    Bun.connect<RawConn>({
      hostname: this.ep.host,
      port: this.ep.port,
      data: this,
      socket: RAW_HANDLERS
    }).then(
      (s) => {
        this.connecting = false
        s.setNoDelay(true)
        this.socket = s
        this.next()
      },
      () => {
        this.connecting = false
        this.d.done(0, "connect", 0)
        // The node may be restarting: try again shortly, bounded by the run's own end.
        setTimeout(() => this.next(), 50)
      }
    )
  }

  onDrain(): void {
    if (this.unsent === null || this.socket === null) return
    const rest = this.unsent
    const n = this.socket.write(rest)
    this.unsent = n < rest.length ? rest.slice(Math.max(0, n)) : null
  }

  onClose(): void {
    const was = this.socket
    this.socket = null
    if (was === null) return
    if (this.inflightSince >= 0) {
      if (this.remaining === -2 && this.headersDone) {
        this.complete() // a body delimited by the close
        return
      }
      this.fail("closed")
    }
  }

  abandon(): void {
    if (this.inflightSince < 0) return
    const s = this.socket
    this.socket = null
    s?.terminate()
    this.fail("timeout")
  }

  close(): void {
    const s = this.socket
    this.socket = null
    s?.end()
  }

  private fail(kind: string): void {
    const ms = performance.now() - this.inflightSince
    this.inflightSince = -1
    this.d.done(ms, kind, this.responseBytes)
    setTimeout(() => this.next(), 10)
  }

  private complete(): void {
    const ms = performance.now() - this.inflightSince
    this.inflightSince = -1
    this.d.done(ms, this.status === 200 ? null : errorKind(this.status, this.errorBody), this.responseBytes)
    if (this.closeAfter) {
      const s = this.socket
      this.socket = null
      s?.end()
    }
    this.next()
  }

  onData(chunk: Buffer): void {
    if (this.inflightSince < 0) return // nothing asked: ignore (a late answer after a timeout)
    this.responseBytes += chunk.length
    if (!this.headersDone) {
      const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
      const end = buf.indexOf(CRLFCRLF)
      if (end === -1) {
        this.pending = buf
        return
      }
      this.pending = null
      this.headersDone = true
      const head = buf.toString("latin1", 0, end)
      this.status = Number(head.slice(9, 12))
      const lower = head.toLowerCase()
      this.closeAfter = lower.includes("\r\nconnection: close")
      const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower)
      const body = buf.subarray(end + 4)
      if (cl !== null) this.remaining = Number(cl[1])
      else if (lower.includes("\r\ntransfer-encoding: chunked")) this.remaining = -1
      else if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) this.remaining = 0
      else this.remaining = -2
      this.onBody(body)
      return
    }
    this.onBody(chunk)
  }

  private onBody(body: Buffer): void {
    if (this.status !== 200 && this.errorBody.length < ERROR_BODY_MAX) this.errorBody += body.toString("utf8", 0, Math.min(body.length, ERROR_BODY_MAX))
    if (this.remaining >= 0) {
      this.remaining -= body.length
      if (this.remaining <= 0) this.complete()
      return
    }
    if (this.remaining === -2) return // until the connection closes
    // chunked: keep the unparsed part and walk the chunk sizes
    let buf = this.pending === null ? body : Buffer.concat([this.pending, body])
    for (;;) {
      const eol = buf.indexOf("\r\n")
      if (eol === -1) break
      const size = parseInt(buf.toString("latin1", 0, eol), 16)
      if (!Number.isFinite(size)) {
        this.pending = null
        this.closeAfter = true
        this.fail("bad-chunk")
        return
      }
      if (size === 0) {
        // the last chunk; no trailers expected: "0\r\n\r\n"
        if (buf.length < eol + 4) break
        this.pending = null
        this.complete()
        return
      }
      if (buf.length < eol + 2 + size + 2) break
      buf = buf.subarray(eol + 2 + size + 2)
    }
    this.pending = buf
  }
}

const RAW_HANDLERS = {
  data(s: Socket<RawConn>, chunk: Buffer) {
    s.data.onData(chunk)
  },
  drain(s: Socket<RawConn>) {
    s.data.onDrain()
  },
  close(s: Socket<RawConn>) {
    s.data.onClose()
  },
  error(s: Socket<RawConn>) {
    s.data.onClose()
  },
  connectError() {
    // the promise of Bun.connect rejects: handled there
  }
}

// ---------------------------------------------------------------------------------------------
// fetch

class FetchConn implements Conn {
  inflightSince = -1
  private abort: AbortController | null = null
  private resolveIdle: () => void = () => {}
  readonly idle: Promise<void>
  private readonly url: string

  constructor(
    private readonly d: Driver,
    ep: Endpoint
  ) {
    this.idle = new Promise((r) => (this.resolveIdle = r))
    this.url = `http://${ep.host}:${ep.port}${d.o.workload.path}`
  }

  start(): void {
    void this.loop()
  }

  private async loop(): Promise<void> {
    const w = this.d.o.workload
    const headers = { ...w.headers, "content-type": w.contentType }
    while (!this.d.stopping) {
      const body = w.method === "POST" ? w.body(this.d.seq++) : undefined
      const abort = new AbortController()
      this.abort = abort
      this.inflightSince = performance.now()
      let kind: string | null
      let bytes = 0
      try {
        const res = await fetch(this.url, { method: w.method, body, headers, signal: abort.signal, keepalive: true })
        if (res.status === 200) {
          bytes = (await res.arrayBuffer()).byteLength
          kind = null
        } else {
          const text = await res.text()
          bytes = text.length
          kind = errorKind(res.status, text)
        }
      } catch (e) {
        kind = abort.signal.aborted ? "timeout" : ((e as { code?: string }).code ?? "fetch-error")
      }
      const ms = performance.now() - this.inflightSince
      this.inflightSince = -1
      this.abort = null
      this.d.done(ms, kind, bytes)
      if (kind !== null && kind !== "timeout" && !kind.startsWith("HTTP")) await Bun.sleep(10)
    }
    this.resolveIdle()
  }

  abandon(): void {
    this.abort?.abort()
  }

  close(): void {
    // fetch's pool keeps the sockets; nothing to do
  }
}

// ---------------------------------------------------------------------------------------------

/** Runs one closed-loop load: warm-up, window, drain. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (o.endpoints.length === 0) throw new Error("runLoad: no endpoints")
  if (!(o.concurrency >= 1)) throw new Error("runLoad: concurrency must be at least 1")
  const d = new Driver(o)
  const conns: Conn[] = []
  for (let k = 0; k < o.concurrency; k++) {
    const ep = o.endpoints[k % o.endpoints.length] as Endpoint
    conns.push(o.client === "raw" ? new RawConn(d, ep) : new FetchConn(d, ep))
  }
  const watchdog = setInterval(() => {
    const now = performance.now()
    for (const c of conns) if (c.inflightSince >= 0 && now - c.inflightSince > o.timeoutMs) c.abandon()
  }, Math.min(100, Math.max(10, o.timeoutMs / 10)))
  try {
    for (const c of conns) c.start()
    await Bun.sleep(o.warmupMs)
    await o.onWindowStart?.()
    d.measuring = true
    d.windowStart = performance.now()
    await d.window()
    const elapsedMs = performance.now() - d.windowStart
    // Drain: wait for the in-flight requests (bounded by the timeout watchdog), then close.
    const drained = Promise.all(conns.map((c) => c.idle))
    await Promise.race([drained, Bun.sleep(o.timeoutMs + 1_000)])
    await d.windowEnded
    return { ops: d.ops, errors: d.errors, errorKinds: d.errorKinds, elapsedMs, latencies: d.latencies, bytesReceived: d.bytes }
  } finally {
    clearInterval(watchdog)
    d.stopping = true
    for (const c of conns) c.close()
  }
}
