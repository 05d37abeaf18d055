/**
 * GET /ready on real processes: 200 on every node of a healthy 3-node cluster; 503 with the reason
 * on a node left in a minority by pausing (SIGSTOP) the two others, the leader within about an
 * election timeout; 200 again once they resume (SIGCONT). /status and /metrics say the same.
 */
import { afterAll, expect, test } from "bun:test"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, makeCluster } from "./support.ts"

afterAll(cleanup)

/** The election timeout of a node (electionTicks x 10 ms ticks). */
const ELECTION_TIMEOUT_MS = 300

interface ReadyReply {
  readonly status: number
  readonly body: { status?: string; error?: string; reason?: string; message?: string; node?: string; leader?: string | null; applied?: number; leaderCommit?: number }
}

async function ready(node: string): Promise<ReadyReply> {
  const r = await fetch(`http://${node}/ready`, { signal: AbortSignal.timeout(2_000) })
  return { status: r.status, body: (await r.json()) as ReadyReply["body"] }
}

/** Polls node i's /ready until it is not 200; the first 503 and how long it took. */
async function firstNotReady(c: LocalCluster, i: number, timeoutMs: number): Promise<{ reply: ReadyReply; ms: number }> {
  const name = c.names[i] as string
  const start = performance.now()
  while (performance.now() - start < timeoutMs) {
    const r = await ready(name)
    if (r.status !== 200) return { reply: r, ms: performance.now() - start }
    await Bun.sleep(10)
  }
  throw new Error(`${name} still answered /ready 200 ${timeoutMs} ms after the two others were paused`)
}

const signal = (c: LocalCluster, i: number, sig: "SIGSTOP" | "SIGCONT"): void => {
  const proc = c.nodes[i]?.proc
  if (proc == null) throw new Error(`node ${i} is not running`)
  process.kill(proc.pid, sig)
}

/**
 * Pauses every node but `alone`, returns the first 503 of `alone`'s /ready (which must come
 * within about an election timeout), and resumes the others.
 */
async function leftAlone(c: LocalCluster, alone: number, what: string): Promise<ReadyReply["body"]> {
  const others = [0, 1, 2].filter((i) => i !== alone)
  try {
    for (const i of others) signal(c, i, "SIGSTOP")
    const { reply, ms } = await firstNotReady(c, alone, 5_000)
    console.log(`${what} in a minority: 503 after ${Math.round(ms)} ms: ${reply.body.message}`)
    expect(reply.status).toBe(503)
    expect(ms).toBeLessThan(ELECTION_TIMEOUT_MS * 4)
    await checkStatusAndMetrics(c.names[alone] as string, false)
    return reply.body
  } finally {
    for (const i of others) signal(c, i, "SIGCONT")
  }
}

/** /status's `ready.ok` and the gauge paxos_ready agree with `ok`. */
async function checkStatusAndMetrics(name: string, ok: boolean): Promise<void> {
  const st = (await (await fetch(`http://${name}/status`)).json()) as { ready: { ok: boolean; reason: string | null } }
  expect(st.ready.ok).toBe(ok)
  if (ok) expect(st.ready.reason).toBeNull()
  else expect(["NoLeader", "LeaderWithoutQuorum", "Behind"]).toContain(st.ready.reason as string)
  const metrics = await (await fetch(`http://${name}/metrics`)).text()
  expect(metrics).toContain(`paxos_ready{node="${name}"} ${ok ? 1 : 0}`)
}

/** Every node answers /ready 200, naming `leader`. */
async function allReady(c: LocalCluster, leader: number): Promise<void> {
  for (const name of c.names) {
    const r = await ready(name)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ status: "ready", node: name, leader: c.names[leader] })
    expect(typeof r.body.applied).toBe("number")
    expect(r.body.leaderCommit).toBeLessThanOrEqual(r.body.applied as number)
    await checkStatusAndMetrics(name, true)
  }
}

test("/ready: 200 on every node of a healthy cluster; 503 in a minority (leader, then a follower); 200 after SIGCONT", async () => {
  const c = await makeCluster(3)
  c.startAll()
  await c.waitAllHealthy()
  const leader = await c.waitAllReady()
  await allReady(c, leader)

  // The leader alone. It still leads (check-quorum steps down only after three election
  // timeouts) but must say within about one that it holds no quorum.
  const name = c.names[leader] as string
  const lonely = await leftAlone(c, leader, "leader")
  expect(lonely).toMatchObject({ error: "NotReady", reason: "LeaderWithoutQuorum", node: name, leader: name })
  expect(lonely.message).toContain("quorum")
  const next = await c.waitAllReady(20_000)
  await allReady(c, next)

  // A follower alone: it stops hearing a leader.
  const follower = [0, 1, 2].find((i) => i !== next) as number
  expect(await leftAlone(c, follower, "follower")).toMatchObject({ error: "NotReady", reason: "NoLeader", leader: null })
  await allReady(c, await c.waitAllReady(20_000))
}, 90_000)
