/**
 * The client API's hot paths, POST /append and GET /list: plain handlers, without an Effect fiber
 * per request (a fiber per request cost two thirds of the leader's CPU at 32 clients when an
 * Effect router served them). The router (routes.ts) has already checked the client token and
 * taken a slot of the cap on client requests in flight; these add the rest:
 *   - the `list` query parameter (400),
 *   - the client's own deadline, header x-paxos-timeout-ms (400 when it is not a whole number of
 *     milliseconds from 1 to TIMEOUT_HEADER_MAX_MS): the node answers before it, a definite 503
 *     when the request was not proposed by then (see Node.expireForClients),
 *   - the body: its size (413), the bytes of bodies being read at once (503), the time it may take
 *     (408), UTF-8 and JSON and the wire schema (400), with a Content-Length or chunked alike,
 *   - a client that goes away while its request waits is counted as client-gone, and its waiter
 *     is dropped (its command may still be applied).
 */
import { Either } from "effect"
import { APPEND_EXAMPLE, CLIENT_GONE, decodeAppend, parseJson, readBody } from "./body.ts"
import { BadRequest } from "./errors.ts"
import { countClientGone, errorResponse, okJson, type Answer, type ApiDeps, type Call } from "./http.ts"
import type { Done } from "./node.ts"
import type { Watch } from "./watch.ts"

/** A request that waits this long for the node starts listening for its client going away. */
export const WATCH_ABORT_AFTER_MS = 50

/** The header in which a client says how long it waits for this answer, in milliseconds. */
export const TIMEOUT_HEADER = "x-paxos-timeout-ms"
/** The largest value of TIMEOUT_HEADER (an hour); the node's own deadline is far shorter anyway. */
export const TIMEOUT_HEADER_MAX_MS = 3_600_000

/** POST /append `{"value":5[,"client":"c1","seq":9]}` -> 200 `{"value","index","list"}`. */
export async function append(c: Call): Promise<Answer> {
  const { d } = c
  const list = wantList(c.url)
  if (Either.isLeft(list)) return list.left
  const timeoutMs = clientTimeout(c.req)
  if (timeoutMs instanceof BadRequest) return timeoutMs
  const body = await readBody(c.req, d.http.clientBodies, c.watch)
  if (body === CLIENT_GONE) return countClientGone(d)
  if (!("text" in body)) return body
  const json = parseJson(body.text, APPEND_EXAMPLE)
  if (Either.isLeft(json)) return json.left
  const a = decodeAppend(json.right)
  if (Either.isLeft(a)) return a.left
  const { value, client, seq } = a.right
  return awaitNode(d, c.watch, c.req, (done) => d.node.appendWith(value, client, seq, list.right, done, timeoutMs))
}

/** GET /list -> 200 `{"list":[...]}`: a linearizable read through the log. */
export function list(c: Call): Answer | Promise<Answer> {
  const timeoutMs = clientTimeout(c.req)
  if (timeoutMs instanceof BadRequest) return timeoutMs
  return awaitNode(c.d, c.watch, c.req, (done) => c.d.node.readWith(done, timeoutMs))
}

/** The client's TIMEOUT_HEADER: undefined without one, a BadRequest naming it when it is not valid. */
export function clientTimeout(req: Request): number | undefined | BadRequest {
  const v = req.headers.get(TIMEOUT_HEADER)
  if (v === null) return undefined
  const ms = /^\d{1,7}$/.test(v) ? Number(v) : 0
  if (ms >= 1 && ms <= TIMEOUT_HEADER_MAX_MS) return ms
  return new BadRequest({ message: `header ${TIMEOUT_HEADER} must be a whole number of milliseconds from 1 to ${TIMEOUT_HEADER_MAX_MS}, got ${JSON.stringify(v.slice(0, 40))}` })
}

const LIST_YES = Either.right(true)
const LIST_NO = Either.right(false)

/** `?list=false` (or 0/no) leaves the list out; `true`, `1`, `yes` or absent keeps it. */
export function wantList(url: string): Either.Either<boolean, BadRequest> {
  const q = url.indexOf("?")
  if (q === -1) return LIST_YES
  // The query clients send, answered without a URLSearchParams (a native object per request).
  const query = url.slice(q + 1)
  if (query === "list=false") return LIST_NO
  if (query === "list=true") return LIST_YES
  const v = new URLSearchParams(query).get("list")
  if (v === null) return LIST_YES
  if (["false", "0", "no"].includes(v.toLowerCase())) return LIST_NO
  if (["true", "1", "yes", ""].includes(v.toLowerCase())) return LIST_YES
  return Either.left(new BadRequest({ message: `query parameter "list" must be true or false, got ${JSON.stringify(v)}` }))
}

/**
 * Waits for the node's answer to the request `submit` makes. A client that goes away meanwhile is
 * counted as client-gone and its waiter dropped (noticed once the request has waited
 * WATCH_ABORT_AFTER_MS: most are answered sooner and never need an AbortSignal).
 */
function awaitNode(d: ApiDeps, watch: Watch, req: Request, submit: (done: Done) => number): Promise<Answer> {
  return new Promise<Answer>((resolve) => {
    let id = 0
    const rid = submit((body, error) => {
      watch.cancel(id)
      resolve(error === null ? okJson(body as string) : errorResponse(error))
    })
    if (rid === 0) return
    id = watch.after(WATCH_ABORT_AFTER_MS, () => {
      const onAbort = () => {
        if (d.node.abandon(rid)) resolve(countClientGone(d))
      }
      const signal = req.signal
      if (signal.aborted) onAbort()
      else signal.addEventListener("abort", onAbort, { once: true })
    })
  })
}
