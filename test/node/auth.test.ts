/**
 * Peer authentication and the client token on running clusters of the binary:
 *   - a cluster with a shared secret works, and says so in /status;
 *   - peer requests, connections and frames without a valid MAC are refused (401, or close 1008),
 *     counted by reason in /status and /metrics, logged, and change nothing;
 *   - a node holding another secret never joins: the others serve without it and it learns nothing;
 *   - with a client token, /append and /list need it (401 otherwise), /health does not, and
 *     `paxos client --token-file` sends it;
 *   - without a secret, /status says "peerAuth": false.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { importSecret, newBootId, Signer, UPGRADE_BODY } from "../../src/auth/peer-auth.ts"
import { append, healthy, readList, status } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, makeCluster, startCluster, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

const SECRET = "an example secret for the tests, 42 bytes"
const TOKEN = "client-token-for-the-tests-0123456789"

let cluster: LocalCluster
let dir: string
let node: string
let before: number[]

interface Status {
  cluster: string
  incarnation: string
  peerAuth: boolean
  clientAuth: boolean
  peerAuthFailures: Record<string, number>
  counters: Record<string, number>
  listLength: number
}
const st = async (name: string): Promise<Status> => (await status(name, 2_000)) as unknown as Status

beforeAll(async () => {
  dir = tempDir()
  writeFileSync(join(dir, "secret"), `${SECRET}\n`, { mode: 0o600 })
  writeFileSync(join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 })
  ;({ cluster } = await startCluster(3, ["--secret-file", join(dir, "secret"), "--client-token-file", join(dir, "token")]))
  node = cluster.names[0] as string
  for (let v = 1; v <= 5; v++) expect((await append(cluster.names[v % 3] as string, { value: v }, { timeoutMs: 5_000, token: TOKEN })).type).toBe("ok")
  const l = await readList(node, 5_000, TOKEN)
  if (l.type !== "ok") throw new Error("no list")
  before = l.value
}, 30_000)

/** A signer as node `from` of the cluster under test (the tests hold the secret), or of another secret or cluster. */
async function signer(from: number, secret = SECRET, cluster_ = ""): Promise<Signer> {
  return new Signer(await importSecret(secret), cluster_ || (await st(node)).cluster, from, newBootId())
}

/** A harmless envelope from `from` to node 0: a heartbeat of ballot 0 (below anything promised). */
const harmless = async (from: number) =>
  JSON.stringify({ cluster: (await st(node)).cluster, from, to: 0, messages: [{ _tag: "Commit", ballot: { round: 0, leader: from }, commit: 0 }] })

async function postEnvelope(body: string, headers: Record<string, string>): Promise<{ status: number; json: { error?: string; reason?: string; message?: string } }> {
  const res = await fetch(`http://${node}/peer/envelope`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })
  const text = await res.text()
  return { status: res.status, json: text.length === 0 ? {} : (JSON.parse(text) as { error?: string; reason?: string }) }
}

