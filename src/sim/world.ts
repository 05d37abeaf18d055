/**
 * The deterministic simulator: the real core (`runBatch` over `step`) on 3 or 5 nodes, with a seeded
 * network (loss, duplication, delay and so reordering, partitions of several shapes), crashes with
 * restart (a crash may tear a batch: its early messages left, its writes are lost), pauses, and
 * clients that append unique values and read at random nodes with timeouts and retries. Disks are
 * pipelined as the server's are: a commit becomes durable some ticks later (one sync covering every
 * commit made before it started), later batches run meanwhile, messages that depend on writes wait
 * for them, and a crash keeps a random prefix of the commits not yet synced and loses the rest.
 *
 * Checked after every step (TigerBeetle's state checker):
 *  - at most one value is chosen per slot, where "chosen" is computed from the acceptors' durable
 *    accepts (a quorum at one ballot), not from what learners claim;
 *  - no node learns a decision that differs from another's;
 *  - applied lists are prefixes of one another, and no running node's list shrinks.
 * At the end the client history must pass the exact checker. Then a liveness phase: faults heal and
 * every client op must complete within a bounded number of ticks, all nodes converge, and every
 * node becomes ready (readiness.ts) under one leader.
 * One seed replays exactly: all randomness comes from it.
 */
import { Cause, Context, Effect, Exit, Option, Runtime } from "effect"
import { batchKey } from "../core/acceptor.ts"
import * as Bal from "../core/ballot.ts"
import { defaultConfig, hasBug, quorum, type BugName, type NodeConfig } from "../core/config.ts"
import { DurableOrder } from "../core/durable-order.ts"
import { InvariantViolation } from "../core/invariant.ts"
import { derivedIncarnation, indexedConfig, isQuorum, latestConfig, memberById, MEMBERS_MAX, voters, type Change, type Config } from "../core/membership.ts"
import type { Batch, Message } from "../core/messages.ts"
import { Random } from "../core/prng.ts"
import { Clients, Network, Storage, StorageError, runBatch, type BatchResult } from "../core/program.ts"
import { readiness } from "../core/readiness.ts"
import { restore, type Envelope, type Event, type Input, type NodeState, type Reply, type Write } from "../core/state.ts"
import { checkOps, type CheckResult } from "../check/checker.ts"
import type { MicroOp, Op } from "../check/history.ts"
import { DecidedLog, type Applied } from "./decided-log.ts"
import { MemStore } from "./store.ts"

export interface SimOptions {
  readonly seed: number
  readonly nodes: 3 | 5
  readonly clients: number
  readonly ops: number
  readonly faults: boolean
  /** Changes of membership and disk wipes among the faults (default: in three runs of four with faults). */
  readonly membership?: boolean
  readonly bug?: BugName | undefined
  /** Ticks the liveness phase may take for the last ops and convergence. */
  readonly livenessTicks: number
  /** Give up on the fault phase after this many ticks (a liveness failure if ops remain). */
  readonly maxTicks: number
}

export const defaultSimOptions = (seed: number, overrides: Partial<SimOptions> = {}): SimOptions => ({
  seed,
  nodes: 3,
  clients: 5,
  ops: 500,
  faults: true,
  livenessTicks: 3_000,
  maxTicks: 60_000,
  ...overrides
})

export interface SimResult {
  readonly seed: number
  readonly violations: string[]
  readonly ticks: number
  readonly history: Op[]
  readonly check: CheckResult | null
  readonly counters: Record<string, number>
  /** Each node's applied list at the end (null for a node that is down). */
  readonly lists: ReadonlyArray<readonly number[] | null>
}

const MAX_DELAY = 8
const CLIENT_TIMEOUT_TICKS = 200

interface SimNode {
  readonly id: number
  /** The node's command: its config (for a node that joined, the configuration it was bound in). */
  cfg: NodeConfig
  /** The incarnation of its data directory. */
  incarnation: string
  /** Started at least once (a member added later starts once it is bound). */
  started: boolean
  /** Its data directory was wiped: the next start is with an empty one and a new incarnation. */
  wiped: boolean
  /** Started on a wiped data directory and refused as a voter: it never runs again. */
  refused: boolean
  /** When to ask the cluster again to bind its incarnation (a member added, not yet joined). */
  bindAt: number
  state: NodeState | null
  store: MemStore
  paused: boolean
  restartAt: number
  resumeAt: number
  inputs: Input[]
  /** Length of the list already compared with the global list. */
  verified: number
  boots: number
  /** Which commits since boot are durable, and the messages held until they are (as the server's). */
  disk: DurableOrder<readonly Envelope[]>
  /** The writes of the commits not yet durable, oldest first: a crash loses them, or a suffix of them. */
  unsynced: Write[][]
}

interface InFlight {
  readonly from: number
  readonly to: number
  readonly msg: Message
}

interface Client {
  readonly k: number
  process: number
  seq: number
  /** The op in progress. */
  op: null | {
    readonly kind: "append" | "read"
    readonly value: number
    readonly seq: number
    readonly invoke: Op
    attempts: number
    /** Whether every attempt so far failed definitely (then the op is a :fail). */
    definite: boolean
    rid: number
    node: number
    deadline: number
  }
  done: number
  idleUntil: number
}

/** Faults of the network: each drawn from the seed. */
interface NetFaults {
  loss: number
  dup: number
  blocked: Set<number>
}

