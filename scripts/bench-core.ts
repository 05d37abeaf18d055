/**
 * Benchmark of the core alone: CPU time of `stepBatch` per append on the leader and on a follower
 * of a 3-node cluster in steady state, with a perfect network (every message delivered at once,
 * each node's messages of a round in one batch) and no disk (writes are dropped: the disk's cost
 * is the shell's). Each round gives the leader `--batch` appends as one batch, then delivers
 * messages until the cluster is quiet, as the server's loop would. Warm-up, then several measured
 * runs; reports medians. Use it to compare two builds of the core side by side; speed is never
 * asserted by a timed test.
 *
 *   bun scripts/bench-core.ts [--runs 5] [--rounds 4000] [--batch 10] [--json FILE]
 */
import { writeFileSync } from "node:fs"
import { median } from "../src/bench/stats.ts"
import { defaultConfig } from "../src/core/config.ts"
import type { Message } from "../src/core/messages.ts"
import { stepBatch } from "../src/core/program.ts"
import { emptyDurable, restore, type Input, type NodeState } from "../src/core/state.ts"

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const runs = arg("--runs", 5)
const rounds = arg("--rounds", 4000)
const batch = arg("--batch", 10)
const jsonIdx = process.argv.indexOf("--json")

const N = 3
const nodes: NodeState[] = Array.from({ length: N }, (_, id) => restore(defaultConfig(id, N), emptyDurable, 1000 + id))
const inbox: Input[][] = nodes.map(() => [])
const micros = new Float64Array(N)
let replies = 0
let rid = 1
let value = 1

function stepNode(id: number, inputs: Input[]): void {
  const t0 = performance.now()
  const r = stepBatch(nodes[id] as NodeState, inputs)
  micros[id] = (micros[id] as number) + (performance.now() - t0) * 1000
  nodes[id] = r.state
  replies += r.output.replies.length
  for (const e of [...r.output.early, ...r.output.send]) (inbox[e.to] as Input[]).push({ _tag: "Receive", from: id, msg: e.msg as Message })
}

/** Delivers messages, one batch per node per pass, until none is left. */
function pump(): void {
  for (let pass = 0; pass < 100; pass++) {
    let any = false
    for (let id = 0; id < N; id++) {
      const inputs = inbox[id] as Input[]
      if (inputs.length === 0) continue
      inbox[id] = []
      any = true
      stepNode(id, inputs)
    }
    if (!any) return
  }
  throw new Error("bench-core: the cluster did not go quiet")
}

// Node 0 campaigns and wins.
for (let t = 0; t < 10_000 && nodes[0]?.role._tag !== "Leader"; t++) {
  stepNode(0, [{ _tag: "Tick" }])
  pump()
}
if (nodes[0]?.role._tag !== "Leader") throw new Error("bench-core: node 0 did not become leader")

function drive(count: number): void {
  for (let r = 0; r < count; r++) {
    const inputs: Input[] = []
    for (let k = 0; k < batch; k++) inputs.push({ _tag: "Append", rid: rid++, value: value++ })
    stepNode(0, inputs)
    pump()
    // A tick now and then, as the server's clock gives: heartbeats, retransmits, expiries.
    if (r % 10 === 0) for (let id = 0; id < N; id++) stepNode(id, [{ _tag: "Tick" }])
    pump()
  }
}

drive(rounds) // warm-up
const leaderUs: number[] = []
const followerUs: number[] = []
for (let i = 0; i < runs; i++) {
  micros.fill(0)
  const before = replies
  drive(rounds)
  const appends = rounds * batch
  if (replies - before < appends) throw new Error(`bench-core: ${replies - before} replies for ${appends} appends`)
  leaderUs.push((micros[0] as number) / appends)
  followerUs.push(((micros[1] as number) + (micros[2] as number)) / 2 / appends)
  console.log(`run ${i + 1}: leader ${leaderUs[i]?.toFixed(2)} us/append, follower ${followerUs[i]?.toFixed(2)} us/append`)
}
const result = { batch, rounds, runs, leaderUsPerAppend: median(leaderUs) as number, followerUsPerAppend: median(followerUs) as number, list: nodes[0]?.list.length }
console.log(`median of ${runs}: leader ${result.leaderUsPerAppend.toFixed(2)} us/append, follower ${result.followerUsPerAppend.toFixed(2)} us/append (batches of ${batch})`)
if (jsonIdx >= 0) writeFileSync(process.argv[jsonIdx + 1] as string, JSON.stringify(result, null, 2) + "\n")
