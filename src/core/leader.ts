/**
 * Leader: campaigns with one Phase 1 (Prepare) per ballot covering every slot above what this node
 * has applied; on a quorum of promises re-proposes the highest-ballot value reported for each slot
 * (holes become no-ops) and then runs Phase 2 for new client commands, pipelined up to a window of
 * slots and batching commands per slot. A leader that sees a higher ballot, or stops hearing from a
 * quorum, steps down; a follower that hears no leader for a randomized timeout campaigns.
 */
import { HashMap, Option } from "effect"
import * as B from "./ballot.ts"
import type { Ballot } from "./ballot.ts"
import { hasBug } from "./config.ts"
import type { Ctx } from "./ctx.ts"
import { ALPHA, configAt, configsBetween, isQuorum, isQuorumOfDistinct, memberById, quorumSize, voterSet, type Config } from "./membership.ts"
import type { AcceptedEntry, Batch, Command, Entry, Message } from "./messages.ts"
import { applyReady, decide, markSent, maybeCatchup, newId } from "./replica.ts"
import type { Leader, NodeState } from "./state.ts"

type Promise = Extract<Message, { _tag: "Promise" }>
type Accepted = Extract<Message, { _tag: "Accepted" }>

const NOOP: Batch = []

/** The watermark a leader advertises (see Leader in state.ts); 0 when not leading. */
const commitOf = (c: Ctx): number => (c.s.role._tag === "Leader" ? c.s.role.committed : 0)

export function ballotOf(c: Ctx): Ballot | undefined {
  const r = c.s.role
  return r._tag === "Follower" ? undefined : r.ballot
}

// ---------------------------------------------------------------------------------------------
// Campaign (Phase 1)

/** The configuration of `slot` (at most applied + ALPHA: docs/MEMBERSHIP.md). */
function configOf(c: Ctx, slot: number): Config {
  const m = c.s.membership
  if (c.s.cfg.bugs.size > 0 && m.next !== null) {
    // Planted bug (simulator only): a change governs the slots right after the one that decided it.
    if (hasBug(c.s.cfg, "reconfig-too-early") && slot > m.next.from - ALPHA) return m.next.config
    // Planted bug (simulator only): the configuration in force keeps governing until it is replaced.
    if (hasBug(c.s.cfg, "reconfig-old-quorum")) return m.current
  }
  return configAt(m, c.s.applied, slot)
}

/** The configurations whose quorum a candidate needs: every one that governs a slot it may propose now. */
function phase1Configs(c: Ctx): Config[] {
  const s = c.s
  const all = configsBetween(s.membership, s.applied, s.applied + 1, s.applied + ALPHA)
  // Planted bug (simulator only): Phase 1 asks only the newest configuration.
  return hasBug(s.cfg, "reconfig-phase1-new-only") ? all.slice(-1) : all
}

export function startElection(c: Ctx): void {
  const s = c.s
  // Learners and removed members never campaign: only a voter of the next slot may lead.
  if (!voterSet(configOf(c, s.applied + 1)).has(c.id)) {
    s.electionAt = c.electionDeadline()
    return
  }
  const ballot = B.above(B.max(s.seen, s.promised), c.id)
  s.seen = ballot
  s.leader = null
  s.role = { _tag: "Candidate", ballot, from: s.applied + 1, promises: HashMap.empty(), deadline: c.electionDeadline() }
  c.event({ _tag: "ElectionStarted", ballot })
  c.broadcast({ _tag: "Prepare", ballot, from: s.applied + 1 }, { self: true, early: true })
}

export function onPromise(c: Ctx, from: number, m: Promise): void {
  const r = c.s.role
  if (r._tag === "Leader") return onLatePromise(c, from, m)
  if (r._tag !== "Candidate" || !B.eq(r.ballot, m.ballot)) return
  const promises = HashMap.set(r.promises, from, { snapshot: m.snapshot, accepted: m.accepted })
  c.s.role = { ...r, promises }
  // Phase 2 starts only once this node's own promise is among them. That promise reaches it as a
  // message sent after its write was durable, so a leader's ballot always survives a crash: a
  // restarted node campaigns above it and never proposes a second value at a ballot it used.
  // Without this rule a quorum of other nodes could elect it while its promise still sat in an
  // unsynced commit (the shell steps later batches before earlier ones are durable).
  if (!HashMap.has(promises, c.id)) return
  // A quorum of every configuration that governs a slot it may propose now (one, or two while a
  // change is on its way in): docs/MEMBERSHIP.md.
  const ids = Array.from(HashMap.keys(promises))
  const configs = phase1Configs(c)
  for (const cfg of configs) if (!isQuorum(cfg, ids)) return
  becomeLeader(c, r.ballot, promises, configs.length)
}

