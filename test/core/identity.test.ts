/**
 * The bootstrap decision of an initial member (src/core/identity.ts, docs/MEMBERSHIP.md,
 * "Bootstrap"): it waits until it has heard from every initial member, or adopts a first
 * configuration a member bound already when that one binds it to its own incarnation; it refuses
 * to run when any member binds its id to another incarnation (its disk was wiped after it voted)
 * or no longer counts it; answers of another cluster or another member are not used; answers bind
 * only when two rounds agree. Over random schedules of starts, wipes and answers taken at
 * different moments, no incarnation whose votes may have counted is ever bound over, and without
 * wipes every member binds the same configuration; binding on one round would break that.
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

const input = (self: number, answers: Array<[number, IdentityAnswer]>, incarnation = INC[self] as string, previous: Array<[number, IdentityAnswer]> | null = null): BootstrapInput => ({
  cluster: CLUSTER,
  self,
  incarnation,
  addresses: ADDRESSES,
  answers: new Map(answers),
  previous: previous === null ? null : new Map(previous)
})

test("a single member binds at once; with others it waits for every one of them", () => {
  const alone = decideBootstrap({ cluster: CLUSTER, self: 0, incarnation: INC[0] as string, addresses: ["a:1"], answers: new Map(), previous: null })
  assert.deepEqual(alone, { _tag: "Bind", initial: initialConfig(["a:1"], [INC[0] as string]), adoptedFrom: null })
  assert.deepEqual(decideBootstrap(input(0, [])), { _tag: "Wait", missing: [1, 2], problems: [] })
  assert.deepEqual(decideBootstrap(input(0, [[2, answer(2)]])), { _tag: "Wait", missing: [1], problems: [] })
})

test("with every member's answer in two rounds that agree, it binds every incarnation, its own included", () => {
  const all: Array<[number, IdentityAnswer]> = [[0, answer(0)], [2, answer(2)]]
  // One round is not enough: it waits for a second to confirm.
  assert.deepEqual(decideBootstrap(input(1, all)), { _tag: "Wait", missing: [], problems: [] })
  assert.deepEqual(decideBootstrap(input(1, all, INC[1], all)), { _tag: "Bind", initial: FIRST, adoptedFrom: null })
  // A member whose incarnation changed between the rounds (wiped and restarted): no binding yet.
  const changed: Array<[number, IdentityAnswer]> = [[0, answer(0)], [2, answer(2, null, "00000000000000ee")]]
  assert.deepEqual(decideBootstrap(input(1, changed, INC[1], all)), { _tag: "Wait", missing: [], problems: [] })
  // A round before that lacked a member confirms nothing.
  assert.deepEqual(decideBootstrap(input(1, all, INC[1], [[0, answer(0)]])), { _tag: "Wait", missing: [], problems: [] })
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
 * The bootstrap of n members over a random schedule of events, each atomic: a member starts (mints
 * an incarnation), is wiped (and restarts with a new one), or takes one step of its round of
 * asking: it hears one member's answer as that member is now, or, having heard everyone, decides
 * (src/core/identity.ts) and begins a new round. So a round's answers are taken at different
 * moments, as over a network. A bound member may vote with the other bound members.
 *
 * Safety (no amnesia): a vote may count once two members are bound, each in a configuration that
 * binds the other as it is now: together they could choose a value. When a second incarnation of
 * j may vote while a member that voted with j's first one still runs (it remembers what they
 * chose, j no longer does), the second could help choose another value in the same slot. Only a
 * cluster every member of which was wiped forgets everything at once, and may start again. And
 * without wipes, every member that binds binds the same configuration.
 */
