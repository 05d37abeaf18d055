/**
 * `paxos client` against stuck, dead and quorum-less nodes, as a user runs it: the compiled binary
 * on real processes, nodes paused with SIGSTOP (a paused node still completes TCP handshakes, so
 * only the client's per-attempt deadline gets it past one) or killed.
 *
 *   - a paused first node, or a paused leader: the client moves on and appends, and the value is
 *     in every node's list exactly once after the node resumes;
 *   - nothing running: exit 1 within 2 s, naming every node tried;
 *   - one node of three up: exit 1 with the node's reason (no quorum), with --timeout and without;
 *   - an unknown outcome at one node then definite refusals from the others: exit 3, never 1;
 *   - the node's side: x-paxos-timeout-ms makes a request that cannot be proposed end with a
 *     definite 503 before the client's time is up, and a bad value is a 400 naming the header.
 */
import { afterAll, afterEach, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePorts, type LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, convergedLists, ensureBinary, startCluster, tempDir } from "./support.ts"

afterAll(cleanup)

/** Processes paused by a test, resumed after it whatever happened (a stopped process ignores SIGTERM). */
const paused = new Set<number>()
afterEach(() => {
  for (const pid of paused) resume(pid)
})

function pause(pid: number): void {
  paused.add(pid)
  process.kill(pid, "SIGSTOP")
}

function resume(pid: number): void {
  paused.delete(pid)
  try {
    process.kill(pid, "SIGCONT")
  } catch {
    // already gone
  }
}

const START_SLACK_MS = 1_000

const pidOf = (c: LocalCluster, i: number): number => {
  const pid = c.nodes[i]?.proc?.pid
  if (pid === undefined) throw new Error(`node ${i} is not running`)
  return pid
}

/** A config file for the client naming `names` in this order. */
function clientConfig(names: readonly string[]): string {
  const file = join(tempDir(), "client-config")
  writeFileSync(file, `${names.join("\n")}\n`)
  return file
}

/**
 * Runs `paxos client ARGS`; its exit code, output and how long it took, starting the process
 * included (START_SLACK_MS allows for that on a busy machine).
 */
async function client(args: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = performance.now()
  const proc = Bun.spawn([ensureBinary(), "client", ...args], { stdout: "pipe", stderr: "pipe" })
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000)
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(killer)
  const ms = performance.now() - t0
  console.log(`client ${args.join(" ")}: exit ${code} after ${ms.toFixed(0)} ms${err === "" ? "" : `: ${err.trimEnd()}`}`)
  return { code, out, err, ms }
}

/** How many times `v` occurs in every node's list, once all lists agree. */
async function occurrences(c: LocalCluster, v: number): Promise<number[]> {
  const lists = await convergedLists(c)
  return lists.map((l) => l.filter((x) => x === v).length)
}

/** `client --timeout 3000 V` through the nodes `order` while node `stopped` is paused: it appends V in time. */
async function appendsPast(c: LocalCluster, stopped: number, order: readonly number[], v: number): Promise<void> {
  pause(pidOf(c, stopped))
  const r = await client(["--config", clientConfig(order.map((i) => c.names[i] as string)), "--timeout", "3000", String(v)])
  resume(pidOf(c, stopped))
  expect(r.err).toBe("")
  expect(r.code).toBe(0)
  expect((JSON.parse(r.out) as number[]).at(-1)).toBe(v)
  expect(r.ms).toBeLessThan(3_000 + START_SLACK_MS)
}

test("a paused first node, then a paused leader: client --timeout 3000 appends through the others; the value is applied once", async () => {
  const { cluster, leader } = await startCluster()
  const [follower, other] = [0, 1, 2].filter((i) => i !== leader) as [number, number]
  // The first node of the client's config is paused (a follower: its leader is fine).
  await appendsPast(cluster, follower, [follower, leader, other], 101)
  // The leader is paused: the follower asked first forwards to it (unknown), the leader does not
  // answer, and the third node answers once it has elected a new leader.
  await appendsPast(cluster, leader, [follower, leader, other], 102)
  // After the paused nodes resume and deal with what waited for them, each value is there once.
  await Bun.sleep(1_000)
  const marker = await client(["--config", cluster.configFile, "--timeout", "5000", "103"])
  expect(marker.code).toBe(0)
  for (const v of [101, 102, 103]) expect(await occurrences(cluster, v)).toEqual([1, 1, 1])
}, 60_000)

