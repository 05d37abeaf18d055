/**
 * Identities on real processes (docs/MEMBERSHIP.md, "Identities"): an initial member on an empty
 * data dir waits until it knows every initial member's incarnation, says whom it waits for, and
 * serves nothing meanwhile; a wiped member restarted with its old command is refused (exit 1, a
 * message saying what to do) and never votes, while the others serve on; a member whose data dir
 * holds its identity restarts whatever the config file says now, as long as its address is the
 * same.
 */
import { afterAll, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { append, readList, status } from "../../src/client/http.ts"
import { freePorts } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, makeCluster, startCluster, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

const logOf = (file: string): string => readFileSync(file, "utf8")

/** Runs `paxos server ARGS` until it exits (at most `ms`); its exit code and stderr. */
async function serverRun(args: string[], ms = 40_000): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn([ensureBinary(), "server", ...args], { stdout: "pipe", stderr: "pipe" })
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms)
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()])
  clearTimeout(timer)
  return { code, stderr }
}

test("a lone initial member waits for the others, says whom, serves nothing; with all of them up, the cluster serves", async () => {
  const c = await makeCluster(3)
  c.start(0)
  const n0 = c.names[0] as string
  await waitFor("node 0 to answer /status", async () => (await status(n0, 500)) !== null, 10_000)
  // It does not serve yet: /health says so.
  expect((await fetch(`http://${n0}/health`)).status).toBe(503)
  await waitFor("node 0 to log whom it waits for", () => /bootstrap-waiting for=\S+/.test(logOf(c.nodes[0]?.logFile as string)), 10_000)
  const line = logOf(c.nodes[0]?.logFile as string).split("\n").find((l) => l.includes("bootstrap-waiting")) as string
  expect(line).toContain(`for=${c.names[1]},${c.names[2]}`)
  const st = (await status(n0, 2_000)) as unknown as { role: string; waitingFor: string[]; ready: { ok: boolean; reason: string } }
  expect(st.role).toBe("bootstrapping")
  expect(st.waitingFor).toEqual(c.names.slice(1))
  expect(st.ready).toEqual({ ok: false, reason: "Bootstrapping" })
  const ready = await fetch(`http://${n0}/ready`)
  expect(ready.status).toBe(503)
  expect(((await ready.json()) as { reason: string }).reason).toBe("Bootstrapping")
  const r = await append(n0, { value: 1 }, { timeoutMs: 2_000 })
  expect(r.type === "fail" ? [r.status, r.error] : r.type).toEqual([503, "Unavailable"])
  // The others start: every member binds the same three incarnations, and the cluster serves.
  c.start(1)
  c.start(2)
  await c.waitAllReady()
  expect((await append(n0, { value: 1 }, { timeoutMs: 5_000 })).type).toBe("ok")
  const ids = await Promise.all(c.names.map(async (n) => (await (await fetch(`http://${n}/peer/identity?cluster=${(await status(n, 2_000))?.cluster}&from=9`)).json()) as { id: number; incarnation: string; initial: { members: Array<{ incarnation: string }> } }))
  expect(ids.map((a) => a.id)).toEqual([0, 1, 2])
  for (const a of ids) expect(a.initial.members.map((m) => m.incarnation)).toEqual(ids.map((x) => x.incarnation))
  expect(new Set(ids.map((a) => a.incarnation)).size).toBe(3)
  for (const a of ids) expect(a.incarnation).toMatch(/^[0-9a-f]{16}$/)
}, 60_000)

test("a wiped member restarted with its old command is refused and never votes; the others serve on", async () => {
  const { cluster: c, leader } = await startCluster(3)
  for (let v = 1; v <= 5; v++) expect((await append(c.names[leader] as string, { value: v }, { timeoutMs: 5_000 })).type).toBe("ok")
  const victim = (leader + 1) % 3
  const name = c.names[victim] as string
  await c.kill(victim)
  c.wipe(victim)
  const { code, stderr } = await serverRun(["--config", c.configFile, "--node", name, "--data-dir", c.nodes[victim]?.dataDir as string], 20_000)
  expect(code).toBe(1)
  const error = stderr.split("\n").find((l) => l.startsWith("paxos server:")) as string
  for (const part of ["voted before under another data directory", `paxos member remove ${name}`, `paxos member add ${name}`, "--join"]) expect(error).toContain(part)
  expect(stderr).not.toContain(" serving ")
  expect(stderr).not.toContain("election-started")
  console.log(`refused: ${error}`)
  // The two others still make a quorum.
  const other = [0, 1, 2].find((i) => i !== leader && i !== victim) as number
  expect((await append(c.names[other] as string, { value: 6 }, { timeoutMs: 5_000 })).type).toBe("ok")
  const l = await readList(c.names[leader] as string, 5_000)
  expect(l.type === "ok" ? l.value : null).toEqual([1, 2, 3, 4, 5, 6])
}, 60_000)