export class World {
  readonly rng: Random
  readonly nodes: SimNode[]
  readonly clients: Client[] = []
  readonly history: Op[] = []
  readonly violations: string[] = []
  readonly counters: Record<string, number> = {}
  private readonly buckets: InFlight[][] = Array.from({ length: MAX_DELAY + 2 }, () => [])
  private readonly net: NetFaults = { loss: 0, dup: 0, blocked: new Set() }
  private readonly rids = new Map<number, number>()
  private nextRid = 1
  private nextValue = 1
  private issued = 0
  private t = 0
  private faultsOn: boolean
  /** Chance per tick that a node's sync in progress completes: its disk's speed. */
  private readonly syncChance: number
  /** How many syncs each node's disk runs at once (the server's `--sync-lanes`). */
  private readonly syncLanes: number
  private nextFaultAt = 50
  private healAt = 0
  /** Chosen value of each slot, from durable accepts: slot -> key of the value. */
  private readonly chosen = new Map<number, string>()
  /** Votes: "slot|ballot" -> value key and voters. */
  private readonly votes = new Map<string, { key: string; voters: Set<number> }>()
  /** Decisions learned by any node: slot -> key. */
  private readonly learned = new Map<number, string>()
  /** The globally decided log, replayed: the configuration of each slot comes from it. */
  private readonly log: DecidedLog
  /** Votes whose slot's configuration is not known yet: "slot|ballot" keys. */
  private readonly unjudged = new Set<string>()
  /** Decisions learned by a node before their slot's configuration was known: checked once it is. */
  private readonly unbacked: Array<{ readonly slot: number; readonly key: string; readonly node: number }> = []
  /** The settings every node of this run shares. */
  private readonly base: Partial<NodeConfig>
  /** Membership faults are drawn in this run. */
  private readonly members: boolean
  /** Members added so far, and the number of the next address. */
  private added = 0
  /** Client requests that are changes of membership (the nemesis's, not the clients'). */
  private readonly adminRids = new Set<number>()
  /** The longest applied list seen on any node. */
  private readonly global: number[] = []

  constructor(readonly opts: SimOptions) {
    this.rng = new Random(opts.seed)
    this.faultsOn = opts.faults
    this.syncChance = this.rng.pick([1, 0.5, 0.2])
    // Drawn apart from the world's stream: a seed with one lane runs as it did before lanes existed.
    this.syncLanes = new Random(opts.seed ^ 0x1a9e5).pick([1, 2, 3])
    const snapshotEverySlots = this.rng.pick([4, 8, 16, 64])
    this.base = {
      snapshotEverySlots,
      snapshotChunkValues: this.rng.pick([3, 10, 1000]),
      windowSlots: this.rng.pick([1, 4, 16]),
      batchCommandsMax: this.rng.pick([1, 3, 16]),
      messageEntriesMax: 8,
      requestTicks: 120,
      clientTableMax: 64,
      // In half the runs learners stay learners until the nemesis promotes them, or makes one a
      // voter in place of another (Replace), which needs a learner at hand.
      promoteLearners: new Random(opts.seed ^ 0x5ee1).chance(0.5),
      bugs: opts.bug === undefined ? new Set() : new Set([opts.bug])
    }
    // Drawn apart from the world's stream, as the sync lanes are.
    this.members = opts.faults && (opts.membership ?? true) && new Random(opts.seed ^ 0x3e3b).chance(0.75)
    const initial = indexedConfig(opts.nodes)
    this.log = new DecidedLog(initial)
    this.nodes = []
    for (let id = 0; id < opts.nodes; id++) {
      const node = this.newNode(id, defaultConfig(id, opts.nodes, { ...this.base, initial }), derivedIncarnation(id))
      this.nodes.push(node)
      this.boot(node)
    }
    for (let k = 0; k < opts.clients; k++) this.clients.push({ k, process: k, seq: 0, op: null, done: 0, idleUntil: 0 })
  }

  // -------------------------------------------------------------------------------------------
  // Running

  run(): SimResult {
    const o = this.opts
    while (this.issued < o.ops || this.clients.some((c) => c.op !== null)) {
      if (this.t >= o.maxTicks) {
        this.violate(`liveness: fault phase did not finish ${o.ops} ops in ${o.maxTicks} ticks`)
        break
      }
      this.tick()
      if (this.violations.length > 0) return this.result(null)
    }
    this.healAll()
    this.faultsOn = false
    this.livenessPhase()
    const check = checkOps(this.history)
    if (!check.valid) {
      for (const e of check.errors.slice(0, 3)) this.violate(`history ${e.kind}: ${e.message}`)
    }
    return this.result(check)
  }

  private result(check: CheckResult | null): SimResult {
    const lists = this.nodes.map((n) => (n.state === null ? null : n.state.list.slice()))
    return { seed: this.opts.seed, violations: this.violations, ticks: this.t, history: this.history, check, counters: this.counters, lists }
  }

