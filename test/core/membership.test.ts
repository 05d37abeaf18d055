/**
 * The membership rules (src/core/membership.ts, docs/MEMBERSHIP.md), with no network: quorums count
 * voters only; a change governs the slots from its slot + ALPHA on; one change in flight at a
 * time, judged from what was applied; invalid changes are refused and change nothing; and, over
 * random sequences of changes, the configuration of every slot equals the one a reference model
 * replaying the decided changes computes, and every configuration keeps its invariants.
 * Runs under Bun and Deno (test/portable.ts).
 */
import fc from "fast-check"
import assert from "node:assert/strict"
import { InvariantViolation } from "../../src/core/invariant.ts"
import {
  ALPHA,
  applyChange,
  changeConfig,
  checkConfig,
  configAt,
  configsBetween,
  initialConfig,
  isQuorum,
  MEMBERS_MAX,
  quorumSize,
  settle,
  startMembership,
  voters,
  type Change,
  type Config,
  type Membership
} from "../../src/core/membership.ts"
import { test } from "../portable.ts"

const inc = (n: number): string => n.toString(16).padStart(16, "0")
const three = (): Config => initialConfig(["a:1", "b:1", "c:1"], [inc(1), inc(2), inc(3)])
const addresses = (c: Config): string[] => c.members.map((x) => x.address)

/** Applies a change that must be accepted. */
function ok(m: Membership, slot: number, change: Change): Membership {
  const r = applyChange(m, slot, change)
  if (!("membership" in r)) throw new Error(`refused: ${JSON.stringify(r)}`)
  return r.membership
}

/** The message of a change that must be refused as invalid. */
function invalid(m: Membership, slot: number, change: Change): string {
  const r = applyChange(m, slot, change)
  if (!("_tag" in r) || r._tag !== "Invalid") throw new Error(`not refused as invalid: ${JSON.stringify(r)}`)
  return r.message
}

test("quorums: a majority of the voters; learners, unknown ids and repeats do not count", () => {
  const c = three()
  assert.equal(quorumSize(c), 2)
  assert.equal(isQuorum(c, [0, 1]), true)
  assert.equal(isQuorum(c, [0, 0, 0]), false)
  assert.equal(isQuorum(c, [0, 7, 8]), false)
  const withLearner = changeConfig(c, { _tag: "Add", address: "d:1" }) as Config
  assert.deepEqual(voters(withLearner), [0, 1, 2])
  assert.equal(isQuorum(withLearner, [0, 3]), false)
  assert.equal(quorumSize(withLearner), 2)
})

test("quorums: sizes for one to seven voters", () => {
  for (let n = 1; n <= 7; n++) {
    const c = initialConfig(Array.from({ length: n }, (_, i) => `n${i}:1`), Array.from({ length: n }, (_, i) => inc(i + 1)))
    assert.equal(quorumSize(c), Math.floor(n / 2) + 1)
  }
})

test("alpha: a change decided in slot s governs the slots from s + ALPHA on", () => {
  let m = startMembership(three())
  m = ok(m, 10, { _tag: "Add", address: "d:1" })
  assert.deepEqual(addresses(configAt(m, 10, 10 + ALPHA - 1)), ["a:1", "b:1", "c:1"])
  assert.deepEqual(addresses(configAt(m, 10, 10 + ALPHA)), ["a:1", "b:1", "c:1", "d:1"])
  assert.equal(configsBetween(m, 10, 11, 10 + ALPHA).length, 2)
  assert.equal(configsBetween(m, 10, 11, 10 + ALPHA - 1).length, 1)
  assert.equal(settle(m, 10 + ALPHA - 1), m)
  assert.equal(settle(m, 10 + ALPHA).next, null)
})

test("alpha: a configuration beyond applied + ALPHA is not known, and asking for it is a defect", () => {
  const m = startMembership(three())
  assert.throws(() => configAt(m, 5, 5 + ALPHA + 1), InvariantViolation)
  assert.equal(configAt(m, 5, 5 + ALPHA).epoch, 0)
})

