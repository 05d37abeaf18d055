/**
 * The hand-written envelope validator (src/core/fast-decode.ts) agrees with the Schema of
 * messages.ts: for every input, `fastDecodeEnvelope` returns the input exactly when
 * `S.decodeUnknownEither(PeerEnvelope, strict)` succeeds, and the Schema's output then deep-equals
 * it. Shown four ways:
 *
 * 1. Property tests (fast-check): valid envelopes from `Arbitrary.make(PeerEnvelope)`, and the same
 *    envelopes mutated at random depths (fields dropped, added or set to undefined, tags swapped,
 *    numbers and strings pushed across every limit, arrays grown past their maxItems, subtrees
 *    moved elsewhere, nulls, arrays in place of objects), each both as built and after a JSON round
 *    trip, which is what the server decodes. The valid envelopes take every shape the Schema allows
 *    (every command, change and message; optional fields present and absent; null and not null),
 *    and the mutations change every field and array item of it: both are checked against the
 *    Schema's AST, so a new field that the generators miss fails a test.
 * 2. One table of hand-written cases per Schema rule, each stating the Schema's verdict.
 * 3. Weakened validators (the real one with one check removed) are caught by the same property in
 *    the same run budget, so a passing property means something.
 * 4. A fingerprint of the Schema's AST: it has no transformation, and its rules are the ones
 *    fast-decode.ts implements (change messages.ts and this fails until fast-decode.ts follows).
 */
import assert from "node:assert/strict"
import { Arbitrary, Either, FastCheck as fc, Option, Schema as S, SchemaAST as AST } from "effect"
import { LIMITS } from "../../src/core/config.ts"
import { fastDecodeAppend, fastDecodeEnvelope } from "../../src/core/fast-decode.ts"
import { ADDRESS_LENGTH_MAX, INCARNATION_PATTERN, MEMBERS_MAX } from "../../src/core/membership.ts"
import {
  Accept,
  AppendRequest,
  Campaign,
  CatchupRequest,
  Forward,
  Message,
  type PeerEnvelope,
  PeerEnvelope as PeerEnvelopeSchema,
  Promise as PromiseMessage,
  Snapshot,
  strict
} from "../../src/core/messages.ts"
import { test } from "../portable.ts"
import { append, ballot, bind, client, membership, read, reconfig, SAMPLE_MESSAGES } from "./samples.ts"

/** Property runs per property (each run checks the input as built and after a JSON round trip). */
const RUNS = 4_000
/** Time allowed to the tests that run properties or build the largest arrays (Bun's default is 5 s). */
const SLOW_MS = 120_000

const schemaDecode = S.decodeUnknownEither(PeerEnvelopeSchema, strict)

type Decoder = (u: unknown) => PeerEnvelope | undefined

/** What the server would decode: `x` after JSON.stringify and JSON.parse (undefined if not JSON). */
function viaJson(x: unknown): unknown {
  const text = JSON.stringify(x)
  return text === undefined ? undefined : JSON.parse(text)
}

/** Asserts that `decode` and the Schema agree on `x`; returns whether the Schema accepted it. */
function agreeOn(decode: Decoder, x: unknown): boolean {
  const r = schemaDecode(x)
  const fast = decode(x)
  if (Either.isLeft(r)) {
    assert.equal(fast, undefined, "the Schema rejects this, the fast validator accepts it")
    return false
  }
  assert.notEqual(fast, undefined, "the Schema accepts this, the fast validator rejects it")
  assert.equal(fast, x, "the fast validator returns its input")
  assert.deepEqual(fast, r.right, "the Schema's output equals the input")
  return true
}

/** The property: `decode` agrees with the Schema on `x` and on `x` after a JSON round trip. */
const agreement = (decode: Decoder) => (x: unknown): void => {
  agreeOn(decode, x)
  agreeOn(decode, viaJson(x))
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Envelopes of the messages of `message`, a schema of some of the messages. */
const envelopeOf = (message: S.Schema.AnyNoContext): fc.Arbitrary<PeerEnvelope> =>
  Arbitrary.make(S.Struct({ ...PeerEnvelopeSchema.fields, messages: S.Array(message) })) as fc.Arbitrary<PeerEnvelope>

/**
 * Valid envelopes, a quarter of the time each: of every message type at once; of one type
 * (each type as likely, so that a mutation of a rare type's fields is not lost among those of
 * twelve others); of the messages that carry commands, the traffic of a follower; and of the
 * messages of a change of membership (snapshots that carry it, catch-up requests that ask for it,
 * hand-overs, and the Reconfig commands forwarded to the leader). The properties check that these
 * reach every place of the Schema: every command and change, every optional field present and
 * absent, null and not null.
 */
const validEnvelope: fc.Arbitrary<PeerEnvelope> = fc.oneof(
  Arbitrary.make(PeerEnvelopeSchema),
  fc.oneof(...Message.members.map(envelopeOf)),
  envelopeOf(S.Union(Accept, Forward, PromiseMessage)),
  envelopeOf(S.Union(Snapshot, CatchupRequest, Campaign, Forward))
)

const TAGS = [
  "Prepare", "Promise", "Accept", "Accepted", "Nack", "Commit", "CommitAck", "Forward",
  "ForwardReject", "CatchupRequest", "CatchupReply", "Snapshot", "Campaign", "Append", "Read", "Reconfig",
  "Add", "Promote", "Remove", "Replace", "Bind"
] as const
const BAD_TAGS = ["Nope", "prepare", "", "Append ", "_tag", "bind"] as const

/** A valid incarnation, and ones that miss the pattern by case, by length or by a trailing newline. */
const INCARNATION = "0123456789abcdef"
const BAD_INCARNATIONS = [INCARNATION.toUpperCase(), INCARNATION.slice(1), `${INCARNATION}0`, `${INCARNATION}\n`] as const

/** Values that break (or just pass) a rule somewhere: type confusion and every numeric edge. */
const NASTY: readonly unknown[] = [
  null, undefined, true, false, 0, -0, 1, -1, 8, 9, 0.5, -1.5,
  LIMITS.memberIdMax, LIMITS.memberIdMax + 1, LIMITS.memberIdMax + 2,
  2 ** 53 - 1, 2 ** 53, -(2 ** 53 - 1), -(2 ** 53), 2 ** 60, 1e300, Number.NaN, Infinity, -Infinity,
  "", "x", "c1", "0", "Append", "Read", "Prepare", "Accept", "Bind", INCARNATION, ...BAD_INCARNATIONS,
  [], {}, [0], [[]], { round: 0, leader: 0 }, { _tag: "Read", id: "r" }, { slot: 0, value: [] },
  { _tag: "Remove", id: 1 }, { id: 1, address: "a:1", incarnation: null, voter: true },
  { epoch: 0, members: [], nextId: 0 }, { current: { epoch: 0, members: [], nextId: 0 }, next: null }
]
const nasty = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.string({ maxLength: 3 }) }
)

/** Keys added to objects: strangers, JSON.parse's own `__proto__`, and fields of other structs. */
const EXTRA_KEYS = [
  "extra", "__proto__", "constructor", "toString", "0", "length", "_tag", "round", "leader", "slot",
  "value", "ballot", "client", "seq", "id", "from", "to", "commit", "quorum", "entries", "index", "cluster", "messages",
  "snapshot", "membership", "change", "address", "incarnation", "voter", "epoch", "members", "nextId", "current",
  "next", "config"
] as const

/** The length limits of strings by field name (an item of `ids` is a command id too). */
const STRING_LIMITS: Readonly<Record<string, number>> = {
  cluster: 128,
  id: LIMITS.commandIdLengthMax,
  client: LIMITS.clientIdLengthMax,
  reason: LIMITS.reasonLengthMax,
  address: ADDRESS_LENGTH_MAX,
  incarnation: INCARNATION.length
}
/** A length for a string in field `key`: empty, one, or around its limit (in UTF-16 code units). */
function stringLength(key: string | number, n: number): number {
  const limit = STRING_LIMITS[key] ?? LIMITS.commandIdLengthMax
  return [0, 1, limit - 1, limit, limit + 1][n % 5] ?? 0
}
/** Short array lengths, and the maxItems of arrays by field name (those small enough to build often). */
const SHORT_LENGTHS = [0, 1, 2] as const
const ARRAY_LIMITS: Readonly<Record<string, number>> = {
  messages: LIMITS.messagesPerEnvelopeMax,
  value: LIMITS.batchCommandsMax,
  entries: LIMITS.messageEntriesMax,
  slots: LIMITS.messageEntriesMax,
  commands: LIMITS.messageEntriesMax,
  ids: LIMITS.messageEntriesMax,
  members: MEMBERS_MAX
}
/** A length for an array in field `key`: short, or at or just over its limit (the batch's if unknown). */
function arrayLength(key: string | number, n: number): number {
  const limit = ARRAY_LIMITS[key] ?? LIMITS.batchCommandsMax
  return n % 3 === 0 ? (SHORT_LENGTHS[(n >> 2) % SHORT_LENGTHS.length] ?? 0) : limit + (n % 3) - 1
}

