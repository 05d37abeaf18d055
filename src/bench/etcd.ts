/**
 * etcd as the system to compare with: a 3-member cluster of the installed `etcd` (Debian's
 * etcd-server package) started here on loopback ports with fresh data dirs, fsync on (etcd's
 * default; nothing here turns it off), stopped at the end.
 *
 * One put per operation through etcd's gRPC-gateway HTTP/JSON API: `POST <gw>/kv/put` with a
 * base64 key and value, where <gw> is /v3 for etcd 3.4+, /v3beta for 3.3 and /v3alpha before.
 * Each connection writes its own key (`bench-<n>`), values are distinct.
 *
 * Counters from each member's /metrics (Prometheus text): peer bytes sent
 * (etcd_network_peer_sent_bytes_total), fsyncs (WAL fsyncs plus backend commits, each one fsync),
 * puts applied (etcd_mvcc_put_total of the leader). etcd counts no peer messages.
 *
 * `startEtcdToCompare` is what `--vs-etcd` calls: it finds the binary, or says why the bench runs
 * ours only.
 */
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from "node:fs"
import { join } from "node:path"
import type { Subprocess } from "bun"
import { freePorts } from "../cli/local-cluster.ts"
import type { Workload } from "./loadgen.ts"
import { note } from "./report.ts"
import { stopProcess, type Member, type SystemUnderTest, type Totals } from "./system.ts"

export const ETCD_INSTALL_HINT = "etcd is not installed; to compare with it: apt-get update && apt-get install -y etcd-server"

export interface EtcdVersion {
  readonly text: string
  readonly major: number
  readonly minor: number
}

/** The etcd binary to use (`--etcd-binary`, else `etcd` on PATH), or null when there is none. */
export function findEtcd(given: string | undefined): string | null {
  if (given !== undefined) return existsSync(given) ? given : null
  return Bun.which("etcd") ?? null
}

/**
 * `--vs-etcd`: the etcd to compare with, `n` members started in `dir`; null, with a note saying
 * why, when there is no etcd binary (the bench then runs ours only).
 */
export async function startEtcdToCompare(given: string | undefined, dir: string, n = 3): Promise<SystemUnderTest | null> {
  const bin = findEtcd(given)
  if (bin === null) {
    note(given === undefined ? `${ETCD_INSTALL_HINT}; running ours only` : `no etcd at ${given}; running ours only`)
    return null
  }
  note(`bench: starting ${n} etcd members of ${bin} on loopback (data in ${dir})`)
  return startEtcd(bin, dir, n)
}

/** `etcd --version` → 3.4.23. */
export function etcdVersion(binary: string): EtcdVersion {
  const r = Bun.spawnSync([binary, "--version"], { stdout: "pipe", stderr: "pipe" })
  const out = r.stdout.toString() + r.stderr.toString()
  const m = /etcd Version:\s*(\d+)\.(\d+)\.(\S+)/.exec(out)
  if (m === null) throw new Error(`cannot tell the version of ${binary}: ${out.trim().split("\n")[0] ?? "no output"}`)
  return { text: `${m[1]}.${m[2]}.${m[3]}`, major: Number(m[1]), minor: Number(m[2]) }
}

/** The gateway prefix of that version. */
export function gatewayPrefix(v: EtcdVersion): string {
  if (v.major > 3 || (v.major === 3 && v.minor >= 4)) return "/v3"
  if (v.minor === 3) return "/v3beta"
  return "/v3alpha"
}

const b64 = (s: string): string => Buffer.from(s).toString("base64")

/** One Prometheus sample's value summed over its label sets (`name{...} value` and `name value`). */
export function promSum(text: string, name: string): number | null {
  let sum = 0
  let found = false
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== "{" && rest[0] !== " ") continue
    const v = Number(line.slice(line.lastIndexOf(" ") + 1))
    if (Number.isFinite(v)) {
      sum += v
      found = true
    }
  }
  return found ? sum : null
}

interface EtcdMember {
  readonly name: string
  readonly clientPort: number
  readonly peerPort: number
  readonly dataDir: string
  readonly logFile: string
  proc: Subprocess | null
}

let nextPut = 1

