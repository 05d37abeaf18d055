/**
 * The nodes of a chaos run as processes: started inside the test hosts (network namespaces, see
 * netns.ts) or on loopback, each with its own data directory and log file, and the process
 * faults on them: SIGKILL and restart, SIGSTOP and SIGCONT. Processes are found by pid only
 * (the hosts share one PID space), never by name.
 */
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import type { Subprocess } from "bun"
import { waitReady, type NotReadyNode } from "../cli/ready.ts"
import { healthy, status, type NodeStatus } from "../client/http.ts"
import { hostAddress, hostName, spawnIn } from "./netns.ts"

/** Where the nodes run. */
export type Mode = "netns" | "loopback"

/** The port every node listens on inside its host (netns mode). */
export const NODE_PORT = 5000

export interface NodeSpec {
  /** 0-based position in the config. */
  readonly id: number
  /** `n1`, `n2`, ...: the folder of its data and log under the run's directory. */
  readonly label: string
  /** Its line of the config, `host:port`: the node's name and where clients reach it. */
  readonly name: string
  /** The namespace it runs in (netns mode), or null (loopback). */
  readonly host: string | null
  readonly dataDir: string
  readonly logFile: string
}

export type NodeState = "down" | "up" | "paused"

export interface Crash {
  readonly node: string
  readonly exitCode: number | null
  readonly signal: string | null
  /** Nanoseconds since the run began. */
  readonly time: number
}

interface Slot {
  readonly spec: NodeSpec
  proc: Subprocess | null
  state: NodeState
  /** Set while the harness itself stops the process (kill, shutdown): its exit is expected. */
  stopping: boolean
  starts: number
}

export interface ClusterOptions {
  readonly mode: Mode
  readonly binary: string
  readonly out: string
  readonly nodes: number
  /** Ports for loopback mode, one a node. */
  readonly ports?: readonly number[]
  /** Clock of the run (ns), for crash times. */
  readonly now: () => number
}

/** The node specs and the config file's text for a run. */
export function planNodes(o: ClusterOptions): { specs: NodeSpec[]; config: string } {
  const specs: NodeSpec[] = []
  for (let i = 0; i < o.nodes; i++) {
    const label = `n${i + 1}`
    const name = o.mode === "netns" ? `${hostAddress(i + 1)}:${NODE_PORT}` : `127.0.0.1:${o.ports?.[i] ?? 0}`
    const dir = join(o.out, label)
    specs.push({
      id: i,
      label,
      name,
      host: o.mode === "netns" ? hostName(i + 1) : null,
      dataDir: join(dir, "data"),
      logFile: join(dir, "node.log"),
    })
  }
  const config = `# chaos run: ${o.nodes} nodes (${o.mode})\n` + specs.map((s) => s.name).join("\n") + "\n"
  return { specs, config }
}

export class Cluster {
  readonly specs: NodeSpec[]
  readonly configFile: string
  readonly crashes: Crash[] = []
  /**
   * Nodes whose data dir or log an earlier run in the same output dir left, removed here: a node
   * that started on the old list would make every value of this run appear twice.
   */
  readonly cleared: string[] = []
  private readonly slots: Slot[]
  /** Once set, exits are no longer reported as crashes (the run is shutting down). */
  private closing = false

  constructor(private readonly o: ClusterOptions) {
    const { specs, config } = planNodes(o)
    this.specs = specs
    this.configFile = join(o.out, "config")
    mkdirSync(o.out, { recursive: true })
    writeFileSync(this.configFile, config)
    for (const s of specs) {
      if (existsSync(s.dataDir) || existsSync(s.logFile)) this.cleared.push(s.label)
      rmSync(s.dataDir, { recursive: true, force: true })
      rmSync(s.logFile, { force: true })
      mkdirSync(s.dataDir, { recursive: true })
    }
    this.slots = specs.map((spec) => ({ spec, proc: null, state: "down", stopping: false, starts: 0 }))
  }

  get size(): number {
    return this.slots.length
  }

  state(i: number): NodeState {
    return this.slot(i).state
  }