/** A numeric change; the result may be valid or not depending on where the number is. */
const NUMBER_TWEAKS: ReadonlyArray<(n: number) => unknown> = [
  (n) => n + 1, (n) => n - 1, (n) => -n, (n) => n + 0.5, (n) => n * 2 ** 31, (n) => String(n),
  () => 2 ** 53 - 1, () => 2 ** 53, () => -(2 ** 53 - 1), () => -(2 ** 53), () => 2 ** 60, () => -(2 ** 60),
  () => -0, () => 0, () => 8, () => 9, () => -1, () => Number.NaN, () => Infinity, () => 1e300,
  () => LIMITS.memberIdMax, () => LIMITS.memberIdMax + 1, () => LIMITS.memberIdMax + 2
]

/** One random change somewhere in the tree: `where` and `pick` choose the place, `how` the change. */
interface Mutation {
  readonly where: number
  readonly pick: number
  readonly how: number
  readonly n: number
  readonly value: unknown
  readonly key: string
  readonly tag: string
  readonly fill: string
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  where: fc.nat(),
  pick: fc.nat(),
  how: fc.nat(),
  n: fc.nat(),
  value: nasty,
  key: fc.constantFrom(...EXTRA_KEYS),
  tag: fc.constantFrom(...TAGS, ...BAD_TAGS),
  // "f" makes a valid incarnation at its length, "F" one that is valid but for its case.
  fill: fc.constantFrom("x", "é", "😀", "f", "F")
})

type Container = Record<string, unknown> | unknown[]
/**
 * A place in the tree: `parent[key]`, `depth` levels below the box that holds the envelope, and
 * `label`, the place in the Schema's terms (`shapesOfSchema` names the Schema's places the same way).
 */
interface Site {
  readonly parent: Container
  readonly key: string | number
  readonly depth: number
  readonly label: string
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Sets `parent[key]` as an own data property (so a `__proto__` key is a key, as JSON.parse makes it). */
function put(parent: Container, key: string | number, value: unknown): void {
  if (Array.isArray(parent)) parent[key as number] = value
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true })
}

/** A deep copy of plain objects and arrays, keeping own `__proto__` keys, undefined, NaN and -0. */
function clone(u: unknown): unknown {
  if (Array.isArray(u)) return u.map(clone)
  if (!isObject(u)) return u
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(u)) put(out, k, clone(u[k]))
  return out
}

/** The label of the envelope itself. */
const ROOT = "envelope"

/**
 * The label of a field `k` of the object `v` at a place labelled `label`: a tagged struct starts
 * a new label (`Bind.incarnation`, wherever the Bind is), an untagged one continues its place's
 * (`Snapshot.membership.next.config`). Items of an array labelled `L` are labelled `L[]`.
 */
const fieldLabel = (v: Record<string, unknown>, label: string, k: string): string => `${labelPrefix(v, label)}.${k}`
/** What the labels of the fields of `v` (at a place labelled `label`) start with: its tag, or `label`. */
const labelPrefix = (v: Record<string, unknown>, label: string): string =>
  Object.hasOwn(v, "_tag") && typeof v["_tag"] === "string" ? v["_tag"] : label

/** Every place in the tree under `box.root`, by depth (at most 32 children of an array each). */
function sitesByDepth(box: Container): Site[][] {
  const byDepth: Site[][] = []
  const visit = (parent: Container, key: string | number, depth: number, label: string): void => {
    ;(byDepth[depth] ??= []).push({ parent, key, depth, label })
    const v = (parent as Record<string | number, unknown>)[key]
    if (Array.isArray(v)) for (let i = 0; i < Math.min(v.length, 32); i++) visit(v, i, depth + 1, `${label}[]`)
    else if (isObject(v)) for (const k of Object.keys(v)) visit(v, k, depth + 1, fieldLabel(v, label, k))
  }
  visit(box, "root", 0, ROOT)
  return byDepth
}

/**
 * Every shape a valid envelope can take, by place of the Schema (labelled as `Site.label`):
 * `L` a value other than null at L, `L null` null at L (an `S.NullOr`), `L absent` an optional
 * field left out; and the optional fields of each struct, by the prefix of their labels.
 */
interface Shapes {
  readonly shapes: Set<string>
  readonly optional: Map<string, string[]>
}

/** The shapes of `ast` at the place `label`, added to `into`. */
function shapesOfSchema(ast: AST.AST, label: string, into: Shapes): Shapes {
  switch (ast._tag) {
    case "Refinement":
      return shapesOfSchema(ast.from, label, into)
    case "Literal":
      if (ast.literal === null) into.shapes.add(`${label} null`)
      return into
    case "Union":
      for (const member of ast.types) shapesOfSchema(member, label, into)
      return into
    case "TupleType":
      for (const rest of ast.rest) {
        into.shapes.add(`${label}[]`)
        shapesOfSchema(rest.type, `${label}[]`, into)
      }
      return into
    case "TypeLiteral": {
      const tag = ast.propertySignatures.find((p) => p.name === "_tag")?.type
      const prefix = tag !== undefined && AST.isLiteral(tag) ? String(tag.literal) : label
      for (const p of ast.propertySignatures) {
        const at = `${prefix}.${String(p.name)}`
        into.shapes.add(at)
        if (p.isOptional) {
          into.shapes.add(`${at} absent`)
          into.optional.set(prefix, [...(into.optional.get(prefix) ?? []), String(p.name)])
        }
        shapesOfSchema(p.type, at, into)
      }
      return into
    }
    default:
      return into
  }
}

/** Every shape of a PeerEnvelope. */
const ENVELOPE_SHAPES = shapesOfSchema(PeerEnvelopeSchema.ast, ROOT, { shapes: new Set([ROOT]), optional: new Map() })

/** The value at a site. */
const valueAt = (site: Site): unknown => (site.parent as Record<string | number, unknown>)[site.key]

/**
 * Where a mutation goes, a quarter of the time each: any object (a struct, where fields are dropped
 * or added), any array (where lengths cross limits), any string, number or other leaf, or any
 * place at a random depth. Among those, every place of the Schema (a label) is as likely as any
 * other, however many copies of it the envelope holds: a deep field of the membership in a
 * Snapshot gets as many mutations as an item of a long array of values.
 */
function pickSite(byDepth: Site[][], all: Site[], m: Mutation): Site | undefined {
  const kinds = [
    (v: unknown) => isObject(v),
    (v: unknown) => Array.isArray(v),
    (v: unknown) => typeof v !== "object" || v === null
  ]
  const kind = kinds[m.where % 4] // the fourth quarter: undefined, so by depth
  const pool = kind === undefined ? [] : all.filter((s) => kind(valueAt(s)))
  const at = pool.length > 0 ? pool : (byDepth[(m.where >> 2) % byDepth.length] ?? [])
  const labels = [...new Set(at.map((s) => s.label))]
  const label = labels[m.pick % labels.length]
  const copies = at.filter((s) => s.label === label)
  return copies[Math.floor(m.pick / labels.length) % copies.length]
}

/** An item to grow an array with, by the array's field name (a valid one where possible). */
function filler(key: string | number): unknown {
  switch (key) {
    case "messages": return { _tag: "Commit", ballot: { round: 1, leader: 0 }, commit: 0 }
    case "entries": return { slot: 1, value: [] }
    case "accepted": return { slot: 1, ballot: { round: 1, leader: 0 }, value: [] }
    case "value": case "commands": return { _tag: "Read", id: "r" }
    case "clients": return { client: "c", seq: 0, value: 0, index: 0, slot: 0 }
    case "ids": return "i"
    case "members": return { id: 1, address: "a:1", incarnation: null, voter: true }
    default: return 0
  }
}

/** `fill` repeated to exactly `length` UTF-16 code units ("😀" counts 2). */
const stringOfLength = (fill: string, length: number): string =>
  fill.repeat(Math.floor(length / fill.length)) + "x".repeat(length % fill.length)

/**
 * Applies one mutation to the tree under `box.root`, in place. Returns the label of the place it
 * changed (a field it dropped, added or set, else the place it picked), or undefined if it
 * changed nothing.
 */