/** `recovered` with the entries of `reported` from slot `from` on, the highest ballot of each slot winning. */
function mergeReported(
  recovered: HashMap.HashMap<number, AcceptedEntry>,
  reported: readonly AcceptedEntry[],
  from: number
): HashMap.HashMap<number, AcceptedEntry> {
  let out = recovered
  for (const e of reported) {
    if (e.slot < from) continue
    const prev = HashMap.get(out, e.slot).pipe(Option.getOrUndefined)
    if (prev === undefined || B.gt(e.ballot, prev.ballot)) out = HashMap.set(out, e.slot, e)
  }
  return out
}

/**
 * A promise at this leader's ballot after it began: a member of a configuration it asked to
 * promise (its quorum is needed before the slots that configuration governs are proposed). What
 * it reports for slots not yet proposed joins the recovered values, the highest ballot winning.
 */
function onLatePromise(c: Ctx, from: number, m: Promise): void {
  const r = c.s.role
  if (r._tag !== "Leader" || !B.eq(r.ballot, m.ballot)) return
  const recovered = mergeReported(r.recovered, m.accepted, r.next)
  let top = r.top
  for (const e of m.accepted) if (e.slot >= r.next && e.slot > top) top = e.slot
  const promisedBy = r.promisedBy.includes(from) ? r.promisedBy : [...r.promisedBy, from]
  c.s.role = { ...r, promisedBy, recovered, top, heardFrom: heard(r, from, c.s.now) }
}

/**
 * Phase 1 is complete. Slots at or below the highest snapshot reported are decided (some acceptor
 * applied them); above it, each slot gets the value reported with the highest ballot, a value this
 * node knows decided, or a no-op, all re-proposed at this ballot as the window allows
 * (`proposeQueued`).
 */
function becomeLeader(
  c: Ctx,
  ballot: Ballot,
  promises: HashMap.HashMap<number, { readonly snapshot: number; readonly accepted: readonly AcceptedEntry[] }>,
  configs: number
): void {
  const s = c.s
  let maxSnap = 0
  let snapHolder: number | null = null
  let recovered = HashMap.empty<number, AcceptedEntry>()
  for (const [node, p] of promises) {
    if (p.snapshot > maxSnap) {
      maxSnap = p.snapshot
      snapHolder = node
    }
    recovered = mergeReported(recovered, p.accepted, 0)
  }
  if (maxSnap > s.knownDecided) {
    s.knownDecided = maxSnap
    s.source = snapHolder
  }
  const floor = Math.max(s.applied, maxSnap)
  recovered = HashMap.filter(recovered, (_, slot) => slot > floor)
  let top = floor
  for (const slot of HashMap.keys(recovered)) if (slot > top) top = slot
  for (const slot of HashMap.keys(s.decided)) if (slot > top) top = slot
  let reproposed = 0
  let changes = 0
  for (let slot = floor + 1; slot <= top; slot++) {
    const value = HashMap.get(s.decided, slot).pipe(Option.orElse(() => HashMap.get(recovered, slot).pipe(Option.map((e) => e.value))))
    if (Option.isNone(value)) continue
    reproposed++
    if (value.value.some((cmd) => cmd._tag === "Reconfig")) changes++
  }
  s.role = {
    _tag: "Leader",
    ballot,
    committed: floor,
    chosenAbove: [],
    next: floor + 1,
    inflight: HashMap.empty(),
    heardFrom: [],
    since: s.now,
    heartbeatAt: s.now,
    promisedBy: Array.from(HashMap.keys(promises)),
    recovered,
    top,
    prepareAt: s.now,
    promoteAt: s.now,
    changing: false
  }
  s.leader = c.id
  s.backoff = 1
  c.event({ _tag: "BecameLeader", ballot, reproposed, noops: top - floor - reproposed, changes, configs })
  proposeQueued(c)
  maybeCatchup(c, true)
}

// ---------------------------------------------------------------------------------------------
// Phase 2

