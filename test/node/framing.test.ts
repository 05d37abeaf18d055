/**
 * One handler per endpoint: a body sent with a Content-Length and the same body sent chunked
 * (Transfer-Encoding: chunked, no length) get identical answers, status and JSON alike, for every
 * bad input of the bad-input, limits, fuzz and authentication tests: malformed and mistyped
 * bodies, bodies over the limit, slow bodies, missing and wrong client tokens, and peer envelopes
 * that fail their checks or their authentication. Also random bodies (fast-check).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import fc from "fast-check"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { importSecret, newBootId, Signer } from "../../src/auth/peer-auth.ts"
import { append, status } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { RawConnection } from "./raw-http.ts"
import { cleanup, startCluster, tempDir } from "./support.ts"

afterAll(cleanup)

const BODY_TIMEOUT_MS = 1_500
const SECRET = "the framing test's secret, of enough length"
const TOKEN = "framing-test-client-token-0123456789"

/** The request's bytes in pieces: a chunked body is sent as several chunks, as a streaming client would. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const cut = [0, Math.floor(bytes.length / 3), Math.floor((2 * bytes.length) / 3), bytes.length]
  return new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i + 1 < cut.length; i++) if ((cut[i + 1] as number) > (cut[i] as number)) c.enqueue(bytes.slice(cut[i], cut[i + 1]))
      c.close()
    }
  })
}

interface Answer {
  readonly status: number
  readonly body: string
  readonly headers: Record<string, string>
}

/** The answer's status, body and the headers an error sets (the date and length differ by nature). */
async function answerOf(res: Response): Promise<Answer> {
  const headers: Record<string, string> = {}
  for (const k of ["content-type", "allow", "retry-after", "www-authenticate"]) {
    const v = res.headers.get(k)
    if (v !== null) headers[k] = v
  }
  return { status: res.status, body: await res.text(), headers }
}

/** Sends `body` to `path` twice, with a Content-Length and chunked; returns both answers. */
async function both(node: string, path: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<[Answer, Answer]> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body
  const url = `http://${node}${path}`
  const withLength = await answerOf(await fetch(url, { method: "POST", body: bytes, headers }))
  const streamed = await answerOf(await fetch(url, { method: "POST", body: chunked(bytes), headers }))
  return [withLength, streamed]
}

/** Every bad client body of the bad-input and fuzz tests. */
const BAD_BODIES: Array<[string, string | Uint8Array]> = [
  ["malformed JSON", '{"value": 5'],
  ["empty body", ""],
  ["not an object", "[5]"],
  ["missing value", "{}"],
  ["extra field", '{"value": 5, "colour": "red"}'],
  ["string value", '{"value": "5"}'],
  ["null value", '{"value": null}'],
  ["float value", '{"value": 1.5}'],
  ["unsafe integer", '{"value": 9007199254740993}'],
  ["huge exponent", '{"value": 1e400}'],
  ["client without seq", '{"value": 5, "client": "c1"}'],
  ["seq without client", '{"value": 5, "seq": 1}'],
  ["numeric client", '{"value": 5, "client": 7, "seq": 1}'],
  ["empty client", '{"value": 5, "client": "", "seq": 1}'],
  ["negative seq", '{"value": 5, "client": "c", "seq": -1}'],
  ["float seq", '{"value": 5, "client": "c", "seq": 0.5}'],
  ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ["deep nesting", `${"[".repeat(100_000)}${"]".repeat(100_000)}`],
  ["10 MB body", `{"value": 5, "pad": "${"x".repeat(10 * 1024 * 1024)}"}`]
]