function mutate(box: Container, m: Mutation): string | undefined {
  const byDepth = sitesByDepth(box)
  const all = byDepth.flat()
  const site = pickSite(byDepth, all, m)
  if (site === undefined) return undefined
  const { parent, key, label } = site
  const v = valueAt(site)
  const transplant = (): unknown => {
    const from = all[m.n % all.length]
    return from === undefined ? undefined : clone(valueAt(from))
  }
  /** Sets `parent[key]`, the place picked. */
  const set = (value: unknown) => (): string => {
    put(parent, key, value)
    return label
  }
  const generic: Array<() => string | undefined> = [set(clone(m.value)), () => set(transplant())(), set([v])]
  const specific: Array<() => string | undefined> = []
  if (typeof v === "number") {
    specific.push(set(NUMBER_TWEAKS[m.n % NUMBER_TWEAKS.length]?.(v)))
  } else if (typeof v === "string") {
    // A length around its limit, the other case (of a tag, an incarnation), or one code unit more
    // or less (than a valid incarnation's 16).
    specific.push(
      set(stringOfLength(m.fill, stringLength(key, m.n))),
      set(v === v.toLowerCase() ? v.toUpperCase() : v.toLowerCase()),
      set(m.n % 2 === 0 ? v.slice(1) : v + v.slice(-1))
    )
  } else if (Array.isArray(v)) {
    const length = arrayLength(key, m.n)
    // Kept items first, then small valid ones (copies of large items would make huge envelopes).
    const resize = () => set(Array.from({ length }, (_, i) => clone(i < v.length ? v[i] : filler(key))))()
    specific.push(
      resize,
      resize,
      () => {
        v.push(clone(m.value))
        return label
      },
      () => set({ ...v })()
    )
  } else if (isObject(v)) {
    const keys = Object.keys(v)
    const existing = keys[m.n % Math.max(1, keys.length)]
    const optional = ENVELOPE_SHAPES.optional.get(labelPrefix(v, label)) ?? []
    /** Changes the field `k` of `v` (labelled before the change, as its tag was). */
    const field = (k: string | undefined, change: (k: string) => void) => (): string | undefined => {
      if (k === undefined) return undefined
      const at = fieldLabel(v, label, k)
      change(k)
      return at
    }
    specific.push(
      field(existing, (k) => delete v[k]),
      field(m.key, (k) => put(v, k, [clone(m.value), transplant(), undefined][m.n % 3])),
      // Twice as likely: undefined in a field, or in one of the struct's exact optional fields
      // (present or not) where it has any.
      field(existing, (k) => put(v, k, undefined)),
      field(optional[m.n % Math.max(1, optional.length)] ?? existing, (k) => put(v, k, undefined)),
      field("_tag", (k) => put(v, k, m.tag)),
      () => set(Object.values(v))()
    )
  }
  // Mostly a change that fits the value's type (often still valid), else a generic one.
  const ops = specific.length > 0 && m.how % 4 < 3 ? specific : generic
  return ops[Math.floor(m.how / 4) % ops.length]?.()
}

/**
 * Valid envelopes with one mutation each, or two (less often: a second mutation mostly hides the
 * effect of the first behind a second reason to reject), and the places the mutations changed.
 */
const mutations = fc.oneof({ weight: 3, arbitrary: fc.tuple(mutation) }, { weight: 1, arbitrary: fc.tuple(mutation, mutation) })
const mutatedCase = fc
  .tuple(validEnvelope, mutations)
  .map(([env, ms]) => {
    const box: Record<string, unknown> = { root: clone(env) }
    const places: string[] = []
    for (const m of ms) {
      const at = mutate(box, m)
      if (at !== undefined) places.push(at)
    }
    return { input: box["root"], places }
  })
const mutatedEnvelope = mutatedCase.map((c) => c.input)

// ---------------------------------------------------------------------------------------------
// What the generators reach

/** Counts the shapes that `v`, at the place `label`, takes (in the terms of `ENVELOPE_SHAPES`). */
function countShapes(v: unknown, label: string, counts: Map<string, number>): void {
  const seen = v === null ? `${label} null` : label
  counts.set(seen, (counts.get(seen) ?? 0) + 1)
  if (Array.isArray(v)) for (const item of v) countShapes(item, `${label}[]`, counts)
  else if (isObject(v)) {
    for (const k of Object.keys(v)) countShapes(v[k], fieldLabel(v, label, k), counts)
    const prefix = labelPrefix(v, label)
    for (const k of ENVELOPE_SHAPES.optional.get(prefix) ?? []) {
      if (!Object.hasOwn(v, k)) counts.set(`${prefix}.${k} absent`, (counts.get(`${prefix}.${k} absent`) ?? 0) + 1)
    }
  }
}

/** Asserts that every shape of `ENVELOPE_SHAPES` (of those `which` keeps) was counted. */
function assertReached(counts: ReadonlyMap<string, number>, what: string, which: (shape: string) => boolean = () => true): void {
  const missed = [...ENVELOPE_SHAPES.shapes].filter((shape) => which(shape) && !counts.has(shape))
  assert.deepEqual(missed, [], `${what} never reached these places of the Schema in ${RUNS} runs`)
}

// ---------------------------------------------------------------------------------------------
// 1. Properties

test("property: every envelope the Schema can generate is accepted, as the very same object", () => {
  const counts = new Map<string, number>()
  fc.assert(
    fc.property(validEnvelope, (env) => {
      countShapes(env, ROOT, counts)
      assert.equal(agreeOn(fastDecodeEnvelope, env), true)
      assert.equal(agreeOn(fastDecodeEnvelope, viaJson(env)), true)
    }),
    { numRuns: RUNS }
  )
  // Every command and change, every field with and without its optional ones, null and not null.
  assertReached(counts, "the valid envelopes")
}, SLOW_MS)

test("property: on mutated envelopes the fast validator and the Schema give the same verdict", () => {
  let accepted = 0
  let rejected = 0
  fc.assert(
    fc.property(mutatedEnvelope, (x) => {
      if (agreeOn(fastDecodeEnvelope, x)) accepted++
      else rejected++
      agreeOn(fastDecodeEnvelope, viaJson(x))
    }),
    { numRuns: RUNS }
  )
  // Both verdicts are well represented, so neither side of the equivalence goes untested.
  assert.ok(accepted > RUNS / 20, `only ${accepted} mutated envelopes were still valid`)
  assert.ok(rejected > RUNS / 2, `only ${rejected} mutated envelopes were rejected`)
}, SLOW_MS)

test("the mutations of the property reach every field and array item of the Schema within its run budget", () => {
  // Some places are changed only a few times in a budget (there are hundreds of places), so this
  // looks at one fixed sample where the properties draw a new one every time: a place that the
  // generators cannot reach fails it whatever the seed, one they reach too rarely for most seeds.
  const counts = new Map<string, number>()
  for (const { places } of fc.sample(mutatedCase, { numRuns: RUNS, seed: 1 })) {
    for (const at of places) counts.set(at, (counts.get(at) ?? 0) + 1)
  }
  // An optional field where absent is reached by being added, and so counts as its place.
  assertReached(counts, "the mutations", (shape) => !shape.endsWith(" null") && !shape.endsWith(" absent"))
}, SLOW_MS)

// ---------------------------------------------------------------------------------------------
// 2. One table per rule

const env = (...messages: unknown[]) => ({ cluster: "c", from: 0, to: 1, messages })
const withBallot = (b: unknown) => env({ _tag: "Commit", ballot: b, commit: 6 })
const withCommand = (c: unknown) => env({ _tag: "Accept", ballot, entries: [{ slot: 5, value: [c] }], commit: 4 })
const withClient = (c: unknown) =>
  env({ _tag: "Snapshot", slot: 9, listFrom: 1, values: [], clients: [c], complete: true })
const withChange = (c: unknown) => withCommand({ _tag: "Reconfig", id: "r", change: c })
/** A complete Snapshot that carries `m` as its membership. */
const withMembership = (m: unknown) => env({ ...SAMPLE_MESSAGES[11], membership: m })
const { current, next } = membership
/** A membership whose configuration in force is `c`. */
const withConfig = (c: unknown) => withMembership({ ...membership, current: c })
/** A membership whose configuration in force has the one member `m`. */
const withMember = (m: unknown) => withConfig({ ...current, members: [m] })
const replace = { _tag: "Replace", remove: 0, promote: 3 }
const member: { id: number; address: string; incarnation: string | null; voter: boolean } =
  current.members[0] ?? assert.fail("the sample membership has a member")
/** A copy of `o` without the key `k`. */
const without = (o: object, k: string): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...o }
  delete out[k]
  return out
}
const many = (n: number, item: unknown): unknown[] => Array.from({ length: n }, () => item)
const withBatch = (n: number) => env({ _tag: "Accept", ballot, entries: [{ slot: 1, value: many(n, read) }], commit: 0 })

/** One sample of every message type. */
const SAMPLES = SAMPLE_MESSAGES as unknown as Record<string, unknown>[]

/**
 * Asserts the Schema's verdict on each case, and that the fast validator agrees (on success:
 * returns the input, which deep-equals the Schema's output unless `shape` says only the verdict
 * is compared, for inputs JSON.parse cannot make).
 */
function cases(verdict: "accept" | "reject", xs: ReadonlyArray<readonly [string, unknown]>, shape = true): void {
  for (const [what, x] of xs) {
    const r = schemaDecode(x)
    assert.equal(Either.isRight(r), verdict === "accept", `the Schema should ${verdict}: ${what}`)
    const fast = fastDecodeEnvelope(x)
    if (verdict === "reject") assert.equal(fast, undefined, `fast accepts: ${what}`)
    else {
      assert.equal(fast, x, `fast rejects: ${what}`)
      if (shape && Either.isRight(r)) assert.deepEqual(fast, r.right, what)
    }
  }
}

test("rule: the envelope is an object (not null, not an array, not a primitive)", () => {
  cases("accept", [["minimal", env()]])
  cases("reject", [
    ["null", null], ["undefined", undefined], ["0", 0], ["string", "{}"], ["true", true],
    ["empty array", []], ["array of the fields", ["c", 0, 1, []]], ["empty object", {}]
  ])
})

