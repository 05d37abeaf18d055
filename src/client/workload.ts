/**
 * Concurrent clients that append unique values (and read) through the HTTP API and record a
 * Jepsen history of what they saw. Used by the demo and the node tests.
 *
 * Each worker is one Jepsen process with its own client id and increasing seq (exactly-once);
 * it sends each op once and records ok / fail / info. After an info its process id is retired.
 * A worker whose node cannot be reached moves on to the next node.
 */
import { randomBytes } from "node:crypto"
import { append, readList, type Outcome } from "./http.ts"
import { appendTxn, History, readTxn } from "./history.ts"

export interface WorkloadOptions {
  /** Node names (`host:port`); worker k talks to nodes[k % nodes.length], or to `pick(k)` when given. */
  readonly nodes: readonly string[]
  readonly pick?: (worker: number, op: number) => string
  readonly workers: number
  /** The next value to append, or null when there is nothing left to do. */
  readonly next: () => number | null
  readonly history: History
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
      let outcome: Outcome<unknown>
      if (o.readRatio !== undefined && Math.random() < o.readRatio) {
        outcome = await readOnce(o.history, proc, node, o.timeoutMs)
      } else {
        const value = o.next()
        if (value === null) break
        seq += 1
        outcome = await appendOnce(o.history, proc, node, { value, client, seq }, o.timeoutMs, o.list ?? true)
        if (outcome.type === "ok") {
          res.acked.push(value)
          res.replies.push(outcome.value as WorkloadResult["replies"][number])
        }
      }
      res[outcome.type] += 1
      if (outcome.type === "info") proc += o.workers
      if (outcome.type !== "ok" && outcome.status === null) {
        // The node is unreachable: go to the next one, after a short pause.
        shift += 1
        await Bun.sleep(20)
      }
    }
  }
  await Promise.all(Array.from({ length: o.workers }, (_, k) => run(k)))
  return res
}

/** One append, recorded as invoke + completion. */
export async function appendOnce(
  h: History,
  proc: number,
  node: string,
  body: { value: number; client: string; seq: number },
  timeoutMs: number,
  list = true
): Promise<Outcome<unknown>> {
  h.invoke(proc, appendTxn(body.value))
  const r = await append(node, body, { timeoutMs, list })
  if (r.type === "ok") h.complete(proc, "ok", list ? appendTxn(body.value, r.value.list ?? []) : [["append", 0, body.value]])
  else h.complete(proc, r.type, appendTxn(body.value))
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
