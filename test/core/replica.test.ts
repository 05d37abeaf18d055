/**
 * The replica: decided slots apply in order; the client table answers a retry of (client, seq)
 * with the first answer and never applies it twice; reads are answered where their marker is
 * applied; a snapshot lets a lagging node jump ahead.
 */
import assert from "node:assert/strict"
import type { Ballot } from "../../src/core/ballot.ts"
import { test } from "../portable.ts"
import { Bench } from "./harness.ts"

const lb: Ballot = { round: 1, leader: 1 }

test("decided slots apply in order, whatever order they are learned in", () => {
  const t = new Bench(3)
  const v = (id: string, value: number) => [{ _tag: "Append" as const, id, value }]
  t.receive(0, 1, { _tag: "CatchupReply", entries: [{ slot: 2, value: v("b", 2) }] })
  assert.equal(t.nodes[0]?.list.length, 0, "slot 2 waits for slot 1")
  t.receive(0, 1, { _tag: "CatchupReply", entries: [{ slot: 1, value: v("a", 1) }] })
  assert.deepEqual(t.nodes[0]?.list.slice(), [1, 2])
})

test("exactly-once: a retried (client, seq) is applied once and answered with the first answer", () => {
  const t = new Bench(3)
  const first = { _tag: "Append" as const, id: "x.1", value: 5, client: "c1", seq: 1 }
  const retry = { _tag: "Append" as const, id: "x.2", value: 5, client: "c1", seq: 1 }
  t.receive(0, 1, { _tag: "Accept", ballot: lb, entries: [{ slot: 1, value: [first] }, { slot: 2, value: [retry] }], commit: 2 })
  assert.deepEqual(t.nodes[0]?.list.slice(), [5])
  // A third try reaching this node is answered from the table at once.
  const out = t.step(0, { _tag: "Append", rid: 9, value: 5, client: "c1", seq: 1 })
  assert.deepEqual(out.replies, [{ _tag: "Appended", rid: 9, value: 5, index: 0 }])
  assert.ok(out.events.some((e) => e._tag === "DuplicateFromTable"))
})

test("a read is answered where its marker is applied, with the list at that point", () => {
  const t = new Bench(3)
  // Learn of leader 1 so the read is forwarded.
  t.receive(0, 1, { _tag: "Commit", ballot: lb, commit: 0 })
  const out = t.step(0, { _tag: "Read", rid: 7 })
  const fwd = out.early.find((e) => e.msg._tag === "Forward")
  assert.ok(fwd !== undefined && fwd.to === 1 && fwd.msg._tag === "Forward")
  const readCmd = fwd.msg.commands[0]
  assert.ok(readCmd !== undefined)
  const a = { _tag: "Append" as const, id: "y.1", value: 3 }
  const applied = t.receive(0, 1, { _tag: "Accept", ballot: lb, entries: [{ slot: 1, value: [a, readCmd] }], commit: 1 })
  assert.deepEqual(applied.replies, [{ _tag: "ReadDone", rid: 7, length: 1 }])
})

test("a commit watermark alone does not decide a slot accepted at another ballot", () => {
  const t = new Bench(3)
  const a = [{ _tag: "Append" as const, id: "z.1", value: 1 }]
  t.receive(0, 1, { _tag: "Accept", ballot: lb, entries: [{ slot: 1, value: a }], commit: 0 })
  // A later leader (ballot 2.2) says slot 1 is decided: its value may differ, so node 0 must fetch it.
  t.receive(0, 2, { _tag: "Commit", ballot: { round: 2, leader: 2 }, commit: 1 })
  assert.equal(t.nodes[0]?.list.length, 0)
  // Catch-up is driven by ticks (rate-limited), not by every Commit.
  const out = t.step(0, { _tag: "Tick" })
  assert.ok(out.early.some((e) => e.msg._tag === "CatchupRequest"), "on its next tick it asks a peer for the decided value")
})

test("a lagging node installs a snapshot and keeps its list a prefix of it", () => {
  const t = new Bench(3)
  const out = t.receive(0, 1, { _tag: "Snapshot", slot: 40, listFrom: 0, values: [1, 2, 3], clients: [], complete: true })
  assert.deepEqual(t.nodes[0]?.list.slice(), [1, 2, 3])
  assert.equal(t.nodes[0]?.applied, 40)
  // The sender sent no membership: the receiver keeps its own, and stores it with the snapshot.
  assert.deepEqual(out.persist, [{ _tag: "Snapshot", slot: 40, from: 0, values: [1, 2, 3], clients: [], membership: t.nodes[0]?.membership }])
  // A snapshot that contradicts the applied list stops the node.
  assert.throws(() => t.receive(0, 1, { _tag: "Snapshot", slot: 50, listFrom: 0, values: [9, 2, 3, 4], clients: [], complete: true }), /PAXOS-INVARIANT-VIOLATION/)
})

