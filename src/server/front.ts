/**
 * The node's HTTP front: one `Bun.serve` for the client API and the peers, on one port. Every
 * request goes to the router of routes.ts (the table of every endpoint); the peers' WebSocket
 * connections are Bun's server WebSockets (peer-api.ts). One Watch keeps the deadlines of all
 * requests in flight.
 */
import { InternalError } from "./errors.ts"
import { errorResponse, type ApiDeps } from "./http.ts"
import { peerSocketHandlers, type PeerConnection } from "./peer-api.ts"
import { makeRouter } from "./routes.ts"
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
  stop(): void
}

/** Serves the node until `stop`; throws when it cannot listen. */
export function serveFront(o: FrontOptions, d: ApiDeps): Front {
  const watch = new Watch()
  try {
    const route = makeRouter(d, watch)
    const server = Bun.serve<PeerConnection>({
      port: o.port,
      hostname: o.hostname,
      idleTimeout: o.idleTimeout,
      maxRequestBodySize: o.maxRequestBodySize,
      fetch: (req, server) => route(req, server as Bun.Server<unknown>),
      websocket: peerSocketHandlers,
      error(e) {
        d.log.limited("internal-error", 5_000, "internal-error", { error: e instanceof Error ? e.message : String(e) })
        return errorResponse(new InternalError({ message: "internal error" }))
      }
    })
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
