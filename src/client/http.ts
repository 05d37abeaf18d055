/**
 * A small client of the node's HTTP API, used by `paxos client`, the demo and the tests.
 * Every call returns an Outcome in Jepsen's terms instead of throwing:
 *   ok   - 200;
 *   fail - definitely not applied: the connection was refused or the name did not resolve (the
 *          request never left), 4xx, 503, or an error body with `definite: true`;
 *   info - may have been applied: a timeout after sending, a reset connection, 504, anything else.
 * Reads have no side effects, so callers may treat a read's info as a fail.
 */

export type Outcome<T> =
  | { readonly type: "ok"; readonly value: T }
  | { readonly type: "fail" | "info"; readonly status: number | null; readonly error: string; readonly message: string }

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

/** `http://host:port` of a node name `host:port`. */
export const baseUrl = (node: string): string => (node.startsWith("http") ? node : `http://${node}`)

/** Errors raised before the request could leave this machine: the node cannot have seen it. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ConnectionRefused", "EHOSTUNREACH", "ENETUNREACH"])

async function request(node: string, path: string, init: RequestInit, timeoutMs: number): Promise<Outcome<unknown>> {
  let res: Response
  let text: string
  try {
    res = await fetch(`${baseUrl(node)}${path}`, { ...init, signal: AbortSignal.timeout(Math.max(1, Math.round(timeoutMs))) })
    text = await res.text()
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string }
    if (err.code !== undefined && NEVER_SENT.has(err.code)) {
      return { type: "fail", status: null, error: err.code, message: `cannot connect to ${node} (${err.code})` }
    }
    if (err.name === "TimeoutError" || err.name === "AbortError") {
      return { type: "info", status: null, error: "Timeout", message: `no answer from ${node} within ${timeoutMs} ms` }
    }
    return { type: "info", status: null, error: err.code ?? err.name ?? "Error", message: err.message ?? String(e) }
  }
  let body: unknown
  try {
    body = text.length === 0 ? null : JSON.parse(text)
  } catch {
    body = null
  }
  if (res.status === 200) return { type: "ok", value: body }
  const b = (body ?? {}) as { error?: unknown; message?: unknown; definite?: unknown }
  const error = typeof b.error === "string" ? b.error : `HTTP${res.status}`
  const message = typeof b.message === "string" ? b.message : text.slice(0, 200)
  const definite = typeof b.definite === "boolean" ? b.definite : (res.status >= 400 && res.status < 500) || res.status === 503
  return { type: definite ? "fail" : "info", status: res.status, error, message }
}

/** The Authorization header of a client token (none without one). */
const bearer = (token: string | undefined): Record<string, string> => (token === undefined ? {} : { authorization: `Bearer ${token}` })

/** POST /append; `token` is the node's client token, when it has one. */
export async function append(node: string, body: AppendBody, opts: { timeoutMs: number; list?: boolean; token?: string }): Promise<Outcome<Appended>> {
  const path = opts.list === false ? "/append?list=false" : "/append"
  const init = { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...bearer(opts.token) } }
  return (await request(node, path, init, opts.timeoutMs)) as Outcome<Appended>
}

/** GET /list (a linearizable read). */
export async function readList(node: string, timeoutMs: number, token?: string): Promise<Outcome<number[]>> {
  const r = await request(node, "/list", { method: "GET", headers: bearer(token) }, timeoutMs)
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
  const r = await request(node, "/status", { method: "GET" }, timeoutMs)
  return r.type === "ok" ? (r.value as NodeStatus) : null
}

/** Whether GET /health answers 200 in time. */
export async function healthy(node: string, timeoutMs: number): Promise<boolean> {
  const r = await request(node, "/health", { method: "GET" }, timeoutMs)
  return r.type === "ok"
}
