/**
 * Replica and learner: learns decided slots, applies them in order to the list, keeps the client
 * table that makes retries exactly-once, answers this node's clients, takes snapshots that let the
 * acceptor and the log drop old slots, and catches up from peers (decided entries, or a snapshot
 * when the slots it lacks were compacted away).
 */
import { HashMap, Option } from "effect"
import * as B from "./ballot.ts"
import type { Ballot } from "./ballot.ts"
import { hasBug, LIMITS } from "./config.ts"
import type { Ctx } from "./ctx.ts"
import { batchKey, sameBatch } from "./acceptor.ts"
import { invariant } from "./invariant.ts"
import { applyChange, configProblem, latestConfig, memberIds, settle, type Change, type Membership } from "./membership.ts"
import type { Batch, ClientEntry, Command, Entry, Message } from "./messages.ts"

type Snapshot = Extract<Message, { _tag: "Snapshot" }>
type CatchupRequest = Extract<Message, { _tag: "CatchupRequest" }>

// ---------------------------------------------------------------------------------------------
// Learning decisions

/** Records that `slot` is decided with `value`. A second, different value is a safety violation. */
export function decide(c: Ctx, slot: number, value: Batch): void {
  const s = c.s
  if (slot <= s.snapSlot) return
  const known = slot <= s.applied ? HashMap.get(s.log, slot) : HashMap.get(s.decided, slot)
  if (Option.isSome(known)) {
    invariant(sameBatch(known.value, value), () =>
      `node ${c.id}: slot ${slot} decided twice: ${batchKey(known.value)} then ${batchKey(value)}`
    )
    return
  }
  if (slot <= s.applied) return // applied before a restart of the log (after a snapshot install)
  // Deciding one slot says nothing of the slots below it: knownDecided (a watermark) is raised only
  // by commit watermarks and snapshots, never here.
  s.decided = HashMap.set(s.decided, slot, value)
  c.event({ _tag: "Decided", slot, value })
}

/**
 * A Commit (or the commit watermark of an Accept) at `ballot`: every slot up to `commit` is decided.
 * A leader advertises only slots below its election floor (not proposed at its ballot) and slots a
 * quorum accepted at its own ballot, so a slot this acceptor accepted at that very ballot holds the
 * decided value; other slots are fetched by catch-up.
 */
export function learnCommit(c: Ctx, from: number, ballot: Ballot, commit: number): void {
  const s = c.s
  if (commit <= s.applied) return
  if (commit > s.knownDecided) s.knownDecided = commit
  if (from !== c.id) s.source = from
  const last = Math.min(commit, s.applied + s.cfg.windowSlots * 4)
  for (let slot = s.applied + 1; slot <= last; slot++) {
    if (HashMap.has(s.decided, slot)) continue
    const acc = HashMap.get(s.accepted, slot)
    if (Option.isSome(acc) && B.eq(acc.value.ballot, ballot)) decide(c, slot, acc.value.value)
  }
  applyReady(c)
}

// ---------------------------------------------------------------------------------------------
// Applying

/** Applies every decided slot that directly follows `applied`, then snapshots if it is time. */
export function applyReady(c: Ctx): void {
  const s = c.s
  // A node that joined with no state applies nothing before its first snapshot: the slots below it
  // were decided under configurations it does not know.
  if (s.joining) return
  const before = s.applied
  const membershipBefore = s.membership
  for (;;) {
    const next = HashMap.get(s.decided, s.applied + 1)
    if (Option.isNone(next)) break
    const slot = s.applied + 1
    applyBatch(c, next.value, slot)
    if (s.role._tag === "Leader") noteOrigins(c, next.value)
    s.decided = HashMap.remove(s.decided, slot)
    s.log = HashMap.set(s.log, slot, next.value)
    s.applied = slot
    settleMembership(c)
    c.event({ _tag: "Applied", slot })
  }
  // Staged snapshot values were cut from a peer's list; once this list grows on its own they are
  // simpler to fetch again than to realign.
  if (s.applied !== before) s.staged = null
  // A change of membership is made durable at once (a snapshot): a node that restarts takes its
  // membership from its snapshot, and one older than a change would not know the members since.
  const changed = s.membership !== membershipBefore
  if (s.applied - s.snapSlot >= s.cfg.snapshotEverySlots || (changed && s.applied > s.snapSlot)) takeSnapshot(c)
}