  /** Faults are healed: each client's next ops, and a read at every node, must complete in time. */
  private livenessPhase(): void {
    const deadline = this.t + this.opts.livenessTicks
    for (const c of this.clients) c.done = 0
    // An op at every member (the members may still change: a refused one is being removed).
    const target = (c: Client) => c.done >= this.log.latest.members.length
    while (!this.clients.every((c) => target(c) && c.op === null)) {
      if (this.t >= deadline) {
        this.violate(`liveness: ops did not complete within ${this.opts.livenessTicks} ticks after healing`)
        return
      }
      this.tick(true)
      if (this.violations.length > 0) return
    }
    // Convergence: every member applies the same list (a member refused after a wipe must have been
    // removed; a member added must have joined and installed its first snapshot). Removed nodes keep
    // running, and are not waited for.
    const members = () => this.log.latest.members.map((m) => this.nodes[m.id] as SimNode)
    const lengthOf = (n: SimNode) => (n.state === null || n.state.joining ? -1 : n.state.list.length)
    let converged = false
    while (this.t < deadline) {
      if (members().every((n) => lengthOf(n) === this.global.length)) {
        converged = true
        break
      }
      this.tick(true, false)
      if (this.violations.length > 0) return
    }
    if (!converged) {
      const shown = members().map((n) => `${n.id}${memberById(this.log.latest, n.id)?.voter === true ? "v" : "l"}:${n.refused ? "refused" : lengthOf(n)}`)
      this.violate(`liveness: members did not converge (list lengths ${shown.join(",")} vs ${this.global.length})`)
      return
    }
    // Readiness: every voter follows the same leader, which holds a quorum, and applied what it committed.
    const voting = () => this.log.latest.members.filter((m) => m.voter).map((m) => this.nodes[m.id] as SimNode)
    while (this.t < deadline) {
      const rs = voting().map((n) => (n.state === null ? null : readiness(n.state)))
      if (rs.every((r) => r !== null && r.ok && r.leader === rs[0]?.leader)) return
      this.tick(true, false)
      if (this.violations.length > 0) return
    }
    const shown = voting().map((n) => (n.state === null ? "down" : ((r) => (r.ok ? `ready(leader ${r.leader})` : r.reason))(readiness(n.state))))
    this.violate(`liveness: voters not all ready after healing: ${shown.join(", ")}`)
  }

  private tick(liveness = false, clientsOn = true): void {
    this.t++
    if (this.faultsOn) this.nemesis()
    this.membershipStep()
    this.wake()
    this.deliver()
    if (clientsOn) this.clientsAct(liveness)
    this.runNodes()
  }

  // -------------------------------------------------------------------------------------------
  // Nodes

  private newNode(id: number, cfg: NodeConfig, incarnation: string): SimNode {
    return {
      id,
      cfg,
      incarnation,
      started: false,
      wiped: false,
      refused: false,
      bindAt: 0,
      state: null,
      store: new MemStore(),
      paused: false,
      restartAt: 0,
      resumeAt: 0,
      inputs: [],
      verified: 0,
      boots: 0,
      disk: new DurableOrder(this.syncLanes),
      unsynced: []
    }
  }

  private boot(node: SimNode): void {
    if (node.wiped && !this.bootWiped(node)) return
    node.boots++
    node.started = true
    node.state = restore(node.cfg, node.store.load(), this.rng.u32())
    node.verified = 0
    node.inputs = []
    node.disk = new DurableOrder(this.syncLanes)
    node.unsynced = []
  }

  /** A crash in the middle of a batch loses its writes: the commit fails and nothing after it is sent. */
  private tornCrash = -1

  private commit(node: SimNode, ws: readonly Write[]): Effect.Effect<void, StorageError> {
    if (this.tornCrash === node.id) return Effect.fail(new StorageError({ message: "crashed before the commit" }))
    return Effect.sync(() => {
      node.unsynced.push(ws.slice())
      node.disk.committed()
    })
  }

  private sendWhenDurable(node: SimNode, es: readonly Envelope[]): void {
    // Planted bug: the shell sends votes and promises before they are durable.
    if (this.opts.bug === "send-before-durable" || !node.disk.hold(es)) this.send(node.id, es)
  }

  /**
   * The node's disk: one of the syncs in progress may complete (every commit it covers becomes
   * durable and the messages waiting for them leave), and a new one starts over every commit made
   * since, if a lane is free.
   */
  private syncStep(node: SimNode): void {
    const running = node.disk.running
    // Any of the syncs in progress may end first (a draw only when there is a choice).
    const target = running.length === 0 ? null : (running[running.length === 1 ? 0 : this.rng.int(0, running.length)] as number)
    if (target !== null && this.rng.chance(this.syncChance)) {
      this.makeDurable(node, Math.max(0, target - node.disk.durableCommits))
      // Planted bug: the shell takes the end of any sync for the end of the newest one, and so
      // releases the votes of commits that a sync still running was to cover.
      const released = this.opts.bug === "sync-covers-newer" ? (running[running.length - 1] as number) : target
      for (const es of node.disk.synced(released)) this.send(node.id, es)
      this.count("path.syncs")
    }
    node.disk.startSync()
  }

  /** The oldest `n` unsynced commits reach the disk; their accepts count as durable votes. */
  private makeDurable(node: SimNode, n: number): void {
    for (const ws of node.unsynced.splice(0, n)) {
      node.store.apply(ws)
      for (const w of ws) if (w._tag === "Accept") for (const e of w.entries) this.vote(node.id, e.slot, e.ballot, batchKey(e.value))
    }
  }

  /**
   * The services of whichever node is running: one runtime serves every node, and `current` says
   * whose batch it is (the simulation is single-threaded, so this is exact).
   */
  private current: SimNode | null = null
  private readonly runtime: Runtime.Runtime<Storage | Network | Clients> = Runtime.make({
    context: Context.make(Storage, { commit: (ws) => this.commit(this.current as SimNode, ws) }).pipe(
      Context.add(Network, {
        send: (es) => Effect.sync(() => this.send((this.current as SimNode).id, es)),
        sendWhenDurable: (es) => Effect.sync(() => this.sendWhenDurable(this.current as SimNode, es))
      }),
      Context.add(Clients, { reply: (rs, st) => Effect.sync(() => this.onReplies((this.current as SimNode).id, rs, st)) })
    ),
    runtimeFlags: Runtime.defaultRuntimeFlags,
    fiberRefs: Runtime.defaultRuntime.fiberRefs
  })

