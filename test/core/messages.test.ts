/**
 * Wire schemas: every peer message round-trips through JSON and decodes to what was sent; bad
 * messages and client bodies are rejected with an error that names the field.
 */
import assert from "node:assert/strict"
import { Either, ParseResult, Schema as S } from "effect"
import { AppendRequest, Message, PeerEnvelope, strict } from "../../src/core/messages.ts"
import { test } from "../portable.ts"
import { ballot, SAMPLE_MESSAGES } from "./samples.ts"

const samples = SAMPLE_MESSAGES

const decodeMessage = S.decodeUnknownEither(Message, strict)

test("every peer message type round-trips through JSON", () => {
  const tags = new Set(samples.map((m) => m._tag))
  assert.equal(tags.size, Message.members.length, "one sample per message type")
  for (const m of samples) {
    const back = decodeMessage(JSON.parse(JSON.stringify(S.encodeSync(Message)(m))))
    assert.ok(Either.isRight(back), `${m._tag}: ${Either.isLeft(back) ? ParseResult.TreeFormatter.formatErrorSync(back.left) : ""}`)
    assert.deepEqual(back.right, m)
  }
})

test("peer messages that break the schema are rejected, naming what is wrong", () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ _tag: "Prepare", ballot, from: -1 }, /from/],
    [{ _tag: "Prepare", ballot: { round: 1, leader: 70_000 }, from: 1 }, /leader/],
    [{ _tag: "Forward", commands: [{ _tag: "Reconfig", id: "x", change: { _tag: "Bind", id: 1, incarnation: "XYZ" } }] }, /incarnation/],
    [{ _tag: "Forward", commands: [{ _tag: "Reconfig", id: "x", change: { _tag: "Add", address: "" } }] }, /address/],
    [{ _tag: "Accept", ballot, entries: [{ slot: 1, value: [{ _tag: "Append", id: "x", value: 1.5 }] }], commit: 0 }, /value/],
    [{ _tag: "Accept", ballot, entries: [{ slot: 1, value: [{ _tag: "Append", id: "x", value: 2 ** 53 }] }], commit: 0 }, /value/],
    [{ _tag: "Accepted", ballot, slots: Array.from({ length: 100_000 }, (_, i) => i) }, /slots|length|items/i],
    [{ _tag: "Nope" }, /_tag/],
    [{ _tag: "Commit", ballot, commit: 1, extra: true }, /extra/]
  ]
  for (const [m, field] of bad) {
    const r = decodeMessage(m)
    assert.ok(Either.isLeft(r), `accepted ${JSON.stringify(m).slice(0, 80)}`)
    assert.match(ParseResult.TreeFormatter.formatErrorSync(r.left), field)
  }
  const env = S.decodeUnknownEither(PeerEnvelope, strict)({ cluster: "c", from: 0, to: 1, messages: [{ _tag: "Prepare", ballot, from: "1" }] })
  assert.ok(Either.isLeft(env))
})

test("client append bodies: safe integers only, no extra fields, client and seq optional together", () => {
  const decode = S.decodeUnknownEither(AppendRequest, strict)
  assert.deepEqual(Either.getOrThrow(decode({ value: 5 })), { value: 5 })
  assert.deepEqual(Either.getOrThrow(decode({ value: -9007199254740991, client: "c", seq: 0 })), { value: -9007199254740991, client: "c", seq: 0 })
  for (const [body, field] of [
    [{}, /value/],
    [{ value: "5" }, /value/],
    [{ value: 1.5 }, /value/],
    [{ value: 9007199254740992 }, /value/],
    [{ value: 5, extra: 1 }, /extra/],
    [{ value: 5, seq: -1, client: "c" }, /seq/],
    [{ value: 5, client: "" }, /client/]
  ] as const) {
    const r = decode(body)
    assert.ok(Either.isLeft(r), `accepted ${JSON.stringify(body)}`)
    assert.match(ParseResult.TreeFormatter.formatErrorSync(r.left), field)
  }
})
