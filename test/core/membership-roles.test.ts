/**
 * The roles under a configuration (docs/MEMBERSHIP.md): a learner never campaigns and its votes
 * and promises count in no quorum; a slot is decided by a quorum of its own configuration's
 * voters; Phase 1 needs a quorum of every configuration that governs a slot in the leader's window;
 * a configuration that comes into the window later is asked to promise before any of its slots is
 * proposed; a leader proposes no slot more than ALPHA above what it applied. Changes go through
 * the log: answered where applied, refused alike while another is in flight; a removed leader
 * hands over; a caught-up learner is promoted; a node that joined waits for a snapshot.
 */
import assert from "node:assert/strict"
import type { Ballot } from "../../src/core/ballot.ts"
import { defaultConfig, type NodeConfig } from "../../src/core/config.ts"
import { ALPHA, changeConfig, derivedIncarnation, indexedConfig, type Config, type Membership } from "../../src/core/membership.ts"
import { emptyDurable, restore } from "../../src/core/state.ts"
import { test } from "../portable.ts"
import { Bench, only, sentOf, type Sent } from "./harness.ts"

/** Four members: voters 0, 1, 2 and a bound learner 3. */
function withLearner(): Config {
  const added = changeConfig(indexedConfig(3), { _tag: "Add", address: "node3" }) as Config
  return changeConfig(added, { _tag: "Bind", id: 3, incarnation: derivedIncarnation(3) }) as Config
}

/** The same with 3 promoted: four voters, quorum 3. */
const promoted = (): Config => changeConfig(withLearner(), { _tag: "Promote", id: 3 }) as Config

/** Four nodes that all start from `membership`. */
function bench(membership: Membership, overrides: Partial<NodeConfig> = {}): Bench {
  const cfg = { ...overrides, initial: membership.current }
  const t = new Bench(4, cfg)
  t.nodes = t.nodes.map((_, id) => restore(defaultConfig(id, 4, cfg), { ...emptyDurable, snapshot: { ...emptyDurable.snapshot, membership } }, 2000 + id))
  return t
}

const all = (t: Bench, id: number): Sent[] => t.outputs[id]?.flatMap((o) => sentOf(id, o)) ?? []
const promise = (ballot: Ballot) => ({ _tag: "Promise" as const, ballot, snapshot: 0, accepted: [] })

test("a learner never campaigns", () => {
  const t = bench({ current: withLearner(), next: null })
  for (let i = 0; i < 2_000; i++) t.step(3, { _tag: "Tick" })
  assert.equal(all(t, 3).filter((s) => s.msg._tag === "Prepare").length, 0)
  assert.equal(t.nodes[3]?.role._tag, "Follower")
})

test("a learner's promise and vote count in no quorum; its Prepare is ignored", () => {
  const t = bench({ current: withLearner(), next: null })
  const prepares = t.tickUntil(0, "Prepare")
  assert.deepEqual(prepares.map((p) => p.to).sort(), [0, 1, 2, 3], "the learner hears the Prepare too")
  const ballot = only(prepares, "Prepare").ballot
  t.receive(0, 0, promise(ballot))
  t.receive(0, 3, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Candidate", "0 and the learner 3 are no quorum of voters 0, 1, 2")
  t.receive(0, 1, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  t.step(0, { _tag: "Append", rid: 1, value: 7 })
  const slot = only(all(t, 0), "Accept", 1).entries.at(-1)?.slot as number
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: [slot] })
  t.receive(0, 3, { _tag: "Accepted", ballot, slots: [slot] })
  assert.equal(t.nodes[0]?.list.length, 0, "the learner's vote does not decide the slot")
  t.receive(0, 2, { _tag: "Accepted", ballot, slots: [slot] })
  assert.deepEqual(t.nodes[0]?.list.slice(), [7])
  // A learner that campaigns anyway is not heard.
  const before = t.nodes[1]?.promised
  const out = t.receive(1, 3, { _tag: "Prepare", ballot: { round: 99, leader: 3 }, from: 1 })
  assert.deepEqual(out.early.concat(out.send), [])
  assert.deepEqual(t.nodes[1]?.promised, before)
})

