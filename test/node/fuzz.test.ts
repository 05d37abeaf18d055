/**
 * Fuzzing a RUNNING 3-node cluster of the compiled binary, with a cluster secret (fast-check):
 * random and malformed client requests (random JSON and bytes, wrong content types, truncated
 * bodies, huge numbers, deep nesting, unicode), random and malformed peer requests (junk envelopes,
 * valid-looking envelopes with bad MACs, WebSocket upgrades with bad authentication, junk frames
 * after a valid upgrade), raw TCP garbage, slow clients and oversized headers.
 *
 * Properties, checked after every request: no node crashes, no answer is a 500 (or any 5xx but 503
 * and 504), peer junk is refused (401 / close 1008); and at the end: every node's list is what it
 * was before, and each node's memory (RSS) grew by less than RSS_GROWTH_MAX.
 *
 * Each property is bounded (RUNS requests, a few seconds). A failure prints fast-check's seed and
 * path; `PAXOS_FUZZ_SEED=<seed> PAXOS_FUZZ_RUNS=<n> bun test test/node/fuzz.test.ts` replays it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { Either } from "effect"
import fc from "fast-check"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { AUTH_HEADERS, importSecret, newBootId, Signer, UPGRADE_BODY } from "../../src/auth/peer-auth.ts"
import { append, readList, status } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { decodeAppend } from "../../src/server/body.ts"
import { acceptEnvelope } from "../../src/server/peer.ts"
import { alive, RawConnection, rawRequest, rssBytes } from "./raw-http.ts"
import { cleanup, startCluster, tempDir } from "./support.ts"

const RUNS = Number(process.env.PAXOS_FUZZ_RUNS ?? 200)
const SEED = process.env.PAXOS_FUZZ_SEED === undefined ? undefined : Number(process.env.PAXOS_FUZZ_SEED)
const params = (numRuns = RUNS): fc.Parameters<unknown> => ({ numRuns, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true })
/** A node's RSS may grow by at most this much over the whole file (measured: a few MiB). */
const RSS_GROWTH_MAX = 100 * 2 ** 20
const SECRET = "fuzzing secret: 32 bytes or more, ok"
const HOST = "127.0.0.1"

let cluster: LocalCluster
let clusterId: string
let before: string
const rss0: number[] = []
/** The node the frame fuzzing impersonates (stopped meanwhile, then restarted). */
let victim = 2

afterAll(cleanup)

beforeAll(async () => {
  const dir = tempDir()
  writeFileSync(join(dir, "secret"), SECRET, { mode: 0o600 })
  ;({ cluster } = await startCluster(3, ["--secret-file", join(dir, "secret"), "--client-body-timeout", "500"]))
  for (let v = 1; v <= 5; v++) expect((await append(cluster.names[v % 3] as string, { value: v }, { timeoutMs: 5_000 })).type).toBe("ok")
  clusterId = ((await status(cluster.names[0] as string, 2_000)) as unknown as { cluster: string }).cluster
  before = await agreedList()
  for (const n of cluster.nodes) rss0.push(rssBytes(n.proc?.pid as number))
}, 30_000)

/** The list every node returns, once they agree (as JSON). */
async function agreedList(): Promise<string> {
  let last: string[] = []
  for (let i = 0; i < 100; i++) {
    last = await Promise.all(cluster.names.map(async (n) => JSON.stringify(await readList(n, 5_000))))
    if (last.every((l) => l === last[0]) && last[0]?.startsWith('{"type":"ok"')) return last[0] as string
    await Bun.sleep(50)
  }
  throw new Error(`the nodes' lists differ: ${last.join(" / ")}`)
}

/** Every node of the cluster (but `except`) is running. */
function allAlive(except: readonly number[] = []): void {
  for (const n of cluster.nodes) {
    if (except.includes(n.index)) continue
    expect({ node: n.name, alive: n.proc !== null && alive(n.proc.pid) }).toEqual({ node: n.name, alive: true })
  }
}

/** A status a fuzzed request may get: anything but a server error, except 503 and 504 (documented). */
function expectNoServerError(what: string, s: number | null): void {
  if (s !== null && s >= 500 && s !== 503 && s !== 504 && s !== 505) throw new Error(`${what}: status ${s}`)
}

const node = (i: number): string => cluster.names[i] as string

// ---------------------------------------------------------------------------------------------
// Generators

const hugeNumber = fc.oneof(
  fc.integer({ min: 16, max: 400 }).map((n) => "9".repeat(n)),
  fc.integer({ min: 300, max: 100_000 }).map((e) => `1e${e}`),
  fc.constantFrom("-0", "0.0", "1.0", "1e2", "9007199254740993", "-9007199254740993", "1E400", "NaN", "Infinity", "0x10", "012", "+1", ".5", "5.")
)

