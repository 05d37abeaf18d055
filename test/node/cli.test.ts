/**
 * The binary's commands: `client` (its output and exit codes 0/1/2/3), exactly-once retries with
 * client/seq, `start-servers` (data dirs, its cluster secret, Ctrl-C stops all), and usage errors.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { existsSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { append, healthy, status } from "../../src/client/http.ts"
import { freePorts, type LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, startCluster, tempDir } from "./support.ts"

let cluster: LocalCluster

beforeAll(async () => {
  ;({ cluster } = await startCluster())
}, 30_000)

afterAll(cleanup)

/** Runs the binary with `args`; its exit code and output. */
async function paxos(args: string[], cwd?: string): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([ensureBinary(), ...args], { stdout: "pipe", stderr: "pipe", ...(cwd === undefined ? {} : { cwd }) })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, out, err }
}

test("client appends and prints the list; exit 0", async () => {
  const r = await paxos(["client", "--config", cluster.configFile, "5"])
  expect(r.code).toBe(0)
  const list = JSON.parse(r.out) as number[]
  expect(list.at(-1)).toBe(5)
  expect(r.out.trim()).toMatch(/^\[[-\d,]*\]$/)
  const byIndex = await paxos(["client", "--config", cluster.configFile, "--server", "2", "-7"])
  expect(byIndex.code).toBe(0)
  expect((JSON.parse(byIndex.out) as number[]).slice(-2)).toEqual([5, -7])
  const byName = await paxos(["client", "--server", cluster.names[1] as string, "--timeout", "5000", "8"])
  expect(byName.code).toBe(0)
  expect((JSON.parse(byName.out) as number[]).slice(-3)).toEqual([5, -7, 8])
}, 30_000)

test("client: bad input and usage errors exit 2 with one line", async () => {
  for (const args of [["client", "--config", cluster.configFile, "1.5"], ["client", "--config", cluster.configFile, "9007199254740993"], ["client", "--bogus", "1"], ["client"]]) {
    const r = await paxos(args)
    expect(r.code).toBe(2)
    expect(r.err.split("\n")[0]).toStartWith("paxos client: ")
    expect(r.err).not.toContain("    at ")
  }
  const unknown = await paxos(["frobnicate"])
  expect(unknown.code).toBe(2)
  expect(unknown.err).toContain("unknown command 'frobnicate'")
  expect(unknown.err).toContain("usage: paxos")
}, 30_000)

test("server: a bad --sync-lanes exits 2 with one line and starts nothing", async () => {
  const node = cluster.names[0] as string
  for (const [lanes, why] of [["0", "--sync-lanes needs a positive integer, got '0'"], ["two", "--sync-lanes needs a positive integer"], ["9", "--sync-lanes 9: at most 8"]] as const) {
    const r = await paxos(["server", "--config", cluster.configFile, "--node", node, "--data-dir", join(tempDir(), "lanes"), "--sync-lanes", lanes])
    expect(r.code).toBe(2)
    expect(r.err.split("\n")[0]).toStartWith("paxos server: ")
    expect(r.err).toContain(why)
    expect(r.err).not.toContain("    at ")
  }
}, 30_000)

test("client: exit 1 when no node can be reached, 3 when the outcome is unknown, 2 when a node says 400", async () => {
  const [port] = await freePorts(1)
  const down = await paxos(["client", "--server", `127.0.0.1:${port}`, "--timeout", "600", "5"])
  expect(down.code).toBe(1)
  expect(down.err).toContain("not appended")
  const answer = (status: number, error: string, definite: boolean) =>
    Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ error, message: "test", definite }, { status }) })
  const unknown = answer(504, "OutcomeUnknown", false)
  const bad = answer(400, "BadRequest", true)
  try {
    const r3 = await paxos(["client", "--server", `127.0.0.1:${unknown.port}`, "--timeout", "600", "5"])
    expect(r3.code).toBe(3)
    expect(r3.err).toContain("outcome unknown")
    const r2 = await paxos(["client", "--server", `127.0.0.1:${bad.port}`, "5"])
    expect(r2.code).toBe(2)
  } finally {
    unknown.stop(true)
    bad.stop(true)
  }
}, 30_000)

test("a retry with the same client and seq is applied once and gets the first answer", async () => {
  const body = { value: 4242, client: "exactly-once-test", seq: 1 }
  const first = await append(cluster.names[0] as string, body, { timeoutMs: 5_000 })
  const again = await append(cluster.names[1] as string, body, { timeoutMs: 5_000 })
  const third = await append(cluster.names[2] as string, body, { timeoutMs: 5_000 })
  expect(first.type).toBe("ok")
  if (first.type !== "ok" || again.type !== "ok" || third.type !== "ok") throw new Error("append failed")
  expect(again.value.index).toBe(first.value.index)
  expect(third.value.index).toBe(first.value.index)
  expect(third.value.list).toEqual(first.value.list)
  const next = await append(cluster.names[0] as string, { ...body, value: 4343, seq: 2 }, { timeoutMs: 5_000 })
  if (next.type !== "ok") throw new Error("append failed")
  expect(next.value.list?.filter((v) => v === 4242).length).toBe(1)
}, 30_000)

test("start-servers runs every node of the config with data/<host>_<port>, and Ctrl-C stops them all", async () => {
  const dir = tempDir()
  const ports = await freePorts(3)
  writeFileSync(join(dir, "cfg"), `# three nodes\n${ports.map((p) => `127.0.0.1:${p}`).join("\n")}\n`)
  const proc = Bun.spawn([ensureBinary(), "start-servers", "cfg"], { cwd: dir, stdout: "ignore", stderr: "pipe" })
  try {
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      const ok = await Promise.all(ports.map((p) => healthy(`127.0.0.1:${p}`, 300)))
      if (ok.every(Boolean)) break
      await Bun.sleep(50)
    }
    for (const p of ports) {
      expect(await healthy(`127.0.0.1:${p}`, 1_000)).toBe(true)
      expect(existsSync(join(dir, "data", `127.0.0.1_${p}`, "paxos.sqlite"))).toBe(true)
      // Peer authentication is on, with the secret start-servers made for this cluster.
      expect((await status(`127.0.0.1:${p}`, 1_000))?.peerAuth).toBe(true)
    }
    expect(statSync(join(dir, "data", "secret")).mode & 0o777).toBe(0o600)
    expect((await append(`127.0.0.1:${ports[0]}`, { value: 1 }, { timeoutMs: 5_000 })).type).toBe("ok")
    proc.kill("SIGINT")
    expect(await proc.exited).toBe(0)
    for (const p of ports) expect(await healthy(`127.0.0.1:${p}`, 300)).toBe(false)
  } finally {
    proc.kill("SIGKILL")
  }
}, 30_000)
