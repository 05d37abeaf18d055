/**
 * `paxos member` on a real cluster, with a client token: list (table and JSON), add, remove and
 * promote through any node the config lists, and the exit codes: 0 done, 1 refused or no node
 * would, 2 usage or a refused token, 3 unknown (a node that takes the request and never answers).
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePorts, type LocalCluster } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, startCluster, tempDir } from "./support.ts"

afterAll(cleanup)

let cluster: LocalCluster
let tokenFile: string

beforeAll(async () => {
  tokenFile = join(tempDir(), "token")
  writeFileSync(tokenFile, "member-cli-test-token-0123456789\n", { mode: 0o600 })
  ;({ cluster } = await startCluster(3, ["--client-token-file", tokenFile]))
}, 30_000)

async function member(args: string[], env: Record<string, string> = { PAXOS_CLIENT_TOKEN_FILE: tokenFile }): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([ensureBinary(), "member", ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } })
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  return { code, out, err }
}

test("list: one line per member, voter or learner, and which leads; -o json", async () => {
  const r = await member(["list", "--config", cluster.configFile])
  expect(r.code).toBe(0)
  const lines = r.out.trim().split("\n")
  expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(cluster.names)
  for (const l of lines) expect(l.split(/\s+/)[1]).toBe("voter")
  expect(lines.filter((l) => l.endsWith("leader"))).toHaveLength(1)
  const json = await member(["list", "--config", cluster.configFile, "-o", "json"])
  expect(json.code).toBe(0)
  const view = JSON.parse(json.out) as { epoch: number; leader: string; members: Array<{ address: string; leader: boolean }> }
  expect(view.epoch).toBe(0)
  expect(view.members.find((m) => m.leader)?.address).toBe(view.leader)
})

test("add, add again (refused: exit 1), promote before it joined (refused), remove: through any node of the config", async () => {
  const [port] = await freePorts(1)
  const address = `127.0.0.1:${port}`
  const added = await member(["add", address, "--config", cluster.configFile])
  expect(added.code).toBe(0)
  expect(added.out).toContain(`added ${address} as member 3, a learner`)
  expect(added.out).toContain(`--node ${address} --join`)
  const again = await member(["add", address, "--config", cluster.configFile])
  expect(again.code).toBe(1)
  expect(again.err).toContain(`refused: ${address} is a member already`)
  const early = await member(["promote", address, "--config", cluster.configFile])
  expect(early.code).toBe(1)
  expect(early.err).toContain("has not joined yet")
  const listed = await member(["list", "--config", cluster.configFile])
  expect(listed.out + listed.err).toContain(address)
  const removed = await member(["remove", address, "--config", cluster.configFile, "-o", "json"])
  expect(removed.code).toBe(0)
  const view = JSON.parse(removed.out) as { slot: number; members: Array<{ address: string }>; pending: { members: Array<{ address: string }> } | null }
  expect(typeof view.slot).toBe("number")
  expect((view.pending?.members ?? view.members).map((m) => m.address)).toEqual(cluster.names)
  const twice = await member(["remove", address, "--config", cluster.configFile])
  expect(twice.code).toBe(1)
  expect(twice.err).toContain(`${address} is not a member`)
}, 60_000)

test("usage and bad input exit 2; a refused token exits 2", async () => {
  const cases: Array<[string[], string]> = [
    [[], "missing what to do"],
    [["grow"], "unknown action 'grow'"],
    [["add"], "add needs the node's address"],
    [["add", "a b:1"], "no valid host"],
    [["add", "h:1", "--force"], "--force is for promote only"],
    [["list", "h:1"], "list takes no address"],
    [["list", "-o", "yaml"], "-o must be table or json"],
    [["add", "h:1", "--config", "/nonexistent/config"], "cannot read config file"]
  ]
  for (const [args, why] of cases) {
    const r = await member(args.includes("--config") ? args : [...args, "--config", cluster.configFile])
    expect({ args, code: r.code }).toEqual({ args, code: 2 })
    expect(r.err).toContain(why)
  }
  const noToken = await member(["list", "--config", cluster.configFile], { PAXOS_CLIENT_TOKEN_FILE: "" })
  expect(noToken.code).toBe(2)
  expect(noToken.err).toContain("client token")
}, 60_000)

test("no node reachable: exit 1; a node that takes the change and never answers: exit 3 (outcome unknown)", async () => {
  const ports = await freePorts(2)
  const dead = join(tempDir(), "dead-config")
  writeFileSync(dead, `127.0.0.1:${ports[0]}\n`)
  const r = await member(["add", "127.0.0.1:9", "--config", dead, "--timeout", "2000"])
  expect(r.code).toBe(1)
  expect(r.err).toContain("not added")
  expect(r.err).toContain("connection refused")
  const silent = Bun.serve({ port: ports[1], hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => undefined) })
  try {
    const config = join(tempDir(), "silent-config")
    writeFileSync(config, `127.0.0.1:${ports[1]}\n`)
    const s = await member(["add", "127.0.0.1:9", "--config", config, "--timeout", "1500"])
    expect(s.code).toBe(3)
    expect(s.err).toContain("outcome unknown")
  } finally {
    void silent.stop(true)
  }
}, 60_000)
