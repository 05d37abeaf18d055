/**
 * Real 3-node clusters of the binary on loopback: concurrent clients through all nodes, the leader
 * SIGKILLed mid-load and restarted, a follower killed and restarted, another follower kept down
 * until the others compacted past it and caught up by snapshot. Every history must pass the exact
 * checker. (A follower whose data dir is wiped must not come back as itself: test/node/identity.test.ts.)
 */
import { afterAll, expect, test } from "bun:test"
import { checkOps } from "../../src/check/checker.ts"
import { History } from "../../src/client/history.ts"
import { appendOnce, runWorkload, type WorkloadResult } from "../../src/client/workload.ts"
import { cleanup, convergedLists, startCluster, statuses, sumCounter, waitFor } from "./support.ts"

afterAll(cleanup)

/** Values 1, 2, 3, ... up to `limit`, each handed out once. */
function values(limit: number, from = 1): () => number | null {
  let next = from
  return () => (next <= limit ? next++ : null)
}

function expectValid(history: History): void {
  const r = checkOps(history.ops)
  if (!r.valid) console.error(r.errors.slice(0, 3))
  expect(r.valid).toBe(true)
}

/** Every acknowledged reply's list ends with its value, at its index. */
function expectRepliesEndWithValue(res: WorkloadResult): void {
  for (const r of res.replies) {
    expect(r.list?.at(-1)).toBe(r.value)
    expect(r.list?.length).toBe(r.index + 1)
  }
}

test("concurrent clients append through all three nodes; the history is linearizable", async () => {
  const { cluster } = await startCluster()
  const history = new History()
  const res = await runWorkload({ nodes: cluster.names, workers: 12, history, timeoutMs: 8_000, next: values(600), readRatio: 0.1 })
  expect(res.fail + res.info).toBe(0)
  expect(res.acked.length).toBe(600)
  expectRepliesEndWithValue(res)
  const lists = await convergedLists(cluster)
  expect(new Set(lists[0]).size).toBe(600)
  expectValid(history)
  const sts = await statuses(cluster)
  // Group commit: far fewer fsyncs than appends.
  console.log(`600 appends + reads through 3 nodes: ${sumCounter(sts, "fsyncs")} fsyncs in all, ${sumCounter(sts, "batches")} batches`)
}, 60_000)

test("the leader is SIGKILLed mid-load and restarted: no acknowledged append is lost", async () => {
  const { cluster, leader } = await startCluster()
  const history = new History()
  let stop = false
  const load = runWorkload({ nodes: cluster.names, workers: 9, history, timeoutMs: 8_000, next: values(1_000_000), stop: () => stop })
  await Bun.sleep(800)
  const killedAt = performance.now()
  await cluster.kill(leader)
  const next = await cluster.waitLeader(10_000, [leader])
  const electedMs = performance.now() - killedAt
  // Serving: an append through the new leader succeeds.
  let servedMs = -1
  for (let i = 1, proc = 1_000; performance.now() - killedAt < 10_000; i++) {
    const body = { value: 10_000_000 + i, client: "probe", seq: i }
    const r = await appendOnce(history, proc, cluster.names[next] as string, body, 2_000)
    if (r.type === "info") proc += 1
    if (r.type === "ok") {
      servedMs = performance.now() - killedAt
      break
    }
  }
  console.log(`leader SIGKILLed: new leader ${cluster.names[next]} elected after ${electedMs.toFixed(0)} ms, serving after ${servedMs.toFixed(0)} ms`)
  expect(servedMs).toBeGreaterThan(0)
  expect(servedMs).toBeLessThan(5_000)
  cluster.start(leader)
  await cluster.waitHealthy(leader)
  await Bun.sleep(2_000)
  stop = true
  const res = await load
  expectRepliesEndWithValue(res)
  const lists = await convergedLists(cluster)
  const final = new Set(lists[0])
  const lost = res.acked.filter((v) => !final.has(v))
  expect(lost).toEqual([])
  expect(res.ok).toBeGreaterThan(30)
  expectValid(history)
  console.log(`leader kill: ${res.ok} ok, ${res.fail} fail, ${res.info} info; final list ${lists[0]?.length}`)
}, 90_000)

test("a follower is SIGKILLed and restarted with its data; another is kept down until the others compacted past it, and catches up by snapshot", async () => {
  const { cluster, leader } = await startCluster(3, ["--snapshot-every", "50"])
  const [f1, f2] = [0, 1, 2].filter((i) => i !== leader) as [number, number]
  const history = new History()
  let stop = false
  const load = runWorkload({ nodes: cluster.names, workers: 9, history, timeoutMs: 8_000, next: values(1_000_000), stop: () => stop })
  await Bun.sleep(600)
  await cluster.kill(f1)
  await Bun.sleep(600)
  cluster.start(f1)
  await cluster.waitHealthy(f1)
  await Bun.sleep(600)
  await cluster.kill(f2)
  const applied = (await statuses(cluster)).reduce((top, s) => Math.max(top, s?.applied ?? 0), 0)
  // Down until both others have snapshotted past every slot it may have applied: the slots it lacks are compacted away everywhere.
  await waitFor("the others to compact past the stopped follower", async () => {
    const sts = await statuses(cluster)
    return [leader, f1].every((i) => (sts[i]?.snapshot ?? 0) > applied)
  }, 20_000)
  cluster.start(f2)
  await cluster.waitHealthy(f2)
  await Bun.sleep(1_500)
  stop = true
  const res = await load
  expectRepliesEndWithValue(res)
  const lists = await convergedLists(cluster)
  expect(lists[0]?.length).toBeGreaterThan(100)
  const sts = await statuses(cluster)
  expect(sts[f2]?.counters.snapshotsInstalled).toBeGreaterThanOrEqual(1)
  const final = new Set(lists[0])
  expect(res.acked.filter((v) => !final.has(v))).toEqual([])
  expectValid(history)
  console.log(`follower kill + long stop: ${res.ok} ok, ${res.fail} fail, ${res.info} info; final list ${lists[0]?.length}; the long-stopped node installed ${sts[f2]?.counters.snapshotsInstalled} snapshot(s)`)
}, 90_000)