const deepNesting = fc.tuple(fc.integer({ min: 10, max: 200_000 }), fc.constantFrom("[", '{"a":')).map(([k, open]) => {
  const close = open === "[" ? "]" : "}"
  const n = open === "[" ? k : Math.floor(k / 5)
  return `{"value":${open.repeat(n)}1${close.repeat(n)}}`
})

const appendLike = fc.record(
  {
    value: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.anything({ maxDepth: 2 })),
    client: fc.oneof(fc.string({ maxLength: 200 }), fc.integer(), fc.constant("")),
    seq: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 5 })),
    extra: fc.anything({ maxDepth: 2 })
  },
  { requiredKeys: [] }
)

/** A client body: text or bytes; valid appends are filtered out later (they would change the list). */
const clientBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.json({ maxDepth: 4 }),
  appendLike.map((o) => JSON.stringify(o) ?? "null"),
  fc.uint8Array({ maxLength: 2_000 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.fullUnicodeString({ maxLength: 300 }),
  hugeNumber.map((n) => `{"value":${n}}`),
  hugeNumber.map((n) => `{"value":1,"client":"c","seq":${n}}`),
  deepNesting,
  fc.tuple(fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }), fc.nat()).map(([v, cut]) => {
    const full = JSON.stringify({ value: v, client: "fuzz", seq: 1 })
    return full.slice(0, cut % full.length) // truncated: always shorter than a whole object
  }),
  fc.constantFrom("", " ", "null", "[]", "{}", '{"value":}', '{"value":1,}', '{"value":1}{"value":2}', "\u0000", "\ufeff{\"value\":1", '{"value":"１"}')
)

const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      "application/json",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream",
      "application/json; charset=utf-16",
      "application/json; charset=latin1"
    ),
    fc.string({ unit: "grapheme-ascii", maxLength: 40 })
  ),
  { nil: undefined }
)