test("alpha: one change in flight at a time, from its slot to the slot it governs", () => {
  let m = startMembership(three())
  m = ok(m, 10, { _tag: "Add", address: "d:1" })
  assert.deepEqual(applyChange(m, 11, { _tag: "Remove", id: 2 }), { _tag: "InFlight", until: 10 + ALPHA })
  assert.deepEqual(applyChange(m, 10 + ALPHA - 1, { _tag: "Remove", id: 2 }), { _tag: "InFlight", until: 10 + ALPHA })
  m = ok(m, 10 + ALPHA, { _tag: "Remove", id: 2 })
  assert.deepEqual(m.current.members.map((x) => x.id), [0, 1, 2, 3])
  assert.deepEqual(m.next?.config.members.map((x) => x.id), [0, 1, 3])
  assert.equal(m.next?.config.epoch, 2)
})

test("alpha: a Bind takes effect at once, binds a learner a pending change adds, and is not a change in flight", () => {
  let m = startMembership(three())
  m = ok(m, 10, { _tag: "Add", address: "d:1" })
  m = ok(m, 12, { _tag: "Bind", id: 3, incarnation: inc(9) })
  assert.deepEqual(m.next?.config.members[3], { id: 3, address: "d:1", incarnation: inc(9), voter: false })
  assert.equal(m.next?.from, 10 + ALPHA)
  assert.equal(m.current.members.length, 3)
  assert.deepEqual(applyChange(m, 13, { _tag: "Promote", id: 3 }), { _tag: "InFlight", until: 10 + ALPHA })
  m = ok(m, 10 + ALPHA, { _tag: "Promote", id: 3 })
  assert.equal(configAt(m, 10 + ALPHA, 10 + 2 * ALPHA).members[3]?.voter, true)
  assert.deepEqual(voters(configAt(m, 10 + ALPHA, 10 + 2 * ALPHA)), [0, 1, 2, 3])
})

const m0 = startMembership(three())
const INVALID: Array<[string, Membership, Change, string]> = [
  ["adding an address twice", m0, { _tag: "Add", address: "b:1" }, "member already"],
  ["an empty address", m0, { _tag: "Add", address: "" }, "address"],
  ["promoting a voter", m0, { _tag: "Promote", id: 1 }, "voter already"],
  ["promoting an unknown id", m0, { _tag: "Promote", id: 9 }, "no member"],
  ["removing an unknown id", m0, { _tag: "Remove", id: 9 }, "no member"],
  ["replacing a learner", ok(m0, 1, { _tag: "Add", address: "d:1" }), { _tag: "Replace", remove: 3, promote: 0 }, "not a voter"],
  ["replacing with a voter", m0, { _tag: "Replace", remove: 0, promote: 1 }, "voter already"],
  ["replacing with a learner that never joined", ok(m0, 1, { _tag: "Add", address: "d:1" }), { _tag: "Replace", remove: 0, promote: 3 }, "--join"],
  ["binding a member bound to another data directory", m0, { _tag: "Bind", id: 1, incarnation: inc(99) }, "another data directory"],
  ["binding a malformed incarnation", ok(m0, 1, { _tag: "Add", address: "d:1" }), { _tag: "Bind", id: 3, incarnation: "xyz" }, "malformed"],
  ["promoting a learner that never joined", ok(m0, 1, { _tag: "Add", address: "d:1" }), { _tag: "Promote", id: 3 }, "--join"]
]
for (const [name, m, change, says] of INVALID) {
  test(`refused: ${name}`, () => {
    const message = invalid(settle(m, 500), 500, change)
    assert.ok(message.includes(says), message)
  })
}

test("refused: removing the last voter", () => {
  const m = settle(ok(startMembership(initialConfig(["a:1"], [inc(1)])), 1, { _tag: "Add", address: "b:1" }), 1 + ALPHA)
  assert.equal(invalid(m, 1 + ALPHA, { _tag: "Remove", id: 0 }), "a:1 is the last voter: add and promote another first")
})

test("refused: more than MEMBERS_MAX members", () => {
  const names = Array.from({ length: MEMBERS_MAX }, (_, i) => `n${i}:1`)
  let m = startMembership(initialConfig(names, names.map((_, i) => inc(i + 1))))
  assert.ok(invalid(m, 1, { _tag: "Add", address: "x:1" }).includes(`at most ${MEMBERS_MAX}`))
  m = ok(m, 1, { _tag: "Remove", id: 0 })
  assert.ok("membership" in applyChange(m, 1 + ALPHA, { _tag: "Add", address: "x:1" }))
})