describe("a cluster without a secret or token", () => {
  let cluster: LocalCluster
  let node: string

  beforeAll(async () => {
    let leader: number
    ;({ cluster, leader } = await startCluster(3, ["--client-body-timeout", String(BODY_TIMEOUT_MS)]))
    node = cluster.names[leader] as string
    expect((await append(node, { value: 1 }, { timeoutMs: 5_000 })).type).toBe("ok")
  }, 30_000)

  test("the fetch used here really sends a stream chunked, and bytes with a Content-Length", async () => {
    const seen: Array<[string | null, string | null]> = []
    const echo = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        seen.push([req.headers.get("content-length"), req.headers.get("transfer-encoding")])
        await req.bytes()
        return new Response("ok")
      }
    })
    try {
      await both(`127.0.0.1:${echo.port}`, "/", '{"value": 5}')
    } finally {
      void echo.stop()
    }
    expect(seen).toEqual([
      ["12", null],
      [null, "chunked"]
    ])
  })

  for (const [name, body] of BAD_BODIES) {
    test(`POST /append, ${name}: identical answers`, async () => {
      const [a, b] = await both(node, "/append", body)
      expect(a.status).toBeGreaterThanOrEqual(400)
      expect(a.status).toBeLessThan(500)
      expect(b).toEqual(a)
    }, 30_000)
  }

  test("POST /append?list=maybe: identical answers", async () => {
    const [a, b] = await both(node, "/append?list=maybe", '{"value": 5}')
    expect(a.status).toBe(400)
    expect(b).toEqual(a)
  })

  test("a good body is applied once either way", async () => {
    const [a, b] = await both(node, "/append?list=false", '{"value": 77, "client": "framing", "seq": 1}')
    expect(a.status).toBe(200)
    // The same client and seq: the retry gets the first answer, whichever framing it came in.
    expect(b).toEqual(a)
  })

  test("random bodies: identical answers, never a 5xx", async () => {
    const bodies = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 64 }),
        fc.json({ maxDepth: 3 }),
        fc.record({ value: fc.oneof(fc.double(), fc.string(), fc.constant(null), fc.boolean()) }).map((o) => JSON.stringify(o)),
        fc.uint8Array({ maxLength: 64 })
      ),
      { numRuns: 150, seed: 20261206 }
    )
    // Only bodies the node refuses: a valid append would be applied twice (no client id).
    const bad = bodies.filter((b) => typeof b !== "string" || !/^\s*\{\s*"value"\s*:\s*-?\d+\s*\}\s*$/.test(b))
    for (const body of bad) {
      const [a, b] = await both(node, "/append?list=false", body)
      expect(a.status).toBeLessThan(500)
      expect({ body, answer: b }).toEqual({ body, answer: a })
    }
  }, 60_000)

  test("a body that stalls gets the same 408 with a Content-Length and chunked", async () => {
    const host = "127.0.0.1"
    const port = cluster.nodes[cluster.names.indexOf(node)]?.port as number
    const stall = async (framing: string, first: string) => {
      const c = await RawConnection.open(host, port)
      try {
        c.write(`POST /append HTTP/1.1\r\nHost: ${node}\r\nContent-Type: application/json\r\n${framing}\r\n\r\n${first}`)
        const r = await c.reply(BODY_TIMEOUT_MS + 3_000)
        const at = r.text.indexOf("\r\n\r\n")
        return { status: r.status, body: r.text.slice(at + 4) }
      } finally {
        c.close(true)
      }
    }
    const [a, b] = await Promise.all([stall("Content-Length: 40", '{"value":'), stall("Transfer-Encoding: chunked", '9\r\n{"value":\r\n')])
    expect(a.status).toBe(408)
    expect(b).toEqual(a)
  }, 20_000)

  test("POST /peer/envelope, envelopes that fail their checks: identical answers", async () => {
    const cluster_ = (await status(node, 2_000))?.cluster
    const self = cluster.names.indexOf(node)
    const from = self === 1 ? 2 : 1
    const env = (patch: Record<string, unknown>) =>
      JSON.stringify({ cluster: cluster_, from, to: self, messages: [{ _tag: "Commit", ballot: { round: 1, leader: from }, commit: 0 }], ...patch })
    const bodies = [
      env({ messages: [{ _tag: "Commit", ballot: { round: 1, leader: from }, commit: -3 }] }),
      env({ messages: [{ _tag: "Steal", value: 1 }] }),
      env({ sneaky: true }),
      env({ cluster: "0000000000000000" }),
      env({ to: (self + 1) % 3 }),
      env({ from: 70_000 }),
      env({ from: self }),
      "{",
      ""
    ]
    for (const body of bodies) {
      const [a, b] = await both(node, "/peer/envelope", body)
      expect(a.status).toBe(400)
      expect({ body, answer: b }).toEqual({ body, answer: a })
    }
  })
})

