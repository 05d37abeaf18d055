/**
 * The leader's rules: one Phase 1 per ballot over every slot above what it applied; the value
 * reported with the highest ballot is re-proposed (Chand et al.'s Phase2a condition), holes become
 * no-ops, slots inside a reported snapshot are not proposed; then pipelined, batched Phase 2 and an
 * advertised commit watermark that only a quorum at its own ballot moves.
 */
import assert from "node:assert/strict"
import type { Ballot } from "../../src/core/ballot.ts"
import type { Batch } from "../../src/core/messages.ts"
import { test } from "../portable.ts"
import { Bench, only, sentOf, type Sent } from "./harness.ts"

const b = (round: number, leader: number): Ballot => ({ round, leader })
const cmd = (id: string, value: number) => ({ _tag: "Append" as const, id, value })

/** Node 0 campaigns; returns its Prepare ballot. */
function campaign(t: Bench): Ballot {
  const prepares = t.tickUntil(0, "Prepare")
  assert.equal(prepares.length, 3, "a Prepare goes to every node, itself included")
  return only(prepares, "Prepare").ballot
}

function accepts(sent: readonly Sent[], to: number): Array<{ slot: number; value: Batch }> {
  return sent.filter((s) => s.msg._tag === "Accept" && s.to === to).flatMap((s) => (s.msg._tag === "Accept" ? [...s.msg.entries] : []))
}

test("Phase2a after Phase1: the highest-ballot reported value is re-proposed, holes become no-ops", () => {
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, {
    _tag: "Promise",
    ballot,
    snapshot: 0,
    accepted: [
      { slot: 1, ballot: b(0, 1), value: [cmd("old", 1)] },
      { slot: 3, ballot: b(0, 1), value: [cmd("c", 3)] }
    ]
  })
  const out = t.receive(0, 2, {
    _tag: "Promise",
    ballot,
    snapshot: 0,
    accepted: [{ slot: 1, ballot: b(0, 2), value: [cmd("new", 2)] }]
  })
  // A quorum (0 and 1) was enough: the leader was elected at the second promise.
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  const proposed = accepts(t.outputs[0]?.flatMap((o) => sentOf(0, o)) ?? [], 1)
  assert.deepEqual(proposed, [
    { slot: 1, value: [cmd("old", 1)] },
    { slot: 2, value: [] },
    { slot: 3, value: [cmd("c", 3)] }
  ])
  assert.deepEqual(out.persist, [], "the third promise arrives after election and changes nothing")
})

test("Phase 2 waits for the candidate's own promise: a quorum of other nodes is not enough", () => {
  // The shell steps batches before earlier ones are durable; the candidate's own promise reaches it
  // only once its write is durable. A leader elected without it could crash with its ballot lost,
  // campaign at the same ballot again and propose a second value in a slot (see program.ts).
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  const out = t.receive(0, 2, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  assert.equal(t.nodes[0]?.role._tag, "Candidate", "two remote promises of three nodes: still a candidate")
  assert.deepEqual(accepts(sentOf(0, out), 1), [], "no Accept before its own promise")
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  assert.equal(t.nodes[0]?.role._tag, "Leader")
})

test("slots inside a reported snapshot are decided already and are not proposed again", () => {
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 5, accepted: [{ slot: 6, ballot: b(0, 1), value: [cmd("x", 6)] }] })
  const proposed = accepts(t.outputs[0]?.flatMap((o) => sentOf(0, o)) ?? [], 1)
  assert.deepEqual(proposed.map((e) => e.slot), [6])
  // It asks the node with the snapshot for what it lacks.
  const req = only(t.outputs[0]?.flatMap((o) => sentOf(0, o)) ?? [], "CatchupRequest")
  assert.equal(req.from, 1)
})

test("client commands are batched per slot and pipelined up to the window; the watermark needs a quorum", () => {
  const t = new Bench(3, { windowSlots: 2, batchCommandsMax: 2 })
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  for (let rid = 1; rid <= 5; rid++) t.step(0, { _tag: "Append", rid, value: rid * 10 })
  const sent = t.outputs[0]?.flatMap((o) => sentOf(0, o)) ?? []
  const proposed = accepts(sent, 1)
  assert.deepEqual(proposed.map((e) => [e.slot, e.value.length]), [[1, 1], [2, 1]], "window of 2 slots fills first")
  // Slot 2 is chosen before slot 1 (pipelining): the advertised commit stays at 0.
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [2] })
  const out2 = t.receive(0, 1, { _tag: "Accepted", ballot, slots: [2] })
  const leader = t.nodes[0]?.role
  assert.ok(leader?._tag === "Leader")
  assert.equal(leader.committed, 0, "slot 1 has no quorum yet, so nothing may be advertised")
  // The freed window slot takes the next batch of up to 2 queued commands.
  assert.deepEqual(accepts(sentOf(0, out2), 1).map((e) => [e.slot, e.value.length]), [[3, 2]])
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [1] })
  const out = t.receive(0, 1, { _tag: "Accepted", ballot, slots: [1] })
  const leader2 = t.nodes[0]?.role
  assert.ok(leader2?._tag === "Leader")
  assert.equal(leader2.committed, 2)
  assert.deepEqual(out.replies.map((r) => r._tag), ["Appended", "Appended"], "slots 1 and 2 apply in order and answer their clients")
})

