/**
 * The node: the pure core's Effect program (`runBatch` over `step`) run batch by batch over a
 * single bounded input queue. Each turn takes every queued input (at most BATCH_INPUTS_MAX) and
 * runs one batch, synchronously: one SQLite transaction for all writes of all requests in it.
 * Client requests wait in a map of callbacks, answered when the core replies.
 *
 * The disk is pipelined (group commit): batches are committed in order, and an fdatasync on a
 * worker thread makes durable every commit made before it started. The loop does not wait for
 * it: the next batch is stepped while the sync runs, and the messages that depend on writes (the
 * core's `send`: promises and votes) are held until a sync covers the commit they followed. So a
 * node never waits a whole fsync before it can read its sockets again. Up to `syncLanes` syncs
 * run at once (default SYNC_LANES): a commit made while every lane is busy waits for one to end,
 * and the sync that then starts serves every batch that came meanwhile.
 *
 * The three services the core needs are provided here: Network (messages to self are looped back
 * into the next batch, never sent over the network; others go to the peer outboxes; held ones
 * leave when durable), Storage (SqliteStore commits, failure = StorageError) and Clients
 * (completes the waiting HTTP requests). All three are synchronous, so a batch is one
 * `Effect.runSyncExit` of the core's program.
 */
import { Cause, Context, Data, Effect, Exit, HashMap, Option, Runtime } from "effect"
import * as B from "../core/ballot.ts"
import type { NodeConfig } from "../core/config.ts"
import { DurableOrder } from "../core/durable-order.ts"
import { InvariantViolation, MARKER } from "../core/invariant.ts"
import type { Change } from "../core/membership.ts"
import type { Message } from "../core/messages.ts"
import { Clients, Network, Storage, StorageError, runBatch, type BatchResult } from "../core/program.ts"
import type { Envelope, Event, Input, NodeState, Reply, Write } from "../core/state.ts"
import { Conflict, OutcomeUnknown, Unavailable, type ApiError } from "./errors.ts"
import { ListJson } from "./list-json.ts"
import type { Log } from "./log.ts"
import type { Counters } from "./metrics.ts"
import type { Outboxes } from "./peer.ts"
import type { SqliteStore } from "./storage.ts"
import { oneLine } from "./storage.ts"

/** Inputs waiting for the node, at most; past it client requests get 503 and messages are dropped. */
export const INPUT_QUEUE_MAX = 50_000
/** Client requests waiting for an answer, at most; more get 503 at once. */
export const WAITING_MAX = 20_000
/**
 * fdatasyncs that may run at once by default. With one, a commit made while a sync runs waits for
 * it to end before its own can start, half a sync on average; a second lane starts it at once
 * (docs/PERFORMANCE.md, "Two sync lanes"). SYNC_LANES_MAX bounds `--sync-lanes`.
 */
export const SYNC_LANES = 2
export const SYNC_LANES_MAX = 8

/** Inputs stepped in one batch (one fsync), at most. */
export const BATCH_INPUTS_MAX = 2_048

/** The node cannot go on: the process must stop with `code` after logging `line`. */
export class Fatal extends Data.TaggedError("Fatal")<{ readonly code: number; readonly line: string }> {}

/** How a client request ends: a 200 body (and the core's reply it was made of), or an API error. Called exactly once. */
export type Done = (body: string | null, error: ApiError | null, reply?: Reply) => void

interface Waiter {
  readonly done: Done
  readonly wantList: boolean
  /** Date.now() after which the request is answered 504 if the core has not answered it. */
  readonly deadline: number
  /** Date.now() after which the core is asked to end the request (its client's deadline is near); 0 for none. */
  readonly answerBy: number
}

/** How often waiters past their client's or their safety deadline are looked for. */
const SWEEP_EVERY_MS = 100

export interface NodeDeps {
  readonly cfg: NodeConfig
  /** This node's address, `host:port`. */
  readonly address: string
  readonly store: SqliteStore
  readonly outboxes: Outboxes
  readonly counters: Counters
  readonly log: Log
  /** Milliseconds of one tick (the core counts time in ticks). */
  readonly tickMs: number
  /** fdatasyncs of the WAL that may run at once (default SYNC_LANES; see the top of this file). */
  readonly syncLanes?: number
  /**
   * Called with the exit status when the node must stop. The default exits the process 5 s later,
   * in case the shutdown hangs; tests of the loop pass their own.
   */
  readonly backstop?: (code: number) => void
}