  /** One tick of every running node, in a random order: one Effect program, one batch per node. */
  private runNodes(): void {
    const order = this.rng.shuffle(this.nodes)
    const program = Effect.forEach(order, (node) => this.runNode(node), { discard: true })
    Runtime.runSync(this.runtime)(program)
  }

  private runNode(node: SimNode): Effect.Effect<void, never, Storage | Network | Clients> {
    if (node.state === null || node.paused) return Effect.void
    const inputs: Input[] = [{ _tag: "Tick" }, ...node.inputs]
    node.inputs = []
    const torn = this.faultsOn && this.rng.chance(0.002)
    return Effect.suspend(() => {
      this.syncStep(node)
      this.current = node
      if (torn) this.tornCrash = node.id
      return Effect.exit(runBatch(node.state as NodeState, inputs))
    }).pipe(Effect.map((exit) => this.afterBatch(node, exit)))
  }

  private afterBatch(node: SimNode, exit: Exit.Exit<BatchResult, StorageError>): void {
    this.tornCrash = -1
    this.current = null
    if (Exit.isSuccess(exit)) {
      node.state = exit.value.state
      node.disk.startSync()
      this.observe(node, exit.value.events)
      return
    }
    const defect = Cause.dieOption(exit.cause)
    if (Option.isSome(defect)) {
      const d = defect.value
      this.violate(d instanceof InvariantViolation ? `node ${node.id} stopped: ${d.message}` : `node ${node.id} crashed: ${String(d)}`)
      node.state = null
      return
    }
    this.count("fault.torn-crash")
    this.crash(node, this.rng.chance(0.5) ? this.rng.int(1, 12) : this.rng.int(12, 120))
  }

  private observe(node: SimNode, events: readonly Event[]): void {
    for (const e of events) {
      switch (e._tag) {
        case "Decided": {
          const key = batchKey(e.value)
          const prev = this.learned.get(e.slot)
          if (prev === undefined) this.learned.set(e.slot, key)
          else if (prev !== key) this.violate(`slot ${e.slot}: node ${node.id} learned ${key || "no-op"} but another node learned ${prev || "no-op"}`)
          this.backed(e.slot, key, node.id)
          if (prev === undefined) this.replay(e.slot, e.value)
          break
        }
        case "BecameLeader":
          this.count("path.elected")
          this.count("path.noop-fills", e.noops)
          this.count("path.reproposed", e.reproposed)
          if (e.changes > 0) this.count("member.recovered-in-phase1")
          if (e.configs > 1) this.count("member.promises-two-configs")
          break
        case "PromisesAsked":
          this.count("member.promises-asked")
          break
        case "HandedOver":
          this.count("member.leader-removed-itself")
          break
        case "PromotionProposed":
          this.count("member.promotions-proposed")
          break
        case "FormerMemberAnswered":
          this.count("member.former-answered")
          break
        case "SteppedDown":
          this.count(`path.stepped-down.${e.reason}`)
          break
        case "ElectionStarted":
          this.count("path.elections")
          break
        case "SnapshotInstalled":
          this.count("path.snapshot-installs")
          break
        case "SnapshotChunkStaged":
          this.count("path.snapshot-chunks")
          break
        case "SnapshotTaken":
          this.count("path.snapshots")
          break
        case "CatchupServed":
          this.count("path.catchups")
          break
        case "DuplicateFromTable":
        case "DuplicateApplied":
          this.count("path.duplicates-answered")
          break
        case "Retransmitted":
          this.count("path.retransmits")
          break
        default:
          break
      }
    }
    this.checkList(node)
  }

  /** The node's list must extend or be a prefix of the global list, and never shrink while it runs. */
  private checkList(node: SimNode): void {
    const st = node.state
    if (st === null) return
    const list = st.list
    if (list.length < node.verified) {
      this.violate(`node ${node.id}: applied list shrank from ${node.verified} to ${list.length} without a restart`)
      return
    }
    for (let i = node.verified; i < list.length; i++) {
      const v = list.at(i) as number
      if (i < this.global.length) {
        if (this.global[i] !== v) {
          this.violate(`node ${node.id}: list diverges at index ${i}: ${v} vs ${this.global[i]}`)
          return
        }
      } else this.global.push(v)
    }
    node.verified = list.length
  }

  /**
   * A durable vote. A value is chosen in a slot once a quorum of the voters of the slot's
   * configuration (from the globally decided log, never from a node) accepted it at one ballot.
   */
  private vote(node: number, slot: number, ballot: Bal.Ballot, key: string): void {
    const id = `${slot}|${Bal.show(ballot)}`
    let v = this.votes.get(id)
    if (v === undefined) this.votes.set(id, (v = { key, voters: new Set() }))
    else if (v.key !== key) {
      this.violate(`slot ${slot}: two values accepted at the same ballot ${Bal.show(ballot)}`)
      return
    }
    v.voters.add(node)
    this.judge(id, slot)
  }

  private judge(id: string, slot: number): void {
    const v = this.votes.get(id)
    if (v === undefined) return
    const config = this.log.configOf(slot)
    if (config === undefined) {
      this.unjudged.add(id)
      return
    }
    if (!isQuorum(config, v.voters)) return
    const prev = this.chosen.get(slot)
    if (prev === undefined) this.chosen.set(slot, v.key)
    else if (prev !== v.key) this.violate(`slot ${slot}: two values chosen: ${prev || "no-op"} and ${v.key || "no-op"} (at ballot ${id.split("|")[1]})`)
  }