test("a leader that meets a higher ballot steps down", () => {
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  const out = t.receive(0, 2, { _tag: "Nack", ballot, promised: b(ballot.round + 1, 2) })
  assert.equal(t.nodes[0]?.role._tag, "Follower")
  assert.ok(out.events.some((e) => e._tag === "SteppedDown" && e.reason === "preempted"))
})

test("commands arriving in one batch share slots: five appends in a batch make one proposal", () => {
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  const out = t.batch(0, [1, 2, 3, 4, 5].map((rid) => ({ _tag: "Append" as const, rid, value: rid })))
  assert.deepEqual(accepts(sentOf(0, out), 1).map((e) => [e.slot, e.value.length]), [[1, 5]])
  // With a small batch limit and window, the same batch fills the window and the rest waits.
  const t2 = new Bench(3, { windowSlots: 2, batchCommandsMax: 2 })
  const b2 = campaign(t2)
  t2.receive(0, 0, { _tag: "Promise", ballot: b2, snapshot: 0, accepted: [] })
  t2.receive(0, 1, { _tag: "Promise", ballot: b2, snapshot: 0, accepted: [] })
  const out2 = t2.batch(0, [1, 2, 3, 4, 5].map((rid) => ({ _tag: "Append" as const, rid, value: rid })))
  assert.deepEqual(accepts(sentOf(0, out2), 1).map((e) => [e.slot, e.value.length]), [[1, 2], [2, 2]])
  assert.equal(t2.nodes[0]?.queue.length, 1)
})

test("a decision that no Accept carries is announced at once to the followers whose commands it holds", () => {
  // With nothing else to propose, the only way a follower hears of a decision before the next
  // heartbeat is this Commit; its client (a command it forwarded) waits for it.
  const t = new Bench(3)
  const ballot = campaign(t)
  t.receive(0, 0, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Promise", ballot, snapshot: 0, accepted: [] })
  t.receive(0, 1, { _tag: "Forward", commands: [{ _tag: "Append", id: "1.b1.0", value: 7 }] })
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [1] })
  const out = t.receive(0, 1, { _tag: "Accepted", ballot, slots: [1] })
  const leader = t.nodes[0]?.role
  assert.ok(leader?._tag === "Leader")
  assert.equal(leader.committed, 1)
  assert.equal(only(sentOf(0, out), "Commit", 1).commit, 1, "node 1, whose command slot 1 holds, hears that it is decided")
  assert.ok(!sentOf(0, out).some((m) => m.msg._tag === "Commit" && m.to === 2), "node 2 waits for nothing: it hears with the next Accept")
  // The leader's own commands need no Commit: no follower waits for them.
  t.step(0, { _tag: "Append", rid: 1, value: 8 })
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [2] })
  const own = t.receive(0, 2, { _tag: "Accepted", ballot, slots: [2] })
  assert.deepEqual(own.replies.map((r) => r._tag), ["Appended"])
  assert.ok(!sentOf(0, own).some((m) => m.msg._tag === "Commit"))
  // A decision in a batch that also proposes rides on the Accept's commit point: no extra Commit.
  t.receive(0, 2, { _tag: "Forward", commands: [{ _tag: "Append", id: "2.b2.0", value: 9 }] })
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [3] })
  const both = t.batch(0, [
    { _tag: "Receive", from: 2, msg: { _tag: "Accepted", ballot, slots: [3] } },
    { _tag: "Append", rid: 2, value: 10 }
  ])
  assert.equal(accepts(sentOf(0, both), 1)[0]?.slot, 4)
  assert.equal(only(sentOf(0, both), "Accept", 2).commit, 3)
  assert.ok(!sentOf(0, both).some((m) => m.msg._tag === "Commit"), "the Accept carried the commit point")
})
