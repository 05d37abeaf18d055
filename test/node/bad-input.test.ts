/**
 * Every bad input gets its documented status and a message naming the problem, and the node keeps
 * serving with its list unchanged: malformed JSON, missing / extra fields, wrong types, floats,
 * unsafe integers, a 10 MB body, an unknown path, a wrong method, and peer envelopes and
 * connections that fail their checks.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { append, readList, status } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, startCluster } from "./support.ts"

let cluster: LocalCluster
let node: string
let before: number[]

beforeAll(async () => {
  ;({ cluster } = await startCluster())
  node = cluster.names[0] as string
  const r = await append(node, { value: 42 }, { timeoutMs: 5_000 })
  expect(r.type).toBe("ok")
  const l = await readList(node, 5_000)
  if (l.type !== "ok") throw new Error("no list")
  before = l.value
}, 30_000)

afterAll(cleanup)

interface Case {
  readonly name: string
  readonly method?: string
  readonly path?: string
  readonly body?: string | Uint8Array
  readonly status: number
  readonly error: string
  /** Every one of these must appear in the message (case-insensitive). */
  readonly mentions: readonly string[]
}

const CASES: Case[] = [
  { name: "malformed JSON", body: '{"value": 5', status: 400, error: "BadRequest", mentions: ["not valid JSON"] },
  { name: "empty body", body: "", status: 400, error: "BadRequest", mentions: ["empty"] },
  { name: "not an object", body: "[5]", status: 400, error: "BadRequest", mentions: ["JSON object", "array"] },
  { name: "missing value", body: "{}", status: 400, error: "BadRequest", mentions: ['missing field "value"'] },
  { name: "extra field", body: '{"value": 5, "colour": "red"}', status: 400, error: "BadRequest", mentions: ['unexpected field "colour"'] },
  { name: "string value", body: '{"value": "5"}', status: 400, error: "BadRequest", mentions: ['field "value"', "safe integer", '"5"'] },
  { name: "null value", body: '{"value": null}', status: 400, error: "BadRequest", mentions: ['field "value"', "null"] },
  { name: "float value", body: '{"value": 1.5}', status: 400, error: "BadRequest", mentions: ['field "value"', "1.5", "not an integer"] },
  { name: "unsafe integer", body: '{"value": 9007199254740993}', status: 400, error: "BadRequest", mentions: ['field "value"', "not a safe integer"] },
  { name: "huge exponent", body: '{"value": 1e400}', status: 400, error: "BadRequest", mentions: ['field "value"'] },
  { name: "client without seq", body: '{"value": 5, "client": "c1"}', status: 400, error: "BadRequest", mentions: ['"seq"', "together"] },
  { name: "seq without client", body: '{"value": 5, "seq": 1}', status: 400, error: "BadRequest", mentions: ['"client"', "together"] },
  { name: "numeric client", body: '{"value": 5, "client": 7, "seq": 1}', status: 400, error: "BadRequest", mentions: ['field "client"', "string"] },
  { name: "empty client", body: '{"value": 5, "client": "", "seq": 1}', status: 400, error: "BadRequest", mentions: ['field "client"'] },
  { name: "negative seq", body: '{"value": 5, "client": "c", "seq": -1}', status: 400, error: "BadRequest", mentions: ['field "seq"', "-1"] },
  { name: "float seq", body: '{"value": 5, "client": "c", "seq": 0.5}', status: 400, error: "BadRequest", mentions: ['field "seq"', "0.5"] },
  { name: "invalid UTF-8", body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), status: 400, error: "BadRequest", mentions: ["UTF-8"] },
  { name: "bad list parameter", path: "/append?list=maybe", body: '{"value": 5}', status: 400, error: "BadRequest", mentions: ['"list"', "maybe"] },
  { name: "10 MB body", body: `{"value": 5, "pad": "${"x".repeat(10 * 1024 * 1024)}"}`, status: 413, error: "PayloadTooLarge", mentions: ["limit"] },
  { name: "unknown path", method: "GET", path: "/nope", status: 404, error: "NotFound", mentions: ["/nope"] },
  { name: "GET /append", method: "GET", path: "/append", status: 405, error: "MethodNotAllowed", mentions: ["GET", "/append", "POST"] },
  { name: "POST /list", method: "POST", path: "/list", body: "{}", status: 405, error: "MethodNotAllowed", mentions: ["/list", "GET"] },
  { name: "DELETE /status", method: "DELETE", path: "/status", status: 405, error: "MethodNotAllowed", mentions: ["/status"] },
  { name: "GET /peer/envelope", method: "GET", path: "/peer/envelope", status: 405, error: "MethodNotAllowed", mentions: ["/peer/envelope"] }
]

