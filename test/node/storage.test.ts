/**
 * Data files that are not this node's are refused with one clear line and a non-zero exit, and
 * left untouched: another cluster's (of the older format, whose cluster was its config file),
 * another node's, a newer format's, corrupt ones, a foreign SQLite file. The node's own file still
 * works afterwards, and files of format 2 are upgraded in place: that cluster keeps its list and
 * goes on appending.
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

/**
 * `dir` as a binary of format 2 left it: the same tables, and in meta only the format, the cluster
 * id (the hash of its config file) and the node's address.
 */
function asFormatTwo(dir: string): void {
  const db = new Database(join(dir, DATA_FILE))
  db.run("DELETE FROM meta WHERE key NOT IN ('cluster_id', 'node', 'created_at')")
  db.run("INSERT INTO meta VALUES ('format_version', '2')")
  db.close()
}

test("a data file of format 2 from another cluster (another config file) is refused and left untouched", async () => {
  const ports = await freePorts(3)
  const other = join(tempDir(), "other-config")
  writeFileSync(other, [cluster.names[0], ...ports.map((p) => `127.0.0.1:${p}`)].join("\n") + "\n")
  const dir = copyOfNode0()
  asFormatTwo(dir)
  await expectRefused(other, cluster.names[0] as string, dir, "belongs to another cluster")
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
  await cluster.stop()
}, 30_000)

test("a cluster whose files are all of format 2 is upgraded in place: it keeps its list and appends on", async () => {
  for (const n of cluster.nodes) asFormatTwo(n.dataDir)
  cluster.startAll()
  await cluster.waitAllHealthy()
  const leader = await cluster.waitLeader()
  const r = await append(cluster.names[leader] as string, { value: 21 }, { timeoutMs: 5_000 })
  expect(r.type === "ok" ? r.value.list : null).toEqual(Array.from({ length: 21 }, (_, i) => i + 1))
  await cluster.stop()
  for (const [i, n] of cluster.nodes.entries()) {
    const db = new Database(join(n.dataDir, DATA_FILE), { readonly: true })
    const meta = new Map(db.query<{ key: string; value: string }, []>("SELECT key, value FROM meta").all().map((x) => [x.key, x.value]))
    db.close()
    expect(meta.get("format_version")).toBe("3")
    expect(meta.get("incarnation")).toBe((i + 1).toString(16).padStart(16, "0"))
    expect(meta.get("member_id")).toBe(String(i))
    expect(JSON.parse(meta.get("initial") as string).members.map((m: { address: string }) => m.address)).toEqual(cluster.names)
  }
}, 30_000)