const exitLater = (code: number): void => void setTimeout(() => process.exit(code), 5_000).unref()

/**
 * How long before its client gives up a request is ended, when the client said how long it waits
 * (`ms`): a sweep may come up to SWEEP_EVERY_MS late, and the batch, the answer and a busy machine
 * take time too, so a fifth of the time (at least 100 ms) is kept in hand as well.
 */
const answerSpare = (ms: number): number => SWEEP_EVERY_MS + Math.max(100, ms / 5)

export class Node {
  state: NodeState
  readonly listJson = new ListJson()
  /** Inputs waiting for the next batch, at most INPUT_QUEUE_MAX. */
  private inbox: Input[] = []
  /** Messages this node sent to itself in the last batch: the first inputs of the next. */
  private loopback: Input[] = []
  private readonly waiting = new Map<number, Waiter>()
  private nextRid = 1
  private stopping = false
  /** Runs a batch's program synchronously with this node's services. */
  private readonly runSync: (effect: Effect.Effect<BatchResult, StorageError, Storage | Network | Clients>) => Exit.Exit<BatchResult, StorageError>
  private catchingUpSince = 0
  /** Set while `run` runs: how the loop reports a fatal error. */
  private onFatal: ((f: Fatal) => void) | null = null
  private scheduled = false
  private nextSweep = 0
  /** Which commits are durable, and the messages held until they are. */
  private readonly disk: DurableOrder<readonly Envelope[]>
  private readonly safetyMs: number

  constructor(
    initial: NodeState,
    private readonly d: NodeDeps
  ) {
    this.state = initial
    this.disk = new DurableOrder(d.syncLanes ?? SYNC_LANES)
    this.listJson.sync(initial.list)
    this.safetyMs = d.cfg.requestTicks * d.tickMs + 3_000
    const services = Context.make(Storage, { commit: (ws) => this.commit(ws) }).pipe(
      Context.add(Network, {
        send: (es) => Effect.sync(() => this.send(es)),
        sendWhenDurable: (es) => Effect.sync(() => this.sendWhenDurable(es))
      }),
      Context.add(Clients, { reply: (rs, st) => Effect.sync(() => this.reply(rs, st)) })
    )
    this.runSync = Runtime.runSyncExit(
      Runtime.make({ context: services, runtimeFlags: Runtime.defaultRuntimeFlags, fiberRefs: Runtime.defaultRuntime.fiberRefs })
    )
  }

  get name(): string {
    return this.d.address
  }

