/**
 * Limits and backpressure on a running cluster (docs/SECURITY.md): a node with a small cap on
 * client requests in flight answers 503 (definite) at once past it instead of queueing; a slow
 * body gets 408 and frees its slot; a flood of requests gets only 200s and 503s, never a 500, with
 * the node's memory (RSS) bounded; oversized headers get 431; clients that go away mid-request are
 * counted as client-gone, never logged as internal errors.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { append, readList, status } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { alive, RawConnection, rawRequest, rssBytes } from "./raw-http.ts"
import { cleanup, startCluster, waitFor } from "./support.ts"

const CAP = 32
const BODY_TIMEOUT_MS = 1_500
const HOST = "127.0.0.1"

let cluster: LocalCluster
let leader: number
let node: string
let port: number

beforeAll(async () => {
  ;({ cluster, leader } = await startCluster(3, ["--max-client-requests", String(CAP), "--client-body-timeout", String(BODY_TIMEOUT_MS)]))
  node = cluster.names[leader] as string
  port = cluster.nodes[leader]?.port as number
  expect((await append(node, { value: 1 }, { timeoutMs: 5_000 })).type).toBe("ok")
}, 30_000)

afterAll(cleanup)

const pidOf = (i: number): number => cluster.nodes[i]?.proc?.pid as number
const inFlight = async (): Promise<number> => ((await status(node, 2_000))?.http as { clientRequests: number }).clientRequests
const counter = async (name: string): Promise<number> => (await status(node, 2_000))?.counters[name] ?? -1

/** Opens `n` requests that send their headers and part of their body, then stall. */
async function stalled(n: number): Promise<RawConnection[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = await RawConnection.open(HOST, port)
      c.write(`POST /append HTTP/1.1\r\nHost: ${node}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"value":`)
      return c
    })
  )
}

test("past the cap on requests in flight, requests get 503 (definite) at once; slow bodies get 408 and free their slots", async () => {
  const slow = await stalled(CAP)
  try {
    await waitFor(`${CAP} requests in flight`, async () => (await inFlight()) === CAP)
    const t0 = performance.now()
    const replies = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const res = await fetch(`http://${node}/append`, { method: "POST", body: JSON.stringify({ value: 1000 + i }) })
        return { status: res.status, body: (await res.json()) as { error: string; definite: boolean; reason: string } }
      })
    )
    const ms = performance.now() - t0
    for (const r of replies) expect(r).toEqual({ status: 503, body: expect.objectContaining({ error: "Unavailable", definite: true, reason: "Overloaded" }) })
    expect(ms).toBeLessThan(2_000)
    // Reads of the list count too; /health and /status do not.
    expect((await fetch(`http://${node}/list`)).status).toBe(503)
    expect((await fetch(`http://${node}/health`)).status).toBe(200)
    // The stalled bodies time out: 408 each, and the slots are free again.
    const timedOut = await Promise.all(slow.map((c) => c.reply(BODY_TIMEOUT_MS + 3_000)))
    for (const r of timedOut) expect(r.status).toBe(408)
    expect(timedOut[0]?.text).toContain('"error":"RequestTimeout"')
    await waitFor("no request in flight", async () => (await inFlight()) === 0)
    expect(await counter("requestsSlowBody")).toBeGreaterThanOrEqual(CAP)
    const ok = await append(node, { value: 2 }, { timeoutMs: 5_000 })
    expect(ok.type).toBe("ok")
  } finally {
    for (const c of slow) c.close(true)
  }
}, 30_000)

test("a body trickled byte by byte within the time limit is accepted", async () => {
  const body = JSON.stringify({ value: 3 })
  const c = await RawConnection.open(HOST, port)
  try {
    c.write(`POST /append?list=false HTTP/1.1\r\nHost: ${node}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`)
    const gap = Math.floor(BODY_TIMEOUT_MS / 3 / body.length)
    for (const ch of body) {
      c.write(ch)
      await Bun.sleep(gap)
    }
    const r = await c.reply(5_000)
    expect(r.status).toBe(200)
    expect(r.text).toContain('"value":3')
  } finally {
    c.close(true)
  }
}, 20_000)