test("rule: every required field of every struct, and of every message type, must be present", () => {
  cases("accept", SAMPLES.map((m) => [m["_tag"] as string, env(m)] as const))
  const dropped: Array<readonly [string, unknown]> = []
  for (const k of Object.keys(env())) dropped.push([`envelope without ${k}`, without(env(), k)])
  // Commit.quorum, CatchupRequest.snapshot and Snapshot.membership are optional (their own rules below);
  // Promise.snapshot is required.
  const optional: Readonly<Record<string, string>> = { Commit: "quorum", CatchupRequest: "snapshot", Snapshot: "membership" }
  for (const m of SAMPLES) {
    for (const k of Object.keys(m)) if (optional[m["_tag"] as string] !== k) dropped.push([`${m["_tag"]} without ${k}`, env(without(m, k))])
  }
  for (const k of Object.keys(ballot)) {
    dropped.push([`ballot without ${k}`, withBallot(without(ballot, k))], [`ballot with ${k} undefined`, withBallot({ ...ballot, [k]: undefined })])
  }
  for (const k of ["_tag", "id", "value"]) dropped.push([`Append without ${k}`, withCommand(without(append, k))])
  dropped.push(["Read without id", withCommand({ _tag: "Read" })])
  for (const k of Object.keys(client)) dropped.push([`client entry without ${k}`, withClient(without(client, k))])
  dropped.push(["entry without slot", env({ _tag: "CatchupReply", entries: [{ value: [] }] })])
  dropped.push(["entry without value", env({ _tag: "CatchupReply", entries: [{ slot: 1 }] })])
  dropped.push(["accepted entry without ballot", env({ ...SAMPLES[1], accepted: [{ slot: 4, value: [] }] })])
  // Reconfig, each kind of Change, and the membership a Snapshot carries, at every level.
  for (const k of Object.keys(reconfig)) dropped.push([`Reconfig without ${k}`, withCommand(without(reconfig, k))])
  const changes = [reconfig.change, { _tag: "Promote", id: 1 }, { _tag: "Remove", id: 1 }, replace, bind.change]
  for (const c of changes) for (const k of Object.keys(c)) dropped.push([`${c._tag} without ${k}`, withChange(without(c, k))])
  for (const k of Object.keys(membership)) {
    dropped.push([`membership without ${k}`, withMembership(without(membership, k))], [`membership with ${k} undefined`, withMembership({ ...membership, [k]: undefined })])
  }
  for (const k of Object.keys(next)) {
    dropped.push([`next without ${k}`, withMembership({ ...membership, next: without(next, k) })])
  }
  for (const k of Object.keys(current)) {
    dropped.push([`config without ${k}`, withConfig(without(current, k))])
    dropped.push([`next config without ${k}`, withMembership({ ...membership, next: { ...next, config: without(next.config, k) } })])
  }
  for (const k of Object.keys(member)) {
    // incarnation may be null, not absent or undefined.
    dropped.push([`member without ${k}`, withMember(without(member, k))], [`member with ${k} undefined`, withMember({ ...member, [k]: undefined })])
  }
  cases("reject", dropped)
})

test("rule: CatchupRequest.snapshot and Snapshot.membership may be absent, but not present as undefined", () => {
  const request = (v: unknown) => env({ ...SAMPLES[9], snapshot: v })
  cases("accept", [
    ["snapshot true", request(true)],
    ["snapshot false", request(false)],
    ["snapshot absent", env(without(SAMPLES[9] as object, "snapshot"))],
    ["membership present", withMembership(membership)],
    ["membership absent", env(without(SAMPLES[11] as object, "membership"))],
    ["membership absent from an earlier chunk", env({ ...without(SAMPLES[11] as object, "membership"), complete: false })],
    ["membership on an earlier chunk (the Schema does not tie it to complete)", env({ ...SAMPLES[11], complete: false })],
    ["both in one envelope", env(SAMPLES[9], SAMPLES[11])]
  ])
  cases("reject", [
    ["snapshot undefined", request(undefined)],
    ["snapshot null", request(null)],
    ["snapshot 1", request(1)],
    ["snapshot 'true'", request("true")],
    ["snapshot a Boolean object", request(new Boolean(true))],
    ["membership undefined", withMembership(undefined)],
    ["membership null", withMembership(null)],
    ["membership empty", withMembership({})],
    ["membership an array", withMembership([current, null])],
    ["membership a bare config", withMembership(current)]
  ])
})

test("rule: optionalWith exact: client and seq may be absent, but not present as undefined", () => {
  cases("accept", [
    ["both", withCommand(append)],
    ["neither", withCommand({ _tag: "Append", id: "a", value: 1 })],
    ["client only", withCommand({ _tag: "Append", id: "a", value: 1, client: "c" })],
    ["seq only", withCommand({ _tag: "Append", id: "a", value: 1, seq: 0 })]
  ])
  cases("reject", [
    ["client undefined", withCommand({ ...append, client: undefined })],
    ["seq undefined", withCommand({ ...append, seq: undefined })],
    ["client null", withCommand({ ...append, client: null })],
    ["seq null", withCommand({ ...append, seq: null })]
  ])
})

test("rule: onExcessProperty error: an extra key fails at every level, __proto__ from JSON.parse included", () => {
  const extra: Array<readonly [string, unknown]> = [
    ["envelope", { ...env(), extra: 1 }],
    ["ballot", withBallot({ ...ballot, extra: 1 })],
    ["Append", withCommand({ ...append, extra: 1 })],
    ["Read with a value", withCommand({ ...read, value: 1 })],
    ["Read with a client", withCommand({ ...read, client: "c" })],
    ["entry", env({ _tag: "CatchupReply", entries: [{ slot: 1, value: [], ballot }] })],
    ["accepted entry", env({ ...SAMPLES[1], accepted: [{ slot: 4, ballot, value: [], extra: 1 }] })],
    ["client entry", withClient({ ...client, extra: 1 })],
    ["envelope, __proto__", JSON.parse('{"cluster":"c","from":0,"to":1,"messages":[],"__proto__":{}}')],
    ["ballot, __proto__", JSON.parse('{"cluster":"c","from":0,"to":1,"messages":[{"_tag":"Commit","ballot":{"round":1,"leader":0,"__proto__":null},"commit":1}]}')],
    ["Append, constructor", withCommand({ ...append, constructor: "x" })],
    ["Reconfig", withCommand({ ...reconfig, extra: 1 })],
    ["Reconfig with a value", withCommand({ ...reconfig, value: 1 })],
    ["Add", withChange({ ...reconfig.change, extra: 1 })],
    ["Add with an id", withChange({ ...reconfig.change, id: 1 })],
    ["Promote", withChange({ _tag: "Promote", id: 1, extra: 1 })],
    ["Promote with an incarnation", withChange({ _tag: "Promote", id: 1, incarnation: INCARNATION })],
    ["Remove with an address", withChange({ _tag: "Remove", id: 1, address: "a:1" })],
    ["Replace", withChange({ ...replace, extra: 1 })],
    ["Replace with an id", withChange({ ...replace, id: 1 })],
    ["Bind", withChange({ ...bind.change, extra: 1 })],
    ["Bind with a voter", withChange({ ...bind.change, voter: true })],
    ["Change, __proto__", withChange(JSON.parse('{"_tag":"Promote","id":1,"__proto__":{}}'))],
    ["member", withMember({ ...member, extra: 1 })],
    ["member with a _tag", withMember({ ...member, _tag: "Add" })],
    ["member of the next config", withMembership({ ...membership, next: { ...next, config: { ...next.config, members: [{ ...member, extra: 1 }] } } })],
    ["config", withConfig({ ...current, extra: 1 })],
    ["config with a from", withConfig({ ...current, from: 1 })],
    ["next config", withMembership({ ...membership, next: { ...next, config: { ...next.config, extra: 1 } } })],
    ["next", withMembership({ ...membership, next: { ...next, extra: 1 } })],
    ["next with an epoch", withMembership({ ...membership, next: { ...next, epoch: 1 } })],
    ["membership", withMembership({ ...membership, extra: 1 })],
    ["membership, __proto__", withMembership(JSON.parse(`{"current":${JSON.stringify(current)},"next":null,"__proto__":null}`))]
  ]
  for (const m of SAMPLES) extra.push([`${m["_tag"]} + extra`, env({ ...m, extra: null })])
  // Fields of one message type are strangers to another.
  extra.push(
    ["Prepare + commit", env({ ...SAMPLES[0], commit: 1 })],
    ["Commit + from", env({ ...SAMPLES[5], from: 1 })],
    ["Commit + snapshot", env({ ...SAMPLES[5], snapshot: true })],
    ["Campaign + commit", env({ ...SAMPLES[12], commit: 1 })],
    ["CatchupReply + membership", env({ _tag: "CatchupReply", entries: [], membership })]
  )
  cases("reject", extra)
})

