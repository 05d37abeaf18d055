/**
 * The node: the pure core (`runBatch` over `step`) driven by one fiber that drains a single input
 * queue. Each turn takes every queued input (at most BATCH_INPUTS_MAX) and runs one batch: one
 * SQLite transaction, hence one fsync, for all writes of all requests in it (group commit).
 *
 * The three services the core needs are provided here: Network (messages to self are looped back
 * into the next batch, never sent over the network; others go to the peer outboxes), Storage
 * (SqliteStore, failure = StorageError) and Clients (completes the waiting HTTP requests).
 * A batch runs uninterruptibly, so the node state always reflects every input it stepped.
 */
import { Context, Data, Effect, Exit, HashMap, Option, Queue, Cause } from "effect"
import * as B from "../core/ballot.ts"
import type { NodeConfig } from "../core/config.ts"
import { InvariantViolation, MARKER } from "../core/invariant.ts"
import type { Message } from "../core/messages.ts"
import { Clients, Network, Storage, StorageError, runBatch } from "../core/program.ts"
import type { Envelope, Event, Input, NodeState, Reply, Write } from "../core/state.ts"
import { OutcomeUnknown, Unavailable, type ApiError } from "./errors.ts"
import { ListJson } from "./list-json.ts"
import type { Log } from "./log.ts"
import type { Counters } from "./metrics.ts"
import type { Outboxes } from "./peer.ts"
import type { SqliteStore } from "./storage.ts"
import type { NodeAddress } from "./cluster-config.ts"
import { oneLine } from "./storage.ts"

/** Inputs waiting for the node, at most; past it client requests get 503 and messages are dropped. */
export const INPUT_QUEUE_MAX = 50_000
/** Client requests waiting for an answer, at most; more get 503 at once. */
export const WAITING_MAX = 20_000
/** Inputs stepped in one batch (one fsync), at most. */
export const BATCH_INPUTS_MAX = 2_048

/** Resumes after the event loop has processed pending I/O (setImmediate runs after I/O callbacks). */
const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const t = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(t))
})

/** The node cannot go on: the process must stop with `code` after logging `line`. */
export class Fatal extends Data.TaggedError("Fatal")<{ readonly code: number; readonly line: string }> {}

/** What a client request waits for: a 200 body, or an API error. */
type Resume = (exit: Effect.Effect<string, ApiError>) => void

interface Waiter {
  readonly resume: Resume
  readonly wantList: boolean
}

export interface NodeDeps {
  readonly cfg: NodeConfig
  readonly nodes: readonly NodeAddress[]
  readonly store: SqliteStore
  readonly outboxes: Outboxes
  readonly counters: Counters
  readonly log: Log
  /** Milliseconds of one tick (the core counts time in ticks). */
  readonly tickMs: number
}

export class Node {
  state: NodeState
  readonly listJson = new ListJson()
  private readonly inbox: Queue.Queue<Input>
  /** Messages this node sent to itself in the last batch: the first inputs of the next. */
  private loopback: Input[] = []
  private readonly waiting = new Map<number, Waiter>()
  private nextRid = 1
  private stopping = false
  private readonly ctx: Context.Context<Storage | Network | Clients>
  private catchingUpSince = 0

  constructor(
    initial: NodeState,
    private readonly d: NodeDeps
  ) {
    this.state = initial
    this.inbox = Effect.runSync(Queue.dropping<Input>(INPUT_QUEUE_MAX))
    this.listJson.sync(initial.list)
    this.ctx = Context.make(Storage, { persist: (ws) => this.persist(ws) }).pipe(
      Context.add(Network, { send: (es) => Effect.sync(() => this.send(es)) }),
      Context.add(Clients, { reply: (rs, st) => Effect.sync(() => this.reply(rs, st)) })
    )
  }