/** Sends proposals in messages of at most messageEntriesMax entries, to every node or to `only`. */
function sendAccepts(c: Ctx, ballot: Ballot, entries: readonly Entry[], only: readonly number[] | null): void {
  const max = c.s.cfg.messageEntriesMax
  const commit = commitOf(c)
  for (let i = 0; i < entries.length; i += max) {
    const msg: Message = { _tag: "Accept", ballot, entries: entries.slice(i, i + max), commit }
    if (only === null) c.broadcast(msg, { self: true, early: true })
    else for (const to of only) c.early(to, msg)
  }
  if (only === null && entries.length > 0) carriedCommit(c)
}

/** A message to every follower carried the current commit point: nobody needs a Commit for it. */
function carriedCommit(c: Ctx): void {
  c.commitChanged = false
  if (c.awaitingCommit.length > 0) c.awaitingCommit = []
}

/**
 * Proposes the slots Phase 1 recovered (up to `top`), then, while the window has room, queued
 * commands, batching up to batchCommandsMax per slot, then no-ops up to a change on its way in, so
 * that it takes effect at once (docs/MEMBERSHIP.md). A slot is proposed only once this node applied
 * every slot up to ALPHA below it (so its configuration is known) and while the members that
 * promised this ballot hold a quorum of that configuration; when they do not, the configuration's
 * other voters are asked to promise.
 */
export function proposeQueued(c: Ctx): void {
  const s = c.s
  const r = s.role
  if (r._tag !== "Leader") return
  const padTo = s.membership.next === null ? 0 : s.membership.next.from - 1
  if (r.next > r.top && s.queue.length === 0 && r.next > padTo) return
  let inflight = r.inflight
  let recovered = r.recovered
  let next = r.next
  let taken = 0
  let needPromises: Config | null = null
  const entries: Entry[] = []
  // Recovered slots go out at once, as many as the alpha rule allows; the window holds back only
  // new commands (recovery in waves of a window left clients waiting for it under faults).
  while ((next <= r.top || HashMap.size(inflight) < s.cfg.windowSlots) && next <= s.applied + ALPHA) {
    const recovering = next <= r.top
    if (!recovering && taken >= s.queue.length && next > padTo) break
    const config = configOf(c, next)
    // Planted bug (simulator only): a slot of the older configuration needs no quorum of its promises.
    const skipCheck = hasBug(s.cfg, "reconfig-phase1-new-only") && s.membership.next !== null && config === s.membership.current
    if (!skipCheck && !isQuorumOfDistinct(config, r.promisedBy)) {
      needPromises = config
      break
    }
    let value: Batch
    if (recovering) {
      const known = HashMap.get(s.decided, next).pipe(Option.getOrUndefined)
      value = known ?? HashMap.get(recovered, next).pipe(Option.map((e) => e.value), Option.getOrElse(() => NOOP))
      // Planted bug (simulator only): the leader ignores what Phase 1 reported.
      if (hasBug(s.cfg, "ignore-phase1-values") && known === undefined) value = NOOP
      recovered = HashMap.remove(recovered, next)
    } else if (taken < s.queue.length) {
      value = s.queue.slice(taken, taken + s.cfg.batchCommandsMax)
      taken += value.length
    } else value = NOOP
    inflight = HashMap.set(inflight, next, { value, votes: [], sentAt: s.now, config })
    entries.push({ slot: next, value })
    next++
  }
  if (taken > 0) {
    const sent = s.queue.slice(0, taken)
    s.queue = s.queue.drop(taken)
    markSent(c, sent)
    c.event({ _tag: "Proposed", slots: entries.length, commands: taken })
  }
  s.role = { ...r, inflight, next, recovered }
  if (needPromises !== null) askPromises(c, needPromises)
  if (entries.length > 0) sendAccepts(c, r.ballot, entries, null)
}

/** Asks the voters of `config` that have not promised this ballot to promise it (at most once per retransmitTicks). */
function askPromises(c: Ctx, config: Config): void {
  const s = c.s
  const r = s.role
  if (r._tag !== "Leader" || s.now < r.prepareAt) return
  s.role = { ...r, prepareAt: s.now + s.cfg.retransmitTicks }
  for (const id of voterSet(config)) {
    if (!r.promisedBy.includes(id) && id !== c.id) c.early(id, { _tag: "Prepare", ballot: r.ballot, from: r.next })
  }
  c.event({ _tag: "PromisesAsked", epoch: config.epoch })
}