  /**
   * A node learned that `slot` holds `key`: a quorum of the slot's configuration must have chosen it.
   * (A node that counts the wrong voters, or decides with a quorum of a configuration that does not
   * govern the slot, learns a value nobody chose.)
   */
  private backed(slot: number, key: string, node: number): void {
    if (this.log.configOf(slot) === undefined) {
      this.unbacked.push({ slot, key, node })
      return
    }
    const chosen = this.chosen.get(slot)
    if (chosen === key) return
    const config = this.log.configOf(slot) as Config
    this.violate(
      `slot ${slot}: node ${node} learned ${key || "no-op"}, which no quorum of the slot's configuration (voters ${voters(config).join(",")}, epoch ${config.epoch}) accepted at one ballot` +
        (chosen === undefined ? "" : `; chosen was ${chosen || "no-op"}`)
    )
  }

  /** Replays a newly learned slot into the decided log, and judges what waited for its configuration. */
  private replay(slot: number, value: Batch): void {
    const before = this.log.applied
    for (const a of this.log.learn(slot, value)) this.onChangeApplied(a)
    if (this.log.applied === before) return
    for (const id of [...this.unjudged]) {
      const slot = Number(id.slice(0, id.indexOf("|")))
      if (this.log.configOf(slot) === undefined) continue
      this.unjudged.delete(id)
      this.judge(id, slot)
    }
    if (this.unbacked.length === 0) return
    for (const u of this.unbacked.splice(0)) this.backed(u.slot, u.key, u.node)
  }

  private crash(node: SimNode, downTicks: number): void {
    if (node.state === null) return
    const r = node.state.role
    if (r._tag === "Leader") {
      for (const [, p] of r.inflight) {
        if (p.value.some((cmd) => cmd._tag === "Reconfig" && cmd.change._tag !== "Bind")) {
          this.count("member.undecided-at-crash")
          break
        }
      }
    }
    // A crash (a power loss) keeps any prefix of the commits not yet synced: the WAL is written in
    // order, and what reached the disk before the crash is recovered at restart. The messages held
    // for them are lost either way.
    this.makeDurable(node, this.rng.int(0, node.unsynced.length + 1))
    node.state = null
    node.paused = false
    node.inputs = []
    node.restartAt = this.t + downTicks
  }

  private wake(): void {
    for (const n of this.nodes) {
      if (n.state === null && n.restartAt > 0 && this.t >= n.restartAt && !n.refused) {
        n.restartAt = 0
        this.boot(n)
      }
      if (n.paused && this.t >= n.resumeAt) n.paused = false
    }
  }

  // -------------------------------------------------------------------------------------------
  // Network

  private send(from: number, envelopes: readonly Envelope[]): void {
    for (const e of envelopes) {
      this.count("net.messages")
      if (e.to === from) {
        this.bucket(1).push({ from, to: e.to, msg: e.msg })
        continue
      }
      if (this.rng.chance(this.net.loss)) {
        this.count("fault.lost")
        continue
      }
      this.bucket(this.rng.int(1, MAX_DELAY + 1)).push({ from, to: e.to, msg: e.msg })
      if (this.rng.chance(this.net.dup)) {
        this.count("fault.duplicated")
        this.bucket(this.rng.int(1, MAX_DELAY + 1)).push({ from, to: e.to, msg: e.msg })
      }
    }
  }

  private bucket(delay: number): InFlight[] {
    return this.buckets[(this.t + delay) % this.buckets.length] as InFlight[]
  }

  private deliver(): void {
    const i = this.t % this.buckets.length
    const due = this.buckets[i] as InFlight[]
    this.buckets[i] = []
    for (const m of due) {
      const node = this.nodes[m.to]
      // A batch torn by a crash may have sent to a member it added, whose addition the crash then
      // lost (its events are never observed): there is no such node, and the message is lost.
      if (node === undefined) continue
      if (node.state === null) continue
      if (node.paused) {
        this.bucket(1).push(m)
        continue
      }
      if (m.from !== m.to && this.net.blocked.has(m.from * 65_536 + m.to)) {
        this.count("fault.partition-drops")
        continue
      }
      node.inputs.push({ _tag: "Receive", from: m.from, msg: m.msg })
    }
  }

  // -------------------------------------------------------------------------------------------
  // Nemesis