test("Phase 1 with a change on its way in needs a quorum of both configurations", () => {
  // The change makes 3 a voter from slot 10 on: inside the first leader's window.
  const t = bench({ current: withLearner(), next: { config: promoted(), from: 10 } })
  const ballot = only(t.tickUntil(0, "Prepare"), "Prepare").ballot
  t.receive(0, 0, promise(ballot))
  t.receive(0, 1, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Candidate", "0 and 1 are a quorum of voters 0-2, not of voters 0-3")
  t.receive(0, 3, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  // It fills the slots before the change with no-ops, so the change takes effect at once.
  const slots = all(t, 0).filter((s) => s.msg._tag === "Accept" && s.to === 1).flatMap((s) => (s.msg._tag === "Accept" ? s.msg.entries.map((e) => e.slot) : []))
  assert.deepEqual(slots, [1, 2, 3, 4, 5, 6, 7, 8, 9])
})

test("a configuration that comes into the window is asked to promise before any of its slots is proposed", () => {
  const from = ALPHA + 5
  // A window wider than ALPHA, so that the alpha rule, not the window, is what holds slots back.
  const t = bench({ current: withLearner(), next: { config: promoted(), from } }, { windowSlots: 4 * ALPHA })
  const ballot = only(t.tickUntil(0, "Prepare"), "Prepare").ballot
  t.receive(0, 0, promise(ballot))
  t.receive(0, 1, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Leader", "slots 1 to ALPHA are all of the old configuration")
  const proposed = () =>
    all(t, 0).filter((s) => s.msg._tag === "Accept" && s.to === 1).flatMap((s) => (s.msg._tag === "Accept" ? s.msg.entries.map((e) => e.slot) : []))
  assert.equal(Math.max(...proposed()), ALPHA, "no slot above applied + ALPHA")
  // Votes of 0 and 1 decide slots 1-10: applied moves to 10, so slots up to 10 + ALPHA may go.
  const ten = Array.from({ length: 10 }, (_, i) => i + 1)
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: ten })
  t.receive(0, 1, { _tag: "Accepted", ballot, slots: ten })
  assert.equal(t.nodes[0]?.applied, 10)
  t.step(0, { _tag: "Append", rid: 1, value: 5 })
  for (let i = 0; i < 3; i++) t.step(0, { _tag: "Tick" })
  assert.equal(Math.max(...proposed()), from - 1, "the slots of the new configuration wait for its promises")
  const asked = all(t, 0).filter((s) => s.msg._tag === "Prepare" && s.to !== 0).map((s) => s.to)
  assert.ok(asked.includes(3) && asked.includes(2), `Prepare went to the voters that did not promise: ${asked}`)
  t.receive(0, 3, { _tag: "Promise", ballot, snapshot: 0, accepted: [{ slot: from, ballot: { round: 0, leader: 2 }, value: [{ _tag: "Append", id: "x", value: 9 }] }] })
  t.step(0, { _tag: "Tick" })
  const accept = all(t, 0).filter((s) => s.msg._tag === "Accept" && s.to === 1).flatMap((s) => (s.msg._tag === "Accept" ? [...s.msg.entries] : []))
  assert.deepEqual(accept.find((e) => e.slot === from)?.value, [{ _tag: "Append", id: "x", value: 9 }], "the late promise's report is re-proposed in its slot")
  assert.ok(accept.some((e) => e.slot === from + 1 && e.value.some((x) => x._tag === "Append" && x.value === 5)), "then the client's command")
})

// ---------------------------------------------------------------------------------------------
// Changes through the log

/** Node 0 leads `t` at the returned ballot (promises from 0, 1 and 2). */
function lead(t: Bench): Ballot {
  const ballot = only(t.tickUntil(0, "Prepare"), "Prepare").ballot
  for (const id of [0, 1, 2]) t.receive(0, id, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  return ballot
}

/** The slots of the Accepts node 0 sent to `to`, and their values. */
const accepts = (t: Bench, to: number) =>
  all(t, 0).flatMap((s) => (s.msg._tag === "Accept" && s.to === to ? [...s.msg.entries] : []))

test("a change is decided in a slot, answered with the membership, and governs the slots ALPHA later; one decided while it is in flight is refused", () => {
  const t = bench({ current: withLearner(), next: null })
  const ballot = lead(t)
  // Two changes in one batch: one slot holds both, and the second finds the first in flight.
  t.batch(0, [
    { _tag: "Reconfig", rid: 1, change: { _tag: "Promote", id: 3 } },
    { _tag: "Reconfig", rid: 2, change: { _tag: "Remove", id: 2 } }
  ])
  const slot = accepts(t, 1).find((e) => e.value.some((c) => c._tag === "Reconfig"))?.slot as number
  assert.ok(slot >= 1)
  const upTo = Array.from({ length: slot }, (_, i) => i + 1)
  t.receive(0, 0, { _tag: "Accepted", ballot, slots: upTo })
  const out = t.receive(0, 1, { _tag: "Accepted", ballot, slots: upTo })
  assert.equal(out.replies.find((r) => r.rid === 1)?._tag, "Reconfigured")
  const durable = out.persist.find((w) => w._tag === "Snapshot")
  assert.ok(durable?._tag === "Snapshot" && durable.slot === slot && durable.membership.next?.from === slot + ALPHA, "the change is made durable at once, with a snapshot")
  assert.deepEqual(t.nodes[0]?.membership.next?.from, slot + ALPHA)
  assert.deepEqual(t.nodes[0]?.membership.next?.config, promoted())
  const refused = out.replies.find((r) => r.rid === 2)
  assert.ok(refused?._tag === "Rejected" && refused.reason === "Refused" && refused.definite, JSON.stringify(refused))
  assert.match(refused.message, /in flight until slot/)
  // The leader pads the slots up to the change with no-ops, so that it takes effect at once.
  assert.equal(Math.max(...accepts(t, 1).map((e) => e.slot)), slot + ALPHA - 1)
})

test("a leader whose removal comes into force steps down and asks a voter to campaign; a removed node refuses clients", () => {
  const t = bench({ current: promoted(), next: null })
  const ballot = only(t.tickUntil(0, "Prepare"), "Prepare").ballot
  for (const id of [0, 1, 2]) t.receive(0, id, promise(ballot))
  assert.equal(t.nodes[0]?.role._tag, "Leader")
  t.step(0, { _tag: "Reconfig", rid: 1, change: { _tag: "Remove", id: 0 } })
  t.step(0, { _tag: "Flush" })
  const slot = accepts(t, 1).find((e) => e.value.some((c) => c._tag === "Reconfig"))?.slot as number
  const vote = (slots: number[]) => {
    for (const id of [1, 2, 3]) t.receive(0, id, { _tag: "Accepted", ballot, slots })
  }
  vote(Array.from({ length: slot }, (_, i) => i + 1))
  t.step(0, { _tag: "Flush" })
  assert.equal(t.nodes[0]?.role._tag, "Leader", "in force only from slot + ALPHA")
  vote(Array.from({ length: ALPHA - 1 }, (_, i) => slot + i + 1))
  assert.equal(t.nodes[0]?.role._tag, "Follower")
  const handedTo = all(t, 0).filter((e) => e.msg._tag === "Campaign").map((e) => e.to)
  assert.equal(handedTo.length, 1)
  assert.ok([1, 2, 3].includes(handedTo[0] as number), "to a voter of the new configuration")
  const refused = t.step(0, { _tag: "Append", rid: 9, value: 1 }).replies[0]
  assert.ok(refused?._tag === "Rejected" && refused.reason === "Removed" && refused.definite)
  assert.match(refused.message, /node1 \(voter\), node2 \(voter\), node3 \(voter\)/)
  // The voter that hears Campaign from its leader campaigns at once.
  t.receive(3, 0, { _tag: "Commit", ballot, commit: 0 })
  const campaign = t.receive(3, 0, { _tag: "Campaign", ballot })
  assert.ok(campaign.early.some((e) => e.msg._tag === "Prepare"))
})

test("a leader promotes a learner that has caught up, through the log", () => {
  const t = bench({ current: withLearner(), next: null })
  const ballot = lead(t)
  t.receive(0, 3, { _tag: "CommitAck", ballot, applied: 0 })
  t.step(0, { _tag: "Flush" })
  const promote = accepts(t, 1).flatMap((e) => e.value).find((c) => c._tag === "Reconfig")
  assert.deepEqual(promote?._tag === "Reconfig" ? promote.change : undefined, { _tag: "Promote", id: 3 })
})

test("a node that joined applies nothing before a snapshot, and takes the membership from it", () => {
  const joined = withLearner()
  const cfg = defaultConfig(3, 4, { initial: joined, joining: true })
  const t = new Bench(4, { initial: joined })
  t.nodes[3] = restore(cfg, emptyDurable, 77)
  const batch = [{ _tag: "Append" as const, id: "a", value: 1 }]
  t.receive(3, 0, { _tag: "Accept", ballot: { round: 1, leader: 0 }, entries: [{ slot: 1, value: batch }], commit: 1 })
  assert.equal(t.nodes[3]?.applied, 0, "slot 1 was decided under a configuration it may not know")
  const out = t.step(3, { _tag: "Tick" })
  assert.ok(out.early.some((e) => e.msg._tag === "CatchupRequest" && e.msg.snapshot === true), "it asks for a snapshot")
  const later = { current: promoted(), next: null }
  t.receive(3, 0, { _tag: "Snapshot", slot: 5, listFrom: 0, values: [1, 2], clients: [], complete: true, membership: later })
  assert.equal(t.nodes[3]?.applied, 5)
  assert.equal(t.nodes[3]?.joining, false)
  assert.deepEqual(t.nodes[3]?.membership, later)
})

test("a removed node that missed its removal campaigns, and is answered with the slots that removed it", () => {
  // Node 3 was removed in slot 1; it did not hear of it and still holds the old configuration.
  const t = bench({ current: promoted(), next: null })
  const removal = [{ _tag: "Reconfig" as const, id: "0.x.1", change: { _tag: "Remove" as const, id: 3 } }]
  for (const id of [0, 1, 2]) {
    t.receive(id, 0, { _tag: "Accept", ballot: { round: 1, leader: 0 }, entries: [{ slot: 1, value: removal }], commit: 1 })
    assert.equal(t.nodes[id]?.applied, 1)
    for (let i = 0; i < ALPHA - 1; i++) t.receive(id, 0, { _tag: "Accept", ballot: { round: 1, leader: 0 }, entries: [{ slot: i + 2, value: [] }], commit: i + 2 })
    assert.ok(!t.nodes[id]?.peers.includes(3), `node ${id} no longer hears 3`)
  }
  const prepare = only(t.tickUntil(3, "Prepare", 5_000), "Prepare")
  const answer = t.receive(1, 3, prepare)
  assert.deepEqual(t.nodes[1]?.promised, { round: 1, leader: 0 }, "its ballot changed nothing")
  // The change was made durable with a snapshot when applied, so the answer is that snapshot.
  const reply = only(sentOf(1, answer), "Snapshot", 3)
  t.receive(3, 1, reply)
  assert.ok(!t.nodes[3]?.peers.includes(3), "it learned that it left")
  const refused = t.step(3, { _tag: "Append", rid: 1, value: 5 }).replies[0]
  assert.ok(refused?._tag === "Rejected" && refused.reason === "Removed")
  const before = t.outputs[3]?.length ?? 0
  for (let i = 0; i < 2_000; i++) t.step(3, { _tag: "Tick" })
  assert.equal(t.outputs[3]?.slice(before).flatMap((o) => sentOf(3, o)).filter((s) => s.msg._tag === "Prepare").length, 0, "and campaigns no more")
})