/** Phase 2b votes. A proposal with a quorum of votes is decided. */
export function onAccepted(c: Ctx, from: number, m: Accepted): void {
  const r = c.s.role
  if (r._tag !== "Leader" || !B.eq(r.ballot, m.ballot)) return
  let inflight = r.inflight
  const chosen: Array<[number, Batch]> = []
  for (const slot of m.slots) {
    const p = HashMap.get(inflight, slot).pipe(Option.getOrUndefined)
    if (p === undefined || p.votes.includes(from)) continue
    const votes = [...p.votes, from]
    if (isQuorumOfDistinct(p.config, votes)) {
      inflight = HashMap.remove(inflight, slot)
      chosen.push([slot, p.value])
    } else inflight = HashMap.set(inflight, slot, { ...p, votes })
  }
  c.s.role = { ...r, inflight, heardFrom: heard(r, from, c.s.now), ...advance(r, chosen) }
  if (chosen.length === 0) return
  for (const [slot, value] of chosen) decide(c, slot, value)
  applyReady(c)
  c.commitChanged = true
}

/** Moves the advertised watermark over the slots chosen at this leader's ballot. */
function advance(r: Leader, chosen: ReadonlyArray<readonly [number, Batch]>): Pick<Leader, "committed" | "chosenAbove"> {
  if (chosen.length === 0) return { committed: r.committed, chosenAbove: r.chosenAbove }
  const above = new Set(r.chosenAbove)
  for (const [slot] of chosen) if (slot > r.committed) above.add(slot)
  let committed = r.committed
  while (above.delete(committed + 1)) committed++
  return { committed, chosenAbove: Array.from(above) }
}

const heard = (r: Leader, from: number, now: number): readonly (number | undefined)[] => {
  if (r.heardFrom[from] === now) return r.heardFrom
  const h = r.heardFrom.slice()
  h[from] = now
  return h
}

/**
 * Whether leader `r` heard from a quorum, itself included, within the last election timeout (an
 * Accepted or a CommitAck at its ballot). Its heartbeats say so, for its followers' readiness; a
 * leader that has not for three election timeouts steps down (leaderTick).
 */
export const heardFromQuorum = (s: NodeState, r: Leader): boolean => heardFromQuorumWithin(s, r, s.cfg.electionTicks)

/** Whether leader `r` heard from a quorum of the configuration in force, itself included, within the last `window` ticks. */
function heardFromQuorumWithin(s: NodeState, r: Leader, window: number): boolean {
  const config = s.membership.current
  let alive = 0
  for (const id of voterSet(config)) if (id === s.cfg.id || s.now - (r.heardFrom[id] ?? r.since) <= window) alive++
  return alive >= quorumSize(config)
}

export function onCommitAck(c: Ctx, from: number, ballot: Ballot, applied: number): void {
  const r = c.s.role
  if (r._tag !== "Leader" || !B.eq(r.ballot, ballot)) return
  c.s.role = { ...r, heardFrom: heard(r, from, c.s.now) }
  maybePromote(c, from, applied)
}

/**
 * A learner that applied within ALPHA slots of this leader is promoted to voter, by a change
 * through the log like any other (at most one proposal per two election timeouts; the log refuses
 * it if another change is in flight). Adding a node so never counts it in a quorum before it has
 * caught up.
 */
function maybePromote(c: Ctx, from: number, applied: number): void {
  const s = c.s
  const r = s.role
  if (r._tag !== "Leader" || !s.cfg.promoteLearners || s.now < r.promoteAt || s.membership.next !== null) return
  const m = memberById(s.membership.current, from)
  if (m === undefined || m.voter || m.incarnation === null || applied + ALPHA < s.applied) return
  c.s.role = { ...r, promoteAt: s.now + s.cfg.electionTicks * 2 }
  s.queue = s.queue.push({ _tag: "Reconfig", id: newId(c), change: { _tag: "Promote", id: from } })
  c.event({ _tag: "PromotionProposed", id: from })
}

/**
 * A leader or candidate that is no voter of the next slot's configuration (its removal came into
 * force) steps down; a leader asks the voter it heard from last to campaign at once, so the
 * cluster does not wait an election timeout for a new leader.
 */
export function leaveIfRemoved(c: Ctx): void {
  const s = c.s
  const r = s.role
  if (r._tag === "Follower" || voterSet(configOf(c, s.applied + 1)).has(c.id)) return
  if (r._tag === "Leader") {
    let to: number | null = null
    let last = -1
    for (const id of voterSet(s.membership.current)) {
      const at = r.heardFrom[id]
      if (at !== undefined && at > last) {
        last = at
        to = id
      }
    }
    if (to !== null) c.early(to, { _tag: "Campaign", ballot: r.ballot })
    c.event({ _tag: "HandedOver", to })
  }
  stepDown(c, null, "removed")
}

