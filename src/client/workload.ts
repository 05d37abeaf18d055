/**
 * Concurrent clients that append unique values (and read) through the HTTP API and record a
 * Jepsen history of what they saw. Used by the demo and the node tests.
 *
 * Each worker is one Jepsen process with its own client id and increasing seq (exactly-once).
 * An append is tried at its worker's node first and then at the others, within the op's timeout
 * (src/client/deadline.ts), and recorded once: ok, fail (every attempt definitely failed) or info.
 * A read is sent once. After an info the worker's process id is retired. A worker whose node
 * cannot be reached moves on to the next node.
 */
import { randomBytes } from "node:crypto"
import { appendWithin, type WithinResult } from "./deadline.ts"
import { append, readList, type Appended, type Outcome } from "./http.ts"
import { appendTxn, History, readTxn } from "./history.ts"

export interface WorkloadOptions {
  /** Node names (`host:port`); worker k talks to nodes[k % nodes.length], or to `pick(k)` when given. */
  readonly nodes: readonly string[]
  readonly pick?: (worker: number, op: number) => string
  readonly workers: number
  /** The next value to append, or null when there is nothing left to do. */
  readonly next: () => number | null
  readonly history: History
  /** The time an op may take (an append's, over all the nodes it tries). */
  readonly timeoutMs: number
  /** Chance that an op is a read instead of an append (0 by default). */
  readonly readRatio?: number
  /** Whether appends ask for the list (default true: the checker uses it). */
  readonly list?: boolean
  readonly stop?: () => boolean
}

export interface WorkloadResult {
  readonly ok: number
  readonly fail: number
  readonly info: number
  /** Values whose append was acknowledged (200). */
  readonly acked: number[]
  /** Replies of acknowledged appends: the list must end with the value. */
  readonly replies: Array<{ value: number; index: number; list?: number[] }>
}

/** Runs the workers until `next` returns null (or `stop` says so); resolves when all are done. */
export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const res = { ok: 0, fail: 0, info: 0, acked: [] as number[], replies: [] as WorkloadResult["replies"] }
  const run = async (k: number) => {
    const client = `w${k}-${randomBytes(4).toString("hex")}`
    let proc = k
    let seq = 0
    let shift = 0
    for (let op = 0; o.stop?.() !== true; op++) {
      const node = o.pick?.(k, op) ?? (o.nodes[(k + shift) % o.nodes.length] as string)
      let type: Outcome<unknown>["type"]
      /** Whether `node` could not be reached, or did not answer. */
      let unreachable: boolean
      if (o.readRatio !== undefined && Math.random() < o.readRatio) {
        const r = await readOnce(o.history, proc, node, o.timeoutMs)
        type = r.type
        unreachable = r.type !== "ok" && r.status === null
      } else {
        const value = o.next()
        if (value === null) break
        seq += 1
        const order = [node, ...o.nodes.filter((n) => n !== node)]
        const r = await appendAnywhere(o.history, proc, order, { value, client, seq }, o.timeoutMs, o.list ?? true)
        type = r.type
        if (r.type === "ok") {
          res.acked.push(value)
          res.replies.push(r.value)
        }
        unreachable = r.tried[0]?.failure?.status === null
      }
      res[type] += 1
      if (type === "info") proc += o.workers
      if (unreachable) {
        // The node is unreachable: go to the next one, after a short pause.
        shift += 1
        await Bun.sleep(20)
      }
    }
  }
  await Promise.all(Array.from({ length: o.workers }, (_, k) => run(k)))
  return res
}

/** One append at `node` only, recorded as invoke + completion. */
export function appendOnce(h: History, proc: number, node: string, body: AppendOp, timeoutMs: number, list = true): Promise<Outcome<Appended>> {
  return recorded(h, proc, body.value, list, () => append(node, body, { timeoutMs, list }))
}

/** One append tried at `nodes` in turn (the first one first) within `timeoutMs`, recorded once. */
export function appendAnywhere(h: History, proc: number, nodes: readonly string[], body: AppendOp, timeoutMs: number, list = true): Promise<WithinResult> {
  return recorded(h, proc, body.value, list, () => appendWithin(nodes, body, { timeoutMs, list }))
}

interface AppendOp {
  readonly value: number
  readonly client: string
  readonly seq: number
}

/** Runs one append (`run`), recorded as invoke + completion. */
async function recorded<R extends { type: "ok"; value: Appended } | { type: "fail" | "info" }>(h: History, proc: number, value: number, list: boolean, run: () => Promise<R>): Promise<R> {
  h.invoke(proc, appendTxn(value))
  const r = await run()
  if (r.type === "ok") h.complete(proc, "ok", list ? appendTxn(value, r.value.list ?? []) : [["append", 0, value]])
  else h.complete(proc, r.type, appendTxn(value))
  return r
}

/** One read, recorded; any failure of a read is a :fail (reads change nothing). */
export async function readOnce(h: History, proc: number, node: string, timeoutMs: number): Promise<Outcome<unknown>> {
  h.invoke(proc, readTxn())
  const r = await readList(node, timeoutMs)
  if (r.type === "ok") {
    h.complete(proc, "ok", readTxn(r.value))
    return r
  }
  h.complete(proc, "fail", readTxn())
  return { ...r, type: "fail" }
}