/** A change whose first slot is the next to apply is in force from now on (docs/MEMBERSHIP.md). */
function settleMembership(c: Ctx): void {
  const s = c.s
  if (s.membership.next === null || s.membership.next.from > s.applied + 1) return
  s.membership = settle(s.membership, s.applied + 1)
  s.peers = memberIds(s.membership)
}

/** On the leader: the nodes whose commands (ids `node.boot.n`, see newId) a batch holds, for announceCommit. */
function noteOrigins(c: Ctx, batch: Batch): void {
  for (const cmd of batch) {
    const dot = cmd.id.indexOf(".")
    if (dot < 1 || dot > 5) continue // member ids have at most 5 digits (LIMITS.memberIdMax)
    const origin = Number(cmd.id.slice(0, dot))
    if (origin !== c.id && c.s.peers.includes(origin) && !c.awaitingCommit.includes(origin)) c.awaitingCommit.push(origin)
  }
}

function applyBatch(c: Ctx, batch: Batch, slot: number): void {
  for (const cmd of batch) {
    if (cmd._tag === "Read") {
      answerRead(c, cmd.id, c.s.list.length)
      continue
    }
    if (cmd._tag === "Reconfig") {
      applyReconfig(c, cmd.id, cmd.change, slot)
      continue
    }
    const s = c.s
    const prior = cmd.client === undefined ? undefined : HashMap.get(s.clients, cmd.client).pipe(Option.getOrUndefined)
    if (prior !== undefined && cmd.seq !== undefined && cmd.seq <= prior.seq) {
      c.event({ _tag: "DuplicateApplied" })
      answerFromTable(c, cmd.id, cmd.seq, prior)
      continue
    }
    const index = s.list.length
    s.list = s.list.push(cmd.value)
    if (cmd.client !== undefined && cmd.seq !== undefined) {
      rememberClient(c, { client: cmd.client, seq: cmd.seq, value: cmd.value, index, slot })
    }
    answerAppend(c, cmd.id, cmd.value, index)
  }
}

/**
 * A change of membership decided in `slot`: every replica applies the same checks (membership.ts),
 * so a change refused here is refused everywhere, and one in flight is judged from the log alone.
 */
function applyReconfig(c: Ctx, id: string, change: Change, slot: number): void {
  const s = c.s
  // Planted bug (simulator only): no in-flight check at apply; the leader's own flag stands in for it.
  const ignoreInFlight = hasBug(s.cfg, "reconfig-concurrent")
  let result = applyChange(s.membership, slot, change)
  if (ignoreInFlight && "_tag" in result && result._tag === "InFlight") {
    const pending = s.membership.next
    result = pending === null ? result : applyChange({ current: pending.config, next: null }, slot, change)
    if (!("_tag" in result)) result = { membership: { current: s.membership.current, next: result.membership.next } }
  }
  if (s.role._tag === "Leader" && change._tag !== "Bind") s.role = { ...s.role, changing: false }
  if ("_tag" in result) {
    const reason = result._tag === "InFlight" ? `another change of membership is in flight until slot ${result.until}; try again then` : result.message
    c.event({ _tag: "ChangeRefused", slot, change, reason, inFlight: result._tag === "InFlight" })
    const p = takePending(c, id)
    if (p !== undefined) c.reply({ _tag: "Rejected", rid: p.rid, definite: true, reason: "Refused", message: reason })
    return
  }
  s.membership = result.membership
  s.peers = memberIds(s.membership)
  const m = s.membership
  c.event({ _tag: "MembershipChanged", slot, change, from: m.next?.from ?? slot + 1, epoch: latestConfig(m).epoch })
  const p = takePending(c, id)
  if (p !== undefined) c.reply({ _tag: "Reconfigured", rid: p.rid, slot, membership: m })
}

/** Adds to the client table; over its limit, evicts the tenth of clients least recently applied. */
function rememberClient(c: Ctx, entry: ClientEntry): void {
  const s = c.s
  s.clients = HashMap.set(s.clients, entry.client, entry)
  if (HashMap.size(s.clients) <= s.cfg.clientTableMax) return
  const all = Array.from(HashMap.values(s.clients)).sort(
    (a, b) => a.slot - b.slot || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0)
  )
  const drop = Math.max(1, Math.floor(s.cfg.clientTableMax / 10))
  let clients = s.clients
  for (const e of all.slice(0, drop)) clients = HashMap.remove(clients, e.client)
  s.clients = clients
}

// ---------------------------------------------------------------------------------------------
// Answering this node's clients