test("a member restarts from its data dir with a changed config file: its identity is in its data dir", async () => {
  const { cluster: c } = await startCluster(3)
  expect((await append(c.names[0] as string, { value: 7 }, { timeoutMs: 5_000 })).type).toBe("ok")
  const before = await status(c.names[1] as string, 2_000)
  await c.kill(1)
  // Other lines in another order, and one more: once, another cluster; now only addresses to contact.
  const changed = join(tempDir(), "config")
  writeFileSync(changed, [...c.names].reverse().join("\n") + "\n127.0.0.1:1\n")
  c.start(1, { config: changed })
  await c.waitHealthy(1)
  await waitFor("node 1 to apply the list", async () => (await status(c.names[1] as string, 2_000))?.listLength === 1, 10_000)
  const after = await status(c.names[1] as string, 2_000)
  expect([after?.id, after?.cluster]).toEqual([before?.id, before?.cluster])
  expect((await append(c.names[1] as string, { value: 8 }, { timeoutMs: 5_000 })).type).toBe("ok")
}, 60_000)

test("a node that is no line of the config and holds no data is refused at once, saying how to add it", async () => {
  const c = await makeCluster(3)
  const { code, stderr } = await serverRun(["--config", c.configFile, "--node", "127.0.0.1:1", "--data-dir", join(tempDir(), "d")])
  expect(code).toBe(2)
  expect(stderr).toContain("127.0.0.1:1 is not a node of the config")
  expect(stderr).toContain("paxos member add 127.0.0.1:1")
  expect(stderr).toContain("--join")
}, 20_000)

test("peer envelopes count only from the incarnation their member id is bound to: others are dropped, counted and logged", async () => {
  const { cluster: c, leader } = await startCluster(3)
  const target = leader
  const from = (leader + 1) % 3
  const node = c.names[target] as string
  const st = (await status(node, 2_000)) as unknown as { cluster: string }
  const bound = ((await status(c.names[from] as string, 2_000)) as unknown as { incarnation: string }).incarnation
  const wrong = bound === "00000000000000ff" ? "00000000000000fe" : "00000000000000ff"
  const counter = async (name: string) => (await status(node, 2_000))?.counters[name] ?? 0
  // A heartbeat of ballot 0: below anything promised, it changes nothing wherever it lands.
  const body = JSON.stringify({ cluster: st.cluster, from, to: target, messages: [{ _tag: "Commit", ballot: { round: 0, leader: from }, commit: 0 }] })
  const post = (headers: Record<string, string>) => fetch(`http://${node}/peer/envelope`, { method: "POST", body, headers })
  const dropped0 = await counter("peerEnvelopesWrongIncarnation")
  const refused = await post({ "x-paxos-incarnation": wrong })
  expect(refused.status).toBe(400)
  expect(((await refused.json()) as { message: string }).message).toContain(`speaks as incarnation ${wrong}, but node ${from} is bound to ${bound}`)
  // Naming none is naming the one derived from the id (a cluster upgraded from format 2): not this one.
  expect((await post({})).status).toBe(400)
  expect((await post({ "x-paxos-incarnation": "NOT-HEX" })).status).toBe(400)
  expect((await post({ "x-paxos-incarnation": bound })).status).toBe(204)
  expect((await counter("peerEnvelopesWrongIncarnation")) - dropped0).toBe(3)
  // A connection as `from` (stopped meanwhile: its own connection would replace this one) naming another incarnation stays open, and what it sends is dropped.
  await c.kill(from)
  const open = async (incarnation: string) => {
    const ws = new WebSocket(`ws://${node}/peer/ws?cluster=${st.cluster}&from=${from}&incarnation=${incarnation}`)
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve()
      ws.onerror = () => reject(new Error("no connection"))
    })
    let closed = false
    ws.onclose = () => (closed = true)
    return { ws, closed: () => closed }
  }
  const impostor = await open(wrong)
  const before = await counter("peerEnvelopesWrongIncarnation")
  for (let i = 0; i < 5; i++) impostor.ws.send(body)
  await waitFor("the impostor's envelopes to be dropped", async () => (await counter("peerEnvelopesWrongIncarnation")) - before === 5)
  expect(impostor.closed()).toBe(false)
  impostor.ws.close()
  const real = await open(bound)
  const after = await counter("peerEnvelopesWrongIncarnation")
  const received = await counter("peerEnvelopesReceived")
  real.ws.send(body)
  await waitFor("the envelope to arrive", async () => (await counter("peerEnvelopesReceived")) > received)
  expect(await counter("peerEnvelopesWrongIncarnation")).toBe(after)
  real.ws.close()
  const metrics = await (await fetch(`http://${node}/metrics`)).text()
  expect(metrics).toMatch(/paxos_peer_envelopes_wrong_incarnation_total\{node="[^"]+"\} 8/)
  expect(readFileSync(c.nodes[target]?.logFile as string, "utf8")).toContain("peer-envelope-dropped")
  c.start(from)
  await c.waitHealthy(from)
}, 60_000)