const clientPath = fc.oneof(
  fc.constantFrom("/append", "/append?list=false", "/append?list=maybe", "/append?list=", "/list", "/list?x=1", "/status", "/health", "/metrics", "/", "/append/", "//append"),
  fc.webPath({ size: "small" }),
  fc.fullUnicodeString({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
  fc.string({ maxLength: 40 }).map((s) => `/append?${encodeURIComponent(s)}=${encodeURIComponent(s)}`)
)

const method = fc.constantFrom("GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")

/** Whether `body` is an append the node would apply (the fuzzer must not change the list). */
function isValidAppend(body: string | Uint8Array): boolean {
  let text: string
  try {
    text = typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: true }).decode(body)
    return Either.isRight(decodeAppend(JSON.parse(text)))
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// Client API

test("fuzz: random and malformed client requests never get a 500, never crash a node", async () => {
  const arb = fc.record({ target: fc.nat({ max: 2 }), method, path: clientPath, contentType, body: clientBody, extraHeader: fc.option(fc.string({ unit: "grapheme-ascii", maxLength: 100 }), { nil: undefined }) })
  let n = 0
  await fc.assert(
    fc.asyncProperty(arb, async (r) => {
      const hasBody = r.method !== "GET" && r.method !== "HEAD"
      // A valid append would change the list, on any path: the router also takes /APPEND, //append,
      // /append/ and /%61ppend for /append.
      fc.pre(!(hasBody && isValidAppend(r.body)))
      const headers: Record<string, string> = {}
      if (r.contentType !== undefined) headers["content-type"] = r.contentType
      if (r.extraHeader !== undefined && /^[\x20-\x7e]*$/.test(r.extraHeader)) headers["x-fuzz"] = r.extraHeader
      const res = await fetch(`http://${node(r.target)}${r.path}`, {
        method: r.method,
        headers,
        ...(hasBody ? { body: r.body } : {}),
        signal: AbortSignal.timeout(15_000)
      })
      const text = await res.text()
      n += 1
      expectNoServerError(`${r.method} ${r.path}`, res.status)
      if (res.status >= 400 && r.method !== "HEAD") {
        const json = JSON.parse(text) as { error: string; message: string; definite: boolean }
        expect(typeof json.error).toBe("string")
        expect(json.message.length).toBeGreaterThan(0)
        expect(json.definite).toBe(res.status !== 504)
      }
    }),
    params()
  )
  allAlive()
  console.log(`client fuzz: ${n} requests`)
}, 120_000)

test("fuzz: bodies over the limit, and slow or truncated bodies over raw TCP", async () => {
  const big = `{"value":1,"pad":"${"x".repeat(1024 * 1024)}"}`
  const res = await fetch(`http://${node(0)}/append`, { method: "POST", body: big })
  expect(res.status).toBe(413)
  const one = fc.record({
    target: fc.nat({ max: 2 }),
    body: clientBody.map((b) => (typeof b === "string" ? new TextEncoder().encode(b) : b)),
    /** Content-Length minus the bytes sent: > 0 is a truncated body, < 0 a longer one. */
    missing: fc.oneof(fc.integer({ min: -5, max: 0 }), fc.integer({ min: 1, max: 50 })),
    chunks: fc.integer({ min: 1, max: 8 }),
    gapMs: fc.integer({ min: 0, max: 30 }),
    hangUp: fc.boolean()
  })
  type Case = typeof one extends fc.Arbitrary<infer T> ? T : never
  /** One slow or truncated request; its reply must not be a server error. */
  const run = async (r: Case): Promise<void> => {
    const declared = Math.max(0, r.body.length + r.missing)
    const port = cluster.nodes[r.target]?.port as number
    const c = await RawConnection.open(HOST, port)
    try {
      c.write(`POST /append HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n`)
      const size = Math.ceil(r.body.length / r.chunks) || 1
      for (let i = 0; i < r.body.length; i += size) {
        c.write(r.body.subarray(i, i + size))
        if (r.gapMs > 0) await Bun.sleep(r.gapMs)
      }
      if (r.hangUp) c.close()
      const reply = await c.reply(r.missing > 0 && !r.hangUp ? 3_000 : 2_000)
      expectNoServerError("raw POST /append", reply.status)
      // A body that never completes is answered 408 within the body time limit (0.5 s here).
      if (r.missing > 0 && !r.hangUp) expect(reply.status).toBe(408)
    } finally {
      c.close(true)
    }
  }
  // Eight connections at a time: slow clients are slow, and the node serves them side by side.
  await fc.assert(
    fc.asyncProperty(fc.array(one, { minLength: 8, maxLength: 8 }), async (cases) => {
      // The node reads only Content-Length bytes: that prefix must not be a valid append.
      fc.pre(cases.every((r) => !isValidAppend(r.body.subarray(0, Math.max(0, r.body.length + r.missing)))))
      await Promise.all(cases.map(run))
    }),
    params(Math.max(2, Math.ceil(RUNS / 40)))
  )
  allAlive()
}, 120_000)

test("fuzz: raw garbage and oversized headers get 4xx (or a closed connection), never a crash", async () => {
  const requestLine = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 500 }),
    fc.string({ unit: "binary-ascii", maxLength: 300 }).map((s) => `${s}\r\n\r\n`),
    fc.tuple(fc.string({ unit: "grapheme-ascii", maxLength: 10 }), fc.string({ unit: "grapheme-ascii", maxLength: 50 }), fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/9.9", "")).map(
      ([m, p, v]) => `${m} ${p} ${v}\r\nHost: x\r\n\r\n`
    )
  )
  const headers = fc.record({
    size: fc.integer({ min: 1, max: 64 * 1024 }),
    count: fc.integer({ min: 1, max: 300 }),
    path: fc.constantFrom("/health", "/list", "/status", "/append")
  })
  const arb = fc.oneof(
    requestLine.map((raw) => ({ raw, kind: "garbage" as const })),
    headers.map((h) => {
      const each = Math.max(1, Math.floor(h.size / h.count))
      const lines = Array.from({ length: h.count }, (_, i) => `X-F${i}: ${"h".repeat(each)}\r\n`).join("")
      return { raw: `GET ${h.path} HTTP/1.1\r\nHost: x\r\n${lines}\r\n`, kind: "headers" as const, total: h.size + 8 * h.count }
    })
  )
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: 2 }), arb, async (target, r) => {
      const reply = await rawRequest(HOST, cluster.nodes[target]?.port as number, r.raw, 2_000)
      expectNoServerError(r.kind, reply.status)
      if (r.kind === "headers" && reply.status !== null && reply.status !== 200) expect([400, 405, 431, 503]).toContain(reply.status)
    }),
    params(Math.ceil(RUNS / 2))
  )
  allAlive()
}, 120_000)

// ---------------------------------------------------------------------------------------------
// Peer endpoints

const otherKey = importSecret("a different secret, of enough length")

