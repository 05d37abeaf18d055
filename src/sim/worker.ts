/**
 * A worker thread of `paxos sim --jobs N` (pool.ts): runs each seed it is sent, one at a time, and
 * sends back its outcome. It keeps nothing between seeds but the count of seeds it ran before
 * (`before`, which the tests use to find a seed that ran after others in the same worker).
 *
 * `bun run build` lists this file as a second entrypoint of `bun build --compile`: a single-file
 * executable holds a worker's code only when it is given as an entrypoint.
 */
import { runSeed } from "./seed.ts"
import type { SimOptions } from "./world.ts"

declare var self: Worker

let before = 0

self.onmessage = (e: MessageEvent<SimOptions>) => {
  postMessage({ ...runSeed(e.data), before: before++ })
}