  private nemesis(): void {
    if (this.healAt > 0 && this.t >= this.healAt) {
      this.healAt = 0
      this.net.blocked.clear()
      this.net.loss = 0.01
      this.net.dup = 0.01
    }
    if (this.raceAt > 0 && this.t >= this.raceAt) this.raceChange()
    if (this.t < this.nextFaultAt) return
    this.nextFaultAt = this.t + this.rng.int(30, 200)
    const ids = this.nodes.map((x) => x.id)
    const up = this.nodes.filter((x) => x.state !== null)
    const leader = this.nodes.find((x) => x.state?.role._tag === "Leader") ?? this.rng.pick(this.nodes)
    const heal = this.t + this.rng.int(40, 300)
    // Half the crashes are a quick kill and restart (as Jepsen's kill nemesis does), half long outages.
    const crashTicks = () => (this.rng.chance(0.5) ? this.rng.int(1, 12) : this.rng.int(12, 250))
    switch (this.rng.int(0, this.members ? 14 : 11)) {
      case 0:
        this.partition("random-halves", this.randomHalves(ids))
        break
      case 1:
        this.partition("isolate-leader", this.isolate(leader.id, ids))
        break
      case 2:
        this.partition("majorities-ring", this.majoritiesRing(ids))
        break
      case 3:
        this.partition("bridge", this.bridge(ids))
        break
      case 4:
        this.count("fault.crash-one")
        this.crash(this.rng.pick(this.nodes), crashTicks())
        break
      case 5:
        this.count("fault.crash-leader")
        this.crash(leader, crashTicks())
        break
      case 6:
        this.count("fault.crash-majority")
        for (const x of this.rng.shuffle(this.nodes).slice(0, quorum(ids.length))) this.crash(x, crashTicks())
        break
      case 7:
        if (this.rng.chance(0.3)) {
          this.count("fault.crash-all")
          for (const x of this.nodes) this.crash(x, crashTicks())
        }
        break
      case 8: {
        const x = this.rng.chance(0.5) ? leader : this.rng.pick(up.length > 0 ? up : this.nodes)
        if (x.state !== null && !x.paused) {
          this.count("fault.pause")
          x.paused = true
          x.resumeAt = this.t + this.rng.int(20, 250)
        }
        break
      }
      case 11:
        this.memberAdd()
        return
      case 12:
        this.memberRemove(leader)
        return
      case 13:
        this.memberWipeOrPromote(crashTicks())
        return
      case 9:
        this.count("fault.lossy-network")
        this.net.loss = this.rng.pick([0.05, 0.2, 0.5])
        this.net.dup = this.rng.pick([0.05, 0.2])
        this.healAt = heal
        return
      default:
        this.healAt = this.t
        return
    }
    if (this.healAt === 0) this.healAt = heal
  }

  // -------------------------------------------------------------------------------------------
  // Membership: changes as faults, members that join, wiped disks (docs/MEMBERSHIP.md)

  /** A change of membership asked of a random running member, as `paxos member` would. */
  private submit(change: Change): void {
    const latest = this.log.latest
    const up = this.nodes.filter((x) => x.state !== null && memberById(latest, x.id) !== undefined)
    if (up.length === 0) return
    const rid = this.nextRid++
    this.adminRids.add(rid)
    this.rng.pick(up).inputs.push({ _tag: "Reconfig", rid, change })
  }

  private memberAdd(): void {
    const latest = this.log.latest
    if (latest.members.length >= MEMBERS_MAX || this.added >= 6) return
    this.added++
    this.count("fault.member-add")
    this.submit({ _tag: "Add", address: `joined${this.added}` })
  }

  /**
   * Removes a member: the leader in two cases of five, else any; never below three voters, so that
   * a wiped voter (refused for good) leaves a quorum that can remove it.
   */
  private memberRemove(leader: SimNode): void {
    const latest = this.log.latest
    const removable = latest.members.filter((m) => !m.voter || voters(latest).length > 3)
    if (removable.length === 0) return
    const isLeader = memberById(latest, leader.id)?.voter === true && leader.state?.role._tag === "Leader"
    const target = isLeader && voters(latest).length > 3 && this.rng.chance(0.4) ? leader.id : this.rng.pick(removable).id
    this.count("fault.member-remove")
    this.submit({ _tag: "Remove", id: target })
  }

  /**
   * Half the time wipes a running member's disk (a crash that loses the data directory; the node is
   * restarted with its original command), else promotes a learner that joined, whether or not it
   * has caught up, or makes it a voter in place of another. One wiped member at a time: a refused
   * one is removed first.
   */
  private memberWipeOrPromote(downTicks: number): void {
    const latest = this.log.latest
    if (this.rng.chance(0.5)) {
      // A refused voter counts in the quorums of every configuration it is in: the one in force too.
      const current = this.log.membership.current
      // ... and in every configuration a running node still holds (it may lag the decided log), or
      // would hold again after a restart (its snapshot's).
      const inDurable = (n: SimNode, id: number) => {
        const d = n.store.membership
        return d !== undefined && (memberById(d.current, id) !== undefined || (d.next !== null && memberById(d.next.config, id) !== undefined))
      }
      const stillIn = (x: SimNode) =>
        memberById(latest, x.id) !== undefined ||
        memberById(current, x.id) !== undefined ||
        this.nodes.some((n) => (n.state !== null && n.state.peers.includes(x.id)) || inDurable(n, x.id))
      const views = [latest, current]
      for (const n of this.nodes) {
        if (n.state !== null) views.push(n.state.membership.current, latestConfig(n.state.membership))
        // A node that restarts goes back to its snapshot's configuration, and must learn the slots above it again.
        const durable = n.store.membership
        if (durable !== undefined) views.push(durable.current, latestConfig(durable))
      }
      if (views.some((c) => voters(c).length < 3) || this.nodes.some((x) => x.wiped || (x.refused && stillIn(x)))) return
      const bound = this.nodes.filter((x) => x.state !== null && memberById(latest, x.id)?.incarnation === x.incarnation)
      if (bound.length === 0) return
      const x = this.rng.pick(bound)
      this.count("fault.wipe")
      this.crash(x, downTicks)
      x.store = new MemStore()
      x.wiped = true
      return
    }
    // Never a learner whose data directory is gone (refused): no operator promotes a dead machine.
    const learners = latest.members.filter((m) => !m.voter && m.incarnation !== null && this.nodes[m.id]?.refused !== true)
    if (learners.length === 0) return
    const learner = this.rng.pick(learners).id
    if (this.rng.chance(0.5)) {
      this.count("fault.member-promote")
      this.submit({ _tag: "Promote", id: learner })
      return
    }
    // A replacement in one change: a voter leaves as the learner becomes one.
    this.count("fault.member-replace")
    this.submit({ _tag: "Replace", remove: this.rng.pick(voters(latest)), promote: learner })
  }

