/**
 * One Multi-Paxos node as a pure function: step(state, input) -> { state, output }.
 *
 * Input is a tick, a peer message, a client request, or the end of a batch (Flush, which
 * `stepBatch` adds: commands queued during a batch are proposed together). Output holds messages that may leave at once
 * (`early`), client replies (`replies`: decided commands only, so they too leave at once), writes to
 * make durable (`persist`), and the messages that must wait until those writes and every earlier
 * one are durable (`send`). Messages a node sends to itself (its own acceptor's votes) are in
 * `send`, so a self-vote counts only once it is durable: the loop-back is this design's "persisted
 * up to N" input. See docs/PROTOCOL.md.
 */
import * as B from "./ballot.ts"
import type { Ballot } from "./ballot.ts"
import { onAccept, onPrepare } from "./acceptor.ts"
import { Ctx } from "./ctx.ts"
import {
  ballotOf,
  announceCommit,
  leaderTick,
  leaveIfRemoved,
  onAccepted,
  onCommitAck,
  onForward,
  onPromise,
  proposeQueued,
  startElection,
  stepDown
} from "./leader.ts"
import { latestConfig, votesIn } from "./membership.ts"
import type { Message } from "./messages.ts"
import { PList } from "./plist.ts"
import {
  expireRequests,
  installSnapshot,
  learnCommit,
  markSent,
  maybeCatchup,
  onCatchupReply,
  onClientAppend,
  onClientRead,
  onClientReconfig,
  serveCatchup
} from "./replica.ts"
import type { Input, NodeState, StepResult } from "./state.ts"

export function step(state: NodeState, input: Input): StepResult {
  const c = new Ctx(state)
  stepInto(c, input)
  return { state: c.s, output: c.out }
}

/**
 * Handles one input on `c`, which may hold the draft and outputs of earlier inputs of the same
 * batch (`stepBatch` steps a whole batch on one context, so it copies the state and allocates
 * outputs once per batch, not once per input). `c.commitChanged` spans the batch: a decision made
 * by a vote early in the batch is announced by the Flush at its end (`announceCommit`, to the
 * followers whose commands it applied) unless an Accept to every node carried the new commit
 * point meanwhile. (Reset per input, as it once was, the Flush never saw it: a follower then
 * heard of decisions only from the next Accept or heartbeat, up to heartbeatTicks later, and a
 * client of a follower waited that long at low load.)
 */
export function stepInto(c: Ctx, input: Input): void {
  switch (input._tag) {
    case "Tick":
      c.s.now += 1
      onTick(c)
      break
    case "Receive":
      onMessage(c, input.from, input.msg)
      break
    case "Append":
      onClientAppend(c, input.rid, input.value, input.client, input.seq)
      break
    case "Read":
      onClientRead(c, input.rid)
      break
    case "Reconfig":
      onClientReconfig(c, input.rid, input.change)
      break
    case "Expire":
      expireRequests(c, input.rids)
      break
    case "Flush":
      break
  }
  // Proposals and forwards wait for the end of the batch (or a tick), so that every command that
  // arrived in one batch shares slots and messages: batching follows the load by itself.
  if (input._tag === "Flush" || input._tag === "Tick") flush(c)
}

function onTick(c: Ctx): void {
  const s = c.s
  if (s.now % 10 === 0) expireRequests(c)
  switch (s.role._tag) {
    case "Follower":
      if (s.now >= s.electionAt) startElection(c)
      break
    case "Candidate":
      if (s.now >= s.role.deadline) {
        s.backoff = Math.min(s.backoff * 2, 8)
        startElection(c)
      }
      break
    case "Leader":
      leaderTick(c)
      break
  }
  maybeCatchup(c)
}

