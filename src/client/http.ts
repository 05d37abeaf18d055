/**
 * A small client of the node's HTTP API, used by `paxos client`, the demo, the chaos run and the
 * tests. Every call returns an Outcome in Jepsen's terms instead of throwing:
 *   ok   - 200;
 *   fail - definitely not applied: no connection was made (refused, unreachable within
 *          CONNECT_TIMEOUT_MS, or the name did not resolve: the request never left), 4xx, 503, or
 *          an error body with `definite: true`;
 *   info - may have been applied: no answer in time once connected, a connection lost after
 *          sending, 504, anything else.
 * Reads have no side effects, so callers may treat a read's info as a fail.
 *
 * It runs on node:http rather than fetch because fetch cannot say whether its connection was ever
 * made: the request is written only once this code has seen the connection open, so a failure
 * before that is certainly "not sent". Appends and reads carry the caller's timeout in the header
 * x-paxos-timeout-ms, so the node gives its definite answer (503) before the caller gives up.
 */
import http from "node:http"
import { TIMEOUT_HEADER, TIMEOUT_HEADER_MAX_MS } from "../server/client-api.ts"

export type Outcome<T> =
  | { readonly type: "ok"; readonly value: T }
  | { readonly type: "fail" | "info"; readonly status: number | null; readonly error: string; readonly message: string }

/** An outcome other than ok. */
export type Failed = Extract<Outcome<unknown>, { type: "fail" | "info" }>

export interface Appended {
  readonly value: number
  readonly index: number
  readonly list?: number[]
}

export interface AppendBody {
  readonly value: number
  readonly client?: string
  readonly seq?: number
}

/** A connection to a node must open within this long: a refused or unreachable node costs little. */
export const CONNECT_TIMEOUT_MS = 300
/** Answers larger than this are cut off (outcome unknown): a list of some 50 million values. */
const ANSWER_BYTES_MAX = 512 * 1024 * 1024
/** Connections kept open per node, at most (busy or idle). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 })

/** `http://host:port` of a node name `host:port`. */
export const baseUrl = (node: string): string => (node.startsWith("http") ? node : `http://${node}`)

interface RequestOptions {
  readonly method: "GET" | "POST"
  readonly body?: string
  readonly headers?: Record<string, string>
  readonly timeoutMs: number
  /** Send the time left (ms) in TIMEOUT_HEADER. */
  readonly sayTimeout?: boolean
}