  get name(): string {
    return (this.d.nodes[this.d.cfg.id] as NodeAddress).name
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /** Submits a client append and waits for its answer (a 200 body or an ApiError). */
  append(value: number, client: string | undefined, seq: number | undefined, wantList: boolean): Effect.Effect<string, ApiError> {
    this.d.counters.clientAppends += 1
    return this.submit(wantList, (rid) =>
      client !== undefined && seq !== undefined ? { _tag: "Append", rid, value, client, seq } : { _tag: "Append", rid, value }
    )
  }

  /** Submits a linearizable read (a read marker through the log) and waits for its answer. */
  read(): Effect.Effect<string, ApiError> {
    this.d.counters.clientReads += 1
    return this.submit(true, (rid) => ({ _tag: "Read", rid }))
  }

  /** Peer messages from `from` (already validated): queued as inputs. Returns how many were dropped. */
  receive(from: number, msgs: readonly Message[]): number {
    let dropped = 0
    for (const msg of msgs) if (!this.inbox.unsafeOffer({ _tag: "Receive", from, msg })) dropped++
    this.d.counters.inputsDropped += dropped
    return dropped
  }

  /** One tick of the core's clock. */
  tick(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (!this.inbox.unsafeOffer({ _tag: "Tick" })) this.d.counters.inputsDropped += 1
    })
  }

  private submit(wantList: boolean, make: (rid: number) => Input): Effect.Effect<string, ApiError> {
    const safetyMs = this.d.cfg.requestTicks * this.d.tickMs + 3_000
    const self = this
    const wait = Effect.async<string, ApiError>((resume) => {
      if (self.stopping) {
        resume(Effect.fail(new Unavailable({ message: "the node is shutting down; not applied", reason: "ShuttingDown" })))
        return
      }
      if (self.waiting.size >= WAITING_MAX) {
        resume(Effect.fail(new Unavailable({ message: `${WAITING_MAX} requests are already waiting on this node; not applied, try again later`, reason: "Overloaded" })))
        return
      }
      const rid = self.nextRid++
      self.waiting.set(rid, { resume, wantList })
      if (!self.inbox.unsafeOffer(make(rid))) {
        self.waiting.delete(rid)
        self.d.counters.inputsDropped += 1
        resume(Effect.fail(new Unavailable({ message: "the node's input queue is full; not applied, try again later", reason: "Overloaded" })))
        return
      }
      return Effect.sync(() => self.waiting.delete(rid))
    })
    return wait.pipe(
      Effect.timeoutFail({
        duration: safetyMs,
        onTimeout: () => new OutcomeUnknown({ message: `no answer from the node within ${safetyMs} ms; the request may or may not be applied`, reason: "Timeout" })
      }),
      Effect.tapBoth({
        onFailure: (e) => Effect.sync(() => this.countError(e)),
        onSuccess: () => Effect.sync(() => (this.d.counters.clientOk += 1))
      })
    )
  }

  private countError(e: ApiError): void {
    if (e._tag === "OutcomeUnknown") this.d.counters.clientUnknown += 1
    else if (e._tag === "Unavailable") this.d.counters.clientUnavailable += 1
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  /** Drains the input queue batch by batch until interrupted; fails with Fatal when the node must stop. */
  run(): Effect.Effect<never, Fatal> {
    const self = this
    return Effect.gen(function* () {
      for (;;) {
        const inputs = yield* self.nextBatch()
        yield* Effect.uninterruptible(self.step(inputs))
        // Let the event loop run its pending I/O (requests, peer envelopes, responses) before the
        // next batch: fibers resume in microtasks, which would otherwise starve I/O while inputs
        // keep coming, and the next batch then carries everything that arrived meanwhile.
        yield* yieldToEventLoop
      }
    })
  }

  private nextBatch(): Effect.Effect<Input[]> {
    if (this.loopback.length === 0) {
      return Effect.map(Queue.takeBetween(this.inbox, 1, BATCH_INPUTS_MAX), (c) => Array.from(c))
    }
    const first = this.loopback
    this.loopback = []
    return Effect.map(Queue.takeUpTo(this.inbox, Math.max(0, BATCH_INPUTS_MAX - first.length)), (c) => first.concat(Array.from(c)))
  }

  private step(inputs: Input[]): Effect.Effect<void, Fatal> {
    const before = this.state
    const t0 = performance.now()
    return Effect.exit(Effect.provide(runBatch(before, inputs), this.ctx)).pipe(
      Effect.flatMap((exit) => {
        this.d.counters.batchMicros += Math.round((performance.now() - t0) * 1000)
        if (Exit.isSuccess(exit)) {
          this.state = exit.value.state
          this.d.counters.batches += 1
          this.d.counters.batchInputs += inputs.length
          this.observe(before, exit.value.state, exit.value.events)
          return Effect.void
        }
        const fatal = this.fatal(exit.cause)
        // Said at once, before any shutdown work: the line must reach the log even if that hangs.
        process.stderr.write(`${new Date().toISOString()} ${fatal.line}\n`)
        setTimeout(() => process.exit(fatal.code), 5_000).unref()
        return Effect.fail(fatal)
      })
    )
  }

  /** The Fatal for a failed batch: an invariant violation, a storage failure, or another defect. */
  private fatal(cause: Cause.Cause<StorageError>): Fatal {
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect)) {
      const d = defect.value
      if (d instanceof InvariantViolation) return new Fatal({ code: 70, line: `${this.name} ${d.message}` })
      return new Fatal({ code: 70, line: `${this.name} ${MARKER} unexpected defect in the core: ${oneLine(d)}` })
    }
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      return new Fatal({ code: 1, line: `${this.name} storage failed, stopping (nothing that depended on the failed write was sent): ${failure.value.message}` })
    }
    return new Fatal({ code: 1, line: `${this.name} node loop stopped: ${oneLine(Cause.pretty(cause))}` })
  }

  // -------------------------------------------------------------------------------------------
  // Services

  private persist(writes: readonly Write[]): Effect.Effect<void, StorageError> {
    return Effect.try({
      try: () => {
        const t0 = performance.now()
        this.d.store.persist(writes)
        this.d.counters.persistMicros += Math.round((performance.now() - t0) * 1000)
        this.d.counters.fsyncs += 1
        this.d.counters.writes += writes.length
      },
      catch: (e) => new StorageError({ message: oneLine(e), cause: e })
    })
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
  }

  private reply(replies: readonly Reply[], state: NodeState): void {
    let synced = false
    for (const r of replies) {
      const w = this.waiting.get(r.rid)
      if (w === undefined) continue
      this.waiting.delete(r.rid)
      if (r._tag === "Rejected") {
        const fields = { message: r.message, reason: r.reason }
        w.resume(Effect.fail(r.definite ? new Unavailable(fields) : new OutcomeUnknown(fields)))
        continue
      }
      if (!synced) {
        this.listJson.sync(state.list)
        synced = true
      }
      w.resume(Effect.succeed(this.body(r, state, w.wantList)))
    }
  }

  private body(r: Extract<Reply, { _tag: "Appended" | "ReadDone" }>, state: NodeState, wantList: boolean): string {
    if (r._tag === "ReadDone") return `{"list":${this.listJson.json(r.length)}}`
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
          log("snapshot-sent", { to: this.d.nodes[e.to]?.name, values: e.values })
          break
        case "CatchupRequested":
          c.catchupRequests += 1
          if (this.catchingUpSince === 0) {
            this.catchingUpSince = Date.now()
            log("catch-up-started", { from: e.from, source: after.source === null ? null : this.d.nodes[after.source]?.name })
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
      log("leader-changed", { leader: after.leader === null ? null : this.d.nodes[after.leader]?.name, ballot: B.show(after.promised) })
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
        w.resume(Effect.fail(new OutcomeUnknown({ message: "the node stopped; the request was sent on and may or may not be applied", reason: "ShuttingDown" })))
      } else {
        w.resume(Effect.fail(new Unavailable({ message: "the node stopped before proposing the request; not applied", reason: "ShuttingDown" })))
      }
    }
    this.waiting.clear()
    return n
  }

  /** Requests waiting for an answer. */
  get waitingCount(): number {
    return this.waiting.size
  }

  /** Inputs waiting in the queue (Queue.size is negative while the loop waits on it). */
  get queuedInputs(): number {
    return Math.max(0, Effect.runSync(Queue.size(this.inbox)))
  }
}