  /** The address of member `id` as this node knows it (its membership, else the one it was bound in), or `node ID`. */
  nameOf(id: number): string {
    const m = this.state.membership
    const member = [m.current, m.next?.config, this.d.cfg.initial].reduce<{ address: string } | undefined>((found, c) => found ?? c?.members.find((x) => x.id === id), undefined)
    return member?.address ?? `node ${id}`
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /**
   * Submits a client append; `done` gets its answer (a 200 body or an ApiError), exactly once:
   * at once when the node cannot take it, else when the core answers, or at the safety deadline.
   * `timeoutMs` is how long the client waits, when it says so: the core is then asked to end the
   * request before that (answerBy). Returns the request id (for `abandon`), or 0 when it was
   * answered at once.
   */
  appendWith(value: number, client: string | undefined, seq: number | undefined, wantList: boolean, done: Done, timeoutMs?: number): number {
    this.d.counters.clientAppends += 1
    const rid = this.nextRid
    const input: Input = client !== undefined && seq !== undefined ? { _tag: "Append", rid, value, client, seq } : { _tag: "Append", rid, value }
    return this.submit(input, wantList, done, timeoutMs)
  }

  /** Submits a linearizable read (a read marker through the log), as `appendWith`. */
  readWith(done: Done, timeoutMs?: number): number {
    this.d.counters.clientReads += 1
    return this.submit({ _tag: "Read", rid: this.nextRid }, true, done, timeoutMs)
  }

  /**
   * Submits a change of membership (it goes through the log, docs/MEMBERSHIP.md), as `appendWith`:
   * `done` gets the core's Reconfigured reply once it is applied here, or the error (409 when the
   * log refused it).
   */
  reconfigWith(change: Change, done: Done, timeoutMs?: number): number {
    this.d.counters.membershipRequests += 1
    return this.submit({ _tag: "Reconfig", rid: this.nextRid, change }, false, done, timeoutMs)
  }

  /**
   * The client of `rid` went away: its answer is no longer awaited (the command itself may still
   * be applied; nobody is told). False when it was answered already.
   */
  abandon(rid: number): boolean {
    return this.waiting.delete(rid)
  }

  /** Peer messages from `from` (already validated): queued as inputs. Returns how many were dropped. */
  receive(from: number, msgs: readonly Message[]): number {
    let dropped = 0
    for (const msg of msgs) if (!this.offer({ _tag: "Receive", from, msg })) dropped++
    this.d.counters.inputsDropped += dropped
    return dropped
  }

  /**
   * The core's clock, until interrupted: one tick every `tickMs` (a Tick input; it also answers
   * requests past their safety deadline). A plain interval timer: `Effect.repeat` over
   * `Schedule.spaced` cost about 440 µs more CPU per tick in a script that only ticked (a fiber
   * resumed through Effect's scheduler and the schedule's state at every tick), and a 3-node
   * cluster at rest used 158 ms of CPU a second with it, 99 without (docs/PERFORMANCE.md, "The
   * clock"). Retries and backoffs, which run rarely, keep their Schedules.
   */
  clock(): Effect.Effect<never> {
    return Effect.async<never>(() => {
      const timer = setInterval(this.tick, this.d.tickMs)
      return Effect.sync(() => clearInterval(timer))
    })
  }

  private readonly tick = (): void => {
    if (!this.offer({ _tag: "Tick" })) this.d.counters.inputsDropped += 1
    const now = Date.now()
    if (now >= this.nextSweep) {
      this.nextSweep = now + SWEEP_EVERY_MS
      this.sweep(now)
      this.expireForClients(now)
    }
  }

  private offer(input: Input): boolean {
    if (this.inbox.length >= INPUT_QUEUE_MAX) return false
    this.inbox.push(input)
    this.schedule()
    return true
  }

  private submit(input: Input & { readonly rid: number }, wantList: boolean, done: Done, timeoutMs: number | undefined): number {
    if (this.stopping) {
      this.finish(done, null, new Unavailable({ message: "the node is shutting down; not applied", reason: "ShuttingDown" }))
      return 0
    }
    if (this.waiting.size >= WAITING_MAX) {
      this.finish(done, null, new Unavailable({ message: `${WAITING_MAX} requests are already waiting on this node; not applied, try again later`, reason: "Overloaded" }))
      return 0
    }
    if (!this.offer(input)) {
      this.d.counters.inputsDropped += 1
      this.finish(done, null, new Unavailable({ message: "the node's input queue is full; not applied, try again later", reason: "Overloaded" }))
      return 0
    }
    const rid = input.rid
    this.nextRid = rid + 1
    const now = Date.now()
    this.waiting.set(rid, { done, wantList, deadline: now + this.safetyMs, answerBy: timeoutMs === undefined ? 0 : now + timeoutMs - answerSpare(timeoutMs) })
    return rid
  }

  /** Answers a request and counts how it ended. */
  private finish(done: Done, body: string | null, error: ApiError | null, reply?: Reply): void {
    const c = this.d.counters
    if (error === null) c.clientOk += 1
    else if (error._tag === "OutcomeUnknown") c.clientUnknown += 1
    else if (error._tag === "Unavailable" || error._tag === "Conflict") c.clientUnavailable += 1
    done(body, error, reply)
  }

  /**
   * Answers 504 to requests the core has not answered by their deadline (the core answers every
   * request within requestTicks; this is the net under it). Waiters are in the order they came,
   * all with the same timeout, so the scan stops at the first one still in time.
   */
  private sweep(now: number): void {
    for (const [rid, w] of this.waiting) {
      if (w.deadline > now) break
      this.waiting.delete(rid)
      this.finish(w.done, null, new OutcomeUnknown({ message: `no answer from the node within ${this.safetyMs} ms; the request may or may not be applied`, reason: "Timeout" }))
    }
  }

  /**
   * Asks the core to end the requests whose clients are about to give up (x-paxos-timeout-ms). The
   * node's clock decides when, not the core's ticks, which run late on a busy machine; the core
   * decides how (503 if the command never left this node, else 504), as at its own deadline. A
   * scan of every waiter, every SWEEP_EVERY_MS: at most WAITING_MAX, and none on the request path.
   */
  private expireForClients(now: number): void {
    let due: Set<number> | undefined
    for (const [rid, w] of this.waiting) if (w.answerBy !== 0 && w.answerBy <= now) (due ??= new Set()).add(rid)
    if (due !== undefined && !this.offer({ _tag: "Expire", rids: due })) this.d.counters.inputsDropped += 1
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  /**
   * Runs the loop until interrupted; fails with Fatal when the node must stop. Each turn of the
   * loop is one batch: every input queued since the last (at most BATCH_INPUTS_MAX), stepped and
   * performed by the core's Effect program (runBatch) at once, its writes committed in one SQLite
   * transaction and made durable by the sync lane (see the top of this file). A turn is scheduled
   * with setImmediate, which runs after the event loop's pending I/O callbacks: every request and
   * peer frame that arrived meanwhile joins the batch, and a busy node never starves its sockets.
   */
  run(): Effect.Effect<never, Fatal> {
    return Effect.async<never, Fatal>((resume) => {
      this.onFatal = (f) => resume(Effect.fail(f))
      if (this.inbox.length + this.loopback.length > 0) this.schedule()
      return Effect.sync(() => {
        this.onFatal = null
      })
    })
  }

  private schedule(): void {
    if (this.scheduled || this.onFatal === null) return
    this.scheduled = true
    setImmediate(this.turn)
  }

  private readonly turn = (): void => {
    this.scheduled = false
    if (this.onFatal === null) return
    const inputs = this.nextBatch()
    if (inputs.length === 0) return
    const fatal = this.step(inputs)
    if (fatal !== null) return this.stop(fatal)
    if (this.inbox.length + this.loopback.length > 0) this.schedule()
  }

  /** Reports a Fatal to `run` (once): the node stops, and nothing held is sent. */
  private stop(fatal: Fatal): void {
    // Said at once, before any shutdown work: the line must reach the log even if that hangs.
    process.stderr.write(`${new Date().toISOString()} ${fatal.line}\n`)
    ;(this.d.backstop ?? exitLater)(fatal.code)
    this.disk.drop()
    const report = this.onFatal
    this.onFatal = null
    report?.(fatal)
  }

  private nextBatch(): Input[] {
    let inputs: Input[]
    if (this.loopback.length === 0) inputs = this.takeInbox(BATCH_INPUTS_MAX)
    else {
      inputs = this.loopback
      this.loopback = []
      for (const i of this.takeInbox(Math.max(0, BATCH_INPUTS_MAX - inputs.length))) inputs.push(i)
    }
    return inputs
  }

  private takeInbox(max: number): Input[] {
    if (this.inbox.length <= max) {
      const all = this.inbox
      this.inbox = []
      return all
    }
    return this.inbox.splice(0, max)
  }

  /** Runs one batch: the core's program steps it and performs its outputs. Null, or the Fatal when the node must stop. */
  private step(inputs: Input[]): Fatal | null {
    const before = this.state
    const t0 = performance.now()
    const exit = this.runSync(runBatch(before, inputs))
    this.d.counters.batchMicros += Math.round((performance.now() - t0) * 1000)
    if (Exit.isFailure(exit)) return this.fatal(exit.cause)
    this.state = exit.value.state
    // The outboxes follow the membership: a member added gets one, a member gone loses its own.
    if (this.state.membership !== before.membership) {
      this.farewell(before, this.state)
      this.d.outboxes.follow(this.state.membership)
    }
    this.d.counters.batches += 1
    this.d.counters.batchInputs += inputs.length
    this.observe(before, exit.value.state, exit.value.events)
    return null
  }

  /** The Fatal (status 70, with the marker) for an invariant violation or another defect `where`. */
  private defect(d: unknown, where: string): Fatal {
    if (d instanceof InvariantViolation) return new Fatal({ code: 70, line: `${this.name} ${d.message}` })
    return new Fatal({ code: 70, line: `${this.name} ${MARKER} unexpected defect ${where}: ${oneLine(d)}` })
  }

  /** The Fatal for a failed batch: an invariant violation, a storage failure, or another defect. */
  private fatal(cause: Cause.Cause<StorageError>): Fatal {
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect)) return this.defect(defect.value, "in the core")
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      return new Fatal({ code: 1, line: `${this.name} storage failed, stopping (nothing that depended on the failed write was sent): ${failure.value.message}` })
    }
    return new Fatal({ code: 1, line: `${this.name} node loop stopped: ${oneLine(Cause.pretty(cause))}` })
  }

  // -------------------------------------------------------------------------------------------
  // Services

  /** Commits the batch's writes now (durable once the sync lane covers them). */
  private commit(writes: readonly Write[]): Effect.Effect<void, StorageError> {
    return Effect.try({
      try: () => {
        const t0 = performance.now()
        this.d.store.commit(writes)
        this.d.counters.persistMicros += Math.round((performance.now() - t0) * 1000)
        this.d.counters.writes += writes.length
        this.d.counters.commits += 1
        this.disk.committed()
        this.sync()
      },
      catch: (e) => new StorageError({ message: oneLine(e), cause: e })
    })
  }

  /**
   * Starts an fdatasync over every commit made so far, unless one runs: then the next starts when
   * it ends. When it ends, the messages held for the commits it covers leave.
   */
  private sync(): void {
    const target = this.disk.startSync()
    if (target === null) return
    const t0 = performance.now()
    try {
      this.d.store.syncAsync((e) => this.synced(target, t0, e))
    } catch (e) {
      this.synced(target, t0, e instanceof Error ? e : new Error(String(e)))
    }
  }

  private synced(target: number, t0: number, e: Error | null): void {
    if (this.onFatal === null) return
    if (e !== null) {
      return this.stop(new Fatal({ code: 1, line: `${this.name} storage failed, stopping (nothing that depended on the failed write was sent): ${oneLine(e)}` }))
    }
    this.d.counters.syncMicros += Math.round((performance.now() - t0) * 1000)
    this.d.counters.fsyncs += 1
    let released: ReadonlyArray<readonly Envelope[]>
    try {
      released = this.disk.synced(target)
    } catch (d) {
      // Called from the fdatasync's callback, outside any batch: stop as a batch's defect does.
      return this.stop(this.defect(d, "in the sync lane"))
    }
    for (const envelopes of released) this.send(envelopes)
    this.sync()
    if (this.inbox.length + this.loopback.length > 0) this.schedule()
  }

  /**
   * The members a leader's batch removed (their removal came into force) hear one last heartbeat
   * before their outboxes close: the leader's commit point, which covers the slots up to their
   * removal, so that they apply it and answer their clients Removed. The core sends nothing more
   * to a member gone; this is the heartbeat it would have sent a moment earlier (a Commit claims
   * only what the leader's watermark holds, whoever reads it).
   */
  private farewell(before: NodeState, after: NodeState): void {
    const r = after.role
    if (r._tag !== "Leader") return
    const gone = before.peers.filter((id) => id !== this.d.cfg.id && !after.peers.includes(id))
    if (gone.length === 0) return
    const msg: Message = { _tag: "Commit", ballot: r.ballot, commit: r.committed }
    this.send(gone.map((to) => ({ to, msg })))
  }

  private sendWhenDurable(envelopes: readonly Envelope[]): void {
    if (!this.disk.hold(envelopes)) this.send(envelopes)
  }

  private send(envelopes: readonly Envelope[]): void {
    const self = this.d.cfg.id
    let memo: Map<Message, string> | undefined
    for (const e of envelopes) {
      if (e.to === self) {
        this.loopback.push({ _tag: "Receive", from: self, msg: e.msg })
        continue
      }
      memo ??= new Map()
      let json = memo.get(e.msg)
      if (json === undefined) memo.set(e.msg, (json = JSON.stringify(e.msg)))
      this.d.outboxes.enqueue(e.to, json)
    }
    if (memo !== undefined) this.d.outboxes.flush()
  }

  private reply(replies: readonly Reply[], state: NodeState): void {
    let synced = false
    for (const r of replies) {
      const w = this.waiting.get(r.rid)
      if (w === undefined) continue
      this.waiting.delete(r.rid)
      if (r._tag === "Rejected") {
        const fields = { message: r.message, reason: r.reason }
        this.finish(w.done, null, r.reason === "Refused" ? new Conflict(fields) : r.definite ? new Unavailable(fields) : new OutcomeUnknown(fields))
        continue
      }
      if (!synced) {
        this.listJson.sync(state.list)
        synced = true
      }
      this.finish(w.done, this.body(r, state, w.wantList), null, r)
    }
  }

  private body(r: Extract<Reply, { _tag: "Appended" | "ReadDone" | "Reconfigured" }>, state: NodeState, wantList: boolean): string {
    if (r._tag === "ReadDone") return `{"list":${this.listJson.json(r.length)}}`
    if (r._tag === "Reconfigured") return JSON.stringify({ slot: r.slot, membership: r.membership })
    if (state.list.at(r.index) !== r.value) {
      throw new InvariantViolation(`${this.name}: append of ${r.value} answered with index ${r.index}, where the list holds ${state.list.at(r.index)}`)
    }
    const head = `{"value":${r.value},"index":${r.index}`
    return wantList ? `${head},"list":${this.listJson.json(r.index + 1)}}` : `${head}}`
  }

  // -------------------------------------------------------------------------------------------
  // Events: counters and log lines

  private observe(before: NodeState, after: NodeState, events: readonly Event[]): void {
    const c = this.d.counters
    const log = this.d.log
    for (const e of events) {
      switch (e._tag) {
        case "ElectionStarted":
          c.elections += 1
          log("election-started", { ballot: B.show(e.ballot) })
          break
        case "BecameLeader":
          c.becameLeader += 1
          log("became-leader", { ballot: B.show(e.ballot), reproposed: e.reproposed, noops: e.noops })
          break
        case "SteppedDown":
          log("stepped-down", { ballot: B.show(e.ballot), reason: e.reason })
          break
        case "Proposed":
          c.proposals += e.commands
          c.proposedSlots += e.slots
          break
        case "Decided":
          c.decisions += 1
          break
        case "SnapshotTaken":
          c.snapshotsTaken += 1
          log("snapshot-taken", { slot: e.slot, list: after.snapLen })
          break
        case "SnapshotInstalled":
          c.snapshotsInstalled += 1
          log("snapshot-installed", { slot: e.slot, list: after.list.length })
          break
        case "SnapshotSent":
          c.snapshotsSent += 1
          log("snapshot-sent", { to: this.nameOf(e.to), values: e.values })
          break
        case "CatchupRequested":
          c.catchupRequests += 1
          if (this.catchingUpSince === 0) {
            this.catchingUpSince = Date.now()
            log("catch-up-started", { from: e.from, source: after.source === null ? null : this.nameOf(after.source) })
          }
          break
        case "CatchupServed":
          c.catchupsServed += 1
          break
        case "Retransmitted":
          c.retransmittedSlots += e.slots
          break
        case "Forwarded":
          c.forwardedCommands += e.commands
          break
        case "DuplicateFromTable":
        case "DuplicateApplied":
          c.duplicatesAnswered += 1
          break
        default:
          break
      }
    }
    if (this.catchingUpSince !== 0 && after.applied >= after.knownDecided) {
      log("catch-up-done", { applied: after.applied, ms: Date.now() - this.catchingUpSince })
      this.catchingUpSince = 0
    }
    if (before.leader !== after.leader) {
      c.leaderChanges += 1
      log("leader-changed", { leader: after.leader === null ? null : this.nameOf(after.leader), ballot: B.show(after.promised) })
    }
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown

  /**
   * Answers every waiting request when the node stops (the loop is no longer running): 504 when
   * its command left this node (it may still be applied), else 503. With `fatal`, all get 504.
   */
  answerAll(fatal: boolean): number {
    this.stopping = true
    const sent = new Map<number, boolean>()
    for (const p of HashMap.values(this.state.pending)) sent.set(p.rid, p.sent)
    let n = 0
    for (const [rid, w] of this.waiting) {
      n++
      if (fatal || sent.get(rid) === true) {
        this.finish(w.done, null, new OutcomeUnknown({ message: "the node stopped; the request was sent on and may or may not be applied", reason: "ShuttingDown" }))
      } else {
        this.finish(w.done, null, new Unavailable({ message: "the node stopped before proposing the request; not applied", reason: "ShuttingDown" }))
      }
    }
    this.waiting.clear()
    return n
  }

  /** Requests waiting for an answer. */
  get waitingCount(): number {
    return this.waiting.size
  }

  /** Inputs waiting for the next batch. */
  get queuedInputs(): number {
    return this.inbox.length + this.loopback.length
  }

  /** Milliseconds of one of the core's ticks. */
  get tickMs(): number {
    return this.d.tickMs
  }
}
