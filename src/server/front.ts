/**
 * The node's HTTP front: one `Bun.serve` for the client API and the peers, on one port. Every
 * request goes to the current router: before the node runs, bootstrap.ts's (it answers who the
 * node is, and 503 to the rest); then the router of routes.ts (the table of every endpoint). The
 * peers' WebSocket connections are Bun's server WebSockets (peer-api.ts). One Watch keeps the
 * deadlines of all requests in flight.
 */
import { InternalError } from "./errors.ts"
import { errorResponse } from "./http.ts"
import type { Log } from "./log.ts"
import { peerSocketHandlers, type PeerConnection } from "./peer-api.ts"
import type { Router } from "./routes.ts"
import { Watch } from "./watch.ts"

export interface FrontOptions {
  readonly port: number
  readonly hostname: string
  readonly idleTimeout: number
  readonly maxRequestBodySize: number
}

/** The server and what else serving needs stopped. */
export interface Front {
  readonly server: Bun.Server<PeerConnection>
  /** From now on, requests go to the router `make` returns (given the front's Watch). */
  use(make: (watch: Watch) => Router): void
  stop(): void
}

/** Serves with `first`'s router until `use` gives another, and until `stop`; throws when it cannot listen. */
export function serveFront(o: FrontOptions, log: Log, first: (watch: Watch) => Router): Front {
  const watch = new Watch()
  try {
    let route = first(watch)
    const server = Bun.serve<PeerConnection>({
      port: o.port,
      hostname: o.hostname,
      idleTimeout: o.idleTimeout,
      maxRequestBodySize: o.maxRequestBodySize,
      fetch: (req, server) => route(req, server as Bun.Server<unknown>),
      websocket: peerSocketHandlers,
      error(e) {
        log.limited("internal-error", 5_000, "internal-error", { error: e instanceof Error ? e.message : String(e) })
        return errorResponse(new InternalError({ message: "internal error" }))
      }
    })
    return {
      server,
      use: (make) => {
        route = make(watch)
      },
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