  /**
   * A wiped node restarts with its original command on an empty data directory, so with a new
   * incarnation; the cluster binds its member id to the old one, so the bootstrap refuses it as a
   * voter (the server exits saying so) and it never runs again. Planted bug wipe-rejoins-as-voter:
   * it comes back under its old identity, with none of its promises and votes.
   */
  private bootWiped(node: SimNode): boolean {
    node.wiped = false
    if (hasBug(node.cfg, "wipe-rejoins-as-voter")) {
      this.count("member.wipe-rejoined")
      return true
    }
    node.incarnation = this.freshIncarnation()
    node.refused = true
    node.restartAt = 0
    this.count("member.wipe-refused")
    return false
  }

  private freshIncarnation(): string {
    return (this.rng.u32().toString(16).padStart(8, "0") + this.rng.u32().toString(16).padStart(8, "0")).slice(0, 16)
  }

  /** Every tick: members added by the log join once bound; a refused member is removed (the repair an operator makes). */
  private membershipStep(): void {
    const latest = this.log.latest
    for (const n of this.nodes) {
      if (n.started || n.refused) continue
      const m = memberById(latest, n.id)
      if (m === undefined) continue // removed before it joined
      if (m.incarnation === n.incarnation) {
        n.cfg = defaultConfig(n.id, this.opts.nodes, { ...this.base, initial: latest, joining: true })
        this.boot(n)
        this.count("member.joined")
      } else if (m.incarnation === null && this.t >= n.bindAt) {
        n.bindAt = this.t + 40
        this.submit({ _tag: "Bind", id: n.id, incarnation: n.incarnation })
      }
    }
    if (this.t < this.repairAt) return
    const refused = this.nodes.find((x) => x.refused && memberById(latest, x.id) !== undefined)
    if (refused === undefined) return
    this.repairAt = this.t + 60
    this.submit({ _tag: "Remove", id: refused.id })
  }

  private repairAt = 0
  /** When to strike the leader right after a change was decided (0: no strike planned). */
  private raceAt = 0

  /** A change was just decided: its leader crashes, or is cut off, while the change is on its way in. */
  private raceChange(): void {
    this.raceAt = 0
    const leader = this.nodes.find((x) => x.state?.role._tag === "Leader")
    if (leader === undefined) return
    this.count("fault.change-race")
    if (this.rng.chance(0.5)) this.crash(leader, this.rng.int(1, 60))
    else {
      this.partition("isolate-leader", this.isolate(leader.id, this.nodes.map((x) => x.id)))
      if (this.healAt === 0) this.healAt = this.t + this.rng.int(40, 300)
    }
  }

  /** A change of membership the decided log applied (or refused): counters, and a node for each member added. */
  private onChangeApplied(a: Applied): void {
    if (a.refusal !== null) {
      this.count(`member.refused.${a.refusal._tag === "InFlight" ? "in-flight" : "invalid"}`)
      return
    }
    const c = a.change
    this.count(`member.${c._tag.toLowerCase()}`)
    if (this.faultsOn && this.members && c._tag !== "Bind" && this.raceAt === 0 && this.rng.chance(0.4)) this.raceAt = this.t + this.rng.int(0, 8)
    switch (c._tag) {
      case "Add": {
        const config = latestConfig(a.membership)
        const id = config.nextId - 1
        if (id !== this.nodes.length) {
          this.violate(`member added with id ${id}, but the simulator expected ${this.nodes.length}`)
          return
        }
        this.nodes.push(this.newNode(id, defaultConfig(id, this.opts.nodes, this.base), this.freshIncarnation()))
        break
      }
      case "Remove": {
        const x = this.nodes[c.id]
        if (x?.refused === true) this.count("member.wiped-removed")
        if (x?.state?.role._tag === "Leader") this.count("member.remove-leader")
        break
      }
      case "Replace":
        if (this.nodes[c.remove]?.state?.role._tag === "Leader") this.count("member.remove-leader")
        break
      case "Promote":
        if (this.net.blocked.size > 0) this.count("member.promoted-in-partition")
        break
      case "Bind":
        break
    }
  }

  /** Installs a grudge: each pair [from, to] means `to` drops what `from` sends (iptables INPUT DROP). */
  private partition(name: string, grudge: Array<[number, number]>): void {
    this.count(`fault.partition.${name}`)
    this.net.blocked.clear()
    for (const [from, to] of grudge) this.net.blocked.add(from * 65_536 + to)
  }

  /** Both directions between every node of `a` and every node of `b`. */
  private cut(a: readonly number[], b: readonly number[]): Array<[number, number]> {
    return a.flatMap((x) => b.flatMap((y) => [[x, y], [y, x]] as Array<[number, number]>))
  }

  /** Two random non-empty halves that cannot talk. */
  private randomHalves(ids: readonly number[]): Array<[number, number]> {
    const order = this.rng.shuffle(ids)
    const cut = this.rng.int(1, ids.length)
    return this.cut(order.slice(0, cut), order.slice(cut))
  }

  private isolate(x: number, ids: readonly number[]): Array<[number, number]> {
    return this.cut([x], ids.filter((y) => y !== x))
  }