test("--join of an address that is no learner of the cluster: exit 1, saying to add it first", async () => {
  const { cluster: c } = await startCluster(3)
  const [port] = await freePorts(1)
  const r = await serverRun(["--config", c.configFile, "--node", `127.0.0.1:${port}`, "--data-dir", join(tempDir(), "d"), "--join"])
  expect(r.code).toBe(1)
  const error = r.stderr.split("\n").find((l) => l.startsWith("paxos server:")) as string
  expect(error).toContain(`127.0.0.1:${port} is not a member of the cluster`)
  expect(error).toContain(`run paxos member add 127.0.0.1:${port} first`)
  expect(r.stderr).not.toContain(" serving ")
}, 60_000)

test("--join that reaches no member within its bound: exit 1, nothing started; the data dir then needs --join again", async () => {
  const ports = await freePorts(3)
  const dir = tempDir()
  const config = join(dir, "config")
  writeFileSync(config, ports.slice(0, 2).map((p) => `127.0.0.1:${p}`).join("\n") + "\n")
  const data = join(dir, "d")
  const node = `127.0.0.1:${ports[2]}`
  const t0 = Date.now()
  const r = await serverRun(["--config", config, "--node", node, "--data-dir", data, "--join", "--join-timeout", "2000"])
  expect(r.code).toBe(1)
  expect(Date.now() - t0).toBeLessThan(15_000)
  const error = r.stderr.split("\n").find((l) => l.startsWith("paxos server:")) as string
  expect(error).toContain(`no member of the cluster let ${node} join within 2 s`)
  expect(error).toContain("never starts a cluster of its own")
  expect(r.stderr).not.toContain(" serving ")
  // Its data dir holds an incarnation and nothing else: without --join it is refused.
  const again = await serverRun(["--config", config, "--node", node, "--data-dir", data])
  expect(again.code).toBe(1)
  expect(again.stderr).toContain("was made by --join and has not joined yet: start it with --join again")
}, 60_000)

test("--join on a data dir that holds an identity restarts that member", async () => {
  const { cluster: c } = await startCluster(3)
  expect((await append(c.names[0] as string, { value: 3 }, { timeoutMs: 5_000 })).type).toBe("ok")
  const before = await status(c.names[2] as string, 2_000)
  await c.kill(2)
  c.start(2, { flags: ["--join"] })
  await c.waitHealthy(2)
  const after = await status(c.names[2] as string, 2_000)
  expect([after?.id, after?.cluster, (after as unknown as { incarnation: string }).incarnation]).toEqual([before?.id, before?.cluster, (before as unknown as { incarnation: string }).incarnation])
  expect(logOf(c.nodes[2]?.logFile as string)).toContain("join-ignored")
  await waitFor("node 2 to apply the list", async () => (await status(c.names[2] as string, 2_000))?.listLength === 1, 10_000)
}, 60_000)
