/**
 * Our cluster as a system under test: either three nodes of the binary started here on loopback
 * (fresh data dirs under the run's directory, fsync on as in production unless the bench is told
 * `--unsafe-no-fsync`), or a running cluster named by a config file, on this machine or others.
 *
 * Counters come from GET /status of every node: peerBytesSent, peerMessagesSent and fsyncs summed
 * over the nodes, and clientOk summed over the nodes as the count of acknowledged appends. The
 * same answers carry each node's RSS and CPU time, which the bench uses for nodes whose process
 * it cannot see in this machine's /proc.
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { LocalCluster } from "../cli/local-cluster.ts"
import { writeNewSecret } from "../cli/start-servers.ts"
import { status } from "../client/http.ts"
import { readConfig } from "../server/cluster-config.ts"
import type { Workload } from "./loadgen.ts"
import { isLoopback, pidListening, stopProcess, type Member, type SystemUnderTest, type Totals } from "./system.ts"

/** Values appended by the bench: one counter for the whole process, so values are distinct. */
let nextValue = 1

const STATUS_TIMEOUT_MS = 3_000

function workload(list: boolean, token?: string): Workload {
  return {
    method: "POST",
    path: list ? "/append" : "/append?list=false",
    contentType: "application/json",
    ...(token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }),
    body: () => `{"value":${nextValue++}}`
  }
}

const numberOrNull = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null)

async function totalsOf(members: readonly Member[]): Promise<Totals> {
  const sts = await Promise.all(members.map((m) => status(m.name, STATUS_TIMEOUT_MS)))
  let peerBytes = 0
  let peerMessages = 0
  let fsyncs = 0
  let syncMicros = 0
  let ops = 0
  for (const s of sts) {
    if (s === null) continue
    peerBytes += s.counters.peerBytesSent ?? 0
    peerMessages += s.counters.peerMessagesSent ?? 0
    fsyncs += s.counters.fsyncs ?? 0
    syncMicros += s.counters.syncMicros ?? 0
    ops += s.counters.clientOk ?? 0
  }
  const missing = sts.some((s) => s === null)
  return {
    peerBytes: missing ? null : peerBytes,
    peerMessages: missing ? null : peerMessages,
    fsyncs: missing ? null : fsyncs,
    fsyncSeconds: missing ? null : syncMicros / 1e6,
    ops: missing ? null : ops,
    members: sts.map((s) => (s === null ? null : { ...s.counters })),
    listLength: sts.map((s) => (s === null ? null : s.listLength)),
    rss: sts.map((s) => numberOrNull((s?.memory as { rss?: unknown } | undefined)?.rss)),
    cpuSeconds: sts.map((s) => numberOrNull(s?.cpuSeconds)),
    unsafeNoFsync: sts.some((s) => s?.fsync === false)
  }
}

async function leaderOf(members: readonly Member[], timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const sts = await Promise.all(members.map((m) => status(m.name, 1_000)))
    const i = sts.findIndex((s) => s !== null && s.role === "leader")
    if (i !== -1) return i
    const named = sts.find((s) => s !== null && s.leader !== null)?.leader
    const j = members.findIndex((m) => m.name === named)
    if (j !== -1) return j
    await Bun.sleep(50)
  }
  throw new Error(`no leader among ${members.map((m) => m.name).join(", ")} within ${timeoutMs} ms`)
}

export interface StartOptions {
  /** argv prefix that runs the node binary, e.g. ["dist/paxos"]. */
  readonly command: readonly string[]
  readonly dir: string
  readonly nodes: number
  /** Extra environment for the nodes (e.g. BUN_OPTIONS for --cpu-prof). */
  readonly env?: Record<string, string>
  /** Give the nodes a cluster secret (dir/secret, 32 random bytes): peer authentication on. */
  readonly secret?: boolean
  /** Start the nodes with --unsafe-no-fsync. */
  readonly unsafeNoFsync?: boolean
}

/** Starts a fresh cluster of the binary on loopback and waits for a leader. */
export async function startPaxos(o: StartOptions): Promise<SystemUnderTest & { readonly cluster: LocalCluster }> {
  // Bun.spawn passes the environment the process started with, not later changes to process.env:
  // extra variables go through env(1), which execs the node in place (same pid).
  const extra = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`)
  const command = extra.length === 0 ? o.command : [Bun.which("env") ?? "/usr/bin/env", ...extra, ...o.command]
  const serverFlags: string[] = o.unsafeNoFsync === true ? ["--unsafe-no-fsync"] : []
  // An --out of an earlier run: fresh data dirs, logs and secret for fresh nodes (the old data
  // belongs to a cluster on other ports, which the nodes would refuse).
  rmSync(o.dir, { recursive: true, force: true })
  if (o.secret === true) {
    mkdirSync(o.dir, { recursive: true })
    const file = join(o.dir, "secret")
    writeNewSecret(file)
    serverFlags.push("--secret-file", file)
  }
  const cluster = await LocalCluster.create({ command, n: o.nodes, dir: o.dir, serverFlags })
  cluster.startAll()
  const members: Member[] = cluster.nodes.map((n) => ({ name: n.name, host: "127.0.0.1", port: n.port, pid: () => n.proc?.pid ?? null }))
  try {
    await cluster.waitAllHealthy(20_000)
    await leaderOf(members, 20_000)
  } catch (e) {
    await cluster.stop()
    throw e
  }
  return {
    kind: "paxos",
    label: `paxos ${o.nodes} nodes (${o.command.join(" ")}${o.unsafeNoFsync === true ? ", UNSAFE: no fsync" : ""})`,
    members,
    cluster,
    logDir: o.dir,
    leader: () => leaderOf(members),
    workload,
    totals: () => totalsOf(members),
    stop: async () => {
      await Promise.all(
        cluster.nodes.map(async (n) => {
          if (n.proc !== null) await stopProcess(n.proc, 5_000)
          n.proc = null
        })
      )
    }
  }
}

/**
 * A running cluster named by a config file. Nodes on loopback are found in /proc by their port;
 * for the others (another machine, or this one's own address) the bench has each node's RSS and
 * CPU from its /status. `token` is the client token, for a cluster that needs one.
 */
export async function attachPaxos(configFile: string, token?: string): Promise<SystemUnderTest> {
  const cfg = readConfig(configFile)
  const pids = new Map<number, number | null>()
  const members: Member[] = cfg.nodes.map((n) => ({
    name: n.name,
    host: n.host === "localhost" ? "127.0.0.1" : n.host,
    port: n.port,
    pid: () => {
      if (!isLoopback(n.host)) return null
      if (!pids.has(n.port) || pids.get(n.port) === null) pids.set(n.port, pidListening(n.port))
      return pids.get(n.port) ?? null
    }
  }))
  await leaderOf(members, 10_000)
  return {
    kind: "paxos",
    label: `paxos ${members.length} nodes (running, ${configFile})`,
    members,
    logDir: null,
    leader: () => leaderOf(members),
    workload: (list) => workload(list, token),
    totals: () => totalsOf(members),
    stop: async () => {}
  }
}

/** The argv prefix that runs the node for `--binary`: a path, or "source" (bun + src/cli/main.ts). */
export function nodeCommand(binary: string): string[] {
  if (binary === "source") return [process.execPath, join(import.meta.dir, "..", "cli", "main.ts")]
  return [binary]
}