test("nothing running: exit 1 within 2 s, naming every node tried", async () => {
  const names = (await freePorts(3)).map((p) => `127.0.0.1:${p}`)
  const r = await client(["--config", clientConfig(names), "4"])
  expect(r.code).toBe(1)
  expect(r.ms).toBeLessThan(2_000)
  expect(r.out).toBe("")
  expect(r.err.trimEnd().split("\n")).toHaveLength(1)
  expect(r.err).toStartWith("paxos client: not appended")
  for (const n of names) expect(r.err).toContain(`${n}: connection refused`)
}, 20_000)

test("one node of three up: exit 1 with the node's reason, no quorum, with --timeout 3000 and with the default", async () => {
  const { cluster } = await startCluster()
  await cluster.kill(1)
  await cluster.kill(2)
  // A leader steps down once no quorum has answered it for 900 ms; until then it proposes (and
  // its clients' outcomes are unknown).
  await Bun.sleep(1_500)
  const up = cluster.names[0] as string
  for (const args of [["--timeout", "3000"], []]) {
    const r = await client(["--config", cluster.configFile, ...args, "5"])
    expect(r.code).toBe(1)
    expect(r.err.trimEnd().split("\n")).toHaveLength(1)
    expect(r.err).toStartWith("paxos client: not appended")
    expect(r.err).toMatch(new RegExp(`${up}: 503 no quorum`))
    for (const n of cluster.names.slice(1)) expect(r.err).toContain(`${n}: connection refused`)
    expect(r.ms).toBeLessThan((args.length === 0 ? 10_000 : 3_000) + START_SLACK_MS)
  }
}, 60_000)

test("an unknown outcome at one node, then definite refusals from the others: exit 3, never 1", async () => {
  const { cluster, leader } = await startCluster()
  const [dead, third] = [0, 1, 2].filter((i) => i !== leader) as [number, number]
  await cluster.kill(dead)
  pause(pidOf(cluster, leader))
  // The third node stops following the paused leader (its election timeout is 300 to 600 ms) and
  // campaigns without a quorum: it answers a definite no.
  await Bun.sleep(1_000)
  const names = cluster.names
  const r = await client(["--config", clientConfig([names[leader], names[third], names[dead]] as string[]), "--timeout", "3000", "7"])
  expect(r.code).toBe(3)
  expect(r.err.trimEnd().split("\n")).toHaveLength(1)
  expect(r.err).toStartWith("paxos client: outcome unknown")
  expect(r.err).toContain(`${names[leader]}: no answer within`)
  expect(r.err).toMatch(new RegExp(`${names[third]}: 503 no quorum`))
  expect(r.err).toContain(`${names[dead]}: connection refused`)
  expect(r.ms).toBeLessThan(3_000 + START_SLACK_MS)
}, 60_000)

test("x-paxos-timeout-ms: a request that cannot be proposed gets a definite 503 before the client's time is up; a bad value is a 400 naming it", async () => {
  const { cluster } = await startCluster()
  const node = cluster.names[0] as string
  for (const bad of ["abc", "0", "-5", "1.5", "3600001", ""]) {
    const res = await fetch(`http://${node}/append`, { method: "POST", headers: { "x-paxos-timeout-ms": bad }, body: '{"value":1}' })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toContain("x-paxos-timeout-ms")
  }
  const ok = await fetch(`http://${node}/append`, { method: "POST", headers: { "x-paxos-timeout-ms": "2000" }, body: '{"value":1}' })
  expect(ok.status).toBe(200)
  await cluster.kill(1)
  await cluster.kill(2)
  // Once node 0 knows it has no quorum, an append cannot be proposed: answered 503 (definite)
  // within the client's 1000 ms, long before the node's own deadline of 5 s. Reads too.
  await Bun.sleep(1_500)
  for (const [path, init] of [["/append", { method: "POST", body: '{"value":2}' }], ["/list", { method: "GET" }]] as const) {
    const t0 = performance.now()
    const res = await fetch(`http://${node}${path}`, { ...init, headers: { "x-paxos-timeout-ms": "1000" }, signal: AbortSignal.timeout(3_000) })
    const ms = performance.now() - t0
    const body = (await res.json()) as { definite: boolean; message: string }
    expect(res.status).toBe(503)
    expect(body.definite).toBe(true)
    expect(body.message).toStartWith("no quorum")
    expect(ms).toBeLessThan(1_000)
  }
}, 60_000)