  /** Pids of the node processes that are running (for a last-resort kill at exit). */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.proc !== null && s.proc.exitCode === null && s.proc.signalCode === null ? [s.proc.pid] : []))
  }

  /** Starts node i if it is down. Its output goes to its log file (appended across restarts). */
  start(i: number): void {
    const s = this.slot(i)
    if (s.state !== "down" || this.closing) return
    const spec = s.spec
    const argv = [this.o.binary, "server", "--config", this.configFile, "--node", spec.name, "--data-dir", spec.dataDir]
    const fd = openSync(spec.logFile, "a")
    s.starts += 1
    writeSync(fd, `# chaos: start #${s.starts} of ${spec.name} at ${new Date().toISOString()}\n`)
    let proc: Subprocess
    try {
      const opts = { stdin: "ignore" as const, stdout: fd, stderr: fd }
      proc = spec.host !== null ? spawnIn(spec.host, argv, opts) : Bun.spawn(argv, opts)
    } finally {
      closeSync(fd)
    }
    s.proc = proc
    s.state = "up"
    s.stopping = false
    proc.exited.then(() => this.onExit(s, proc))
  }

  private onExit(s: Slot, proc: Subprocess): void {
    if (s.proc !== proc) return
    s.proc = null
    s.state = "down"
    if (s.stopping || this.closing) return
    this.crashes.push({ node: s.spec.name, exitCode: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode), time: this.o.now() })
  }

  /** SIGKILL node i and waits until it is gone. Returns whether it was running. */
  async kill(i: number): Promise<boolean> {
    const s = this.slot(i)
    const proc = s.proc
    if (proc === null) return false
    s.stopping = true
    try {
      proc.kill("SIGKILL")
    } catch {
      // already gone
    }
    await withTimeout(proc.exited, 5_000)
    s.state = "down"
    if (s.proc === proc) s.proc = null
    return true
  }

  /** SIGSTOP node i. Returns whether it was running and not paused. */
  pause(i: number): boolean {
    const s = this.slot(i)
    if (s.proc === null || s.state !== "up") return false
    try {
      process.kill(s.proc.pid, "SIGSTOP")
    } catch {
      return false
    }
    s.state = "paused"
    return true
  }

  /** SIGCONT node i if paused. */
  resume(i: number): boolean {
    const s = this.slot(i)
    if (s.proc === null || s.state !== "paused") return false
    try {
      process.kill(s.proc.pid, "SIGCONT")
    } catch {
      // gone meanwhile
    }
    s.state = "up"
    return true
  }

  /** Resumes every paused node and starts every node that is down. */
  reviveAll(): { resumed: string[]; started: string[] } {
    const resumed: string[] = []
    const started: string[] = []
    for (let i = 0; i < this.size; i++) {
      if (this.resume(i)) resumed.push(this.name(i))
      if (this.slot(i).state === "down") {
        this.start(i)
        started.push(this.name(i))
      }
    }
    return { resumed, started }
  }

  /**
   * Stops every node: SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, and SIGKILL
   * after `graceMs`. Resolves once all are gone. Exits from now on are not crashes.
   */
  async stopAll(graceMs = 3_000): Promise<void> {
    this.closing = true
    const procs = this.slots.flatMap((s) => {
      const p = s.proc
      if (p === null) return []
      s.stopping = true
      for (const sig of ["SIGCONT", "SIGTERM"] as const) {
        try {
          process.kill(p.pid, sig)
        } catch {
          // gone
        }
      }
      return [p]
    })
    await withTimeout(Promise.all(procs.map((p) => p.exited)), graceMs)
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          p.kill("SIGKILL")
        } catch {
          // gone
        }
      }
    }
    await withTimeout(Promise.all(procs.map((p) => p.exited)), 5_000)
    for (const s of this.slots) {
      s.proc = null
      s.state = "down"
    }
  }

  /** Synchronous last resort (process exit): SIGCONT and SIGKILL whatever still runs. */
  killAllNow(): void {
    this.closing = true
    for (const pid of this.pids()) {
      for (const sig of ["SIGCONT", "SIGKILL"] as const) {
        try {
          process.kill(pid, sig)
        } catch {
          // gone
        }
      }
    }
  }

  name(i: number): string {
    return this.slot(i).spec.name
  }

  indexOf(name: string): number {
    return this.specs.findIndex((s) => s.name === name)
  }

  /** Waits until every running node answers /health, or the deadline passes. Returns the laggards. */
  async waitHealthy(timeoutMs: number, stop: () => boolean = () => false): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    let pending = this.slots.filter((s) => s.state === "up").map((s) => s.spec)
    while (pending.length > 0 && Date.now() < deadline && !stop() && !this.closing) {
      const ok = await Promise.all(pending.map((s) => healthy(s.name, 500)))
      pending = pending.filter((_, k) => !ok[k])
      if (pending.length > 0) await Bun.sleep(100)
    }
    return pending.map((s) => s.name)
  }

  /**
   * Waits until every node answers GET /ready under one leader (the whole cluster, once started),
   * or the deadline passes. Returns the laggards with why, empty when all are ready. Restarts
   * under faults wait for /health only (`waitHealthy`): a node may stay without a quorum for as
   * long as a partition lasts.
   */
  async waitReady(timeoutMs: number, stop: () => boolean = () => false): Promise<NotReadyNode[]> {
    const r = await waitReady(this.specs.map((s) => s.name), timeoutMs, () => stop() || this.closing)
    return "leader" in r ? [] : [...r.notReady]
  }

  /** /status of every running, unpaused node (null where it does not answer in time). */
  async statuses(timeoutMs = 800): Promise<Array<NodeStatus | null>> {
    return Promise.all(this.slots.map((s) => (s.state === "up" ? status(s.spec.name, timeoutMs) : Promise.resolve(null))))
  }

  /**
   * The leader, from /status: a node that says it leads (the highest ballot if several do, as a
   * deposed leader may not know yet), else the node most others name. null when none is known.
   */
  async leader(): Promise<number | null> {
    const st = await this.statuses()
    let best: { i: number; round: number } | null = null
    st.forEach((s, i) => {
      if (s === null || s.role !== "leader") return
      const round = ballotRound(s)
      if (best === null || round > best.round) best = { i, round }
    })
    if (best !== null) return (best as { i: number }).i
    const votes = new Map<number, number>()
    for (const s of st) {
      if (s === null || typeof s.leader !== "string") continue
      const i = this.indexOf(s.leader)
      if (i >= 0) votes.set(i, (votes.get(i) ?? 0) + 1)
    }
    let top: number | null = null
    for (const [i, v] of votes) if (top === null || v > (votes.get(top) ?? 0)) top = i
    return top
  }

  private slot(i: number): Slot {
    const s = this.slots[i]
    if (s === undefined) throw new Error(`chaos: no node ${i}`)
    return s
  }
}

function ballotRound(s: NodeStatus): number {
  const b = s.ballot as { round?: unknown } | undefined
  return typeof b?.round === "number" ? b.round : -1
}

/** Resolves when p does or after ms, whichever is first (never rejects). */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const t = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  try {
    return await Promise.race([p.catch(() => undefined), t])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}

/**
 * n TCP ports on 127.0.0.1 that can be bound now, for loopback mode: consecutive from a random
 * start below the kernel's ephemeral range (so client connections do not take them meanwhile).
 */
export function freePorts(n: number, rnd: () => number = Math.random): number[] {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(rnd() * 10_000)
    const listeners: Array<{ stop(force?: boolean): void }> = []
    try {
      for (let i = 0; i < n; i++) listeners.push(Bun.listen({ hostname: "127.0.0.1", port: base + i, socket: { data() {} } }))
      return Array.from({ length: n }, (_, i) => base + i)
    } catch {
      // taken: try another range
    } finally {
      for (const l of listeners) l.stop(true)
    }
  }
  throw new Error("chaos: no free range of ports on 127.0.0.1 found")
}