/** Commands forwarded by a follower: queued here if this node leads and has room. */
export function onForward(c: Ctx, from: number, commands: readonly Command[]): void {
  const s = c.s
  if (s.role._tag !== "Leader") {
    c.early(from, { _tag: "ForwardReject", ids: commands.map((x) => x.id).slice(0, s.cfg.messageEntriesMax), reason: "NotLeader" })
    return
  }
  const room = Math.max(0, s.cfg.queueCommandsMax - s.queue.length)
  s.queue = s.queue.push(...commands.slice(0, room))
  if (room < commands.length) {
    c.early(from, { _tag: "ForwardReject", ids: commands.slice(room).map((x) => x.id), reason: "Overloaded" })
  }
}

// ---------------------------------------------------------------------------------------------
// Leaving leadership

/** A higher ballot exists: this candidate or leader becomes a follower, with a longer backoff. */
export function stepDown(c: Ctx, higher: Ballot | null, reason: "preempted" | "lost-quorum" | "higher-ballot" | "removed"): void {
  const s = c.s
  const mine = ballotOf(c)
  if (mine === undefined) return
  if (higher !== null) s.seen = B.max(s.seen, higher)
  s.role = { _tag: "Follower" }
  s.leader = null
  s.backoff = Math.min(s.backoff * 2, 8)
  s.electionAt = c.electionDeadline()
  c.event({ _tag: "SteppedDown", ballot: mine, reason })
}

// ---------------------------------------------------------------------------------------------
// Timers

/** Heartbeats, retransmission of undecided proposals, and the check that a quorum still answers. */
export function leaderTick(c: Ctx): void {
  const s = c.s
  const r = s.role
  if (r._tag !== "Leader") return
  const window = s.cfg.electionTicks * 3
  if (s.now - r.since > window && !heardFromQuorumWithin(s, r, window)) {
    stepDown(c, null, "lost-quorum")
    return
  }
  if (s.now >= r.heartbeatAt) {
    c.broadcast({ _tag: "Commit", ballot: r.ballot, commit: commitOf(c), quorum: heardFromQuorum(s, r) }, { self: false, early: true })
    c.s.role = { ...r, heartbeatAt: s.now + s.cfg.heartbeatTicks }
    carriedCommit(c)
  }
  retransmit(c)
}

function retransmit(c: Ctx): void {
  const s = c.s
  const r = s.role
  if (r._tag !== "Leader") return
  let inflight = r.inflight
  const byNode = new Map<number, Entry[]>()
  for (const [slot, p] of r.inflight) {
    if (s.now - p.sentAt < s.cfg.retransmitTicks) continue
    inflight = HashMap.set(inflight, slot, { ...p, sentAt: s.now })
    for (const to of s.peers) {
      if (p.votes.includes(to)) continue
      let list = byNode.get(to)
      if (list === undefined) byNode.set(to, (list = []))
      list.push({ slot, value: p.value })
    }
  }
  if (byNode.size === 0) return
  c.s.role = { ...r, inflight }
  let slots = 0
  for (const [to, entries] of byNode) {
    entries.sort((a, b) => a.slot - b.slot)
    slots += entries.length
    if (to === c.id) {
      const max = s.cfg.messageEntriesMax
      for (let i = 0; i < entries.length; i += max) {
        c.send(to, { _tag: "Accept", ballot: r.ballot, entries: entries.slice(i, i + max), commit: commitOf(c) })
      }
    } else sendAccepts(c, r.ballot, entries, [to])
  }
  c.event({ _tag: "Retransmitted", slots })
}

/**
 * At the end of a batch: tells the followers whose forwarded commands it applied that they are
 * decided, when no Accept to every node carried the new commit point. Without it they would hear
 * at the next heartbeat, up to heartbeatTicks later, and at low load their clients would wait that
 * long. Followers with nothing waiting hear of it with the next Accept or heartbeat, as before.
 */
export function announceCommit(c: Ctx): void {
  const r = c.s.role
  if (!c.commitChanged || r._tag !== "Leader") return
  const to = c.awaitingCommit
  carriedCommit(c)
  if (to.length === 0) return
  // No `quorum` claim here: heartbeats carry it, and a batch's Commit would add its bytes to
  // every batch that applies a follower's command.
  const msg: Message = { _tag: "Commit", ballot: r.ballot, commit: commitOf(c) }
  for (const id of to) if (id !== c.id) c.early(id, msg)
}
