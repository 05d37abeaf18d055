/**
 * One append tried at several nodes within one total deadline: what `paxos client`, the demo's
 * workload and the chaos run's clients do with every append (and `paxos member` with a change of
 * membership: `tryWithin`).
 *
 * The nodes are tried in turn, in rounds. Each attempt may take an equal share of the time left
 * among the nodes still to try in its round (at least ATTEMPT_MIN_MS), so a paused or partitioned
 * node, which still completes TCP handshakes but never answers, costs its share and no more; a
 * node that refuses the connection, or does not open it within CONNECT_TIMEOUT_MS (http.ts),
 * costs little.
 * Each attempt tells the node how long it waits (x-paxos-timeout-ms), so a node that cannot
 * propose the append answers a definite no before the attempt ends. Every attempt carries the same
 * client id and seq: a node applies a (client, seq) at most once and answers a retry with the
 * first answer, so trying again elsewhere never appends twice.
 *
 * It stops at the first success; at an answer that says the request itself is wrong (400, 401,
 * 413: no other node will differ); when the time is up; after `maxAttempts`; or, when no node
 * could even be connected to, after UNREACHED_GIVE_UP_MS. Between rounds it pauses (100 ms,
 * doubling, at most 1 s).
 *
 * The result is ok; or fail (definitely not appended) when every attempt failed definitely; or
 * info (unknown) as soon as any attempt may have applied it, whatever the others said: a later
 * definite "no" from one node says nothing of a command another node may still apply.
 */
import { append, type AppendBody, type Appended, type Failed, type Outcome } from "./http.ts"

/** An attempt gets at least this long, when that much is left; none starts with less left. */
export const ATTEMPT_MIN_MS = 250
/** When no node has accepted a connection for this long, nothing is running: give up. */
export const UNREACHED_GIVE_UP_MS = 1_000
/** Attempts of one append, at most (the deadline usually ends them far sooner). */
export const ATTEMPTS_MAX = 100
const PAUSE_FIRST_MS = 100
const PAUSE_MAX_MS = 1_000

/** What came of the attempts at one node. */
export interface Tried {
  readonly node: string
  readonly tries: number
  /** The first unknown outcome there (that is what counts), else the last failure; null once it appended. */
  readonly failure: Failed | null
}

export type WithinResult<T = Appended> =
  | { readonly type: "ok"; readonly value: T; readonly node: string; readonly attempts: number; readonly tried: readonly Tried[] }
  | {
      readonly type: "fail" | "info"
      /** The node said the request itself is wrong (400, 401, 413). */
      readonly badInput: boolean
      /** The answer that ended the tries before the deadline (a status of `final`), or null. */
      readonly stopped: number | null
      readonly node: string
      readonly last: Failed
      readonly attempts: number
      readonly tried: readonly Tried[]
    }

export interface WithinOptions {
  /** The whole time the append may take, in milliseconds. */
  readonly timeoutMs: number
  readonly list?: boolean
  readonly token?: string
  /** Attempts in all, at most (default ATTEMPTS_MAX). */
  readonly maxAttempts?: number
}

/** Statuses that say the request itself is wrong: no other node answers otherwise. */
const BAD_INPUT: readonly number[] = [400, 401, 413]

/** Appends `body` through the first of `nodes` (in this order, round after round) that can, within `o.timeoutMs`. */
export function appendWithin(nodes: readonly string[], body: AppendBody & { client: string; seq: number }, o: WithinOptions): Promise<WithinResult> {
  return tryWithin(nodes, (node, timeoutMs) => append(node, body, { timeoutMs, ...(o.list === undefined ? {} : { list: o.list }), ...(o.token === undefined ? {} : { token: o.token }) }), o)
}

export interface TryOptions {
  /** The whole time the tries may take, in milliseconds. */
  readonly timeoutMs: number
  /** Attempts in all, at most (default ATTEMPTS_MAX). */
  readonly maxAttempts?: number
  /** Statuses besides 400, 401 and 413 that end the tries: an answer no other node would change (default none). */
  readonly final?: readonly number[]
}

/**
 * Makes the request `call` makes at the first of `nodes` (in this order, round after round) that
 * can, within `o.timeoutMs` (see the top of this file). `call` must be safe to repeat: the same
 * request at every node, applied at most once (an append's client and seq; a change of membership
 * the log refuses twice).
 */
export async function tryWithin<T>(nodes: readonly string[], call: (node: string, timeoutMs: number) => Promise<Outcome<T>>, o: TryOptions): Promise<WithinResult<T>> {
  if (nodes.length === 0) throw new Error("tryWithin: no nodes")
  const start = performance.now()
  const deadline = start + o.timeoutMs
  const maxAttempts = Math.max(1, Math.min(o.maxAttempts ?? ATTEMPTS_MAX, ATTEMPTS_MAX))
  const final = [...BAD_INPUT, ...(o.final ?? [])]
  /** No attempt after the first starts with less than this left. */
  const minStart = Math.min(ATTEMPT_MIN_MS, o.timeoutMs)
  const tried = new Map<string, { tries: number; failure: Failed | null }>()
  let attempts = 0
  let unknown = false
  let reached = false
  let last: { node: string; failure: Failed } | null = null
  let pause = PAUSE_FIRST_MS
  const summary = () => [...tried].map(([node, t]) => ({ node, ...t }))
  for (;;) {
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as string
      const left = deadline - performance.now()
      if (attempts > 0 && (left < minStart || attempts >= maxAttempts)) break
      const share = left / Math.min(nodes.length - i, maxAttempts - attempts)
      const timeoutMs = Math.max(1, Math.min(left, Math.max(ATTEMPT_MIN_MS, share)))
      attempts += 1
      const r = await call(node, timeoutMs)
      const t = tried.get(node) ?? { tries: 0, failure: null }
      t.tries += 1
      tried.set(node, t)
      if (r.type === "ok") {
        t.failure = null
        return { type: "ok", value: r.value, node, attempts, tried: summary() }
      }
      if (r.type === "info") unknown = true
      if (t.failure?.type !== "info") t.failure = r
      if (r.status !== null || r.type === "info") reached = true
      last = { node, failure: r }
      if (r.status !== null && final.includes(r.status)) {
        return { type: unknown ? "info" : "fail", badInput: BAD_INPUT.includes(r.status), stopped: r.status, node, last: r, attempts, tried: summary() }
      }
    }
    const elapsed = performance.now() - start
    const wait = pause * (0.8 + Math.random() * 0.4)
    const over =
      attempts >= maxAttempts ||
      deadline - performance.now() - wait < minStart ||
      (!reached && elapsed + wait >= UNREACHED_GIVE_UP_MS)
    if (over) break
    await Bun.sleep(wait)
    pause = Math.min(pause * 2, PAUSE_MAX_MS)
  }
  if (last === null) throw new Error("tryWithin: no attempt was made") // the first is always made
  return { type: unknown ? "info" : "fail", badInput: false, stopped: null, node: last.node, last: last.failure, attempts, tried: summary() }
}

/** One line of what happened at each node tried: `node: what (N tries); ...`. */
export function describeTried(tried: readonly Tried[]): string {
  return tried
    .map((t) => {
      const what = t.failure === null ? "appended" : describe(t.failure)
      return `${t.node}: ${what}${t.tries > 1 ? ` (${t.tries} tries)` : ""}`
    })
    .join("; ")
}

/** A failure in a few words: the status and the node's message, or what went wrong on the way. */
export function describe(f: Failed): string {
  const message = f.message.length > 200 ? `${f.message.slice(0, 200)}...` : f.message
  return f.status === null ? message : `${f.status} ${message}`
}
