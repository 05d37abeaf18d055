/**
 * Property-based fuzzing of every wire decoder (fast-check): whatever arrives, decoding either
 * yields a value that re-encodes to an equivalent one, or fails with a ParseError; it never throws
 * anything else. Arbitrary messages built from the schemas themselves always round-trip.
 */
import assert from "node:assert/strict"
import { Arbitrary, Either, FastCheck as fc, ParseResult, Schema as S } from "effect"
import { AppendRequest, Message, PeerEnvelope, strict } from "../../src/core/messages.ts"
import { test } from "../portable.ts"

const RUNS = 300

/** JSON-ish values of any shape, including the near-misses that matter (floats, huge ints, nulls). */
const junk = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 53), Number.NaN, "", "Append", "Prepare"),
    fc.integer(),
    fc.double(),
    fc.string(),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom("_tag", "ballot", "round", "leader", "from", "value", "entries", "slot", "commit", "id", "x"), tie("value"), { maxKeys: 5 })
  )
})).value

function decodesOrRejects<A, I>(schema: S.Schema<A, I>, input: unknown): void {
  const r = S.decodeUnknownEither(schema, strict)(input)
  if (Either.isLeft(r)) {
    assert.ok(ParseResult.isParseError(r.left), "a rejection is a ParseError")
    assert.ok(ParseResult.TreeFormatter.formatErrorSync(r.left).length > 0)
    return
  }
  const again = S.decodeUnknownEither(schema, strict)(JSON.parse(JSON.stringify(S.encodeSync(schema)(r.right))))
  assert.ok(Either.isRight(again), "an accepted value round-trips through JSON")
}

test("fuzz: peer messages, envelopes and client bodies never make a decoder throw", () => {
  fc.assert(
    fc.property(junk, (v) => {
      decodesOrRejects(Message, v)
      decodesOrRejects(PeerEnvelope, v)
      decodesOrRejects(AppendRequest, v)
    }),
    { numRuns: RUNS * 3, seed: 42 }
  )
})

test("fuzz: any message the schema can produce round-trips through JSON unchanged", () => {
  // Small arrays keep generated messages small; the limits themselves are tested in messages.test.ts.
  const arb = Arbitrary.make(Message)
  fc.assert(
    fc.property(arb, (m) => {
      const back = S.decodeUnknownSync(Message, strict)(JSON.parse(JSON.stringify(S.encodeSync(Message)(m))))
      assert.deepEqual(back, m)
    }),
    { numRuns: RUNS, seed: 7 }
  )
})

test("fuzz: mutating one field of a valid message is either still valid or rejected cleanly", () => {
  const arb = Arbitrary.make(Message)
  fc.assert(
    fc.property(arb, junk, fc.nat(), (m, replacement, which) => {
      const obj = JSON.parse(JSON.stringify(S.encodeSync(Message)(m))) as Record<string, unknown>
      const keys = Object.keys(obj)
      const key = keys[which % keys.length] as string
      decodesOrRejects(Message, { ...obj, [key]: replacement })
    }),
    { numRuns: RUNS, seed: 9 }
  )
})