test("checkConfig refuses what no change can make", () => {
  const c = three()
  assert.throws(() => checkConfig({ ...c, members: [...c.members, { id: 1, address: "z:1", incarnation: inc(5), voter: true }] }), InvariantViolation)
  assert.throws(() => checkConfig({ ...c, members: c.members.map((m) => ({ ...m, voter: false })) }), InvariantViolation)
  assert.throws(() => checkConfig({ ...c, members: [...c.members, { id: 3, address: "d:1", incarnation: null, voter: true }], nextId: 4 }), InvariantViolation)
  assert.throws(() => checkConfig({ ...c, nextId: 2 }), InvariantViolation)
})

// ---------------------------------------------------------------------------------------------
// A reference model: the configuration of slot t replays the accepted changes, each governing the
// slots from its slot + ALPHA on (a Bind from the slot after its own). Written apart from the
// module: plain arrays of decisions, no `next`.

interface Decided {
  readonly slot: number
  readonly change: Change
}

function referenceVoters(initial: Config, decided: readonly Decided[], t: number): { voters: number[]; learners: number[] } {
  const voterSet = new Set(voters(initial))
  const learners = new Set<number>()
  let nextId = initial.nextId
  for (const d of decided) {
    if (d.change._tag === "Bind" || d.slot + ALPHA > t) continue
    const ch = d.change
    if (ch._tag === "Add") {
      learners.add(nextId++)
    } else if (ch._tag === "Promote") {
      learners.delete(ch.id)
      voterSet.add(ch.id)
    } else if (ch._tag === "Replace") {
      voterSet.delete(ch.remove)
      learners.delete(ch.promote)
      voterSet.add(ch.promote)
    } else {
      learners.delete(ch.id)
      voterSet.delete(ch.id)
    }
  }
  return { voters: [...voterSet].sort((a, b) => a - b), learners: [...learners].sort((a, b) => a - b) }
}

const changeArb: fc.Arbitrary<Change> = fc.oneof(
  fc.constantFrom("p:1", "q:1", "r:1", "s:1", "a:1").map((address): Change => ({ _tag: "Add", address })),
  fc.integer({ min: 0, max: 8 }).map((id): Change => ({ _tag: "Promote", id })),
  fc.integer({ min: 0, max: 8 }).map((id): Change => ({ _tag: "Remove", id })),
  fc.record({ remove: fc.integer({ min: 0, max: 8 }), promote: fc.integer({ min: 0, max: 8 }) }).map(({ remove, promote }): Change => ({ _tag: "Replace", remove, promote })),
  fc.record({ id: fc.integer({ min: 0, max: 8 }), n: fc.integer({ min: 10, max: 13 }) }).map(({ id, n }): Change => ({ _tag: "Bind", id, incarnation: inc(n) }))
)

test("random sequences of changes: every slot's configuration matches the reference, invariants hold, changes never overlap", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), changeArb), { maxLength: 60 }), (steps) => {
      const initial = three()
      let m = startMembership(initial)
      let slot = 0
      const decided: Decided[] = []
      for (const [gap, change] of steps) {
        slot += gap
        // What the slots just before this one see, before it is applied.
        for (const t of [slot, slot + 1, slot + ALPHA / 2, slot + ALPHA - 1]) {
          const c = configAt(m, slot - 1, t)
          const ref = referenceVoters(initial, decided, t)
          assert.deepEqual(voters(c), ref.voters)
          assert.deepEqual(c.members.filter((x) => !x.voter).map((x) => x.id), ref.learners)
        }
        const r = applyChange(m, slot, change)
        if ("membership" in r) {
          m = r.membership
          decided.push({ slot, change })
          checkConfig(m.current)
          if (m.next !== null) checkConfig(m.next.config)
        }
      }
      const moves = decided.filter((d) => d.change._tag !== "Bind").map((d) => d.slot)
      for (let i = 1; i < moves.length; i++) assert.ok((moves[i] as number) - (moves[i - 1] as number) >= ALPHA)
    }),
    { numRuns: 400, seed: 20261206 }
  )
})
