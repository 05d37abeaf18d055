/**
 * `paxos status` and `paxos list` on a real cluster: the table names every node, the one leader
 * and that all are ready, and -o json says the same for scripts; a stopped node is listed as
 * unreachable with exit 1; `list` prints the list (or its tail) through whichever node answers,
 * and exits 1 naming the nodes when none does.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { append } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, startCluster } from "./support.ts"

let cluster: LocalCluster

beforeAll(async () => {
  ;({ cluster } = await startCluster())
  await cluster.waitAllReady()
  for (const v of [11, 12, 13]) expect((await append(cluster.names[0] as string, { value: v }, { timeoutMs: 5_000 })).type).toBe("ok")
}, 30_000)

afterAll(cleanup)

async function paxos(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([ensureBinary(), ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { code: await p.exited, out, err }
}

interface Row {
  node: string
  reachable: boolean
  role?: string
  leader?: string | null
  applied?: number
  lag?: number
  epoch?: number
  ready?: boolean
}

test("status: a table of every node with the leader, and the same as JSON", async () => {
  const table = await paxos(["status", "--config", cluster.configFile])
  expect(table.code).toBe(0)
  const lines = table.out.trim().split("\n")
  expect(lines[0]).toMatch(/^NODE\s+ROLE\s+LEADER\s+BALLOT\s+COMMITTED\s+APPLIED\s+SNAPSHOT\s+LAG\s+EPOCH\s+READY$/)
  expect(lines).toHaveLength(4)
  for (const name of cluster.names) expect(lines.some((l) => l.startsWith(name))).toBe(true)
  expect(lines.filter((l) => /\sleader\s/.test(l))).toHaveLength(1)
  const json = await paxos(["status", "--config", cluster.configFile, "-o", "json"])
  expect(json.code).toBe(0)
  const rows = JSON.parse(json.out) as Row[]
  expect(rows.map((r) => r.node)).toEqual(cluster.names)
  expect(rows.filter((r) => r.role === "leader")).toHaveLength(1)
  const leader = rows.find((r) => r.role === "leader")?.node
  for (const r of rows) {
    expect(r.reachable).toBe(true)
    expect(r.leader).toBe(leader as string)
    expect(r.ready).toBe(true)
    expect(r.applied).toBeGreaterThanOrEqual(1)
    expect(r.epoch).toBe(0)
  }
})

test("list: the whole list, or its tail, as JSON", async () => {
  const all = await paxos(["list", "--config", cluster.configFile])
  expect(all.code).toBe(0)
  expect((JSON.parse(all.out) as number[]).slice(-3)).toEqual([11, 12, 13])
  const tail = await paxos(["list", "--config", cluster.configFile, "--tail", "2"])
  expect(JSON.parse(tail.out)).toEqual([12, 13])
  expect((await paxos(["list", "--config", cluster.configFile, "--tail", "0"])).code).toBe(2)
})

test("a stopped node is listed as unreachable (exit 1); list reads through another; with none up, exit 1 naming them", async () => {
  await cluster.kill(2)
  const r = await paxos(["status", "--config", cluster.configFile, "-o", "json"])
  expect(r.code).toBe(1)
  const rows = JSON.parse(r.out) as Row[]
  expect(rows.find((x) => x.node === cluster.names[2])?.reachable).toBe(false)
  expect((await paxos(["list", "--config", cluster.configFile, "--tail", "1"])).out.trim()).toBe("[13]")
  await cluster.kill(0)
  await cluster.kill(1)
  const none = await paxos(["list", "--config", cluster.configFile, "--timeout", "1500"])
  expect(none.code).toBe(1)
  for (const name of cluster.names) expect(none.err).toContain(name)
}, 30_000)