/** Headers that claim to authenticate a peer request, all of them wrong in some way. */
async function badAuthHeaders(kind: number, body: string, from: number, to: number, junk: Record<string, string>): Promise<Record<string, string>> {
  const now = Date.now()
  switch (kind) {
    case 0:
      return {}
    case 1:
      return junk
    case 2: // well-formed, random MAC
      return { [AUTH_HEADERS.from]: String(from), [AUTH_HEADERS.boot]: "b0", [AUTH_HEADERS.counter]: "1", [AUTH_HEADERS.time]: String(now), [AUTH_HEADERS.mac]: "ab".repeat(32) }
    case 3: // signed with another secret
      return new Signer(await otherKey, clusterId, from, newBootId()).headers(to, body, now)
    case 4: // the right secret, another receiver than the one it is sent to
      return new Signer(await importSecret(SECRET), clusterId, from, newBootId()).headers((to + 1) % 3, body, now)
    case 5: // the right secret, another cluster
      return new Signer(await importSecret(SECRET), "0123456789abcdef", from, newBootId()).headers(to, body, now)
    default: // the right secret over another body
      return new Signer(await importSecret(SECRET), clusterId, from, newBootId()).headers(to, `${body} `, now)
  }
}

/** A peer message that is valid-looking or not. */
const messageLike = fc.oneof(
  fc.record({ _tag: fc.constantFrom("Prepare", "Promise", "Accept", "Accepted", "Nack", "Commit", "CommitAck", "Forward", "Snapshot", "Steal"), ballot: fc.record({ round: fc.integer(), leader: fc.integer() }) }, { requiredKeys: ["_tag"] }),
  fc.constant({ _tag: "Commit", ballot: { round: 1_000_000, leader: 1 }, commit: 999_999 }),
  fc.constant({ _tag: "Snapshot", slot: 1_000_000, listFrom: 0, values: [9, 9, 9], clients: [], complete: true }),
  fc.jsonValue({ maxDepth: 3 })
)

const envelopeBody = fc.oneof(
  fc.record({ cluster: fc.oneof(fc.constant("__CLUSTER__"), fc.string({ maxLength: 20 })), from: fc.integer({ min: -1, max: 10 }), to: fc.integer({ min: -1, max: 10 }), messages: fc.array(messageLike, { maxLength: 4 }) }).map((e) => JSON.stringify(e)),
  fc.json({ maxDepth: 3 }),
  fc.fullUnicodeString({ maxLength: 200 }),
  deepNesting
)

const junkHeaders = fc.dictionary(fc.constantFrom(...Object.values(AUTH_HEADERS)), fc.string({ unit: "grapheme-ascii", maxLength: 80 }), { maxKeys: 5 })

test("fuzz: POST /peer/envelope with junk or bad authentication is always 401 and never reaches a core", async () => {
  const rejected0 = await Promise.all(cluster.names.map(async (n) => (await status(n, 2_000))?.counters.peerAuthFailures ?? 0))
  let sent = 0
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: 2 }), fc.nat({ max: 2 }), fc.integer({ min: 0, max: 6 }), envelopeBody, junkHeaders, async (target, fromOff, kind, rawBody, junk) => {
      const from = (target + 1 + (fromOff % 2)) % 3
      const body = rawBody.replaceAll("__CLUSTER__", clusterId)
      const clean = Object.fromEntries(Object.entries(junk).filter(([, v]) => /^[\x20-\x7e]*$/.test(v)))
      const headers = await badAuthHeaders(kind, body, from, target, clean)
      const res = await fetch(`http://${node(target)}/peer/envelope`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })
      const json = (await res.json()) as { error: string; reason: string }
      sent += 1
      expect({ kind, status: res.status, error: json.error }).toEqual({ kind, status: 401, error: "Unauthorized" })
      expect(["Missing", "BadMac", "Stale", "Replayed", "Malformed"]).toContain(json.reason)
    }),
    params()
  )
  const rejected1 = await Promise.all(cluster.names.map(async (n) => (await status(n, 2_000))?.counters.peerAuthFailures ?? 0))
  expect(rejected1.reduce((a, b) => a + b, 0) - rejected0.reduce((a, b) => a + b, 0)).toBe(sent)
  allAlive()
}, 120_000)

