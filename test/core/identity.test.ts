/**
 * The bootstrap decision of an initial member (src/core/identity.ts, docs/MEMBERSHIP.md,
 * "Bootstrap"): it waits until it has heard from every initial member, or adopts a first
 * configuration a member bound already when that one binds it to its own incarnation; it refuses
 * to run when any member binds its id to another incarnation (its disk was wiped after it voted)
 * or no longer counts it; answers of another cluster or another member are not used. Over random
 * start orders, every member that binds binds the same configuration, and a wiped member that
 * hears from one that bound it never binds.
 * Runs under Bun and Deno (test/portable.ts).
 */
import fc from "fast-check"
import assert from "node:assert/strict"
import { decideBootstrap, type BootstrapInput, type IdentityAnswer } from "../../src/core/identity.ts"
import { applyChange, initialConfig, startMembership, type Config } from "../../src/core/membership.ts"
import { test } from "../portable.ts"

const ADDRESSES = ["a:1", "b:2", "c:3"]
const INC = ["00000000000000a0", "00000000000000b0", "00000000000000c0"]
const CLUSTER = "c1c1c1c1c1c1c1c1"
const FIRST = initialConfig(ADDRESSES, INC)

/** What member `id` answers: unbound (null) or bound in `initial`, running with `initial`'s membership when bound. */
const answer = (id: number, initial: Config | null = null, incarnation = INC[id] as string): IdentityAnswer => ({
  cluster: CLUSTER,
  id,
  incarnation,
  initial,
  membership: initial === null ? null : startMembership(initial)
})

const input = (self: number, answers: Array<[number, IdentityAnswer]>, incarnation = INC[self] as string): BootstrapInput => ({
  cluster: CLUSTER,
  self,
  incarnation,
  addresses: ADDRESSES,
  answers: new Map(answers)
})

test("a single member binds at once; with others it waits for every one of them", () => {
  const alone = decideBootstrap({ cluster: CLUSTER, self: 0, incarnation: INC[0] as string, addresses: ["a:1"], answers: new Map() })
  assert.deepEqual(alone, { _tag: "Bind", initial: initialConfig(["a:1"], [INC[0] as string]), adoptedFrom: null })
  assert.deepEqual(decideBootstrap(input(0, [])), { _tag: "Wait", missing: [1, 2], problems: [] })
  assert.deepEqual(decideBootstrap(input(0, [[2, answer(2)]])), { _tag: "Wait", missing: [1], problems: [] })
})

test("with every member's answer it binds every incarnation, its own included", () => {
  assert.deepEqual(decideBootstrap(input(1, [[0, answer(0)], [2, answer(2)]])), { _tag: "Bind", initial: FIRST, adoptedFrom: null })
})

test("a configuration a member bound already is adopted when it binds this node to its own incarnation", () => {
  assert.deepEqual(decideBootstrap(input(2, [[0, answer(0, FIRST)]])), { _tag: "Bind", initial: FIRST, adoptedFrom: 0 })
})

test("a member that binds this node's id to another incarnation: refused, saying what to do", () => {
  const wiped = "00000000000000ff"
  const d = decideBootstrap(input(2, [[0, answer(0)], [1, answer(1, FIRST)]], wiped))
  assert.equal(d._tag, "Refuse")
  const reason = d._tag === "Refuse" ? d.reason : ""
  for (const part of ["voted before under another data directory", "b:2 binds member 2 to incarnation 00000000000000c0", "paxos member remove c:3", "paxos member add c:3", "--join"]) {
    assert.ok(reason.includes(part), `${part} in: ${reason}`)
  }
  // The refusal wins over anything else it heard, even a configuration it could adopt.
  const both = decideBootstrap(input(2, [[0, answer(0, initialConfig(ADDRESSES, [INC[0] as string, INC[1] as string, wiped]))], [1, answer(1, FIRST)]], wiped))
  assert.equal(both._tag, "Refuse")
})

test("a running member that no longer counts this node: refused as removed", () => {
  const removed = applyChange(startMembership(FIRST), 5, { _tag: "Remove", id: 2 })
  if ("_tag" in removed) throw new Error("refused")
  const settled = { current: removed.membership.next?.config ?? FIRST, next: null }
  const d = decideBootstrap(input(2, [[0, { ...answer(0, FIRST), membership: settled }]], "00000000000000ff"))
  // Its first configuration still binds member 2 to the old incarnation: that is said first.
  assert.equal(d._tag, "Refuse")
  const unbound = decideBootstrap(input(2, [[0, { ...answer(0), membership: settled }]]))
  assert.equal(unbound._tag, "Refuse")
  assert.ok(unbound._tag === "Refuse" && unbound.reason.includes("was removed from the cluster") && unbound.reason.includes("paxos member add c:3"))
})