test("rule: unions pick their member by an own _tag, and the member checks the literal exactly", () => {
  cases("reject", [
    ["no _tag", env({ ballot, commit: 6 })],
    ["unknown tag", env({ _tag: "Nope", ballot, commit: 6 })],
    ["tag in lower case", env({ _tag: "commit", ballot, commit: 6 })],
    ["tag in an array (String() of it is a tag)", env({ _tag: ["Commit"], ballot, commit: 6 })],
    ["Prepare's tag on a Commit", env({ _tag: "Prepare", ballot, commit: 6 })],
    ["a command's tag on a message", env({ ...read })],
    ["a message's tag on a command", withCommand({ ...read, _tag: "Commit" })],
    ["tag null", env({ _tag: null, ballot, commit: 6 })],
    ["an array as a message", env([SAMPLES[5]])],
    ["an array as a command", withCommand([read])],
    ["a change without _tag", withChange({ id: 1 })],
    ["an unknown change", withChange({ _tag: "Demote", id: 1 })],
    ["a change's tag in lower case", withChange({ _tag: "promote", id: 1 })],
    ["a change's tag on a command", withCommand({ _tag: "Promote", id: 1 })],
    ["a change as a command (not inside a Reconfig)", withCommand(bind.change)],
    ["a command's tag on a change", withChange({ _tag: "Read", id: "r" })],
    ["a command as a change", withChange(read)],
    ["Bind's tag on an Add", withChange({ ...reconfig.change, _tag: "Bind" })],
    ["Replace's tag on a Promote", withChange({ _tag: "Replace", id: 1 })],
    ["Promote's tag on a Replace", withChange({ ...replace, _tag: "Promote" })],
    ["a message's tag on a change", withChange({ _tag: "Campaign", ballot })],
    ["a change in an array", withChange([{ _tag: "Promote", id: 1 }])],
    ["a null change", withChange(null)],
    ["next an array", withMembership({ ...membership, next: [next.config, next.from] })],
    ["next false", withMembership({ ...membership, next: false })],
    ["next a bare config", withMembership({ ...membership, next: next.config })],
    ["a member null", withConfig({ ...current, members: [null] })],
    ["a member an array", withConfig({ ...current, members: [Object.values(member)] })]
  ])
  cases("accept", [
    ["each kind of change", env({ _tag: "Forward", commands: [reconfig, bind, ...["Promote", "Remove"].map((t) => ({ _tag: "Reconfig", id: t, change: { _tag: t, id: 2 } })), { _tag: "Reconfig", id: "x", change: replace }] })],
    ["Promote and Remove differ only by the tag", withChange({ _tag: "Remove", id: 1 })],
    ["next null", withMembership({ ...membership, next: null })],
    ["a Campaign", env(SAMPLES[12])]
  ])
})

test("rule: S.Int is Number.isSafeInteger: no fractions, NaN, infinities or integers beyond 2^53 - 1", () => {
  cases("accept", [
    ["largest safe value", withCommand({ ...append, value: 2 ** 53 - 1 })],
    ["smallest safe value", withCommand({ ...append, value: -(2 ** 53 - 1) })],
    ["1.0 is 1", withCommand({ ...append, value: 1.0 })],
    ["largest safe round", withBallot({ round: 2 ** 53 - 1, leader: 0 })]
  ])
  cases("reject", [
    ["2^53", withCommand({ ...append, value: 2 ** 53 })],
    ["-(2^53)", withCommand({ ...append, value: -(2 ** 53) })],
    ["2^60, an integer but not a safe one", withCommand({ ...append, value: 2 ** 60 })],
    ["1e300", withBallot({ round: 1e300, leader: 0 })],
    ["0.5", withCommand({ ...append, value: 0.5 })],
    ["NaN", withCommand({ ...append, value: Number.NaN })],
    ["Infinity (JSON.parse of 1e400)", withCommand({ ...append, value: JSON.parse("1e400") })],
    ["-Infinity", withCommand({ ...append, value: -Infinity })],
    ["a numeric string", withCommand({ ...append, value: "5" })],
    ["a boolean", withCommand({ ...append, value: true })],
    ["a bigint", withCommand({ ...append, value: 5n })],
    ["null", withCommand({ ...append, value: null })]
  ])
})

test("rule: nonNegative (slots, seq, index, listLength, listFrom) admits 0 and -0, not -1", () => {
  const m = (k: string, v: unknown) => env({ ...SAMPLES[9], [k]: v })
  cases("accept", [
    ["from 0", m("from", 0)],
    ["from -0", m("from", -0)],
    ["listLength -0", m("listLength", -0)],
    ["seq 0", withCommand({ ...append, seq: 0 })],
    ["client index 0", withClient({ ...client, index: 0 })]
  ])
  cases("reject", [
    ["from -1", m("from", -1)],
    ["listLength -1", m("listLength", -1)],
    ["seq -1", withCommand({ ...append, seq: -1 })],
    ["client seq -1", withClient({ ...client, seq: -1 })],
    ["client index -1", withClient({ ...client, index: -1 })],
    ["client slot -1", withClient({ ...client, slot: -1 })],
    ["Accepted slot -1", env({ _tag: "Accepted", ballot, slots: [1, -1] })],
    ["Accept commit -1", env({ ...SAMPLES[2], commit: -1 })],
    ["Snapshot listFrom -1", env({ ...SAMPLES[11], listFrom: -1 })],
    ["ballot round -1", withBallot({ round: -1, leader: 0 })]
  ])
})

test("rule: NodeIndex (a member id) is between(0, memberIdMax) for from, to, ballot leaders, changes and members", () => {
  const top = LIMITS.memberIdMax
  assert.equal(top, 65_535)
  const ids = (id: unknown): Array<readonly [string, unknown]> => [
    [`from and to ${id}`, { ...env(), from: id, to: id }],
    [`leader ${id}`, withBallot({ round: 1, leader: id })],
    [`Nack promised leader ${id}`, env({ ...SAMPLES[4], promised: { round: 1, leader: id } })],
    [`Promote ${id}`, withChange({ _tag: "Promote", id })],
    [`Remove ${id}`, withChange({ _tag: "Remove", id })],
    [`Replace remove ${id}`, withChange({ ...replace, remove: id })],
    [`Replace promote ${id}`, withChange({ ...replace, promote: id })],
    [`Bind ${id}`, withChange({ ...bind.change, id })],
    [`member ${id}`, withMember({ ...member, id })],
    [`member ${id} of the next config`, withMembership({ ...membership, next: { ...next, config: { ...next.config, members: [{ ...member, id }] } } })]
  ]
  cases("accept", [
    ...ids(top),
    ...ids(0),
    ...ids(-0),
    // The old limit, nodesMax - 1, no longer applies: ids are not reused, so they outgrow the cluster.
    ...ids(LIMITS.nodesMax)
  ])
  cases("reject", [
    ...ids(top + 1),
    ...ids(-1),
    ...ids(0.5),
    ...ids("1"),
    ...ids(null)
  ])
})

test("rule: a Config's nextId is between(0, memberIdMax + 1), its epoch and next.from are nonNegative", () => {
  const nextId = (v: unknown) => withConfig({ ...current, nextId: v })
  const nextConfig = (c: object) => withMembership({ ...membership, next: { ...next, config: { ...next.config, ...c } } })
  cases("accept", [
    ["nextId 0", nextId(0)],
    ["nextId -0", nextId(-0)],
    ["nextId memberIdMax + 1 (65536: every id is used)", nextId(LIMITS.memberIdMax + 1)],
    ["next config's nextId 65536", nextConfig({ nextId: LIMITS.memberIdMax + 1 })],
    ["epoch 0", withConfig({ ...current, epoch: 0 })],
    ["epoch 2^53 - 1", withConfig({ ...current, epoch: 2 ** 53 - 1 })],
    ["next from 0", withMembership({ ...membership, next: { ...next, from: 0 } })]
  ])
  cases("reject", [
    ["nextId memberIdMax + 2 (65537)", nextId(LIMITS.memberIdMax + 2)],
    ["next config's nextId 65537", nextConfig({ nextId: LIMITS.memberIdMax + 2 })],
    ["nextId -1", nextId(-1)],
    ["nextId 0.5", nextId(0.5)],
    ["nextId as a string", nextId("4")],
    ["nextId null", nextId(null)],
    ["epoch -1", withConfig({ ...current, epoch: -1 })],
    ["epoch 2^53", withConfig({ ...current, epoch: 2 ** 53 })],
    ["next config's epoch -1", nextConfig({ epoch: -1 })],
    ["next from -1", withMembership({ ...membership, next: { ...next, from: -1 } })],
    ["next from 1.5", withMembership({ ...membership, next: { ...next, from: 1.5 } })]
  ])
})

test("rule: an incarnation matches /^[0-9a-f]{16}$/: 16 lowercase hex digits, null only in a member", () => {
  assert.equal(String(INCARNATION_PATTERN), "/^[0-9a-f]{16}$/")
  const places = (i: unknown): Array<readonly [string, unknown]> => [
    [`Bind ${JSON.stringify(i)}`, withChange({ ...bind.change, incarnation: i })],
    [`member ${JSON.stringify(i)}`, withMember({ ...member, incarnation: i })],
    [`next config's member ${JSON.stringify(i)}`, withMembership({ ...membership, next: { ...next, config: { ...next.config, members: [{ ...member, incarnation: i }] } } })]
  ]
  cases("accept", [
    ...places(INCARNATION),
    ...places("0000000000000000"),
    ...places("ffffffffffffffff"),
    ["member null", withMember({ ...member, incarnation: null })],
    ["next config's member null", withMembership({ ...membership, next: { ...next, config: { ...next.config, members: [{ ...member, incarnation: null }] } } })]
  ])
  cases("reject", [
    ...places("0123456789ABCDEF"), // upper case
    ...places("0123456789abcdeF"), // one letter in upper case
    ...places(INCARNATION.slice(1)), // 15 digits
    ...places(`${INCARNATION}0`), // 17 digits
    ...places(""),
    ...places(`${INCARNATION}\n`), // $ is the end of the string, not of a line
    ...places(`\n${INCARNATION}`),
    ...places(` ${INCARNATION.slice(1)}`),
    ...places("0123456789abcdeg"), // not hex
    ...places("0x0123456789abcd"),
    ...places("０123456789abcdef"), // a full-width digit
    ...places(1234567890123456), // 16 digits, but a number
    ...places(undefined),
    ["Bind null (only a member may have none)", withChange({ ...bind.change, incarnation: null })]
  ])
})