test("a large snapshot travels in chunks the receiver asks for one by one, and installs at the last", () => {
  const sender = new Bench(3, { snapshotChunkValues: 4 })
  // Node 1 has applied 10 values in 10 slots and compacted them into a snapshot.
  sender.nodes[1] = { ...sender.nodes[1]!, snapSlot: 10, applied: 10, knownDecided: 10 }
  for (let v = 1; v <= 10; v++) sender.nodes[1] = { ...sender.nodes[1]!, list: sender.nodes[1]!.list.push(v) }
  const t = new Bench(3)
  let request: { _tag: "CatchupRequest"; from: number; listLength: number } = { _tag: "CatchupRequest", from: 1, listLength: 0 }
  const chunks: boolean[] = []
  for (let round = 0; round < 5; round++) {
    const served = sender.receive(1, 0, request).early.find((e) => e.msg._tag === "Snapshot")
    assert.ok(served !== undefined && served.msg._tag === "Snapshot")
    assert.ok(served.msg.values.length <= 4, "a chunk holds at most snapshotChunkValues values")
    chunks.push(served.msg.complete)
    t.nodes[0] = { ...t.nodes[0]!, knownDecided: 10 }
    const out = t.receive(0, 1, served.msg)
    if (served.msg.complete) break
    const next = out.early.find((e) => e.msg._tag === "CatchupRequest")
    assert.ok(next !== undefined && next.msg._tag === "CatchupRequest", "a staged chunk asks for the next one at once")
    request = next.msg
  }
  assert.deepEqual(chunks, [false, false, true])
  assert.deepEqual(t.nodes[0]?.list.slice(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  assert.equal(t.nodes[0]?.applied, 10)
  assert.equal(t.nodes[0]?.staged, null)
})

test("a complete chunk from a node behind drops a longer staged tail: the list is the sender's at its slot", () => {
  const t = new Bench(3)
  t.nodes[0] = { ...t.nodes[0]!, knownDecided: 30 }
  // Staged from a node further ahead: values 1..6.
  t.receive(0, 1, { _tag: "Snapshot", slot: 30, listFrom: 0, values: [1, 2, 3, 4, 5, 6], clients: [], complete: false })
  assert.equal(t.nodes[0]?.staged?.length, 6)
  // Node 2 is behind: at its slot 20 the list is 1..4.
  t.receive(0, 2, { _tag: "Snapshot", slot: 20, listFrom: 4, values: [], clients: [], complete: true })
  assert.deepEqual(t.nodes[0]?.list.slice(), [1, 2, 3, 4])
  assert.equal(t.nodes[0]?.applied, 20)
})

test("Expire ends the named requests at once (their clients are about to give up): not applied if never sent on, else unknown", () => {
  const t = new Bench(3)
  // No leader known: both appends wait in the queue; only the named one ends.
  t.step(0, { _tag: "Append", rid: 1, value: 5, client: "c1", seq: 1 })
  t.step(0, { _tag: "Append", rid: 2, value: 6 })
  const early = t.step(0, { _tag: "Expire", rids: new Set([1, 99]) })
  assert.deepEqual(early.replies, [{ _tag: "Rejected", rid: 1, definite: true, reason: "NoLeader", message: "no quorum: no leader elected in time; not applied" }])
  assert.equal(t.nodes[0]?.queue.length, 1, "the expired command left the queue, so it is never proposed")
  // Once forwarded to a leader, its outcome is unknown.
  t.receive(1, 2, { _tag: "Commit", ballot: { round: 1, leader: 2 }, commit: 0 })
  const fwd = t.step(1, { _tag: "Read", rid: 3 })
  assert.ok(fwd.early.some((e) => e.to === 2 && e.msg._tag === "Forward"))
  const late = t.step(1, { _tag: "Expire", rids: new Set([3]) })
  assert.deepEqual(late.replies.map((r) => r._tag === "Rejected" && [r.rid, r.definite, r.reason]), [[3, false, "Timeout"]])
})