function takePending(c: Ctx, id: string) {
  const p = HashMap.get(c.s.pending, id)
  if (Option.isNone(p)) return undefined
  c.s.pending = HashMap.remove(c.s.pending, id)
  return p.value
}

function answerAppend(c: Ctx, id: string, value: number, index: number): void {
  const p = takePending(c, id)
  if (p !== undefined) c.reply({ _tag: "Appended", rid: p.rid, value, index })
}

function answerRead(c: Ctx, id: string, length: number): void {
  const p = takePending(c, id)
  if (p !== undefined) c.reply({ _tag: "ReadDone", rid: p.rid, length })
}

function answerFromTable(c: Ctx, id: string, seq: number, prior: ClientEntry): void {
  const p = takePending(c, id)
  if (p === undefined) return
  if (seq === prior.seq) c.reply({ _tag: "Appended", rid: p.rid, value: prior.value, index: prior.index })
  else c.reply(staleSeq(p.rid, seq, prior.seq))
}

const staleSeq = (rid: number, seq: number, latest: number) =>
  ({
    _tag: "Rejected",
    rid,
    definite: false,
    reason: "StaleSeq",
    message: `seq ${seq} is older than this client's latest applied seq ${latest}; its outcome is no longer known`
  }) as const

/**
 * A client append arriving at this node: answered from the client table when it is a retry of the
 * latest applied request of that client, else queued to be proposed (leader) or forwarded.
 */
export function onClientAppend(c: Ctx, rid: number, value: number, client?: string, seq?: number): void {
  const s = c.s
  if (refuseIfRemoved(c, rid)) return
  if (client !== undefined && seq !== undefined) {
    const prior = HashMap.get(s.clients, client).pipe(Option.getOrUndefined)
    if (prior !== undefined && seq <= prior.seq) {
      c.event({ _tag: "DuplicateFromTable" })
      if (seq === prior.seq) c.reply({ _tag: "Appended", rid, value: prior.value, index: prior.index })
      else c.reply(staleSeq(rid, seq, prior.seq))
      return
    }
  }
  const cmd: Command = client !== undefined && seq !== undefined
    ? { _tag: "Append", id: newId(c), value, client, seq }
    : { _tag: "Append", id: newId(c), value }
  enqueue(c, rid, cmd)
}

/** A linearizable read: a read marker goes through the log and is answered where it is applied. */
export function onClientRead(c: Ctx, rid: number): void {
  // Planted bug (simulator only): a follower answers from its local, possibly stale, state.
  if (refuseIfRemoved(c, rid)) return
  if (hasBug(c.s.cfg, "stale-read") && c.s.role._tag !== "Leader") {
    c.reply({ _tag: "ReadDone", rid, length: c.s.list.length })
    return
  }
  enqueue(c, rid, { _tag: "Read", id: newId(c) })
}

/** A change of membership asked by a client: it goes through the log, and is answered where it is applied. */
export function onClientReconfig(c: Ctx, rid: number, change: Change): void {
  if (refuseIfRemoved(c, rid)) return
  const r = c.s.role
  // Planted bug (simulator only): the leader judges "a change is in flight" by its own flag.
  if (hasBug(c.s.cfg, "reconfig-concurrent") && r._tag === "Leader" && change._tag !== "Bind") {
    if (r.changing) {
      c.reply({ _tag: "Rejected", rid, definite: true, reason: "Refused", message: "a change of membership is in flight" })
      return
    }
    c.s.role = { ...r, changing: true }
  }
  enqueue(c, rid, { _tag: "Reconfig", id: newId(c), change })
}

/**
 * A node that is no longer a member answers its clients with an error naming the members it knows
 * of (its requests would never be decided: the members no longer hear it).
 */
function refuseIfRemoved(c: Ctx, rid: number): boolean {
  if (c.s.peers.includes(c.id)) return false
  const m = c.s.membership
  const members = latestConfig(m).members.map((x) => `${x.address} (${x.voter ? "voter" : "learner"})`).join(", ")
  c.reply({
    _tag: "Rejected",
    rid,
    definite: true,
    reason: "Removed",
    message: `this node was removed from the cluster; its members are ${members}`
  })
  return true
}

/** A fresh command id: `node.boot.n`, unique across this node's restarts. */
export function newId(c: Ctx): string {
  const id = `${c.id}.${c.s.bootId}.${c.s.nextId}`
  c.s.nextId += 1
  return id
}