describe("a cluster with a secret and a client token", () => {
  let names: string[]
  let node: string
  let clusterId: string

  beforeAll(async () => {
    const dir = tempDir()
    writeFileSync(join(dir, "secret"), `${SECRET}\n`, { mode: 0o600 })
    writeFileSync(join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 })
    const { cluster } = await startCluster(3, ["--secret-file", join(dir, "secret"), "--client-token-file", join(dir, "token")])
    names = cluster.names
    node = cluster.names[0] as string
    clusterId = (await status(node, 2_000))?.cluster as string
  }, 30_000)

  test("POST /append without the token, or with a wrong one: identical 401s", async () => {
    const cases: Array<Record<string, string>> = [{}, { authorization: "Bearer wrong-token-wrong-token" }, { authorization: "Basic abc" }]
    for (const headers of cases) {
      const [a, b] = await both(node, "/append", '{"value": 5}', headers)
      expect(a.status).toBe(401)
      expect(b).toEqual(a)
    }
  })

  test("POST /append with the token and a bad body: identical 400s", async () => {
    const [a, b] = await both(node, "/append", '{"value": "5"}', { authorization: `Bearer ${TOKEN}` })
    expect(a.status).toBe(400)
    expect(b).toEqual(a)
  })

  test("POST /peer/envelope with missing, malformed, forged or stale authentication: identical 401s", async () => {
    const body = JSON.stringify({ cluster: clusterId, from: 1, to: 0, messages: [{ _tag: "Commit", ballot: { round: 0, leader: 1 }, commit: 0 }] })
    const signer = async (secret = SECRET, cluster_ = clusterId) => new Signer(await importSecret(secret), cluster_, 1, newBootId())
    const s1 = await signer()
    // Each framing gets its own headers: a signature is accepted once (the second would be a replay).
    const cases: Array<() => Promise<Record<string, string>>> = [
      async () => ({}),
      async () => ({ ...(await s1.headers(0, body, Date.now())), "x-paxos-counter": "one" }),
      async () => ({ ...(await s1.headers(0, body, Date.now())), "x-paxos-from": "7" }),
      async () => (await signer("a different secret of enough length")).headers(0, body, Date.now()),
      async () => (await signer(SECRET, "0000000000000000")).headers(0, body, Date.now()),
      async () => s1.headers(2, body, Date.now()),
      async () => s1.headers(0, body, Date.now() - 120_000)
    ]
    for (const headers of cases) {
      const url = `http://${node}/peer/envelope`
      const bytes = new TextEncoder().encode(body)
      const a = await answerOf(await fetch(url, { method: "POST", body: bytes, headers: await headers() }))
      const b = await answerOf(await fetch(url, { method: "POST", body: chunked(bytes), headers: await headers() }))
      expect(a.status).toBe(401)
      expect(b).toEqual(a)
    }
    // A valid signature over the body is accepted chunked too (naming node 1's incarnation).
    const incarnation = ((await status(names[1] as string, 2_000)) as unknown as { incarnation: string }).incarnation
    const headers = { ...(await s1.headers(0, body, Date.now())), "x-paxos-incarnation": incarnation }
    const ok = await fetch(`http://${node}/peer/envelope`, { method: "POST", body: chunked(new TextEncoder().encode(body)), headers })
    expect(ok.status).toBe(204)
  })
})