test("rule: a member's voter, like Snapshot.complete, is a boolean", () => {
  cases("accept", [["voter true", withMember({ ...member, voter: true })], ["voter false", withMember({ ...member, voter: false })]])
  cases("reject", [
    ["voter 1", withMember({ ...member, voter: 1 })],
    ["voter 'true'", withMember({ ...member, voter: "true" })],
    ["voter null", withMember({ ...member, voter: null })],
    ["voter a Boolean object", withMember({ ...member, voter: new Boolean(false) })]
  ])
})

test("rule: string lengths are UTF-16 .length, within minLength and maxLength", () => {
  const s = (n: number) => "x".repeat(n)
  const emoji = (n: number) => "😀".repeat(n)
  const { commandIdLengthMax: id, clientIdLengthMax: cl, reasonLengthMax: re } = LIMITS
  assert.equal(ADDRESS_LENGTH_MAX, 255)
  const reason = (r: unknown) => env({ ...SAMPLES[8], reason: r })
  cases("accept", [
    ["empty cluster (no minLength)", { ...env(), cluster: "" }],
    ["cluster of 128", { ...env(), cluster: s(128) }],
    ["cluster of 64 emoji (.length 128)", { ...env(), cluster: emoji(64) }],
    ["a lone surrogate is a string too", { ...env(), cluster: "\ud800" }],
    ["id of 1", withCommand({ ...read, id: "a" })],
    ["id at the limit", withCommand({ ...read, id: s(id) })],
    ["id of emoji at the limit", withCommand({ ...read, id: emoji(id / 2) })],
    ["client at the limit", withCommand({ ...append, client: s(cl) })],
    ["client entry's client at the limit", withClient({ ...client, client: s(cl) })],
    ["ForwardReject id at the limit", env({ ...SAMPLES[8], ids: [s(id)] })],
    ["empty reason", reason("")],
    ["reason at the limit", reason(s(re))],
    ["Add address of 1", withChange({ _tag: "Add", address: "a" })],
    ["Add address at the limit (255)", withChange({ _tag: "Add", address: s(ADDRESS_LENGTH_MAX) })],
    ["Add address of emoji at the limit (127 and a unit)", withChange({ _tag: "Add", address: `${emoji(127)}x` })],
    ["member address of 1", withMember({ ...member, address: "a" })],
    ["member address at the limit", withMember({ ...member, address: s(ADDRESS_LENGTH_MAX) })],
    ["Reconfig id at the limit", withCommand({ ...reconfig, id: s(id) })]
  ])
  cases("reject", [
    ["cluster of 129", { ...env(), cluster: s(129) }],
    ["cluster of 65 emoji (.length 130, 65 code points)", { ...env(), cluster: emoji(65) }],
    ["cluster as a number", { ...env(), cluster: 1 }],
    ["empty id", withCommand({ ...read, id: "" })],
    ["empty Append id", withCommand({ ...append, id: "" })],
    ["id over", withCommand({ ...read, id: s(id + 1) })],
    ["id of emoji over", withCommand({ ...read, id: emoji(id / 2) + "x" })],
    ["empty client", withCommand({ ...append, client: "" })],
    ["client over", withCommand({ ...append, client: s(cl + 1) })],
    ["client entry's client empty", withClient({ ...client, client: "" })],
    ["client entry's client over", withClient({ ...client, client: s(cl + 1) })],
    ["ForwardReject empty id", env({ ...SAMPLES[8], ids: [""] })],
    ["ForwardReject id over", env({ ...SAMPLES[8], ids: [s(id + 1)] })],
    ["reason over", reason(s(re + 1))],
    ["reason null", reason(null)],
    ["id as a number", withCommand({ ...read, id: 7 })],
    ["empty Add address", withChange({ _tag: "Add", address: "" })],
    ["Add address over (256)", withChange({ _tag: "Add", address: s(ADDRESS_LENGTH_MAX + 1) })],
    ["Add address of 128 emoji (.length 256)", withChange({ _tag: "Add", address: emoji(128) })],
    ["Add address as a number", withChange({ _tag: "Add", address: 5000 })],
    ["empty member address", withMember({ ...member, address: "" })],
    ["member address over", withMember({ ...member, address: s(ADDRESS_LENGTH_MAX + 1) })],
    ["next config's member address over", withMembership({ ...membership, next: { ...next, config: { ...next.config, members: [{ ...member, address: s(ADDRESS_LENGTH_MAX + 1) }] } } })],
    ["empty Reconfig id", withCommand({ ...reconfig, id: "" })],
    ["Reconfig id over", withCommand({ ...reconfig, id: s(id + 1) })]
  ])
})

test("rule: maxItems of every array, at the limit and one over", () => {
  const { batchCommandsMax: batch, messageEntriesMax: entries, messagesPerEnvelopeMax: msgs } = LIMITS
  const at = (n: number, b: number, m: number): Array<readonly [string, unknown]> => [
    [`batch of ${b}`, withBatch(b)],
    [`Accept entries ${n}`, env({ ...SAMPLES[2], entries: many(n, { slot: 1, value: [] }) })],
    [`Accepted slots ${n}`, env({ ...SAMPLES[3], slots: many(n, 1) })],
    [`Forward commands ${n}`, env({ _tag: "Forward", commands: many(n, read) })],
    [`ForwardReject ids ${n}`, env({ ...SAMPLES[8], ids: many(n, "i") })],
    [`CatchupReply entries ${n}`, env({ _tag: "CatchupReply", entries: many(n, { slot: 1, value: [] }) })],
    [`Promise accepted ${n} (not its limit)`, env({ ...SAMPLES[1], accepted: many(n, { slot: 1, ballot, value: [] }) })],
    [`${m} messages`, env(...many(m, SAMPLES[5]))]
  ]
  cases("accept", at(entries, batch, msgs))
  cases("reject", at(entries + 1, batch + 1, msgs + 1).filter(([what]) => !what.startsWith("Promise")))
  // The large limits: Snapshot values and clients through both validators.
  const snap = (values: number, clients: number) => env({ ...SAMPLES[11], values: many(values, 7), clients: many(clients, client) })
  cases("accept", [["snapshot at both limits", snap(LIMITS.snapshotChunkValuesMax, LIMITS.clientTableMax)]])
  // The members of a configuration, in force or next.
  assert.equal(MEMBERS_MAX, 9)
  const members = (n: number) => withConfig({ ...current, members: many(n, member) })
  const nextMembers = (n: number) => withMembership({ ...membership, next: { ...next, config: { ...next.config, members: many(n, member) } } })
  cases("accept", [["no members", members(0)], ["9 members", members(MEMBERS_MAX)], ["9 next members", nextMembers(MEMBERS_MAX)]])
  cases("reject", [["10 members", members(MEMBERS_MAX + 1)], ["10 next members", nextMembers(MEMBERS_MAX + 1)]])
  cases("reject", [
    ["snapshot values over", snap(LIMITS.snapshotChunkValuesMax + 1, 0)],
    ["snapshot clients over", snap(0, LIMITS.clientTableMax + 1)]
  ])
  // A Promise of a million entries takes the Schema seconds; maxItems(n) means length <= n (shown
  // above on the other arrays) and the fingerprint test shows this array's n, so the fast
  // validator alone is checked here.
  const promise = (n: number) => env({ ...SAMPLES[1], accepted: many(n, { slot: 1, ballot, value: [] }) })
  assert.notEqual(fastDecodeEnvelope(promise(LIMITS.promiseEntriesMax)), undefined)
  assert.equal(fastDecodeEnvelope(promise(LIMITS.promiseEntriesMax + 1)), undefined)
}, SLOW_MS)

test("rule: arrays are arrays (not objects with a length), elements are read by index", () => {
  cases("reject", [
    ["messages as an object", { ...env(), messages: {} }],
    ["messages as an array-like", { ...env(), messages: { 0: SAMPLES[5], length: 1 } }],
    ["messages null", { ...env(), messages: null }],
    ["a batch as an object", env({ ...SAMPLES[2], entries: [{ slot: 1, value: { ...[read] } }] })],
    ["slots as a string", env({ ...SAMPLES[3], slots: "12" })],
    ["a null in a batch", withCommand(null)],
    ["a hole in slots (not from JSON)", env({ ...SAMPLES[3], slots: [1, , 2] })],
    ["a nested array in values", env({ ...SAMPLES[11], values: [[1]] })],
    ["members as an object", withConfig({ ...current, members: { 0: member } })],
    ["members as an array-like", withConfig({ ...current, members: { 0: member, length: 1 } })],
    ["members null", withConfig({ ...current, members: null })],
    ["a hole in members (not from JSON)", withConfig({ ...current, members: [member, , member] })]
  ])
})

test("rule: Commit.quorum is a boolean, and may be absent but not present as undefined", () => {
  const c = (v: unknown) => env({ ...SAMPLES[5], quorum: v })
  cases("accept", [["true", c(true)], ["false", c(false)], ["absent", env(without(SAMPLES[5] as object, "quorum"))]])
  cases("reject", [["undefined", c(undefined)], ["0", c(0)], ["'true'", c("true")], ["null", c(null)], ["a Boolean object", c(new Boolean(true))]])
})

