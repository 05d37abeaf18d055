/**
 * What the bench needs of a system under test (our cluster, etcd, a bare echo server): its
 * members, where to send (the leader, or spread over all), the request, the server-side counters
 * that give cost per operation, and the memory of each member process. Plus the helpers for
 * /proc: VmRSS and CPU time of a pid, and the pid listening on a loopback port.
 */
import { readFileSync, readdirSync, readlinkSync } from "node:fs"
import type { Endpoint, Workload } from "./loadgen.ts"

export type Target = "leader" | "spread"

export interface Member {
  /** `host:port` of its client API. */
  readonly name: string
  readonly host: string
  readonly port: number
  /** The process, when known (started by the bench, or found listening on the port). */
  readonly pid: () => number | null
}

/** Server-side totals over all members, at one moment; null where the system has no such counter. */
export interface Totals {
  /** Bytes of peer (replication) traffic sent by all members. */
  readonly peerBytes: number | null
  readonly peerMessages: number | null
  readonly fsyncs: number | null
  /** Seconds spent in those fsyncs (ours: persisting, SQLite's write and fsync together). */
  readonly fsyncSeconds: number | null
  /** Operations the servers acknowledged (the denominator of the per-op figures), or null to use the client's count. */
  readonly ops: number | null
  /** Per-member raw counters, kept in the JSON for whoever wants more. */
  readonly members: ReadonlyArray<Record<string, number> | null>
  /** Per member: the length of the replicated list (ours), for the memory bound. */
  readonly listLength: ReadonlyArray<number | null>
  /**
   * Per member, as the member reports it (ours: GET /status), for members whose process this
   * machine cannot see: resident bytes and CPU seconds used. Absent or null: read /proc by pid.
   */
  readonly rss?: ReadonlyArray<number | null>
  readonly cpuSeconds?: ReadonlyArray<number | null>
  /** Ours: some member says in /status that it runs without fsync (--unsafe-no-fsync). */
  readonly unsafeNoFsync?: boolean
}

export interface SystemUnderTest {
  /** "paxos", "etcd", "echo". */
  readonly kind: string
  /** What and which version, for the report. */
  readonly label: string
  readonly members: readonly Member[]
  /** Index of the member that leads now (0 for leaderless systems). */
  leader(): Promise<number>
  workload(list: boolean): Workload
  totals(): Promise<Totals>
  stop(): Promise<void>
  /** Where its logs are (for error messages). */
  readonly logDir: string | null
}

/** The endpoints for a target: the leader alone, or every member. */
export async function endpointsFor(sys: SystemUnderTest, target: Target): Promise<Endpoint[]> {
  if (target === "spread") return sys.members.map((m) => ({ host: m.host, port: m.port }))
  const m = sys.members[await sys.leader()] as Member
  return [{ host: m.host, port: m.port }]
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux). */
const CLK_TCK = 100

/** CPU time (user + system) a process has used, in seconds, or null when it cannot be read. */
export function cpuSeconds(pid: number | null): number | null {
  if (pid === null) return null
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return null
  }
}

/** VmRSS of a process in bytes, or null when it cannot be read. */
export function rssBytes(pid: number | null): number | null {
  if (pid === null) return null
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? null : Number(m[1]) * 1024
  } catch {
    return null
  }
}

/** The pid of the process listening on TCP `port` on this machine (via /proc/net/tcp{,6}), or null. */
export function pidListening(port: number): number | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0")
  const inodes = new Set<string>()
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = readFileSync(f, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/)
      // sl local_address rem_address st ... inode (column 9)
      if (cols.length < 10 || cols[3] !== "0A") continue
      if (cols[1]?.endsWith(`:${hexPort}`)) inodes.add(cols[9] as string)
    }
  }
  if (inodes.size === 0) return null
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${p}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`))
        if (m !== null && inodes.has(m[1] as string)) return Number(p)
      } catch {
        // gone meanwhile
      }
    }
  }
  return null
}

/** Whether a host name or address is this machine's loopback (the only place the bench sends to). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopProcess(proc: { kill(sig?: number | NodeJS.Signals): void; readonly exited: Promise<number> }, graceMs: number): Promise<void> {
  proc.kill("SIGTERM")
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs)
  await proc.exited
  clearTimeout(timer)
}