async function request(node: string, path: string, o: RequestOptions): Promise<Outcome<unknown>> {
  const timeoutMs = Math.max(1, Math.round(o.timeoutMs))
  const connectMs = Math.min(CONNECT_TIMEOUT_MS, timeoutMs)
  const url = new URL(path, baseUrl(node))
  const t0 = performance.now()
  return new Promise<Outcome<unknown>>((resolve) => {
    let connected = false
    let settled = false
    let connectTimer: ReturnType<typeof setTimeout> | undefined
    const settle = (r: Outcome<unknown>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(connectTimer)
      resolve(r)
    }
    const notConnected = (error: string, message: string) => settle({ type: "fail", status: null, error, message })
    const giveUp = () => {
      req.destroy()
      if (connected) settle({ type: "info", status: null, error: "Timeout", message: `no answer within ${timeoutMs} ms` })
      else notConnected("ConnectTimeout", `no connection within ${connectMs} ms`)
    }
    const timer = setTimeout(giveUp, timeoutMs)
    const req = http.request({ host: url.hostname, port: url.port === "" ? 80 : Number(url.port), path: url.pathname + url.search, method: o.method, agent, headers: o.headers })
    // Written only now: before this, nothing of the request has left.
    const send = () => {
      if (settled) return
      connected = true
      clearTimeout(connectTimer)
      if (o.sayTimeout === true) {
        const left = Math.max(1, Math.min(TIMEOUT_HEADER_MAX_MS, Math.round(timeoutMs - (performance.now() - t0))))
        req.setHeader(TIMEOUT_HEADER, String(left))
      }
      req.end(o.body)
    }
    req.on("socket", (socket) => {
      if (!socket.connecting) return send()
      connectTimer = setTimeout(giveUp, connectMs)
      socket.once("connect", send)
    })
    req.on("error", (e: Error & { code?: string }) => {
      if (!connected) return notConnected(e.code ?? e.name, connectError(e))
      settle({ type: "info", status: null, error: e.code ?? e.name, message: `connection lost after sending: ${e.message}` })
    })
    req.on("response", (res) => {
      const chunks: Buffer[] = []
      let bytes = 0
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length
        if (bytes <= ANSWER_BYTES_MAX) return void chunks.push(chunk)
        req.destroy()
        settle({ type: "info", status: res.statusCode ?? null, error: "AnswerTooLarge", message: `answer larger than ${ANSWER_BYTES_MAX} bytes, cut off` })
      })
      res.on("error", (e: Error & { code?: string }) => settle({ type: "info", status: null, error: e.code ?? e.name, message: `answer cut off: ${e.message}` }))
      res.on("end", () => settle(classify(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"))))
    })
  })
}

/** Why no connection was made, in a few words. */
function connectError(e: Error & { code?: string }): string {
  if (e.code === "ECONNREFUSED" || e.code === "ConnectionRefused") return "connection refused"
  if (e.code === "ENOTFOUND" || e.code === "EAI_AGAIN") return `cannot resolve the name (${e.code})`
  return `cannot connect (${e.code ?? e.message})`
}

/** The outcome of an answer with `status` and body `text`. */
function classify(status: number, text: string): Outcome<unknown> {
  let body: unknown
  try {
    body = text.length === 0 ? null : JSON.parse(text)
  } catch {
    body = null
  }
  if (status === 200) return { type: "ok", value: body }
  const b = (body ?? {}) as { error?: unknown; message?: unknown; definite?: unknown }
  const error = typeof b.error === "string" ? b.error : `HTTP${status}`
  const message = typeof b.message === "string" ? b.message : text.slice(0, 200)
  const definite = typeof b.definite === "boolean" ? b.definite : (status >= 400 && status < 500) || status === 503
  return { type: definite ? "fail" : "info", status, error, message }
}

/** The Authorization header of a client token (none without one). */
const bearer = (token: string | undefined): Record<string, string> => (token === undefined ? {} : { authorization: `Bearer ${token}` })

/** POST /append; `token` is the node's client token, when it has one. */
export async function append(node: string, body: AppendBody, opts: { timeoutMs: number; list?: boolean; token?: string }): Promise<Outcome<Appended>> {
  const path = opts.list === false ? "/append?list=false" : "/append"
  const headers = { "content-type": "application/json", ...bearer(opts.token) }
  return (await request(node, path, { method: "POST", body: JSON.stringify(body), headers, timeoutMs: opts.timeoutMs, sayTimeout: true })) as Outcome<Appended>
}

/** GET /list (a linearizable read). */
export async function readList(node: string, timeoutMs: number, token?: string): Promise<Outcome<number[]>> {
  const r = await request(node, "/list", { method: "GET", headers: bearer(token), timeoutMs, sayTimeout: true })
  if (r.type !== "ok") return r
  return { type: "ok", value: (r.value as { list: number[] }).list }
}

/** The fields of GET /status that callers use. */
export interface NodeStatus {
  readonly node: string
  readonly role: "leader" | "follower" | "candidate"
  readonly leader: string | null
  readonly applied: number
  readonly committed: number
  readonly snapshot: number
  readonly listLength: number
  readonly counters: Record<string, number>
  readonly [k: string]: unknown
}

/** GET /status, or null when the node does not answer 200 in time. */
export async function status(node: string, timeoutMs: number): Promise<NodeStatus | null> {
  const r = await request(node, "/status", { method: "GET", timeoutMs })
  return r.type === "ok" ? (r.value as NodeStatus) : null
}

/** Whether GET /health answers 200 in time. */
export async function healthy(node: string, timeoutMs: number): Promise<boolean> {
  const r = await request(node, "/health", { method: "GET", timeoutMs })
  return r.type === "ok"
}

/**
 * POST `body` as JSON to `path` of `node`, saying how long the caller waits (the membership
 * endpoints, a joining node); the outcome as for an append: a 409 is a definite "no".
 */
export async function postJson(node: string, path: string, body: unknown, opts: { timeoutMs: number; token?: string | undefined }): Promise<Outcome<unknown>> {
  const headers = { "content-type": "application/json", ...bearer(opts.token) }
  return request(node, path, { method: "POST", body: JSON.stringify(body), headers, timeoutMs: opts.timeoutMs, sayTimeout: true })
}

/** GET `path` of `node` with the client token, when there is one. */
export async function getJson(node: string, path: string, opts: { timeoutMs: number; token?: string | undefined }): Promise<Outcome<unknown>> {
  return request(node, path, { method: "GET", headers: bearer(opts.token), timeoutMs: opts.timeoutMs })
}
