/**
 * Clients with deadlines of their own, on real processes: x-paxos-timeout-ms makes a request that
 * cannot be proposed end with a definite 503 before the client's time is up, and a bad value is a
 * 400 naming the header.
 */
import { afterAll, expect, test } from "bun:test"
import { cleanup, startCluster } from "./support.ts"

afterAll(cleanup)

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
