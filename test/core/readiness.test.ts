/**
 * Readiness (GET /ready): a node is ready while it knows a leader that heard from a quorum within
 * the last election timeout and has applied what that leader committed. The leader stamps its
 * heartbeats with whether it heard from a quorum, so its followers can tell.
 */
import assert from "node:assert/strict"
import type { Ballot } from "../../src/core/ballot.ts"
import { readiness } from "../../src/core/readiness.ts"
import type { NodeState } from "../../src/core/state.ts"
import { test } from "../portable.ts"
import { Bench, only, sentOf } from "./harness.ts"

/** Node 0 of a 3-node bench becomes leader with the promises of 0 and 1; returns its ballot. */
function elect(t: Bench): Ballot {
  const ballot = only(t.tickUntil(0, "Prepare"), "Prepare").ballot
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  return ballot
}

const node = (t: Bench, i: number): NodeState => t.nodes[i] as NodeState

/** Ticks the leader until its next heartbeat to node 1; returns that Commit. */
function heartbeat(t: Bench) {
  return only(t.tickUntil(0, "Commit"), "Commit", 1)
}

test("a node that knows no leader is not ready: NoLeader", () => {
  const t = new Bench(3)
  const r = readiness(node(t, 1))
  assert.equal(r.ok, false)
  assert.equal(r.reason, "NoLeader")
  assert.equal(r.leader, null)
})

test("a leader that hears a quorum is ready, says so in its heartbeats, and its followers are ready", () => {
  const t = new Bench(3)
  elect(t)
  assert.deepEqual(readiness(node(t, 0)), { ok: true, reason: null, leader: 0, applied: 0, leaderCommit: 0, silent: null })
  const hb = heartbeat(t)
  assert.equal(hb.quorum, true)
  assert.equal(readiness(node(t, 1)).reason, "NoLeader", "before it hears the leader")
  t.receive(1, 0, hb)
  assert.deepEqual(readiness(node(t, 1)), { ok: true, reason: null, leader: 0, applied: 0, leaderCommit: 0, silent: null })
  // Acknowledged heartbeats keep it so, for as long as they come.
  for (let i = 0; i < 20; i++) {
    const c = heartbeat(t)
    const out = t.receive(1, 0, c)
    t.receive(0, 1, only(sentOf(1, out), "CommitAck", 0))
    assert.equal(readiness(node(t, 0)).ok, true, `heartbeat ${i}`)
    assert.equal(c.quorum, true)
  }
  assert.equal(readiness(node(t, 1)).ok, true)
})

test("a leader that hears no quorum for an election timeout is not ready, and its heartbeats tell its followers", () => {
  const t = new Bench(3)
  elect(t)
  t.receive(1, 0, heartbeat(t))
  assert.equal(readiness(node(t, 1)).ok, true)
  // Nothing reaches the leader from here on: no CommitAck, no Accepted.
  const electionTicks = node(t, 0).cfg.electionTicks
  const since = node(t, 0).now
  while (readiness(node(t, 0)).ok) t.step(0, { _tag: "Tick" })
  const waited = node(t, 0).now - since
  assert.ok(waited > electionTicks - 5 && waited <= electionTicks + 1, `not ready after ${waited} ticks (election timeout ${electionTicks})`)
  assert.equal(node(t, 0).role._tag, "Leader", "it still leads (it steps down after three election timeouts)")
  assert.equal(readiness(node(t, 0)).reason, "LeaderWithoutQuorum")
  const hb = heartbeat(t)
  assert.equal(hb.quorum, false)
  t.receive(1, 0, hb)
  const r = readiness(node(t, 1))
  assert.equal(r.reason, "LeaderWithoutQuorum")
  assert.equal(r.leader, 0)
})

test("a follower that has not applied what its leader committed is Behind, and ready once it has", () => {
  const t = new Bench(3)
  const ballot = elect(t)
  t.receive(1, 0, { _tag: "Commit", ballot, commit: 3, quorum: true })
  const r = readiness(node(t, 1))
  assert.equal(r.reason, "Behind")
  assert.equal(r.leaderCommit, 3)
  assert.equal(r.applied, 0)
  // The slots arrive (as catch-up does) and are applied.
  t.receive(1, 0, { _tag: "CatchupReply", entries: [1, 2, 3].map((slot) => ({ slot, value: [] })) })
  assert.equal(node(t, 1).applied, 3)
  assert.equal(readiness(node(t, 1)).ok, true)
})

test("a follower whose leader fell silent for an election timeout is not ready: NoLeader, naming the silent one", () => {
  const t = new Bench(3)
  elect(t)
  t.receive(1, 0, heartbeat(t))
  const s = node(t, 1)
  const later = (ticks: number): NodeState => ({ ...s, now: s.now + ticks })
  assert.equal(readiness(later(s.cfg.electionTicks)).ok, true)
  const r = readiness(later(s.cfg.electionTicks + 1))
  assert.equal(r.reason, "NoLeader")
  assert.deepEqual(r.silent, { leader: 0, ticks: s.cfg.electionTicks + 1 })
})

test("a heartbeat without the stamp claims nothing: the follower does not take its leader to hold a quorum", () => {
  const t = new Bench(3)
  const ballot = elect(t)
  t.receive(1, 0, { _tag: "Commit", ballot, commit: 0 })
  assert.equal(readiness(node(t, 1)).reason, "LeaderWithoutQuorum")
})