test("rule: Snapshot.complete is a boolean", () => {
  const c = (v: unknown) => env({ ...SAMPLES[11], complete: v })
  cases("accept", [["true", c(true)], ["false", c(false)]])
  cases("reject", [["0", c(0)], ["1", c(1)], ["'true'", c("true")], ["null", c(null)], ["a Boolean object", c(new Boolean(true))]])
})

test("never throws: deep nesting anywhere, and hostile inputs that JSON.parse cannot make", () => {
  let deepArray: unknown = 0
  let deepObject: unknown = 0
  for (let i = 0; i < 100_000; i++) {
    deepArray = [deepArray]
    deepObject = { round: deepObject }
  }
  cases("reject", [
    ["deep root", deepArray],
    ["deep messages", { ...env(), messages: deepArray }],
    ["deep message", env(deepArray)],
    ["deep ballot", withBallot(deepObject)],
    ["deep batch", env({ ...SAMPLES[2], entries: [{ slot: 1, value: deepArray }] })],
    ["deep command", withCommand(deepObject)]
  ])
  const throwing = { ...env(), get messages(): unknown { throw new Error("getter") } }
  const proxy = Proxy.revocable({}, {})
  proxy.revoke()
  const trap = new Proxy(env(), { ownKeys: () => { throw new Error("ownKeys") } })
  for (const x of [throwing, proxy.proxy, trap, withBallot(proxy.proxy), withCommand(trap)]) {
    assert.equal(fastDecodeEnvelope(x), undefined)
  }
  // The Schema throws on these (so the server's try/catch in acceptEnvelope is still needed).
  assert.throws(() => schemaDecode(throwing))
  assert.throws(() => schemaDecode(env({ _tag: Object.create(null), ballot, commit: 1 })))
  assert.equal(fastDecodeEnvelope(env({ _tag: Object.create(null), ballot, commit: 1 })), undefined)
})

test("non-JSON inputs get the Schema's verdict: keys are Reflect.ownKeys, required fields are read through the prototype", () => {
  const sym = Symbol("s")
  const hidden = withBallot(Object.defineProperty({ ...ballot }, "extra", { value: 1, enumerable: false }))
  cases("reject", [
    ["a symbol key", { ...env(), [sym]: 1 }],
    ["a non-enumerable extra key", hidden],
    ["an inherited _tag", env(Object.assign(Object.create({ _tag: "Commit" }), { ballot, commit: 1 }))],
    ["an own undefined seq", withCommand(Object.assign(Object.create({ seq: 1 }), { ...append, seq: undefined }))],
    ["an inherited change _tag", withChange(Object.assign(Object.create({ _tag: "Promote" }), { id: 1 }))],
    ["an own undefined membership", env(Object.assign(Object.create({ membership }), { ...SAMPLES[11], membership: undefined }))]
  ])
  cases(
    "accept",
    [
      ["an inherited required field", withBallot(Object.create(ballot))],
      ["an inherited optional field is ignored", withCommand(Object.assign(Object.create({ client: "" }), read))],
      ["an inherited bad membership is ignored", env(Object.assign(Object.create({ membership: null }), without(SAMPLES[11] as object, "membership")))],
      ["an inherited incarnation", withMember(Object.assign(Object.create({ incarnation: null }), without(member, "incarnation")))],
      ["a null-prototype envelope", Object.assign(Object.create(null), env(SAMPLES[5]))],
      ["a class instance", withBallot(new (class { round = 1; leader = 0 })())],
      ["an array with an extra property", { ...env(), messages: Object.assign([], { extra: 1 }) }]
    ],
    false
  )
})

// ---------------------------------------------------------------------------------------------
// 3. The property catches weakened validators

/** A copy of `x` with `f` applied to every node, top-down, given its path from the root. */
function mapTree(x: unknown, f: (v: unknown, path: ReadonlyArray<string | number>) => unknown, path: Array<string | number> = []): unknown {
  const v = f(x, path)
  if (Array.isArray(v)) return v.map((item, i) => mapTree(item, f, [...path, i]))
  if (!isObject(v)) return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) put(out, k, mapTree(v[k], f, [...path, k]))
  return out
}

/** The real validator on a copy of the input where `f` erased what one check looks at. */
const weakened = (f: (v: unknown, path: ReadonlyArray<string | number>) => unknown): Decoder => (x) =>
  fastDecodeEnvelope(mapTree(x, f)) === undefined ? undefined : (x as PeerEnvelope)

const isBallotPath = (p: ReadonlyArray<string | number>): boolean =>
  (p.length === 3 && p[0] === "messages" && (p[2] === "ballot" || p[2] === "promised")) ||
  (p.length === 5 && p[0] === "messages" && p[2] === "accepted" && p[4] === "ballot")
const isBatchPath = (p: ReadonlyArray<string | number>): boolean =>
  p.length === 5 && p[0] === "messages" && (p[2] === "entries" || p[2] === "accepted") && p[4] === "value"
const hasTag = (v: unknown, ...tags: string[]): v is Record<string, unknown> =>
  isObject(v) && tags.includes(v["_tag"] as string)

/** Each: a validator with one check removed, and an input only it accepts. */
const MUTANTS: ReadonlyArray<readonly [string, Decoder, unknown]> = [
  [
    "Ballot without the excess-property check",
    weakened((v, p) => (isBallotPath(p) && isObject(v) ? { round: v["round"], leader: v["leader"] } : v)),
    withBallot({ ...ballot, extra: 1 })
  ],
  [
    "exact optional fields that accept undefined",
    weakened((v) => {
      if (!hasTag(v, "Append")) return v
      const out = { ...v }
      for (const k of ["client", "seq"]) if (Object.hasOwn(out, k) && out[k] === undefined) delete out[k]
      return out
    }),
    withCommand({ ...append, seq: undefined })
  ],
  [
    "Batch with maxItems off by one",
    weakened((v, p) => (isBatchPath(p) && Array.isArray(v) && v.length === LIMITS.batchCommandsMax + 1 ? v.slice(1) : v)),
    withBatch(LIMITS.batchCommandsMax + 1)
  ],
  [
    "S.Int as Number.isInteger (unsafe integers accepted)",
    weakened((v) => (Number.isInteger(v) && !Number.isSafeInteger(v) ? Math.sign(v as number) * (2 ** 53 - 1) : v)),
    withCommand({ ...append, value: 2 ** 60 })
  ],
  [
    "CommandId without minLength(1)",
    weakened((v, p) => (v === "" && (p.at(-1) === "id" || p.at(-2) === "ids") ? "x" : v)),
    withCommand({ ...read, id: "" })
  ],
  [
    "NodeIndex up to memberIdMax + 1",
    weakened((v) => (v === LIMITS.memberIdMax + 1 ? LIMITS.memberIdMax : v)),
    { ...env(), from: LIMITS.memberIdMax + 1 }
  ],
  [
    "Config.members without maxItems",
    weakened((v, p) => (p.at(-1) === "members" && Array.isArray(v) && v.length === MEMBERS_MAX + 1 ? v.slice(1) : v)),
    withConfig({ ...current, members: many(MEMBERS_MAX + 1, member) })
  ],
  [
    "Incarnation whatever its case",
    weakened((v, p) => (p.at(-1) === "incarnation" && typeof v === "string" && /^[0-9a-f]{16}$/i.test(v) ? v.toLowerCase() : v)),
    withChange({ ...bind.change, incarnation: INCARNATION.toUpperCase() })
  ],
  [
    "Incarnation of any length",
    weakened((v, p) => (p.at(-1) === "incarnation" && typeof v === "string" && /^[0-9a-f]+$/.test(v) ? INCARNATION : v)),
    withChange({ ...bind.change, incarnation: INCARNATION.slice(1) })
  ],
  [
    "Change without the excess-property check",
    weakened((v, p) => {
      if (p.at(-1) !== "change" || !isObject(v)) return v
      const fields: Record<string, readonly string[]> = { Add: ["_tag", "address"], Promote: ["_tag", "id"], Remove: ["_tag", "id"], Replace: ["_tag", "remove", "promote"], Bind: ["_tag", "id", "incarnation"] }
      const keep = fields[v["_tag"] as string]
      return keep === undefined ? v : Object.fromEntries(Object.entries(v).filter(([k]) => keep.includes(k)))
    }),
    withChange({ _tag: "Promote", id: 1, extra: 1 })
  ],
  [
    "Member without the excess-property check",
    weakened((v, p) => (p.at(-2) === "members" && isObject(v) ? { id: v["id"], address: v["address"], incarnation: v["incarnation"], voter: v["voter"] } : v)),
    withMember({ ...member, extra: 1 })
  ],
  [
    "CatchupRequest.snapshot and Snapshot.membership that accept undefined",
    weakened((v) => {
      if (!hasTag(v, "CatchupRequest", "Snapshot")) return v
      const out = { ...v }
      for (const k of ["snapshot", "membership"]) if (Object.hasOwn(out, k) && out[k] === undefined) delete out[k]
      return out
    }),
    env({ ...SAMPLES[9], snapshot: undefined })
  ]
]

