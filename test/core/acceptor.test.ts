/**
 * The acceptor's rules, each tied to Chand, Liu and Stoller (2016) "Formal Verification of
 * Multi-Paxos": Phase1b promises only above the current promise and reports accepted values;
 * Phase2b accepts only at or above the promise; answers wait for durability.
 */
import assert from "node:assert/strict"
import { HashMap } from "effect"
import type { Ballot } from "../../src/core/ballot.ts"
import { test } from "../portable.ts"
import { Bench, only, sentOf } from "./harness.ts"

const b = (round: number, leader: number): Ballot => ({ round, leader })
const append = (id: string, value: number) => ({ _tag: "Append" as const, id, value })

test("Phase1b: a promise is made durable before it is sent, and reports accepted values", () => {
  const t = new Bench(3)
  t.receive(0, 1, { _tag: "Accept", ballot: b(1, 1), entries: [{ slot: 1, value: [append("x", 7)] }], commit: 0 })
  const out = t.receive(0, 2, { _tag: "Prepare", ballot: b(2, 2), from: 1 })
  assert.deepEqual(out.persist, [{ _tag: "Promise", promised: b(2, 2) }])
  assert.equal(out.early.some((e) => e.msg._tag === "Promise"), false, "a promise must not leave before it is durable")
  const promise = only(sentOf(0, out), "Promise", 2)
  assert.deepEqual(promise.accepted, [{ slot: 1, ballot: b(1, 1), value: [append("x", 7)] }])
})

test("Phase1b: a Prepare below the promise gets a Nack naming the promise", () => {
  const t = new Bench(3)
  t.receive(0, 2, { _tag: "Prepare", ballot: b(5, 2), from: 1 })
  const out = t.receive(0, 1, { _tag: "Prepare", ballot: b(4, 1), from: 1 })
  assert.deepEqual(out.persist, [])
  assert.deepEqual(only(sentOf(0, out), "Nack", 1), { _tag: "Nack", ballot: b(4, 1), promised: b(5, 2) })
})

test("Phase2b: an acceptor never accepts below its promise", () => {
  const t = new Bench(3)
  t.receive(0, 2, { _tag: "Prepare", ballot: b(5, 2), from: 1 })
  const out = t.receive(0, 1, { _tag: "Accept", ballot: b(4, 1), entries: [{ slot: 1, value: [append("x", 1)] }], commit: 0 })
  assert.deepEqual(out.persist, [])
  assert.equal(sentOf(0, out).some((s) => s.msg._tag === "Accepted"), false)
  only(sentOf(0, out), "Nack", 1)
  assert.equal(HashMap.size(t.nodes[0]?.accepted ?? HashMap.empty()), 0, "nothing may be stored below the promise")
})

test("Phase2b: accepting at a higher ballot raises the promise durably, and the vote waits for the write", () => {
  const t = new Bench(3)
  const out = t.receive(0, 1, { _tag: "Accept", ballot: b(3, 1), entries: [{ slot: 1, value: [append("x", 1)] }], commit: 0 })
  assert.equal(out.persist.length, 1)
  const w = out.persist[0]
  assert.ok(w !== undefined && w._tag === "Accept")
  assert.deepEqual(w.promised, b(3, 1))
  assert.deepEqual(only(sentOf(0, out), "Accepted", 1), { _tag: "Accepted", ballot: b(3, 1), slots: [1] })
  assert.equal(out.early.some((e) => e.msg._tag === "Accepted"), false, "a vote must not leave before it is durable")
  // A Prepare between the two ballots is now refused.
  const nack = t.receive(0, 2, { _tag: "Prepare", ballot: b(2, 2), from: 1 })
  only(sentOf(0, nack), "Nack", 2)
})

test("the planted bug forget-promise really skips the durable write (so the simulator can catch it)", () => {
  const t = new Bench(3, { bugs: new Set(["forget-promise"]) })
  const out = t.receive(0, 2, { _tag: "Prepare", ballot: b(2, 2), from: 1 })
  assert.deepEqual(out.persist, [])
  only(sentOf(0, out), "Promise", 2)
})