test("a flood of appends and reads gets only 200s and 503s; memory stays bounded", async () => {
  const pid = pidOf(leader)
  const rss0 = rssBytes(pid)
  const counts = new Map<number, number>()
  const TOTAL = 3_000
  const CONCURRENCY = 400
  let next = 0
  let value = 100_000
  const t0 = performance.now()
  const worker = async () => {
    while (next < TOTAL) {
      next += 1
      const read = next % 4 === 0
      const res = read
        ? await fetch(`http://${node}/list`)
        : await fetch(`http://${node}/append?list=false`, { method: "POST", body: JSON.stringify({ value: value++ }) })
      await res.arrayBuffer()
      counts.set(res.status, (counts.get(res.status) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const s = (performance.now() - t0) / 1000
  const rss1 = rssBytes(pid)
  const summary = Object.fromEntries(counts)
  console.log(`flood: ${TOTAL} requests in ${s.toFixed(1)} s: ${JSON.stringify(summary)}; leader RSS ${(rss0 / 2 ** 20).toFixed(0)} -> ${(rss1 / 2 ** 20).toFixed(0)} MiB`)
  expect([...counts.keys()].filter((k) => k !== 200 && k !== 503)).toEqual([])
  expect(counts.get(503) ?? 0).toBeGreaterThan(0)
  expect(counts.get(200) ?? 0).toBeGreaterThan(0)
  expect(rss1 - rss0).toBeLessThan(150 * 2 ** 20)
  expect(alive(pid)).toBe(true)
  await waitFor("no request in flight", async () => (await inFlight()) === 0)
}, 60_000)

test("oversized headers get 431 from the server and the node serves on", async () => {
  for (const size of [20 * 1024, 100 * 1024]) {
    const r = await rawRequest(HOST, port, `GET /list HTTP/1.1\r\nHost: ${node}\r\nX-Big: ${"a".repeat(size)}\r\n\r\n`, 5_000)
    expect(r.status === 431 || (r.status === null && r.closed)).toBe(true)
  }
  const many = Array.from({ length: 500 }, (_, i) => `X-H${i}: ${"b".repeat(60)}\r\n`).join("")
  const r = await rawRequest(HOST, port, `GET /list HTTP/1.1\r\nHost: ${node}\r\n${many}\r\n`, 5_000)
  expect(r.status === 431 || (r.status === null && r.closed)).toBe(true)
  expect((await fetch(`http://${node}/health`)).status).toBe(200)
}, 20_000)

test("clients that go away mid-request are counted as client-gone, never logged as internal errors", async () => {
  const gone0 = await counter("clientGone")
  // Connections dropped (closed or reset) while their bodies are being read.
  for (let i = 0; i < 6; i++) {
    const c = await RawConnection.open(HOST, port)
    c.write(`POST /append HTTP/1.1\r\nHost: ${node}\r\nContent-Length: 40\r\n\r\n{"val`)
    await Bun.sleep(30)
    c.close(i % 2 === 0)
  }
  // Requests aborted at the client's timeout while they wait: without a quorum the node cannot
  // answer appends, so they wait until their clients give up.
  const others = [0, 1, 2].filter((i) => i !== leader)
  let aborted = 0
  for (const i of others) await cluster.kill(i)
  try {
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        try {
          await fetch(`http://${node}/append`, { method: "POST", body: JSON.stringify({ value: 5000 + i }), signal: AbortSignal.timeout(200) })
          return false
        } catch {
          return true
        }
      })
    )
    aborted = outcomes.filter(Boolean).length
    await waitFor("the requests that went away to be counted", async () => (await counter("clientGone")) - gone0 >= 6 + aborted)
  } finally {
    for (const i of others) cluster.start(i)
  }
  console.log(`client-gone: 6 dropped connections, ${aborted} of 20 requests aborted by their clients`)
  const log = readFileSync(cluster.nodes[leader]?.logFile as string, "utf8")
  expect(log).not.toContain("internal-error")
  expect(log).toContain("client-gone")
  await cluster.waitAllHealthy()
  const l = await readList(node, 10_000)
  expect(l.type).toBe("ok")
}, 30_000)