function enqueue(c: Ctx, rid: number, cmd: Command): void {
  const s = c.s
  if (HashMap.size(s.pending) >= s.cfg.pendingRequestsMax || s.queue.length >= s.cfg.queueCommandsMax) {
    c.reply({ _tag: "Rejected", rid, definite: true, reason: "Overloaded", message: "too many requests in flight; try again later" })
    return
  }
  s.pending = HashMap.set(s.pending, cmd.id, { rid, sent: false, deadline: s.now + s.cfg.requestTicks })
  s.queue = s.queue.push(cmd)
}

/**
 * Requests past their deadline, and those of `rids` (their clients are about to give up), fail:
 * definitely if their command never left this node (it is taken out of the queue, so it never
 * will), else with an unknown outcome.
 */
export function expireRequests(c: Ctx, rids?: ReadonlySet<number>): void {
  const s = c.s
  let expiredUnsent: Set<string> | undefined
  for (const [id, p] of s.pending) {
    if (p.deadline > s.now && rids?.has(p.rid) !== true) continue
    s.pending = HashMap.remove(s.pending, id)
    if (p.sent) {
      c.reply({ _tag: "Rejected", rid: p.rid, definite: false, reason: "Timeout", message: "no decision seen in time; the request may or may not be applied" })
    } else {
      ;(expiredUnsent ??= new Set()).add(id)
      c.reply(
        s.leader === null
          ? { _tag: "Rejected", rid: p.rid, definite: true, reason: "NoLeader", message: "no quorum: no leader elected in time; not applied" }
          : { _tag: "Rejected", rid: p.rid, definite: true, reason: "Timeout", message: "not proposed in time; not applied" }
      )
    }
  }
  if (expiredUnsent !== undefined) {
    const gone = expiredUnsent
    s.queue = s.queue.filter((cmd) => !gone.has(cmd.id))
  }
}

/** Marks the commands as having left this node: from now on their outcome is unknown here. */
export function markSent(c: Ctx, cmds: readonly Command[]): void {
  let pending = c.s.pending
  for (const cmd of cmds) {
    const p = HashMap.get(pending, cmd.id)
    if (Option.isSome(p) && !p.value.sent) pending = HashMap.set(pending, cmd.id, { ...p.value, sent: true })
  }
  c.s.pending = pending
}

// ---------------------------------------------------------------------------------------------
// Snapshots and compaction

function takeSnapshot(c: Ctx): void {
  const s = c.s
  const slot = s.applied
  c.persist({
    _tag: "Snapshot",
    slot,
    from: s.snapLen,
    values: s.list.slice(s.snapLen),
    clients: Array.from(HashMap.values(s.clients)),
    membership: s.membership
  })
  compact(c, slot)
  s.snapLen = s.list.length
  c.event({ _tag: "SnapshotTaken", slot })
}

/** Drops accepted values and log entries at or below `slot`: they are covered by the snapshot. */
function compact(c: Ctx, slot: number): void {
  const s = c.s
  s.snapSlot = slot
  s.accepted = HashMap.filter(s.accepted, (e) => e.slot > slot)
  s.log = HashMap.filter(s.log, (_, k) => k > slot)
  s.decided = HashMap.filter(s.decided, (_, k) => k > slot)
}

/**
 * A chunk of a peer's state. A partial chunk extends the staged list; the complete one installs
 * the peer's state at `m.slot` when it is ahead of this node's. Values that overlap what this node
 * already has must agree with it.
 */
export function installSnapshot(c: Ctx, from: number, m: Snapshot): void {
  const s = c.s
  const base = s.staged ?? s.list
  if (m.listFrom > base.length) return // a gap: the chunk that fills it comes first
  const overlap = Math.min(base.length, m.listFrom + m.values.length) - m.listFrom
  for (let i = 0; i < overlap; i++) {
    invariant(base.at(m.listFrom + i) === m.values[i], () =>
      `node ${c.id}: snapshot from node ${from} at slot ${m.slot} disagrees with this node's list at index ${m.listFrom + i}`
    )
  }
  // The chunk ends at `end`. A complete chunk says the sender's list at `m.slot` ends exactly
  // there, so a longer staged tail (cut earlier from a peer further ahead) is dropped.
  const end = m.listFrom + m.values.length
  let list = base.length > end ? base.take(end) : base
  for (let i = list.length - m.listFrom; i < m.values.length; i++) list = list.push(m.values[i] as number)
  if (!m.complete) {
    s.staged = base.length > end ? base : list
    c.event({ _tag: "SnapshotChunkStaged", values: m.values.length })
    maybeCatchup(c, true, from)
    return
  }
  if (m.slot <= s.applied) return
  // The membership at the snapshot's slot; a sender that sent none has the one this node has (a
  // node that joined with no state needs it).
  if (m.membership === undefined && s.joining) return
  const membership = m.membership ?? s.membership
  if (!validMembership(membership)) return
  invariant(list.length >= s.list.length, () =>
    `node ${c.id}: snapshot at slot ${m.slot} is shorter than the applied list (${list.length} < ${s.list.length})`
  )
  c.persist({ _tag: "Snapshot", slot: m.slot, from: s.snapLen, values: list.slice(s.snapLen), clients: m.clients, membership })
  s.joining = false
  s.membership = membership
  s.peers = memberIds(membership)
  s.list = list
  s.staged = null
  s.snapLen = list.length
  s.clients = HashMap.fromIterable(m.clients.map((e) => [e.client, e] as const))
  s.applied = m.slot
  if (m.slot > s.knownDecided) s.knownDecided = m.slot
  compact(c, m.slot)
  c.event({ _tag: "SnapshotInstalled", slot: m.slot })
  applyReady(c)
}