export async function startEtcd(binary: string, dir: string, n = 3): Promise<SystemUnderTest> {
  const version = etcdVersion(binary)
  const gw = gatewayPrefix(version)
  const ports = await freePorts(2 * n)
  // An --out of an earlier run: fresh data dirs, as for ours (the old members' data names other ports).
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const ms: EtcdMember[] = Array.from({ length: n }, (_, i) => ({
    name: `m${i}`,
    clientPort: ports[2 * i] as number,
    peerPort: ports[2 * i + 1] as number,
    dataDir: join(dir, `data-${i}`),
    logFile: join(dir, `etcd-${i}.log`),
    proc: null
  }))
  const initialCluster = ms.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",")
  const token = `bench-${process.pid}-${Date.now()}`
  for (const m of ms) {
    const argv = [
      binary,
      "--name", m.name,
      "--data-dir", m.dataDir,
      "--listen-client-urls", `http://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls", `http://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster", initialCluster,
      "--initial-cluster-token", token,
      "--initial-cluster-state", "new"
    ]
    if (version.major === 3 && version.minor >= 4) argv.push("--logger", "zap", "--log-outputs", "stderr")
    const fd = openSync(m.logFile, "a")
    try {
      // etcd reads ETCD_* variables as flags: give it none of the caller's.
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ETCD_") && v !== undefined) env[k] = v
      m.proc = Bun.spawn(argv, { stdout: fd, stderr: fd, stdin: "ignore", env })
    } finally {
      closeSync(fd)
    }
  }
  const members: Member[] = ms.map((m) => ({ name: `127.0.0.1:${m.clientPort}`, host: "127.0.0.1", port: m.clientPort, pid: () => m.proc?.pid ?? null }))
  const stop = async () => {
    await Promise.all(
      ms.map(async (m) => {
        if (m.proc !== null) await stopProcess(m.proc, 5_000)
        m.proc = null
      })
    )
  }

  const post = async (m: Member, path: string, body: unknown, timeoutMs: number): Promise<unknown> => {
    const r = await fetch(`http://${m.name}${gw}${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) })
    if (r.status !== 200) throw new Error(`${m.name}${gw}${path}: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`)
    return r.json()
  }

  /** Index of the member whose own id is the leader's id, within timeoutMs. */
  const leader = async (timeoutMs = 20_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs
    let last = ""
    while (Date.now() < deadline) {
      for (let i = 0; i < members.length; i++) {
        try {
          const s = (await post(members[i] as Member, "/maintenance/status", {}, 1_000)) as { header?: { member_id?: string }; leader?: string }
          if (s.leader !== undefined && s.leader !== "0" && s.header?.member_id === s.leader) return i
        } catch (e) {
          last = e instanceof Error ? e.message : String(e)
        }
      }
      if (ms.some((m) => m.proc !== null && m.proc.exitCode !== null)) break
      await Bun.sleep(100)
    }
    throw new Error(`etcd: no leader within ${timeoutMs} ms (${last || "no answer"}); see ${dir}/etcd-*.log`)
  }

  try {
    await leader()
    // One put through the gateway proves the path before any measurement.
    await post(members[0] as Member, "/kv/put", { key: b64("bench-probe"), value: b64("1") }, 5_000)
  } catch (e) {
    await stop()
    throw e
  }

  const totals = async (): Promise<Totals> => {
    const texts = await Promise.all(
      members.map(async (m) => {
        try {
          const r = await fetch(`http://${m.name}/metrics`, { signal: AbortSignal.timeout(3_000) })
          return r.status === 200 ? await r.text() : null
        } catch {
          return null
        }
      })
    )
    let peerBytes = 0
    let fsyncs = 0
    let fsyncSeconds = 0
    const raw: Array<Record<string, number> | null> = []
    for (const t of texts) {
      if (t === null) {
        raw.push(null)
        continue
      }
      const rec: Record<string, number> = {
        peerSentBytes: promSum(t, "etcd_network_peer_sent_bytes_total") ?? 0,
        walFsyncs: promSum(t, "etcd_disk_wal_fsync_duration_seconds_count") ?? 0,
        walFsyncSeconds: promSum(t, "etcd_disk_wal_fsync_duration_seconds_sum") ?? 0,
        backendCommitSeconds: promSum(t, "etcd_disk_backend_commit_duration_seconds_sum") ?? 0,
        backendCommits: promSum(t, "etcd_disk_backend_commit_duration_seconds_count") ?? 0,
        puts: promSum(t, "etcd_mvcc_put_total") ?? 0,
        proposalsCommitted: promSum(t, "etcd_server_proposals_committed_total") ?? 0
      }
      raw.push(rec)
      peerBytes += rec.peerSentBytes as number
      fsyncs += (rec.walFsyncs as number) + (rec.backendCommits as number)
      fsyncSeconds += (rec.walFsyncSeconds as number) + (rec.backendCommitSeconds as number)
    }
    const missing = texts.some((t) => t === null)
    const puts = raw.map((r) => r?.puts ?? 0)
    return {
      peerBytes: missing ? null : peerBytes,
      peerMessages: null,
      fsyncs: missing ? null : fsyncs,
      fsyncSeconds: missing ? null : fsyncSeconds,
      // every member applies every put: the largest count is the cluster's
      ops: missing ? null : Math.max(...puts),
      members: raw,
      listLength: raw.map(() => null)
    }
  }

  return {
    kind: "etcd",
    label: `etcd ${version.text} ${n} members (${binary}, gateway ${gw})`,
    members,
    logDir: dir,
    leader: () => leader(),
    workload: (): Workload => ({
      method: "POST",
      path: `${gw}/kv/put`,
      contentType: "application/json",
      body: (seq) => `{"key":"${b64(`bench-${seq % 1024}`)}","value":"${b64(String(nextPut++))}"}`
    }),
    totals,
    stop
  }
}
