/**
 * The store's syncs reach the disk: counted as system calls under strace, one fdatasync for every
 * `persist` and every `syncAsync`. And `--unsafe-no-fsync`, the bench's measure of what the disk
 * costs, makes none at all, and a node started with it says so in its log, /status and /metrics.
 */
import { afterAll, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { append } from "../../src/client/http.ts"
import { cleanup, ROOT, startCluster, statuses, tempDir } from "./support.ts"

afterAll(cleanup)

// .ci/run installs strace: in CI the test runs, elsewhere it is skipped without it.
const strace = Bun.which("strace")
const skip = strace === null && process.env.CI === undefined

const ROUNDS = 6

/** Opens a store, persists ROUNDS batches and syncs ROUNDS commits off the loop; counts of each sync call strace saw. */
async function syncCalls(unsafe: boolean): Promise<Record<string, number>> {
  const dir = tempDir("paxos-fsync-")
  const script = join(dir, "store.ts")
  writeFileSync(
    script,
    `import { SqliteStore } from ${JSON.stringify(join(ROOT, "src/server/storage.ts"))}
const { store } = SqliteStore.open(${JSON.stringify(join(dir, "data"))}, { clusterId: "c0ffee", node: "n:1" }, { unsafeNoFsync: ${unsafe} })
const accept = (slot: number) => [{ _tag: "Accept" as const, promised: { round: 1, leader: 0 }, entries: [{ slot, ballot: { round: 1, leader: 0 }, value: [{ _tag: "Append" as const, id: "x." + slot, value: slot }] }] }]
store.persist([{ _tag: "Promise", promised: { round: 1, leader: 0 } }])
for (let i = 1; i < ${ROUNDS}; i++) store.persist(accept(i))
for (let i = 0; i < ${ROUNDS}; i++) {
  store.commit(accept(100 + i))
  await new Promise<void>((resolve, reject) => store.syncAsync((e) => (e === null ? resolve() : reject(e))))
}
store.close()
`
  )
  const trace = join(dir, "trace")
  const proc = Bun.spawn([strace ?? "strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range,syncfs,sync", "-o", trace, process.execPath, script], { stdout: "pipe", stderr: "pipe" })
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()])
  expect(err).toBe("")
  expect(code).toBe(0)
  const counts: Record<string, number> = {}
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    const call = /^\d+\s+(\w+)\(/.exec(line)?.[1]
    if (call !== undefined) counts[call] = (counts[call] ?? 0) + 1
  }
  return counts
}

test.skipIf(skip)("every persist and every syncAsync is an fdatasync; with --unsafe-no-fsync there are none", async () => {
  const safe = await syncCalls(false)
  expect(safe.fdatasync ?? 0).toBeGreaterThanOrEqual(2 * ROUNDS)
  const unsafe = await syncCalls(true)
  expect(unsafe).toEqual({})
}, 60_000)

test("a node started with --unsafe-no-fsync warns, and says fsync false in /status and 0 in /metrics", async () => {
  const { cluster } = await startCluster(3, ["--unsafe-no-fsync"])
  const r = await append(cluster.names[0] as string, { value: 7 }, { timeoutMs: 5_000 })
  expect(r.type).toBe("ok")
  for (const s of await statuses(cluster)) expect(s?.fsync).toBe(false)
  const metrics = await (await fetch(`http://${cluster.names[1]}/metrics`)).text()
  expect(metrics).toMatch(/^paxos_fsync\{node="[^"]+"\} 0$/m)
  for (const n of cluster.nodes) expect(readFileSync(n.logFile, "utf8")).toContain("WARNING-unsafe-no-fsync")
  await cluster.stop()
  const normal = (await startCluster(3)).cluster
  for (const s of await statuses(normal)) expect(s?.fsync).toBe(true)
  expect(await (await fetch(`http://${normal.names[0]}/metrics`)).text()).toMatch(/^paxos_fsync\{node="[^"]+"\} 1$/m)
  for (const n of normal.nodes) expect(readFileSync(n.logFile, "utf8")).not.toContain("unsafe-no-fsync")
}, 60_000)
