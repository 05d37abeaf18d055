/**
 * Every endpoint of a node, in one table, and the router that serves it.
 *
 * Each row names the method, the path, who may call it, whether it is a hot path, and its
 * handler, which is the endpoint's one implementation (parsing, limits, errors, answer):
 *   - hot: the paths that carry the load, served by plain functions without an Effect fiber per
 *     request (a fiber per request cost two thirds of the leader's CPU at 32 clients);
 *   - cold: everything else, Effect programs with typed errors (their cost does not show at their
 *     rates, and a program reads as the steps it takes).
 * "client" rows need the client token when the node has one (401) and take a slot of the cap on
 * client requests in flight (503 at once past it); "peer" rows authenticate the sending node
 * themselves (with a cluster secret); "open" rows are for anyone who reaches the port.
 * HEAD is served wherever GET is. Any other method on a known path gets 405 with Allow, any other
 * path 404.
 */
import { Cause, Chunk, Effect, Either } from "effect"
import { append, list } from "./client-api.ts"
import { InternalError, MethodNotAllowed, NotFound, type ApiError } from "./errors.ts"
import { answerIdentity, IDENTITY_PATH } from "./bootstrap.ts"
import { clientAuthError, countClientError, countClientGone, errorResponse, pathOf, takeClientSlot, type Answer, type ApiDeps, type Call } from "./http.ts"
import { getHealth, getMetrics, getReady, getStatus } from "./info-api.ts"
import { getMembers, postAdd, postJoin, postPromote, postRemove } from "./members-api.ts"
import { postEnvelope, upgrade } from "./peer-api.ts"
import { PEER_PATH, PEER_WS_PATH } from "./peer.ts"
import type { Watch } from "./watch.ts"

type Who = "client" | "peer" | "open"
type Method = "GET" | "POST"

interface HotRoute {
  readonly method: Method
  readonly path: string
  readonly who: Who
  readonly hot: true
  readonly handler: (c: Call) => Answer | Promise<Answer>
}

interface ColdRoute {
  readonly method: Method
  readonly path: string
  readonly who: Who
  readonly hot: false
  readonly handler: (c: Call) => Effect.Effect<Response, ApiError>
}

export type Route = HotRoute | ColdRoute

/** The node's HTTP API. The client API is documented in the README, the peers' in docs/PROTOCOL.md. */
export const ROUTES: readonly Route[] = [
  { method: "POST", path: "/append", who: "client", hot: true, handler: append },
  { method: "GET", path: "/list", who: "client", hot: true, handler: list },
  { method: "GET", path: "/members", who: "client", hot: false, handler: getMembers },
  { method: "POST", path: "/members/add", who: "client", hot: false, handler: postAdd },
  { method: "POST", path: "/members/remove", who: "client", hot: false, handler: postRemove },
  { method: "POST", path: "/members/promote", who: "client", hot: false, handler: postPromote },
  { method: "POST", path: "/members/join", who: "client", hot: false, handler: postJoin },
  { method: "GET", path: PEER_WS_PATH, who: "peer", hot: true, handler: upgrade },
  { method: "POST", path: PEER_PATH, who: "peer", hot: false, handler: postEnvelope },
  { method: "GET", path: IDENTITY_PATH, who: "peer", hot: false, handler: (c) => answerIdentity(c.d, c.req, c.url, () => c.server.requestIP(c.req)?.address) },
  { method: "GET", path: "/status", who: "open", hot: false, handler: getStatus },
  { method: "GET", path: "/health", who: "open", hot: false, handler: getHealth },
  { method: "GET", path: "/ready", who: "open", hot: false, handler: getReady },
  { method: "GET", path: "/metrics", who: "open", hot: false, handler: getMetrics }
]

/** Bun.serve's `fetch`: the route of each request, and its answer (undefined once upgraded to a WebSocket). */
export type Router = (req: Request, server: Bun.Server<unknown>) => Response | undefined | Promise<Response | undefined>

/** The router of `routes` for one node. */
export function makeRouter(d: ApiDeps, watch: Watch, routes: readonly Route[] = ROUTES): Router {
  const byPath = new Map<string, Map<string, Route>>()
  for (const r of routes) {
    const methods = byPath.get(r.path) ?? new Map<string, Route>()
    if (methods.has(r.method)) throw new Error(`route ${r.method} ${r.path} is listed twice`)
    byPath.set(r.path, methods.set(r.method, r))
  }
  // HEAD is GET without the body (Bun leaves the body out), as HTTP asks of every GET resource.
  for (const methods of byPath.values()) {
    const get = methods.get("GET")
    if (get !== undefined && !methods.has("HEAD")) methods.set("HEAD", get)
  }
  const paths = [...byPath.keys()].join(", ")
  return (req, server) => {
    const url = req.url
    const path = pathOf(url)
    const methods = byPath.get(path)
    const route = methods?.get(req.method)
    if (route === undefined) {
      if (methods === undefined) return errorResponse(new NotFound({ message: `no such path: ${path.slice(0, 200)} (paths: ${paths})` }))
      const allow = [...methods.keys()]
      return errorResponse(new MethodNotAllowed({ message: `${req.method} is not allowed on ${path}; use ${allow.join(" or ")}`, allow }))
    }
    const c: Call = { d, req, url, server, watch }
    if (route.who === "client") return serveClient(route, c)
    const a = run(route, c)
    return a instanceof Promise ? a.then(respond) : respond(a)
  }
}

/** A client route: the cap on requests in flight, the client token, then the handler; its errors counted by kind. */
async function serveClient(route: Route, c: Call): Promise<Response | undefined> {
  const { d } = c
  const refused = takeClientSlot(d)
  if (refused !== null) return errorResponse(refused)
  try {
    const denied = clientAuthError(d, c.req, () => c.server.requestIP(c.req)?.address)
    const a = denied ?? (await run(route, c))
    if (a === undefined || a instanceof Response) return a
    countClientError(d, a)
    return errorResponse(a)
  } finally {
    d.http.clientRequests -= 1
  }
}

const respond = (a: Answer): Response | undefined => (a === undefined || a instanceof Response ? a : errorResponse(a))

/** Runs a route's handler: a hot one as it is, a cold one as an Effect program whose defects become a 500. */
function run(route: Route, c: Call): Answer | Promise<Answer> {
  if (route.hot) return route.handler(c)
  return Effect.runPromise(
    route.handler(c).pipe(
      Effect.either,
      Effect.map((e): Answer => (Either.isLeft(e) ? e.left : e.right)),
      Effect.catchAllCause((cause) => Effect.succeed(internal(c.d, cause)))
    )
  )
}

/**
 * A defect while handling a request: logged, answered 500 (outcome unknown). A program that was
 * only interrupted has nobody to answer: it is counted as client-gone.
 */
function internal(d: ApiDeps, cause: Cause.Cause<unknown>): Response {
  if (Cause.isInterruptedOnly(cause) || (Chunk.isEmpty(Cause.failures(cause)) && Chunk.isEmpty(Cause.defects(cause)))) return countClientGone(d)
  const line = Cause.pretty(cause).split("\n")[0] ?? "unknown"
  d.log.limited("internal-error", 5_000, "internal-error", { error: line })
  return errorResponse(new InternalError({ message: `internal error: ${line}` }))
}