async function send(c: Case): Promise<{ status: number; json: { error: string; message: string; definite: boolean } }> {
  const method = c.method ?? "POST"
  const res = await fetch(`http://${node}${c.path ?? "/append"}`, {
    method,
    ...(c.body === undefined ? {} : { body: c.body, headers: { "content-type": "application/json" } })
  })
  return { status: res.status, json: (await res.json()) as { error: string; message: string; definite: boolean } }
}

describe("client API", () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const r = await send(c)
      expect(r.status).toBe(c.status)
      expect(r.json.error).toBe(c.error)
      expect(r.json.definite).toBe(true)
      for (const m of c.mentions) expect(r.json.message.toLowerCase()).toContain(m.toLowerCase())
    })
  }
})

/** A valid envelope for node 0 of this cluster, with `patch` applied. */
async function envelope(patch: Record<string, unknown>): Promise<string> {
  const st = await status(node, 2_000)
  const base = { cluster: st?.cluster, from: 1, to: 0, messages: [{ _tag: "Commit", ballot: { round: 1, leader: 1 }, commit: 0 }] }
  return JSON.stringify({ ...base, ...patch })
}

async function postPeer(body: string): Promise<{ status: number; message: string }> {
  const res = await fetch(`http://${node}/peer/envelope`, { method: "POST", body, headers: { "content-type": "application/json" } })
  const json = (await res.json()) as { message: string }
  return { status: res.status, message: json.message }
}

describe("peer endpoint", () => {
  test("envelopes that fail their schema or checks get 400 naming the problem, and are counted", async () => {
    const rejectedBefore = (await status(node, 2_000))?.counters.peerEnvelopesRejected ?? 0
    const cases: Array<[string, string, string[]]> = [
      ["bad message field", await envelope({ messages: [{ _tag: "Commit", ballot: { round: 1, leader: 1 }, commit: -3 }] }), ["messages[0]", "commit"]],
      ["unknown message tag", await envelope({ messages: [{ _tag: "Steal", value: 1 }] }), ["messages[0]"]],
      ["extra field", await envelope({ sneaky: true }), ["sneaky"]],
      ["another cluster", await envelope({ cluster: "0000000000000000" }), ["cluster"]],
      ["wrong receiver", await envelope({ to: 2 }), ["addressed to node 2"]],
      ["a sender id no member can have", await envelope({ from: 70_000 }), ["from"]],
      ["sender is the receiver", await envelope({ from: 0 }), ["unknown node 0"]],
      ["malformed JSON", "{", ["not valid JSON"]]
    ]
    for (const [name, body, mentions] of cases) {
      const r = await postPeer(body)
      expect({ name, status: r.status }).toEqual({ name, status: 400 })
      for (const m of mentions) expect(r.message).toContain(m)
    }
    const rejectedAfter = (await status(node, 2_000))?.counters.peerEnvelopesRejected ?? 0
    expect(rejectedAfter - rejectedBefore).toBe(cases.length)
  })

  test("a peer connection for another cluster is refused before upgrading", async () => {
    const res = await fetch(`http://${node}/peer/ws?cluster=0000000000000000&from=1`)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toContain("cluster")
  })

  test("a bad frame on a peer connection closes it with 1008 and the reason", async () => {
    // The test connects as a follower (not node 0), stopped meanwhile: its own connection would
    // replace the test's (one per peer). A follower, so that no election runs meanwhile.
    const leader = await cluster.waitLeader()
    const from = leader === 1 ? 2 : 1
    await cluster.kill(from)
    const st = await status(node, 2_000)
    const ws = new WebSocket(`ws://${node}/peer/ws?cluster=${st?.cluster}&from=${from}`)
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve()
      ws.onerror = () => reject(new Error("no connection"))
    })
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (e) => resolve(e)))
    ws.send(JSON.stringify({ cluster: st?.cluster, from, to: 0, messages: [{ _tag: "Accept", ballot: { round: 1.5, leader: from }, entries: [], commit: 0 }] }))
    const ev = await closed
    cluster.start(from)
    await cluster.waitHealthy(from)
    expect(ev.code).toBe(1008)
    expect(ev.reason).toContain("round")
  })
})

test("after all of that the node still serves, with its list unchanged", async () => {
  expect((await fetch(`http://${node}/health`)).status).toBe(200)
  const l = await readList(node, 5_000)
  expect(l.type === "ok" ? l.value : null).toEqual(before)
  const r = await append(node, { value: 43 }, { timeoutMs: 5_000 })
  expect(r.type === "ok" ? r.value.list : null).toEqual([...before, 43])
}, 20_000)