test("the property catches each of these weakened validators within its run budget", () => {
  for (const [name, decode, witness] of MUTANTS) {
    // The mutant is really weaker: it accepts an input that the Schema and the real validator reject.
    assert.notEqual(decode(witness), undefined, `${name}: the witness is accepted by the mutant`)
    assert.equal(fastDecodeEnvelope(witness), undefined, `${name}: the witness is rejected by the real validator`)
    assert.ok(Either.isLeft(schemaDecode(witness)), `${name}: the witness is rejected by the Schema`)
    const run = fc.check(fc.property(mutatedEnvelope, agreement(decode)), { numRuns: RUNS, endOnFailure: true })
    assert.ok(run.failed, `${name}: the property did not notice in ${RUNS} runs`)
    // And it failed for the right reason: on the counterexample the mutant and the real validator differ.
    const [x] = run.counterexample ?? []
    const differ = (u: unknown) => (decode(u) === undefined) !== (fastDecodeEnvelope(u) === undefined)
    assert.ok(differ(x) || differ(viaJson(x)), `${name}: the property failed on an input where the mutant is right`)
  }
}, SLOW_MS)

// ---------------------------------------------------------------------------------------------
// 4. What the Schema is made of

/** A readable description of a schema AST; throws on anything fast-decode.ts does not implement. */
function describe(ast: AST.AST): string {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
      return ast._tag.replace("Keyword", "").toLowerCase()
    case "Literal":
      return JSON.stringify(ast.literal)
    case "Refinement": {
      // S.pattern has no title (a long pattern would make a long one): its regex is the rule.
      const pattern = ast.annotations[S.PatternSchemaId] as { regex: RegExp } | undefined
      const rule = pattern !== undefined ? `pattern(${String(pattern.regex)})` : Option.getOrUndefined(AST.getTitleAnnotation(ast))
      if (rule !== undefined) return `${describe(ast.from)} & ${rule}`
      break
    }
    case "Union":
      return ast.types.map(describe).join(" | ")
    case "TupleType": {
      const [rest, ...more] = ast.rest
      if (ast.elements.length === 0 && rest !== undefined && more.length === 0) return `Array<${describe(rest.type)}>`
      break
    }
    case "TypeLiteral":
      if (ast.indexSignatures.length === 0) {
        const fields = ast.propertySignatures.map((p) => `${String(p.name)}${p.isOptional ? "?" : ""}: ${describe(p.type)}`)
        return `{ ${fields.join(", ")} }`
      }
      break
  }
  throw new Error(`fast-decode.ts does not implement ${ast._tag}: ${String(ast)}`)
}

test("the Schema transforms nothing, and its rules are the ones fast-decode.ts implements", () => {
  assert.equal(AST.typeAST(PeerEnvelopeSchema.ast), PeerEnvelopeSchema.ast, "decoding transforms nothing")
  const int = "number & int"
  const nat = `${int} & nonNegative`
  const node = `${int} & between(0, ${LIMITS.memberIdMax})`
  const str = (min: number, max: number) => `string${min > 0 ? ` & minLength(${min})` : ""} & maxLength(${max})`
  const id = str(1, LIMITS.commandIdLengthMax)
  const clientId = str(1, LIMITS.clientIdLengthMax)
  const address = str(1, ADDRESS_LENGTH_MAX)
  const incarnation = `string & pattern(${String(INCARNATION_PATTERN)})`
  const arr = (item: string, max: number) => `Array<${item}> & maxItems(${max})`
  const b = `{ round: ${nat}, leader: ${node} }`
  const change = [
    `{ _tag: "Add", address: ${address} }`,
    `{ _tag: "Promote", id: ${node} }`,
    `{ _tag: "Remove", id: ${node} }`,
    `{ _tag: "Replace", remove: ${node}, promote: ${node} }`,
    `{ _tag: "Bind", id: ${node}, incarnation: ${incarnation} }`
  ].join(" | ")
  const command = [
    `{ _tag: "Append", id: ${id}, value: ${int}, client?: ${clientId}, seq?: ${nat} }`,
    `{ _tag: "Read", id: ${id} }`,
    `{ _tag: "Reconfig", id: ${id}, change: ${change} }`
  ].join(" | ")
  const member = `{ id: ${node}, address: ${address}, incarnation: ${incarnation} | null, voter: boolean }`
  const config = `{ epoch: ${nat}, members: ${arr(member, MEMBERS_MAX)}, nextId: ${int} & between(0, ${LIMITS.memberIdMax + 1}) }`
  const membership = `{ current: ${config}, next: { config: ${config}, from: ${nat} } | null }`
  const batch = arr(command, LIMITS.batchCommandsMax)
  const entry = `{ slot: ${nat}, value: ${batch} }`
  const n = LIMITS.messageEntriesMax
  const messages = [
    `{ _tag: "Prepare", ballot: ${b}, from: ${nat} }`,
    `{ _tag: "Promise", ballot: ${b}, snapshot: ${nat}, accepted: ${arr(`{ slot: ${nat}, ballot: ${b}, value: ${batch} }`, LIMITS.promiseEntriesMax)} }`,
    `{ _tag: "Accept", ballot: ${b}, entries: ${arr(entry, n)}, commit: ${nat} }`,
    `{ _tag: "Accepted", ballot: ${b}, slots: ${arr(nat, n)} }`,
    `{ _tag: "Nack", ballot: ${b}, promised: ${b} }`,
    `{ _tag: "Commit", ballot: ${b}, commit: ${nat}, quorum?: boolean }`,
    `{ _tag: "CommitAck", ballot: ${b}, applied: ${nat} }`,
    `{ _tag: "Forward", commands: ${arr(command, n)} }`,
    `{ _tag: "ForwardReject", ids: ${arr(id, n)}, reason: string & maxLength(${LIMITS.reasonLengthMax}) }`,
    `{ _tag: "CatchupRequest", from: ${nat}, listLength: ${nat}, snapshot?: boolean }`,
    `{ _tag: "CatchupReply", entries: ${arr(entry, n)} }`,
    `{ _tag: "Snapshot", slot: ${nat}, listFrom: ${nat}, values: ${arr(int, LIMITS.snapshotChunkValuesMax)}, ` +
      `clients: ${arr(`{ client: ${clientId}, seq: ${nat}, value: ${int}, index: ${nat}, slot: ${nat} }`, LIMITS.clientTableMax)}, ` +
      `complete: boolean, membership?: ${membership} }`,
    `{ _tag: "Campaign", ballot: ${b} }`
  ]
  const expected =
    `{ cluster: string & maxLength(128), from: ${node}, to: ${node}, ` +
    `messages: ${arr(messages.join(" | "), LIMITS.messagesPerEnvelopeMax)} }`
  const actual = describe(PeerEnvelopeSchema.ast)
  // Compared message by message first, for a readable failure.
  for (const m of messages) assert.ok(actual.includes(m), `the Schema has changed: ${m.slice(0, 40)}...`)
  assert.equal(actual, expected)
})

// ---------------------------------------------------------------------------------------------
// 5. Client append bodies

const appendDecode = S.decodeUnknownEither(AppendRequest, strict)

/** The server's verdict on an append body: the Schema, plus "client and seq come together". */
function appendAccepted(x: unknown): boolean {
  const r = appendDecode(x)
  return Either.isRight(r) && (r.right.client === undefined) === (r.right.seq === undefined)
}

/** Append bodies near every rule's edge: valid ones, and ones one change away. */
const appendBody: fc.Arbitrary<unknown> = fc.oneof(
  Arbitrary.make(AppendRequest),
  fc.record(
    {
      value: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 53 - 1, -0, "5", null)),
      client: fc.oneof(fc.string({ maxLength: 130 }), fc.constantFrom("", "c".repeat(128), "c".repeat(129)), fc.integer()),
      seq: fc.oneof(fc.integer({ min: -3, max: 10 }), fc.constantFrom(1.5, 2 ** 53, "1", null)),
      extra: fc.anything()
    },
    { requiredKeys: [] }
  ),
  fc.anything()
)

test("property: the fast append check and the Schema (with client and seq together) give the same verdict", () => {
  let accepted = 0
  fc.assert(
    fc.property(appendBody, (x) => {
      for (const input of [x, viaJson(x)]) {
        const fast = fastDecodeAppend(input)
        assert.equal(fast !== undefined, appendAccepted(input), `verdicts differ on ${JSON.stringify(input)}`)
        if (fast !== undefined) {
          accepted++
          assert.equal(fast, input)
          assert.deepEqual(fast, (appendDecode(input) as Either.Right<unknown, unknown>).right)
        }
      }
    }),
    { numRuns: RUNS }
  )
  assert.ok(accepted > RUNS / 10, `only ${accepted} bodies were valid`)
}, SLOW_MS)

test("the append property catches a fast check that forgets the client-and-seq rule", () => {
  const weak = (u: unknown) => (typeof u === "object" && u !== null && !Array.isArray(u) && Number.isSafeInteger((u as { value?: unknown }).value) && Object.keys(u).every((k) => k === "value" || k === "client" || k === "seq") ? u : undefined)
  assert.throws(() =>
    fc.assert(
      fc.property(appendBody, (x) => {
        assert.equal(weak(x) !== undefined, appendAccepted(x))
      }),
      { numRuns: RUNS }
    )
  )
})
