/**
 * The nodes of a chaos run as processes: started inside the test hosts (network namespaces, see
 * netns.ts) or on loopback, each with its own data directory and log file, and the process
 * faults on them: SIGKILL and restart, SIGSTOP and SIGCONT. Processes are found by pid only
 * (the hosts share one PID space), never by name.
 *
 * The hosts are a pool: the first `members` of them are the cluster's initial members (the
 * `config` file lists only them), the others are spares that the member nemesis (members.ts)
 * adds later. Each host carries what the harness knows of its membership (`Membership`): a host
 * that is no member is never started, whatever the kill nemesis asks, and its data dir is empty;
 * a host added to the cluster starts with `--join` (and keeps it across restarts, where it is a
 * no-op), with the `contacts` file, which lists every host of the pool, as whom to ask.
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

/**
 * What the harness knows of a host's membership: `yes` a member (its data dir is its own), `no`
 * definitely not one (its process is stopped and its data dir empty), `unknown` after a change
 * whose outcome is unknown (members.ts says how that is settled).
 */
export type Membership = "yes" | "no" | "unknown"

/** How long a node started with --join asks the members before it gives up (the run ends first). */
export const JOIN_TIMEOUT_MS = 3_600_000

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
  member: Membership
  /** Start with --join (a host that was added to the cluster, not an initial member). */
  join: boolean
  /** Its data dir may hold an identity: it was started since it was last wiped. */
  hasData: boolean
  /** Set while its removal is asked for: an exit then is held in `leftEarly`, not a crash yet. */
  leaving: boolean
  leftEarly: Crash | null
}

export interface ClusterOptions {
  readonly mode: Mode
  readonly binary: string
  readonly out: string
  /** Hosts in the pool. */
  readonly nodes: number
  /** The initial members: the first this many hosts (default all). */
  readonly members?: number
  /** Ports for loopback mode, one a node. */
  readonly ports?: readonly number[]
  /** Clock of the run (ns), for crash times. */
  readonly now: () => number
}

/**
 * The node specs and the config files' text for a run: `config` lists the initial members (it
 * makes the cluster), `contacts` every host (whom a joining node asks).
 */
export function planNodes(o: ClusterOptions): { specs: NodeSpec[]; config: string; contacts: string } {
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
  const members = o.members ?? o.nodes
  const config = `# chaos run: ${members} initial members of ${o.nodes} hosts (${o.mode})\n` + specs.slice(0, members).map((s) => s.name).join("\n") + "\n"
  const contacts = `# chaos run: every host, whom a node started with --join asks\n` + specs.map((s) => s.name).join("\n") + "\n"
  return { specs, config, contacts }
}

export class Cluster {
  readonly specs: NodeSpec[]
  readonly configFile: string
  readonly contactsFile: string
  /** How many hosts are initial members (the first ones). */
  readonly initialMembers: number
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
    const { specs, config, contacts } = planNodes(o)
    this.specs = specs
    this.initialMembers = o.members ?? o.nodes
    this.configFile = join(o.out, "config")
    this.contactsFile = join(o.out, "contacts")
    mkdirSync(o.out, { recursive: true })
    writeFileSync(this.configFile, config)
    writeFileSync(this.contactsFile, contacts)
    for (const s of specs) {
      if (existsSync(s.dataDir) || existsSync(s.logFile)) this.cleared.push(s.label)
      rmSync(s.dataDir, { recursive: true, force: true })
      rmSync(s.logFile, { force: true })
      mkdirSync(s.dataDir, { recursive: true })
    }
    this.slots = specs.map((spec) => {
      const initial = spec.id < this.initialMembers
      return { spec, proc: null, state: "down", stopping: false, starts: 0, member: initial ? "yes" : "no", join: !initial, hasData: false, leaving: false, leftEarly: null }
    })
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

  membership(i: number): Membership {
    return this.slot(i).member
  }

  /** Records what the harness now knows of host i's membership. */
  setMembership(i: number, m: Membership): void {
    this.slot(i).member = m
  }

  /** Whether host i's data dir may hold an identity (it ran since it was last wiped). */
  hasData(i: number): boolean {
    return this.slot(i).hasData
  }

  /**
   * May host i run? A member may; so may a host whose membership is unknown while its data dir
   * is its own (its process is that member's, removed or not). Never a host that is no member.
   */
  startable(i: number): boolean {
    const s = this.slot(i)
    return s.member === "yes" || (s.member === "unknown" && s.hasData)
  }

  /** The hosts the harness takes for members. */
  members(): number[] {
    return range(this.size).filter((i) => this.slot(i).member === "yes")
  }

  /**
   * Starts node i if it is down and may run (`startable`). Its output goes to its log file
   * (appended across restarts). A host that was added starts with --join. Returns whether it
   * started.
   */
  start(i: number): boolean {
    const s = this.slot(i)
    if (s.state !== "down" || this.closing || !this.startable(i)) return false
    const spec = s.spec
    const argv = s.join
      ? [this.o.binary, "server", "--config", this.contactsFile, "--node", spec.name, "--data-dir", spec.dataDir, "--join", "--join-timeout", String(JOIN_TIMEOUT_MS)]
      : [this.o.binary, "server", "--config", this.configFile, "--node", spec.name, "--data-dir", spec.dataDir]
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
    s.hasData = true
    proc.exited.then(() => this.onExit(s, proc))
    return true
  }

  private onExit(s: Slot, proc: Subprocess): void {
    if (s.proc !== proc) return
    s.proc = null
    s.state = "down"
    if (s.stopping || this.closing) return
    const crash = { node: s.spec.name, exitCode: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode), time: this.o.now() }
    if (s.leaving) s.leftEarly = crash
    else this.crashes.push(crash)
  }

  /**
   * Brackets a request to remove host i: a node that stops on its own meanwhile (a joining node
   * told it is no member) is no crash if the removal happened. `leaving(i, false)` ends it: an
   * exit held meanwhile becomes a crash unless `removed`.
   */
  leaving(i: number, on: boolean, removed = false): void {
    const s = this.slot(i)
    s.leaving = on
    if (on || s.leftEarly === null) return
    if (!removed) this.crashes.push(s.leftEarly)
    s.leftEarly = null
  }

  /** Empties host i's data dir (its process must be down). */
  wipe(i: number): void {
    const s = this.slot(i)
    if (s.proc !== null) throw new Error(`chaos: wipe of ${s.spec.name} while it runs`)
    rmSync(s.spec.dataDir, { recursive: true, force: true })
    mkdirSync(s.spec.dataDir, { recursive: true })
    s.hasData = false
  }

  /** From now on host i starts with --join. */
  joins(i: number): void {
    this.slot(i).join = true
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

  /** Resumes every paused node and starts every node that is down and may run (`startable`). */
  reviveAll(): { resumed: string[]; started: string[] } {
    const resumed: string[] = []
    const started: string[] = []
    for (let i = 0; i < this.size; i++) {
      if (this.resume(i)) resumed.push(this.name(i))
      if (this.slot(i).state === "down" && this.start(i)) started.push(this.name(i))
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
   * Waits until every initial member answers GET /ready under one leader (the whole cluster, once
   * started), or the deadline passes. Returns the laggards with why, empty when all are ready. Restarts
   * under faults wait for /health only (`waitHealthy`): a node may stay without a quorum for as
   * long as a partition lasts.
   */
  async waitReady(timeoutMs: number, stop: () => boolean = () => false): Promise<NotReadyNode[]> {
    const r = await waitReady(this.specs.slice(0, this.initialMembers).map((s) => s.name), timeoutMs, () => stop() || this.closing)
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

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
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