function simulate(n: number, events: ReadonlyArray<{ who: number; kind: number; of: number }>, decide: typeof decideBootstrap): { bound: Config[]; wipes: number; violation: string | null } {
  const addresses = Array.from({ length: n }, (_, i) => `n${i}:1`)
  let minted = 0
  interface Member {
    incarnation: string
    initial: Config | null
    refused: boolean
    round: Map<number, IdentityAnswer>
    previous: Map<number, IdentityAnswer> | null
  }
  const members: Array<Member | null> = addresses.map(() => null)
  const fresh = (): Member => ({ incarnation: (++minted).toString(16).padStart(16, "0"), initial: null, refused: false, round: new Map(), previous: null })
  const bound: Config[] = []
  /** Incarnations whose votes may have counted, by id; and with whom (`id@incarnation`). */
  const mayHaveVoted = new Map<number, Set<string>>()
  const partners = new Map<string, Set<string>>()
  const alive = (who: string) => {
    const [id, inc] = who.split("@") as [string, string]
    return members[Number(id)]?.incarnation === inc
  }
  let violation: string | null = null
  const voted = (id: number, incarnation: string, with_: string) => {
    const me = `${id}@${incarnation}`
    partners.set(me, (partners.get(me) ?? new Set()).add(with_))
    const incs = mayHaveVoted.get(id) ?? new Set()
    for (const old of incs) {
      if (old === incarnation) continue
      const remembers = [...(partners.get(`${id}@${old}`) ?? [])].filter(alive)
      if (remembers.length > 0) violation ??= `member ${id} may vote as ${incarnation} while ${remembers.join(", ")}, which voted with ${id}@${old}, still runs`
    }
    mayHaveVoted.set(id, incs.add(incarnation))
  }
  let wipes = 0
  for (const e of events) {
    const who = e.who % n
    const m = members[who]
    if (m === null || m === undefined) {
      members[who] = fresh()
      continue
    }
    if (e.kind === 0) {
      wipes++
      members[who] = fresh()
      continue
    }
    if (m.initial !== null || m.refused) continue
    const of = e.of % n
    const o = members[of]
    if (of !== who && o !== null && o !== undefined && !m.round.has(of) && e.kind === 1) {
      m.round.set(of, { cluster: CLUSTER, id: of, incarnation: o.incarnation, initial: o.initial, membership: o.initial === null ? null : startMembership(o.initial) })
      continue
    }
    if (e.kind !== 2) continue
    const d = decide({ cluster: CLUSTER, self: who, incarnation: m.incarnation, addresses, answers: m.round, previous: m.previous })
    const complete = addresses.every((_, id) => id === who || m.round.has(id))
    m.previous = complete ? m.round : null
    m.round = new Map()
    if (d._tag === "Refuse") m.refused = true
    if (d._tag !== "Bind") continue
    m.initial = d.initial
    bound.push(d.initial)
    // Every pair of bound members that bind each other as they are now may vote together.
    for (const [id, x] of members.entries()) {
      if (x?.initial == null) continue
      for (const [jd, y] of members.entries()) {
        if (jd === id || y?.initial == null) continue
        if (x.initial.members[jd]?.incarnation === y.incarnation && y.initial.members[id]?.incarnation === x.incarnation) {
          voted(jd, y.incarnation, `${id}@${x.incarnation}`)
          voted(id, x.incarnation, `${jd}@${y.incarnation}`)
        }
      }
    }
    if (violation !== null) return { bound, wipes, violation }
  }
  return { bound, wipes, violation: null }
}

const EVENTS = fc.array(fc.record({ who: fc.nat({ max: 4 }), kind: fc.constantFrom(0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2), of: fc.nat({ max: 4 }) }), { minLength: 1, maxLength: 150, size: "max" })

test("over random schedules, with wipes: no second incarnation of a member votes while one that voted with the first runs; without wipes, one first configuration", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), EVENTS, (n, events) => {
      const r = simulate(n, events, decideBootstrap)
      assert.equal(r.violation, null)
      if (r.wipes === 0) assert.ok(new Set(r.bound.map((c) => JSON.stringify(c))).size <= 1, `bound: ${r.bound.map((c) => JSON.stringify(c)).join(" | ")}`)
    }),
    { numRuns: 2_000 }
  )
})

test("the second round matters: binding on one round of answers lets two incarnations of a wiped member vote", () => {
  // The same decision, but with a round taken as its own confirmation.
  const oneRound: typeof decideBootstrap = (i) => decideBootstrap({ ...i, previous: i.answers })
  const start = (who: number) => ({ who, kind: 0, of: 0 })
  const hear = (who: number, of: number) => ({ who, kind: 1, of })
  const decide = (who: number) => ({ who, kind: 2, of: 0 })
  const schedule = [
    start(2), start(0), start(1),
    hear(1, 0), hear(1, 2), // 1 hears 0 and 2, unbound
    hear(2, 0), // 2 hears 0 unbound: it will not hear 0 again this round
    decide(1), // 1 binds {0, 1, 2}
    hear(0, 1), decide(0), // 0 adopts 1's configuration: 0 and 1 may vote together
    { who: 1, kind: 0, of: 0 }, // 1 is wiped: a new incarnation
    hear(2, 1), decide(2), // 2 binds the new incarnation of 1, with 0's answer from before 0 bound
    hear(1, 2), decide(1) // 1 adopts it, and votes with 2 while 0 remembers what 1 voted before
  ]
  const one = simulate(3, schedule, oneRound)
  assert.ok(one.violation !== null && one.violation.includes("member 1 may vote as"), String(one.violation))
  // With two rounds, no single round binds anyone here; the property above covers every schedule.
  assert.equal(simulate(3, schedule, decideBootstrap).violation, null)
})
