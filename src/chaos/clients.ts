/**
 * The chaos run's clients: `concurrency` Jepsen processes that append unique integers and read
 * the list through the HTTP API of random nodes, each op recorded in the history.
 *
 * Outcomes follow Jepsen's convention (src/client/http.ts classifies the replies): 200 is :ok;
 * connection refused, 4xx and 503 (definite) are :fail; a timeout, a reset connection, 504 or a
 * 500 is :info, and the process that saw it is retired (its next op runs as process P +
 * concurrency). An append is tried at a random node and then at the others in a random order, with
 * the same `client` and `seq`, within `appendAttempts` tries of about `timeoutMs` each
 * (src/client/deadline.ts): the nodes must apply it at most once, and the op is :ok if a try
 * succeeded, :fail only if every try failed definitely, else :info.
 * A read that fails is a :fail (a read changes nothing).
 */
import { randomBytes } from "node:crypto"
import { appendWithin } from "../client/deadline.ts"
import { readList } from "../client/http.ts"
import type { Random } from "../core/prng.ts"
import { appendValue, readValue, type Recorder } from "./recorder.ts"

export type OpKind = "append" | "read" | "final-read"
export type Outcome3 = "ok" | "fail" | "info"

/** One completed op: for latencies, throughput and the plot. */
export interface Sample {
  readonly kind: OpKind
  readonly type: Outcome3
  /** Invocation and completion, nanoseconds since the run began. */
  readonly start: number
  readonly end: number
  readonly node: string
  /** Tries it took (appends). */
  readonly attempts: number
}

export interface ClientOptions {
  /** Node names (`host:port`) the clients talk to. */
  readonly nodes: readonly string[]
  readonly concurrency: number
  /** Ops per second over all clients; null for a closed loop (each client as fast as it can). */
  readonly rate: number | null
  /** A read's timeout, and an append try's (an append may take `appendAttempts` times this in all). */
  readonly timeoutMs: number
  /** Chance that an op is a read. */
  readonly readRatio: number
  readonly appendAttempts: number
  /** Hard bound on the number of ops issued in all. */
  readonly maxOps: number
  readonly rng: Random
  readonly recorder: Recorder
  /** No op is invoked once this returns true (time limit reached, or interrupted). */
  readonly stopped: () => boolean
  /** Told each op's outcome as it completes (the progress line). */
  readonly onOp?: (type: Outcome3) => void
}

export interface ClientResult {
  readonly samples: Sample[]
  /** The next process number no client used (for the final reads). */
  readonly nextProcess: number
  /** Values appended (invoked). */
  readonly invokedAppends: number
}

export async function runClients(o: ClientOptions): Promise<ClientResult> {
  const samples: Sample[] = []
  const runId = randomBytes(3).toString("hex")
  let nextValue = 1
  let issued = 0
  let maxProcess = o.concurrency - 1
  const intervalNs = o.rate === null ? 0 : 1e9 / o.rate
  let nextSlot = o.recorder.now()

  /** Waits for this op's slot when a rate is set. */
  const pace = async () => {
    if (o.rate === null) return
    const now = o.recorder.now()
    nextSlot = Math.max(nextSlot, now - 1e9) // do not build up more than a second of backlog
    const slot = nextSlot
    nextSlot += intervalNs
    if (slot > now) await Bun.sleep((slot - now) / 1e6)
  }

  const worker = async (k: number) => {
    const clientId = `chaos-${runId}-c${k}`
    let proc = k
    let seq = 0
    for (;;) {
      await pace()
      if (o.stopped() || issued >= o.maxOps) break
      issued++
      let type: Outcome3
      if (o.rng.chance(o.readRatio)) {
        type = (await readOp(o, proc, o.rng.pick(o.nodes), "read", samples)).type
      } else {
        seq += 1
        type = await appendOp(o, proc, nextValue++, clientId, seq, samples)
      }
      o.onOp?.(type)
      if (type === "info") {
        proc += o.concurrency
        maxProcess = Math.max(maxProcess, proc)
      }
      // After an error, a short random pause: a client facing a dead node must not spin.
      if (type !== "ok") await Bun.sleep(50 + o.rng.int(0, 100))
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, (_, k) => worker(k)))
  return { samples, nextProcess: maxProcess + 1, invokedAppends: nextValue - 1 }
}

/** One append op, tried with the same (client, seq) at a random node, then at the others. */
async function appendOp(o: ClientOptions, proc: number, value: number, client: string, seq: number, samples: Sample[]): Promise<Outcome3> {
  const start = o.recorder.client("invoke", proc, appendValue(value)).time
  const r = await appendWithin(o.rng.shuffle(o.nodes), { value, client, seq }, { timeoutMs: o.timeoutMs * o.appendAttempts, maxAttempts: o.appendAttempts })
  const op =
    r.type === "ok"
      ? o.recorder.client("ok", proc, appendValue(value, r.value.list ?? []), { node: r.node })
      : o.recorder.client(r.type, proc, appendValue(value), { error: r.last.error, node: r.node })
  samples.push({ kind: "append", type: r.type, start, end: op.time, node: r.node, attempts: r.attempts })
  return r.type
}

/** One read op at `node`: ok, or a :fail whatever went wrong. */
export async function readOp(
  o: Pick<ClientOptions, "recorder" | "timeoutMs">,
  proc: number,
  node: string,
  kind: OpKind,
  samples: Sample[],
): Promise<{ type: Outcome3; list: number[] | null }> {
  const start = o.recorder.client("invoke", proc, readValue()).time
  const r = await readList(node, o.timeoutMs)
  if (r.type === "ok") {
    const op = o.recorder.client("ok", proc, readValue(r.value), { node })
    samples.push({ kind, type: "ok", start, end: op.time, node, attempts: 1 })
    return { type: "ok", list: r.value }
  }
  const op = o.recorder.client("fail", proc, readValue(), { error: r.error, node })
  samples.push({ kind, type: "fail", start, end: op.time, node, attempts: 1 })
  return { type: "fail", list: null }
}