/** Whether a membership from a peer holds together (a malformed one is ignored, never fatal). */
function validMembership(m: Membership): boolean {
  return configProblem(m.current) === null && (m.next === null || configProblem(m.next.config) === null)
}

// ---------------------------------------------------------------------------------------------
// Catch-up

/**
 * Asks for the decided slots this node lacks, at most once per catchupTicks: from `source` (the
 * node that told it of them) or, when there is none and every other time, from a random peer, so a
 * source that lost the slots (or went away) does not stall it.
 */
export function maybeCatchup(c: Ctx, force = false, target?: number): void {
  const s = c.s
  // A node that joined needs a snapshot first, whatever it holds decided above it.
  if (s.knownDecided <= s.applied || (HashMap.has(s.decided, s.applied + 1) && !s.joining)) return
  if (!force && s.now < s.catchupAt) return
  let to = target ?? s.source
  if (to === null || to === c.id || (!force && c.random(0, 2) === 0)) {
    // Another member, at random.
    const peers = s.peers
    if (peers.length < 2) return
    const self = peers.indexOf(c.id)
    to = peers[(Math.max(0, self) + c.random(1, peers.length)) % peers.length] as number
  }
  s.catchupAt = s.now + s.cfg.catchupTicks
  const listLength = (s.staged ?? s.list).length
  c.early(to, s.joining ? { _tag: "CatchupRequest", from: s.applied + 1, listLength, snapshot: true } : { _tag: "CatchupRequest", from: s.applied + 1, listLength })
  c.event({ _tag: "CatchupRequested", from: s.applied + 1 })
}

/** Serves a catch-up request: decided entries if this node still has them, else a snapshot. */
export function serveCatchup(c: Ctx, from: number, m: CatchupRequest): void {
  const s = c.s
  if (m.from > s.applied && !HashMap.has(s.decided, m.from)) return
  if (m.from <= s.snapSlot || m.snapshot === true) {
    if (s.applied < m.from) return
    // One chunk per request: the requester asks again from where it got to.
    const listFrom = Math.min(m.listLength, s.list.length)
    const end = Math.min(s.list.length, listFrom + Math.min(s.cfg.snapshotChunkValues, LIMITS.snapshotChunkValuesMax))
    const complete = end === s.list.length
    c.early(from, {
      _tag: "Snapshot",
      slot: s.applied,
      listFrom,
      values: s.list.slice(listFrom, end),
      clients: complete ? Array.from(HashMap.values(s.clients)) : [],
      complete,
      ...(complete ? { membership: s.membership } : {})
    })
    c.event({ _tag: "SnapshotSent", to: from, values: end - listFrom })
    return
  }
  const entries: Entry[] = []
  for (let slot = m.from; entries.length < s.cfg.messageEntriesMax; slot++) {
    const v = slot <= s.applied ? HashMap.get(s.log, slot) : HashMap.get(s.decided, slot)
    if (Option.isNone(v)) break
    entries.push({ slot, value: v.value })
  }
  if (entries.length === 0) return
  c.early(from, { _tag: "CatchupReply", entries })
  c.event({ _tag: "CatchupServed", to: from, entries: entries.length })
}

export function onCatchupReply(c: Ctx, from: number, entries: readonly Entry[]): void {
  for (const e of entries) decide(c, e.slot, e.value)
  applyReady(c)
  c.s.source = from
  maybeCatchup(c, true)
}