function onMessage(c: Ctx, from: number, msg: Message): void {
  // A leader that left the configuration hands over: heard from the leader this node follows only.
  if (msg._tag === "Campaign") {
    if (from === c.s.leader && from !== c.id && c.s.role._tag === "Follower") startElection(c)
    return
  }
  // Only members are heard; a removed node is ignored. An id above every id this node knows of is
  // a member added since (this node lags: it restarted from a snapshot older than the addition, or
  // missed it): it is heard, so that this node learns what it missed from it. Its votes and
  // promises count only where it is a voter, and Prepares only from voters are heard (below).
  if (from !== c.id && !c.s.peers.includes(from)) {
    const m = c.s.membership
    if (from < latestConfig(m).nextId) {
      answerFormerMember(c, from, msg)
      return
    }
  }
  switch (msg._tag) {
    case "Prepare":
      // Only a voter may lead: a learner's or a removed member's ballot never disturbs anyone.
      if (from !== c.id && !votesIn(c.s.membership, from)) return
      if (from !== c.id) yieldTo(c, msg.ballot)
      if (onPrepare(c, from, msg) && from !== c.id) {
        c.s.leader = null
        c.s.electionAt = c.electionDeadline()
      }
      return
    case "Promise":
      return onPromise(c, from, msg)
    case "Accept":
      if (from !== c.id) yieldTo(c, msg.ballot)
      if (onAccept(c, from, msg)) {
        heardLeader(c, from, msg.ballot, msg.commit, undefined)
        learnCommit(c, from, msg.ballot, msg.commit)
      }
      return
    case "Accepted":
      return onAccepted(c, from, msg)
    case "Nack":
      if (B.gt(msg.promised, c.s.seen)) c.s.seen = msg.promised
      {
        const mine = ballotOf(c)
        if (mine !== undefined && B.eq(mine, msg.ballot) && B.gt(msg.promised, mine)) stepDown(c, msg.promised, "preempted")
      }
      return
    case "Commit":
      if (B.lt(msg.ballot, c.s.promised)) {
        c.early(from, { _tag: "Nack", ballot: msg.ballot, promised: c.s.promised })
        return
      }
      yieldTo(c, msg.ballot)
      heardLeader(c, from, msg.ballot, msg.commit, msg.quorum)
      learnCommit(c, from, msg.ballot, msg.commit)
      c.early(from, { _tag: "CommitAck", ballot: msg.ballot, applied: c.s.applied })
      return
    case "CommitAck":
      return onCommitAck(c, from, msg.ballot, msg.applied)
    case "Forward":
      return onForward(c, from, msg.commands)
    case "ForwardReject":
      return onForwardReject(c, from)
    case "CatchupRequest":
      return serveCatchup(c, from, msg)
    case "CatchupReply":
      return onCatchupReply(c, from, msg.entries)
    case "Snapshot":
      return installSnapshot(c, from, msg)
  }
}

/**
 * A former member that did not hear of its removal (it was cut off meanwhile) campaigns, and asks
 * its old peers for what it lacks. Its ballot changes nothing here; instead it gets the decided
 * slots from the one its Prepare names on, which include its removal: it then knows it left, stops
 * campaigning and tells its clients whom to ask.
 */
function answerFormerMember(c: Ctx, from: number, msg: Message): void {
  if (msg._tag === "Prepare") serveCatchup(c, from, { _tag: "CatchupRequest", from: msg.from, listLength: 0 })
  else if (msg._tag === "CatchupRequest") serveCatchup(c, from, msg)
  else return
  c.event({ _tag: "FormerMemberAnswered", to: from })
}

/** A candidate or leader that meets a higher ballot at work steps down. */
function yieldTo(c: Ctx, ballot: Ballot): void {
  if (B.gt(ballot, c.s.seen)) c.s.seen = ballot
  const mine = ballotOf(c)
  if (mine !== undefined && B.gt(ballot, mine)) stepDown(c, ballot, "higher-ballot")
}

/**
 * A message from the leader of a ballot this node accepts: follow it and stay quiet. What it says
 * of itself (its commit watermark; in a heartbeat, whether it hears from a quorum) is kept for this
 * node's readiness (readiness.ts); `quorum` is undefined for an Accept, which says nothing of it.
 */
function heardLeader(c: Ctx, from: number, ballot: Ballot, commit: number, quorum: boolean | undefined): void {
  if (from === c.id || ballot.leader !== from) return
  const s = c.s
  if (s.leader !== from) {
    s.leaderCommit = 0
    s.leaderQuorum = false
  }
  s.leader = from
  s.leaderHeardAt = s.now
  if (commit > s.leaderCommit) s.leaderCommit = commit
  if (quorum !== undefined) s.leaderQuorum = quorum
  s.source = from
  s.backoff = 1
  s.electionAt = c.electionDeadline()
}

/**
 * Forwarded commands the receiver refused: it does not lead (or is full), so this node forgets it
 * as leader and forwards later commands to whoever it hears lead next. The refused commands are
 * not sent again and not failed as "not applied": a duplicated Forward may have reached a leader
 * earlier, so their outcome is unknown and they run to their deadline.
 */
function onForwardReject(c: Ctx, from: number): void {
  if (c.s.leader === from) c.s.leader = null
}

/** At the end of a batch and on ticks: propose (leader) or forward (follower) what waits in the queue. */
function flush(c: Ctx): void {
  const s = c.s
  leaveIfRemoved(c)
  if (s.role._tag === "Leader") {
    proposeQueued(c)
    announceCommit(c)
    return
  }
  if (s.leader === null || s.leader === c.id || s.queue.length === 0) return
  const max = s.cfg.messageEntriesMax
  for (let i = 0; i < s.queue.length; i += max) {
    c.early(s.leader, { _tag: "Forward", commands: s.queue.slice(i, i + max) })
  }
  markSent(c, s.queue.slice())
  c.event({ _tag: "Forwarded", commands: s.queue.length })
  s.queue = PList.empty()
}