test("fuzz: WebSocket upgrades with bad authentication or bad queries get 400/401, never a connection", async () => {
  const upgrade = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" }
  const query = fc.oneof(
    fc.tuple(fc.nat({ max: 2 })).map(([f]) => ({ cluster: clusterId, from: String(f) })),
    fc.record({ cluster: fc.oneof(fc.constant(clusterId), fc.string({ maxLength: 20 })), from: fc.oneof(fc.string({ maxLength: 5 }), fc.integer({ min: -3, max: 12 }).map(String)) })
  )
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: 2 }), query, fc.integer({ min: 0, max: 5 }), junkHeaders, async (target, q, kind, junk) => {
      const from = Number(q.from)
      const clean = Object.fromEntries(Object.entries(junk).filter(([, v]) => /^[\x20-\x7e]*$/.test(v)))
      const auth = await badAuthHeaders(kind, UPGRADE_BODY, Number.isInteger(from) && from >= 0 && from < 3 ? from : 0, target, clean)
      const url = `http://${node(target)}/peer/ws?cluster=${encodeURIComponent(q.cluster)}&from=${encodeURIComponent(q.from)}`
      const res = await fetch(url, { headers: { ...upgrade, ...auth } })
      await res.arrayBuffer()
      expect([400, 401]).toContain(res.status)
    }),
    params(Math.ceil(RUNS / 2))
  )
  allAlive()
}, 120_000)

test("fuzz: junk frames after a valid upgrade close the connection with 1008 and change nothing", async () => {
  // The test connects as a follower, stopped meanwhile (its own connection would replace ours); a
  // follower, so that no election runs meanwhile.
  const leader = await cluster.waitLeader()
  victim = leader === 2 ? 1 : 2
  const targets = [0, 1, 2].filter((i) => i !== victim)
  await cluster.kill(victim)
  const signer = new Signer(await importSecret(SECRET), clusterId, victim, newBootId())
  const frame = fc.oneof(
    fc.string({ maxLength: 200 }).map((s) => ({ kind: "text", data: s as string | Uint8Array })),
    fc.uint8Array({ maxLength: 200 }).map((b) => ({ kind: "binary", data: b as string | Uint8Array })),
    fc.tuple(fc.string({ unit: "grapheme-ascii", maxLength: 100 }), envelopeBody).map(([h, b]) => ({ kind: "bad header", data: `v1 ${h}\n${b}` })),
    envelopeBody.map((b) => ({ kind: "signed junk", data: `SIGN:${b.replaceAll("__CLUSTER__", clusterId)}` }))
  )
  let closedBy1008 = 0
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...targets), fc.array(frame, { minLength: 1, maxLength: 3 }), async (target, frames) => {
        const ws = new WebSocket(`ws://${node(target)}/peer/ws?cluster=${clusterId}&from=${victim}`, { headers: await signer.headers(target, UPGRADE_BODY, Date.now()) })
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve()
          ws.onerror = () => reject(new Error("no connection"))
        })
        const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (e) => resolve(e)))
        // A signed frame whose body is a valid envelope would be delivered: such bodies are skipped.
        for (const f of frames) {
          if (typeof f.data === "string" && f.data.startsWith("SIGN:")) {
            fc.pre(Either.isLeft(acceptEnvelope(f.data.slice(5), { self: target, n: 3, clusterId })))
          }
        }
        for (const f of frames) {
          const data = typeof f.data === "string" && f.data.startsWith("SIGN:") ? await signer.frame(target, f.data.slice(5), Date.now()) : f.data
          ws.send(data)
        }
        const ev = await Promise.race([closed, Bun.sleep(3_000).then(() => null)])
        if (ev === null) ws.close()
        expect(ev?.code).toBe(1008)
        closedBy1008 += 1
      }),
      params(Math.ceil(RUNS / 3))
    )
  } finally {
    cluster.start(victim)
  }
  await cluster.waitHealthy(victim)
  expect(closedBy1008).toBeGreaterThan(0)
  allAlive()
}, 120_000)

// ---------------------------------------------------------------------------------------------
// After all of it

test("after the fuzzing: every node alive, the lists unchanged and equal, memory bounded", async () => {
  allAlive()
  expect(await agreedList()).toBe(before)
  const growth = cluster.nodes.map((n, i) => rssBytes(n.proc?.pid as number) - (rss0[i] as number))
  console.log(`RSS growth per node over the fuzzing: ${growth.map((g) => `${(g / 2 ** 20).toFixed(1)} MiB`).join(", ")} (node ${victim} was restarted)`)
  for (const [i, g] of growth.entries()) if (i !== victim) expect(g).toBeLessThan(RSS_GROWTH_MAX)
  // Nothing the fuzzer sent was a defect of the server.
  for (const n of cluster.nodes) expect(readFileSync(n.logFile, "utf8")).not.toContain("internal-error")
  // And the cluster still works.
  const r = await append(node(0), { value: 6 }, { timeoutMs: 5_000 })
  expect(r.type).toBe("ok")
}, 30_000)