  /**
   * Jepsen's majorities ring: on a random ring, each node hears only the majority of nodes nearest
   * to it (itself included), so every node sees a majority but no two see the same one. With 3 nodes
   * this is one-directional: node i hears itself and its successor only.
   */
  private majoritiesRing(ids: readonly number[]): Array<[number, number]> {
    const n = ids.length
    const ring = this.rng.shuffle(ids)
    const q = quorum(n)
    const grudge: Array<[number, number]> = []
    for (let i = 0; i < n; i++) {
      const hears = new Set<number>()
      for (let d = 0; hears.size < q; d++) {
        hears.add(ring[(i + d) % n] as number)
        if (hears.size < q && d > 0) hears.add(ring[(i - d + n) % n] as number)
      }
      for (const from of ring) if (!hears.has(from)) grudge.push([from, ring[i] as number])
    }
    return grudge
  }

  /** Two halves joined by one bridge node that hears both. */
  private bridge(ids: readonly number[]): Array<[number, number]> {
    const order = this.rng.shuffle(ids)
    const mid = Math.floor(ids.length / 2)
    return this.cut(order.slice(0, mid), order.slice(mid + 1))
  }

  private healAll(): void {
    this.net.blocked.clear()
    this.net.loss = 0
    this.net.dup = 0
    this.healAt = 0
    for (const n of this.nodes) {
      n.paused = false
      if (n.state === null && n.started && !n.refused && !this.violations.length) {
        n.restartAt = 0
        this.boot(n)
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Clients (Jepsen semantics: one op at a time per process; after :info the process is replaced)

  private clientsAct(liveness: boolean): void {
    for (const c of this.clients) {
      if (c.op !== null) {
        if (this.t >= c.op.deadline) this.retryOrGiveUp(c, false)
        continue
      }
      if (this.t < c.idleUntil) continue
      if (liveness ? c.done >= this.log.latest.members.length : this.issued >= this.opts.ops) continue
      this.invoke(c, liveness)
    }
  }

  private invoke(c: Client, liveness: boolean): void {
    const read = liveness ? c.done % 2 === 1 : this.rng.chance(0.25)
    const value = read ? 0 : this.nextValue++
    const mops: MicroOp[] = read ? [["r", 0, null]] : [["append", 0, value], ["r", 0, null]]
    const invoke = this.record("invoke", c.process, mops)
    c.seq++
    c.op = { kind: read ? "read" : "append", value, seq: c.seq, invoke, attempts: 0, definite: true, rid: 0, node: 0, deadline: 0 }
    if (!liveness) this.issued++
    // After healing, a read and an append at every member (removed nodes are not expected to serve).
    const members = this.log.latest.members
    const target = liveness ? (members[c.done % members.length] as { id: number }).id : this.rng.int(0, this.nodes.length)
    this.attempt(c, target)
  }

  private attempt(c: Client, nodeId: number): void {
    const op = c.op
    if (op === null) return
    op.attempts++
    op.node = nodeId
    const node = this.nodes[nodeId] as SimNode
    if (node.state === null) {
      // Connection refused: definitely not applied by this attempt.
      op.deadline = this.t
      op.rid = 0
      this.retryOrGiveUp(c, true)
      return
    }
    const rid = this.nextRid++
    op.rid = rid
    op.deadline = this.t + CLIENT_TIMEOUT_TICKS
    this.rids.set(rid, c.k)
    node.inputs.push(
      op.kind === "read"
        ? { _tag: "Read", rid }
        : { _tag: "Append", rid, value: op.value, client: `p${c.process}`, seq: op.seq }
    )
  }

  private retryOrGiveUp(c: Client, definite: boolean): void {
    const op = c.op
    if (op === null) return
    if (!definite) op.definite = false
    if (op.rid !== 0) this.rids.delete(op.rid)
    if (op.attempts < 3) {
      this.count("client.retries")
      this.attempt(c, (op.node + 1 + this.rng.int(0, this.nodes.length - 1)) % this.nodes.length)
      return
    }
    const type = op.kind === "read" || op.definite ? "fail" : "info"
    this.complete(c, type, op.invoke.value as MicroOp[])
  }

  private onReplies(nodeId: number, replies: readonly Reply[], st: NodeState): void {
    for (const r of replies) {
      const k = this.rids.get(r.rid)
      if (k === undefined) continue
      const c = this.clients[k] as Client
      const op = c.op
      if (op === null || op.rid !== r.rid || op.node !== nodeId) continue
      this.rids.delete(r.rid)
      switch (r._tag) {
        case "Appended":
          this.complete(c, "ok", [["append", 0, op.value], ["r", 0, st.list.slice(0, r.index + 1)]])
          break
        case "ReadDone":
          this.complete(c, "ok", [["r", 0, st.list.slice(0, r.length)]])
          break
        case "Rejected":
          op.rid = 0
          this.retryOrGiveUp(c, r.definite)
          break
      }
    }
  }

  private complete(c: Client, type: "ok" | "fail" | "info", value: MicroOp[]): void {
    this.record(type, c.process, value)
    this.count(`client.${type}`)
    c.op = null
    c.done++
    c.idleUntil = this.t + this.rng.int(0, 5)
    if (type === "info") c.process += this.opts.clients
  }

  private record(type: Op["type"], process: number, value: MicroOp[]): Op {
    const index = this.history.length
    const op: Op = { type, f: "txn", process, time: this.t * 1_000_000 + index, index, value }
    this.history.push(op)
    return op
  }

  // -------------------------------------------------------------------------------------------

  private count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by
  }

  private violate(msg: string): void {
    if (this.violations.length < 20) this.violations.push(`tick ${this.t}: ${msg}`)
  }
}

export function simulate(opts: SimOptions): SimResult {
  return new World(opts).run()
}