describe("a cluster with a secret", () => {
  test("works, and /status says peerAuth and clientAuth", async () => {
    for (const name of cluster.names) {
      const s = await st(name)
      expect(s.peerAuth).toBe(true)
      expect(s.clientAuth).toBe(true)
      expect(Object.values(s.peerAuthFailures).reduce((a, b) => a + b, 0)).toBe(0)
    }
    const log = readFileSync(cluster.nodes[0]?.logFile as string, "utf8")
    expect(log).toContain("peer-auth-enabled")
    expect(log).not.toContain("WARNING-peers-not-authenticated")
  })

  test("POST /peer/envelope: missing, malformed, forged, stale and replayed authentication get 401 by reason", async () => {
    const failures0 = (await st(node)).peerAuthFailures
    const body = await harmless(1)
    const s1 = await signer(1)
    const valid = await s1.headers(0, body, Date.now())
    const cases: Array<[string, Record<string, string>, string]> = [
      ["no headers", {}, "Missing"],
      ["a malformed counter", { ...valid, "x-paxos-counter": "one" }, "Malformed"],
      ["a sender id no member can have", { ...(await s1.headers(0, body, Date.now())), "x-paxos-from": "70000" }, "Malformed"],
      ["another secret", await (await signer(1, "a different secret of enough length")).headers(0, body, Date.now()), "BadMac"],
      ["another cluster", await (await signer(1, SECRET, "0000000000000000")).headers(0, body, Date.now()), "BadMac"],
      ["another receiver", await s1.headers(2, body, Date.now()), "BadMac"],
      ["another sender's name", { ...(await s1.headers(0, body, Date.now())), "x-paxos-from": "2" }, "BadMac"],
      ["an old timestamp", await s1.headers(0, body, Date.now() - 120_000), "Stale"]
    ]
    for (const [name, headers, reason] of cases) {
      const r = await postEnvelope(body, headers)
      expect({ name, status: r.status, error: r.json.error, reason: r.json.reason }).toEqual({ name, status: 401, error: "Unauthorized", reason })
    }
    // The valid one (naming node 1's incarnation) is accepted once; its replay is refused.
    const incarnation = { "x-paxos-incarnation": (await st(cluster.names[1] as string)).incarnation }
    expect((await postEnvelope(body, { ...valid, ...incarnation })).status).toBe(204)
    const replay = await postEnvelope(body, { ...valid, ...incarnation })
    expect([replay.status, replay.json.reason]).toEqual([401, "Replayed"])
    // An altered body under a valid signature.
    const altered = await postEnvelope(body.replace('"commit":0', '"commit":1'), await s1.headers(0, body, Date.now()))
    expect([altered.status, altered.json.reason]).toEqual([401, "BadMac"])
    const failures1 = (await st(node)).peerAuthFailures
    const delta = Object.fromEntries(Object.entries(failures1).map(([k, v]) => [k, v - (failures0[k] ?? 0)]))
    expect(delta).toEqual({ Missing: 1, Malformed: 2, BadMac: 5, Stale: 1, Replayed: 1 })
    const metrics = await (await fetch(`http://${node}/metrics`)).text()
    expect(metrics).toMatch(/paxos_peer_auth_failures_by_reason_total\{node="[^"]+",reason="BadMac"\} \d+/)
    const log = readFileSync(cluster.nodes[0]?.logFile as string, "utf8")
    expect(log).toMatch(/peer-auth-failed via=post reason=BadMac/)
  })

  test("GET /peer/ws: an upgrade without valid authentication gets 401 before upgrading", async () => {
    const cl = (await st(node)).cluster
    const url = `http://${node}/peer/ws?cluster=${cl}&from=1`
    const upgrade = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" }
    const s1 = await signer(1)
    const cases: Array<[string, Record<string, string>, string]> = [
      ["no headers", {}, "Missing"],
      ["another secret", await (await signer(1, "a different secret of enough length")).headers(0, UPGRADE_BODY, Date.now()), "BadMac"],
      ["signed as an envelope, not an upgrade", await s1.headers(0, "{}", Date.now()), "BadMac"],
      ["a stale timestamp", await s1.headers(0, UPGRADE_BODY, Date.now() - 120_000), "Stale"],
      ["a sender that differs from the query", await (await signer(2)).headers(0, UPGRADE_BODY, Date.now()), "Malformed"]
    ]
    for (const [name, headers, reason] of cases) {
      const res = await fetch(url, { headers: { ...upgrade, ...headers } })
      const json = (await res.json()) as { reason?: string }
      expect({ name, status: res.status, reason: json.reason }).toEqual({ name, status: 401, reason })
    }
  })

  test("frames on an authenticated connection: unsigned, forged or replayed frames close it with 1008", async () => {
    // The test connects as a follower other than node 0, stopped meanwhile: its own connection
    // would replace the test's (one per peer). A follower, so that no election runs meanwhile.
    const leader = await cluster.waitLeader()
    const from = leader === 1 ? 2 : 1
    await cluster.kill(from)
    try {
      const failures0 = (await st(node)).peerAuthFailures
      const cl = (await st(node)).cluster
      const s1 = await signer(from)
      const body = await harmless(from)
      const open = async () => {
        const ws = new WebSocket(`ws://${node}/peer/ws?cluster=${cl}&from=${from}`, { headers: await s1.headers(0, UPGRADE_BODY, Date.now()) })
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve()
          ws.onerror = () => reject(new Error("no connection"))
        })
        const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = (e) => resolve(e)))
        return { ws, closed }
      }
      const recorded = await s1.frame(0, body, Date.now())
      const frames: Array<[string, string, string]> = [
        ["a bare envelope", body, "Missing"],
        ["a forged MAC", recorded.replace(/ [0-9a-f]{64}\n/, ` ${"0".repeat(64)}\n`), "BadMac"],
        ["junk", "v1 junk\n{", "Malformed"]
      ]
      for (const [name, frame, reason] of frames) {
        const { ws, closed } = await open()
        ws.send(frame)
        const ev = await closed
        expect({ name, code: ev.code, reason: ev.reason.includes("peer authentication failed") }).toEqual({ name, code: 1008, reason: true })
        void reason
      }
      // A good frame passes; the same frame again is a replay.
      const { ws, closed } = await open()
      ws.send(recorded)
      ws.send(recorded)
      expect((await closed).code).toBe(1008)
      const failures1 = (await st(node)).peerAuthFailures
      const delta = Object.fromEntries(Object.entries(failures1).map(([k, v]) => [k, v - (failures0[k] ?? 0)]))
      expect(delta).toEqual({ Missing: 1, Malformed: 1, BadMac: 1, Stale: 0, Replayed: 1 })
    } finally {
      cluster.start(from)
    }
    await cluster.waitHealthy(from)
  }, 20_000)

  test("the client API needs the token; /health does not", async () => {
    const noToken = await fetch(`http://${node}/append`, { method: "POST", body: '{"value":9}' })
    expect(noToken.status).toBe(401)
    expect(noToken.headers.get("www-authenticate")).toContain("Bearer")
    expect(await noToken.json()).toEqual(expect.objectContaining({ error: "Unauthorized", definite: true, reason: "Missing" }))
    const wrong = await fetch(`http://${node}/list`, { headers: { authorization: "Bearer wrong-token-wrong-token" } })
    expect(wrong.status).toBe(401)
    expect(((await wrong.json()) as { reason: string }).reason).toBe("BadToken")
    expect((await fetch(`http://${node}/health`)).status).toBe(200)
    expect((await fetch(`http://${node}/status`)).status).toBe(200)
    expect((await st(node)).counters.clientAuthFailures).toBeGreaterThanOrEqual(2)
  })

  test("paxos client --token-file (or PAXOS_CLIENT_TOKEN_FILE) sends the token; without it, exit 2", async () => {
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const p = Bun.spawn([ensureBinary(), "client", "--config", cluster.configFile, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } })
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
      return { out, err, code }
    }
    const withFlag = await run(["--token-file", join(dir, "token"), "77"])
    expect(withFlag.code).toBe(0)
    expect((JSON.parse(withFlag.out) as number[]).at(-1)).toBe(77)
    const withEnv = await run(["78"], { PAXOS_CLIENT_TOKEN_FILE: join(dir, "token") })
    expect(withEnv.code).toBe(0)
    const without = await run(["--timeout", "3000", "79"], { PAXOS_CLIENT_TOKEN_FILE: "" })
    expect(without.code).toBe(2)
    expect(without.err).toContain("client token")
  }, 30_000)

  test("after all of that, every node holds the same list: only the appends made with the token", async () => {
    const lists = await Promise.all(cluster.names.map((n) => readList(n, 5_000, TOKEN)))
    for (const l of lists) expect(l.type === "ok" ? l.value : null).toEqual([...before, 77, 78])
  }, 20_000)
})

