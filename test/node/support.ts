/**
 * Shared set-up of the node tests: the binary (built once with `bun run build` when dist/paxos is
 * missing or older than any source file), temp dirs, clusters of real processes on loopback.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { readList, status, type NodeStatus } from "../../src/client/http.ts"
import { ensureBuilt } from "../../src/cli/build.ts"
import { LocalCluster } from "../../src/cli/local-cluster.ts"

export const ROOT = resolve(import.meta.dir, "..", "..")
export const BINARY = join(ROOT, "dist", "paxos")

let built = false

/** Builds dist/paxos unless it is newer than every source file (once per test run). */
export function ensureBinary(): string {
  if (!built) ensureBuilt(ROOT)
  built = true
  return BINARY
}

const dirs: string[] = []

/** A fresh temp dir, removed by `cleanup`. */
export function tempDir(prefix = "paxos-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}

const clusters: LocalCluster[] = []

/** A cluster of `n` nodes of the binary (not started), listening on `host` (default 127.0.0.1). */
export async function makeCluster(n = 3, serverFlags: string[] = [], host?: string): Promise<LocalCluster> {
  const c = await LocalCluster.create({ command: [ensureBinary()], n, dir: tempDir(), serverFlags, ...(host === undefined ? {} : { host }) })
  clusters.push(c)
  return c
}

/** Starts all nodes and waits for health and a leader. */
export async function startCluster(n = 3, serverFlags: string[] = []): Promise<{ cluster: LocalCluster; leader: number }> {
  const cluster = await makeCluster(n, serverFlags)
  cluster.startAll()
  await cluster.waitAllHealthy()
  const leader = await cluster.waitLeader()
  return { cluster, leader }
}

/** Stops every cluster started here and removes the temp dirs (for afterAll). */
export async function cleanup(): Promise<void> {
  await Promise.all(clusters.splice(0).map((c) => c.stop()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

/** Waits until `cond` holds, polling every 20 ms; throws naming `what` after timeoutMs. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await cond()) return
    await Bun.sleep(20)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Every node's list once all agree, within timeoutMs (throws with what they hold otherwise). */
export async function convergedLists(cluster: LocalCluster, timeoutMs = 15_000): Promise<number[][]> {
  const deadline = Date.now() + timeoutMs
  let last: Array<number[] | null> = []
  while (Date.now() < deadline) {
    last = await Promise.all(cluster.names.map(async (n) => {
      const r = await readList(n, 3_000)
      return r.type === "ok" ? r.value : null
    }))
    const first = JSON.stringify(last[0])
    if (last.every((l) => l !== null && JSON.stringify(l) === first)) return last as number[][]
    await Bun.sleep(100)
  }
  throw new Error(`lists did not converge: lengths ${last.map((l) => l?.length ?? "none").join(", ")}`)
}

/** The /status of every node (null for those that do not answer). */
export async function statuses(cluster: LocalCluster): Promise<Array<NodeStatus | null>> {
  return Promise.all(cluster.names.map((n) => status(n, 2_000)))
}

/** Sums a counter over the nodes that answer. */
export function sumCounter(sts: Array<NodeStatus | null>, name: string): number {
  return sts.reduce((a, s) => a + (s?.counters[name] ?? 0), 0)
}