test("answers of another cluster, of another member, or malformed are not used, and say why", () => {
  const cases: Array<[IdentityAnswer, string]> = [
    [{ ...answer(1), cluster: "0000000000000000" }, "belongs to cluster 0000000000000000"],
    [{ ...answer(1), id: 7 }, "answers as member 7, not 1"],
    [{ ...answer(1), incarnation: "XYZ" }, "incarnation is malformed"],
    [answer(1, initialConfig(["a:1", "b:2", "d:4"], INC)), "first configuration of other addresses"],
    [answer(1, FIRST, "00000000000000bb"), "bound under another incarnation"]
  ]
  for (const [a, why] of cases) {
    const d = decideBootstrap(input(0, [[1, a], [2, answer(2)]]))
    assert.equal(d._tag, "Wait")
    assert.deepEqual(d._tag === "Wait" ? d.missing : null, [1])
    assert.ok(d._tag === "Wait" && d.problems.length === 1 && (d.problems[0] as string).startsWith("b:2: ") && (d.problems[0] as string).includes(why), `${why}: ${JSON.stringify(d)}`)
  }
})

/**
 * Members start in a random order and ask random subsets of the started ones; a member answers
 * with what it has bound. Some members are wiped after they started (a new incarnation). Every
 * bound configuration is the same, and a wiped member never binds once it heard from a member
 * that bound its old incarnation.
 */
test("over random start orders and wipes: one first configuration, and no wiped member binds after hearing the truth", () => {
  const step = fc.record({ who: fc.nat({ max: 4 }), asks: fc.array(fc.nat({ max: 4 }), { maxLength: 5 }), wipe: fc.boolean() })
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(step, { minLength: 1, maxLength: 60 }), (n, steps) => {
      const addresses = Array.from({ length: n }, (_, i) => `n${i}:1`)
      let minted = 0
      const mint = () => (++minted).toString(16).padStart(16, "0")
      const members: Array<{ incarnation: string; initial: Config | null; wiped: boolean; refused: boolean } | null> = addresses.map(() => null)
      for (const s of steps) {
        const who = s.who % n
        const m = members[who]
        if (m === null || m === undefined) {
          members[who] = { incarnation: mint(), initial: null, wiped: false, refused: false }
          continue
        }
        if (s.wipe && minted % 3 === 0) {
          // Wiped, before or after it bound: a new data directory, a new incarnation.
          members[who] = { incarnation: mint(), initial: null, wiped: true, refused: false }
          continue
        }
        if (m.initial !== null || m.refused) continue
        const answers = new Map<number, IdentityAnswer>()
        for (const j of s.asks.map((x) => x % n)) {
          const o = members[j]
          if (j === who || o === null || o === undefined) continue
          answers.set(j, { cluster: CLUSTER, id: j, incarnation: o.incarnation, initial: o.initial, membership: o.initial === null ? null : startMembership(o.initial) })
        }
        const d = decideBootstrap({ cluster: CLUSTER, self: who, incarnation: m.incarnation, addresses, answers })
        const heardOldSelf = [...answers.values()].some((a) => a.initial !== null && a.initial.members[who]?.incarnation !== m.incarnation)
        if (heardOldSelf) assert.equal(d._tag, "Refuse")
        if (d._tag === "Bind") m.initial = d.initial
        if (d._tag === "Refuse") m.refused = true
      }
      const bound = members.flatMap((m) => (m?.initial == null ? [] : [JSON.stringify(m.initial)]))
      // Without wipes every member that bound bound the same; with wipes they may differ only in
      // the binding of a wiped member's id, which no running incarnation of it can ever use.
      const wipedIds = members.flatMap((m, i) => (m?.wiped === true ? [i] : []))
      const strip = (json: string) => JSON.stringify((JSON.parse(json) as Config).members.map((x) => (wipedIds.includes(x.id) ? { ...x, incarnation: "wiped" } : x)))
      assert.ok(new Set(bound.map(strip)).size <= 1, `bound: ${bound.join(" | ")}`)
      // A bound configuration binds every member that is not wiped to its current incarnation.
      for (const json of bound) {
        for (const x of (JSON.parse(json) as Config).members) {
          const m = members[x.id]
          if (m != null && !wipedIds.includes(x.id)) assert.equal(x.incarnation, m.incarnation)
        }
      }
    }),
    { numRuns: 500 }
  )
})