test("a node holding another secret never joins: the others serve without it, it learns nothing", async () => {
  const d = tempDir()
  writeFileSync(join(d, "secret"), `${SECRET}\n`, { mode: 0o600 })
  writeFileSync(join(d, "other"), "another secret, same length as the first\n", { mode: 0o600 })
  const c = await makeCluster(3, ["--secret-file", join(d, "secret")])
  // The cluster starts whole (an initial member binds every member's incarnation before it votes);
  // node 2 then comes back from its own data dir with another secret.
  c.startAll()
  await c.waitAllReady()
  await c.kill(2)
  const n2 = c.nodes[2]
  if (n2 === undefined) throw new Error("no node 2")
  const intruder = Bun.spawn([ensureBinary(), "server", "--config", c.configFile, "--node", n2.name, "--data-dir", n2.dataDir, "--secret-file", join(d, "other")], {
    stdout: "ignore",
    stderr: Bun.file(n2.logFile)
  })
  try {
    await c.waitHealthy(0)
    await c.waitHealthy(1)
    await waitFor("the intruder to serve", () => healthy(n2.name, 500), 15_000)
    await c.waitLeader(15_000, [2])
    for (let v = 1; v <= 10; v++) expect((await append(c.names[v % 2] as string, { value: v }, { timeoutMs: 5_000 })).type).toBe("ok")
    await Bun.sleep(500)
    const s2 = await st(n2.name)
    expect(s2.listLength).toBe(0)
    expect(s2.peerAuthFailures.BadMac).toBeGreaterThan(0)
    const s0 = await st(c.names[0] as string)
    expect(s0.listLength).toBe(10)
    expect(s0.peerAuthFailures.BadMac).toBeGreaterThan(0)
    // Asked directly, the intruder cannot serve: it has no quorum of its own.
    const r = await append(n2.name, { value: 99 }, { timeoutMs: 1_500 })
    expect(r.type).not.toBe("ok")
    const l = await readList(c.names[1] as string, 5_000)
    expect(l.type === "ok" ? l.value : null).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  } finally {
    intruder.kill("SIGKILL")
    await intruder.exited
  }
}, 40_000)

test("without a secret, /status says peerAuth false and the log warns", async () => {
  const { cluster: open } = await startCluster(3)
  const s = await st(open.names[0] as string)
  expect(s.peerAuth).toBe(false)
  expect(s.clientAuth).toBe(false)
  expect(readFileSync(open.nodes[0]?.logFile as string, "utf8")).toContain("WARNING-peers-not-authenticated")
  await open.stop()
}, 30_000)

test("a secret file that is too short or missing stops the node at start (exit 2, one line)", async () => {
  const d = tempDir()
  writeFileSync(join(d, "short"), "too short\n")
  const c = await makeCluster(3)
  for (const [file, why] of [[join(d, "short"), "at least 16"], [join(d, "missing"), "no such file"]] as const) {
    const p = Bun.spawn([ensureBinary(), "server", "--config", c.configFile, "--node", c.names[0] as string, "--data-dir", join(d, "data"), "--secret-file", file], { stdout: "pipe", stderr: "pipe" })
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited])
    const lines = err.split("\n").filter((l) => l.startsWith("paxos server:"))
    expect(code).toBe(2)
    expect(lines.length).toBe(1)
    expect(lines[0]?.toLowerCase()).toContain(why.toLowerCase())
  }
}, 20_000)
