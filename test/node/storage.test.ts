/**
 * Data files that are not this node's are refused with one clear line and a non-zero exit, and
 * left untouched: another cluster's, another node's, a newer format's, corrupt ones, a foreign
 * SQLite file. The node's own file still works afterwards.
 */
import { Database } from "bun:sqlite"
import { afterAll, beforeAll, expect, test } from "bun:test"
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync, statSync } from "node:fs"
import { join } from "node:path"
import { append, readList } from "../../src/client/http.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { freePorts } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, startCluster, tempDir } from "./support.ts"

let cluster: LocalCluster
const DATA_FILE = "paxos.sqlite"

beforeAll(async () => {
  ;({ cluster } = await startCluster())
  for (let v = 1; v <= 20; v++) {
    const r = await append(cluster.names[v % 3] as string, { value: v }, { timeoutMs: 5_000 })
    expect(r.type).toBe("ok")
  }
  await cluster.stop()
}, 60_000)

afterAll(cleanup)

/** A copy of node 0's data dir to tamper with. */
function copyOfNode0(): string {
  const dir = join(tempDir(), "data")
  cpSync(cluster.nodes[0]?.dataDir as string, dir, { recursive: true })
  return dir
}

/** The bytes of every file in `dir`, by name. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of readdirSync(dir)) if (!f.endsWith("-shm")) out[f] = Bun.hash(readFileSync(join(dir, f))).toString(16)
  return out
}

/** Runs `paxos server` and waits for it to exit (it must, within 10 s). */
async function runServer(config: string, node: string, dataDir: string): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn([ensureBinary(), "server", "--config", config, "--node", node, "--data-dir", dataDir], { stdout: "pipe", stderr: "pipe" })
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000)
  const code = await proc.exited
  clearTimeout(timer)
  return { code, stderr: await new Response(proc.stderr).text() }
}

/** The server refuses `dir`: exit 1, one stderr line that mentions `why`, no stack trace, files unchanged. */
async function expectRefused(config: string, node: string, dir: string, why: string): Promise<void> {
  const before = snapshot(dir)
  const r = await runServer(config, node, dir)
  const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("paxos server:"))
  expect(r.code).toBe(1)
  expect(errorLines.length).toBe(1)
  expect(errorLines[0]).toContain(why)
  expect(r.stderr).not.toContain("    at ")
  expect(snapshot(dir)).toEqual(before)
  console.log(`refused: ${errorLines[0]}`)
}

test("a data file from another cluster is refused and left untouched", async () => {
  const ports = await freePorts(3)
  const other = join(tempDir(), "other-config")
  writeFileSync(other, ports.map((p) => `127.0.0.1:${p}`).join("\n") + "\n")
  await expectRefused(other, `127.0.0.1:${ports[0]}`, copyOfNode0(), "belongs to another cluster")
}, 20_000)

test("a data file of another node of the same cluster is refused", async () => {
  await expectRefused(cluster.configFile, cluster.names[1] as string, copyOfNode0(), "belongs to node")
}, 20_000)

test("a data file of a newer format version is refused", async () => {
  const dir = copyOfNode0()
  const db = new Database(join(dir, DATA_FILE))
  db.run("UPDATE meta SET value = '99' WHERE key = 'format_version'")
  db.close()
  await expectRefused(cluster.configFile, cluster.names[0] as string, dir, "newer than this binary")
}, 20_000)

test("a data file with a garbage header is refused as corrupt", async () => {
  const dir = copyOfNode0()
  const fd = openSync(join(dir, DATA_FILE), "r+")
  writeSync(fd, Buffer.from("this is not a database, it is garbage".repeat(3)), 0, undefined, 0)
  closeSync(fd)
  await expectRefused(cluster.configFile, cluster.names[0] as string, dir, "corrupt")
}, 20_000)

test("a data file with a damaged page is refused as corrupt", async () => {
  const dir = copyOfNode0()
  const file = join(dir, DATA_FILE)
  expect(existsSync(`${file}-wal`) && statSync(`${file}-wal`).size > 0).toBe(false)
  const size = statSync(file).size
  const page = 4096
  expect(size).toBeGreaterThan(3 * page)
  // Overwrite the b-tree pages after the schema page with a pattern.
  const fd = openSync(file, "r+")
  for (let p = 1; p * page < size; p++) writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, p * page)
  closeSync(fd)
  await expectRefused(cluster.configFile, cluster.names[0] as string, dir, "corrupt")
}, 20_000)

test("an SQLite file that is not a paxos data file is refused", async () => {
  const dir = join(tempDir(), "foreign")
  cpSync(cluster.nodes[0]?.dataDir as string, dir, { recursive: true })
  const db = new Database(join(dir, DATA_FILE))
  db.run("DROP TABLE meta")
  db.close()
  await expectRefused(cluster.configFile, cluster.names[0] as string, dir, "not a paxos data file")
}, 20_000)

test("the nodes' own files still work: the cluster restarts with its list", async () => {
  cluster.startAll()
  await cluster.waitAllHealthy()
  await cluster.waitLeader()
  const l = await readList(cluster.names[0] as string, 5_000)
  expect(l.type === "ok" ? l.value.length : -1).toBe(20)
}, 30_000)
