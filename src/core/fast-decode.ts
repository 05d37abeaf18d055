/**
 * A hand-written validator for `PeerEnvelope`, the hot path of every follower: decoding an envelope
 * with Effect Schema costs about a microsecond per command, checking it by hand a small fraction
 * of that (scripts/bench-decode.ts measures both).
 *
 * The Schema in messages.ts stays the definition of the wire format and the source of every error
 * message: this file only answers "would `S.decodeUnknownEither(PeerEnvelope, strict)` succeed?",
 * and the server falls back to the Schema whenever the answer is no. test/core/fast-decode.test.ts
 * proves the two agree (property tests on valid and mutated envelopes, one hand-written case per
 * rule, and a check that the property catches a deliberately weakened validator); change a schema
 * in messages.ts and that test fails until this file follows.
 *
 * Decoding these schemas transforms nothing (structs, tagged structs, unions, arrays, literals and
 * filters on String, Number and Boolean only), so on success the result is the input itself. The
 * rules followed, as Effect 3.22's parser applies them with `onExcessProperty: "error"`:
 *
 * - A struct is a non-null, non-array object. Every own key (`Reflect.ownKeys`: symbols and
 *   non-enumerable keys included, and a `__proto__` key made by JSON.parse) must be a field of it.
 * - A required field is read as `o[name]` (absent reads as undefined, which no field accepts); an
 *   optional field (`S.optionalWith(..., { exact: true })`) is checked only if it is an own key, and
 *   then must not be undefined.
 * - A union of tagged structs picks its member by an own `_tag` key; that member then checks it.
 * - `S.Int` is `Number.isSafeInteger`: NaN, ±Infinity, fractions and integers beyond 2^53 - 1
 *   (2^53, 2^60, 1e300) are all rejected. -0 passes, and passes `nonNegative` (-0 >= 0).
 * - String lengths are `.length` (UTF-16 code units); array lengths are `.length`, elements are
 *   read by index, so a hole reads as undefined and fails.
 *
 * Inputs that JSON.parse cannot make (symbol or non-enumerable keys, inherited fields, null
 * prototypes, holes in arrays) get the Schema's verdict too, with exceptions the server never sees:
 * where the Schema would throw (a throwing getter or proxy, a `_tag` that cannot be converted to a
 * string), this returns undefined; a getter or proxy that answers differently each time it is read
 * may be judged differently; and on success this returns the input, where the Schema returns a
 * fresh copy of plain objects and arrays (which differs from the input in prototype, accessors or
 * non-index array properties, if the input has any).
 */
import { LIMITS } from "./config.ts"
import { ADDRESS_LENGTH_MAX, INCARNATION_PATTERN, MEMBERS_MAX } from "./membership.ts"
import type { AcceptedEntry, AppendRequest, Batch, Command, ClientEntry, Entry, Message, PeerEnvelope } from "./messages.ts"

/** An object the parser treats as a struct: not null, not an array. */
type Rec = { readonly [key: string]: unknown }

/** Returns `u` as a PeerEnvelope if the Schema would decode it, undefined otherwise; never throws. */
export function fastDecodeEnvelope(u: unknown): PeerEnvelope | undefined {
  try {
    return isEnvelope(u) ? u : undefined
  } catch {
    // Only a non-JSON input (a getter or proxy that throws) gets here.
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Primitives

/** `S.Int`: a safe integer. */
const isInt = (u: unknown): u is number => Number.isSafeInteger(u)

/** `Slot`, `Seq` and the other `S.Int.pipe(S.nonNegative())`. */
const isNat = (u: unknown): u is number => Number.isSafeInteger(u) && (u as number) >= 0

/** `NodeIndex`: `S.Int.pipe(S.between(0, LIMITS.memberIdMax))`. */
const isNodeIndex = (u: unknown): u is number =>
  Number.isSafeInteger(u) && (u as number) >= 0 && (u as number) <= LIMITS.memberIdMax

/** `S.String.pipe(S.minLength(min), S.maxLength(max))`. */
const isString = (u: unknown, min: number, max: number): u is string =>
  typeof u === "string" && u.length >= min && u.length <= max

/** `S.Boolean`. */
const isBoolean = (u: unknown): u is boolean => typeof u === "boolean"

/** `CommandId`. */
const isCommandId = (u: unknown): u is string => isString(u, 1, LIMITS.commandIdLengthMax)

/** `ClientId`. */
const isClientId = (u: unknown): u is string => isString(u, 1, LIMITS.clientIdLengthMax)

// ---------------------------------------------------------------------------------------------
// Structure

/** What `S.Struct` accepts before looking at fields: an object that is not null and not an array. */
const isRec = (u: unknown): u is Rec => typeof u === "object" && u !== null && !Array.isArray(u)

/** `onExcessProperty: "error"`: every own key of `o` (as `Reflect.ownKeys` lists them) is in `fields`. */
function onlyFields(o: Rec, fields: readonly string[]): boolean {
  const keys = Reflect.ownKeys(o)
  if (keys.length > fields.length) return false
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (typeof key !== "string" || !fields.includes(key)) return false
  }
  return true
}

/** A struct with exactly these possible fields: a record with no other own key. */
const isStruct = (u: unknown, fields: readonly string[]): u is Rec => isRec(u) && onlyFields(u, fields)

/** An `S.optionalWith(item, { exact: true })` field: absent, or present and valid (so not undefined). */
const optional = (o: Rec, name: string, item: (u: unknown) => boolean): boolean =>
  !Object.prototype.hasOwnProperty.call(o, name) || item(o[name])

/** `S.Array(item).pipe(S.maxItems(max))`. */
function isArrayOf<A>(u: unknown, max: number, item: (u: unknown) => u is A): u is readonly A[] {
  if (!Array.isArray(u) || u.length > max) return false
  for (let i = 0; i < u.length; i++) if (!item(u[i])) return false
  return true
}

/** The `_tag` that picks a member of a union of tagged structs: an own key, else none. */
const tagOf = (o: Rec): unknown => (Object.prototype.hasOwnProperty.call(o, "_tag") ? o["_tag"] : undefined)

// ---------------------------------------------------------------------------------------------
// Schemas of messages.ts, in its order

const BALLOT = ["round", "leader"] as const
/** `Ballot`. */
const isBallot = (u: unknown): boolean => isStruct(u, BALLOT) && isNat(u["round"]) && isNodeIndex(u["leader"])

const APPEND = ["_tag", "id", "value", "client", "seq"] as const
const READ = ["_tag", "id"] as const
const RECONFIG = ["_tag", "id", "change"] as const
const ADD = ["_tag", "address"] as const
const MEMBER_ID = ["_tag", "id"] as const
const BIND = ["_tag", "id", "incarnation"] as const
const REPLACE = ["_tag", "remove", "promote"] as const

/** `Change`: Add, Promote, Remove, Replace or Bind, by `_tag`. */
function isChange(u: unknown): boolean {
  if (!isRec(u)) return false
  switch (tagOf(u)) {
    case "Add":
      return onlyFields(u, ADD) && isString(u["address"], 1, ADDRESS_LENGTH_MAX)
    case "Promote":
    case "Remove":
      return onlyFields(u, MEMBER_ID) && isNodeIndex(u["id"])
    case "Replace":
      return onlyFields(u, REPLACE) && isNodeIndex(u["remove"]) && isNodeIndex(u["promote"])
    case "Bind":
      return onlyFields(u, BIND) && isNodeIndex(u["id"]) && typeof u["incarnation"] === "string" && INCARNATION_PATTERN.test(u["incarnation"])
    default:
      return false
  }
}

/** `Command`: `AppendCommand`, `ReadCommand` or `ReconfigCommand`, by `_tag`. */
function isCommand(u: unknown): u is Command {
  if (!isRec(u)) return false
  switch (tagOf(u)) {
    case "Append":
      return (
        onlyFields(u, APPEND) &&
        isCommandId(u["id"]) &&
        isInt(u["value"]) &&
        optional(u, "client", isClientId) &&
        optional(u, "seq", isNat)
      )
    case "Read":
      return onlyFields(u, READ) && isCommandId(u["id"])
    case "Reconfig":
      return onlyFields(u, RECONFIG) && isCommandId(u["id"]) && isChange(u["change"])
    default:
      return false
  }
}

/** `Batch`. */
const isBatch = (u: unknown): u is Batch => isArrayOf(u, LIMITS.batchCommandsMax, isCommand)

const ENTRY = ["slot", "value"] as const
/** `Entry`. */
const isEntry = (u: unknown): u is Entry => isStruct(u, ENTRY) && isNat(u["slot"]) && isBatch(u["value"])

const ACCEPTED_ENTRY = ["slot", "ballot", "value"] as const
/** `AcceptedEntry`. */
const isAcceptedEntry = (u: unknown): u is AcceptedEntry =>
  isStruct(u, ACCEPTED_ENTRY) && isNat(u["slot"]) && isBallot(u["ballot"]) && isBatch(u["value"])

const CLIENT_ENTRY = ["client", "seq", "value", "index", "slot"] as const
/** `ClientEntry`. */
const isClientEntry = (u: unknown): u is ClientEntry =>
  isStruct(u, CLIENT_ENTRY) &&
  isClientId(u["client"]) &&
  isNat(u["seq"]) &&
  isInt(u["value"]) &&
  isNat(u["index"]) &&
  isNat(u["slot"])

/** `entries(item)`: at most `LIMITS.messageEntriesMax` items. */
const isEntries = <A>(u: unknown, item: (u: unknown) => u is A): u is readonly A[] =>
  isArrayOf(u, LIMITS.messageEntriesMax, item)

/** `Slot`, as an item of an array. */
const isSlotItem = (u: unknown): u is number => isNat(u)
/** `Value`, as an item of an array. */
const isValueItem = (u: unknown): u is number => isInt(u)

/** `ForwardReject.reason`. */
const isReason = (u: unknown): u is string => isString(u, 0, LIMITS.reasonLengthMax)

const PREPARE = ["_tag", "ballot", "from"] as const
const PROMISE = ["_tag", "ballot", "snapshot", "accepted"] as const
const ACCEPT = ["_tag", "ballot", "entries", "commit"] as const
const ACCEPTED = ["_tag", "ballot", "slots"] as const
const NACK = ["_tag", "ballot", "promised"] as const
const COMMIT = ["_tag", "ballot", "commit", "quorum"] as const
const COMMIT_ACK = ["_tag", "ballot", "applied"] as const
const FORWARD = ["_tag", "commands"] as const
const FORWARD_REJECT = ["_tag", "ids", "reason"] as const
const CATCHUP_REQUEST = ["_tag", "from", "listLength", "snapshot"] as const
const CATCHUP_REPLY = ["_tag", "entries"] as const
const SNAPSHOT = ["_tag", "slot", "listFrom", "values", "clients", "complete", "membership"] as const
const CAMPAIGN = ["_tag", "ballot"] as const

const MEMBER = ["id", "address", "incarnation", "voter"] as const
/** `MemberSchema`. */
const isMember = (u: unknown): u is unknown =>
  isStruct(u, MEMBER) &&
  isNodeIndex(u["id"]) &&
  isString(u["address"], 1, ADDRESS_LENGTH_MAX) &&
  (u["incarnation"] === null || (typeof u["incarnation"] === "string" && INCARNATION_PATTERN.test(u["incarnation"]))) &&
  isBoolean(u["voter"])

const CONFIG = ["epoch", "members", "nextId"] as const
/** `ConfigSchema`. */
const isConfig = (u: unknown): boolean =>
  isStruct(u, CONFIG) &&
  isNat(u["epoch"]) &&
  isArrayOf(u["members"], MEMBERS_MAX, isMember) &&
  isNat(u["nextId"]) &&
  (u["nextId"] as number) <= LIMITS.memberIdMax + 1

const MEMBERSHIP = ["current", "next"] as const
const NEXT = ["config", "from"] as const
/** `MembershipSchema`. */
const isMembership = (u: unknown): boolean =>
  isStruct(u, MEMBERSHIP) &&
  isConfig(u["current"]) &&
  (u["next"] === null || (isStruct(u["next"], NEXT) && isConfig(u["next"]["config"]) && isNat(u["next"]["from"])))

/** `Message`: one of the thirteen tagged structs, by `_tag`. */
function isMessage(u: unknown): u is Message {
  if (!isRec(u)) return false
  switch (tagOf(u)) {
    case "Prepare":
      return onlyFields(u, PREPARE) && isBallot(u["ballot"]) && isNat(u["from"])
    case "Promise":
      return (
        onlyFields(u, PROMISE) &&
        isBallot(u["ballot"]) &&
        isNat(u["snapshot"]) &&
        isArrayOf(u["accepted"], LIMITS.promiseEntriesMax, isAcceptedEntry)
      )
    case "Accept":
      return onlyFields(u, ACCEPT) && isBallot(u["ballot"]) && isEntries(u["entries"], isEntry) && isNat(u["commit"])
    case "Accepted":
      return onlyFields(u, ACCEPTED) && isBallot(u["ballot"]) && isEntries(u["slots"], isSlotItem)
    case "Nack":
      return onlyFields(u, NACK) && isBallot(u["ballot"]) && isBallot(u["promised"])
    case "Commit":
      return onlyFields(u, COMMIT) && isBallot(u["ballot"]) && isNat(u["commit"]) && optional(u, "quorum", isBoolean)
    case "CommitAck":
      return onlyFields(u, COMMIT_ACK) && isBallot(u["ballot"]) && isNat(u["applied"])
    case "Forward":
      return onlyFields(u, FORWARD) && isEntries(u["commands"], isCommand)
    case "ForwardReject":
      return onlyFields(u, FORWARD_REJECT) && isEntries(u["ids"], isCommandId) && isReason(u["reason"])
    case "CatchupRequest":
      return onlyFields(u, CATCHUP_REQUEST) && isNat(u["from"]) && isNat(u["listLength"]) && optional(u, "snapshot", isBoolean)
    case "CatchupReply":
      return onlyFields(u, CATCHUP_REPLY) && isEntries(u["entries"], isEntry)
    case "Snapshot":
      return (
        onlyFields(u, SNAPSHOT) &&
        isNat(u["slot"]) &&
        isNat(u["listFrom"]) &&
        isArrayOf(u["values"], LIMITS.snapshotChunkValuesMax, isValueItem) &&
        isArrayOf(u["clients"], LIMITS.clientTableMax, isClientEntry) &&
        isBoolean(u["complete"]) &&
        optional(u, "membership", isMembership)
      )
    case "Campaign":
      return onlyFields(u, CAMPAIGN) && isBallot(u["ballot"])
    default:
      return false
  }
}

const ENVELOPE = ["cluster", "from", "to", "messages"] as const
/** `PeerEnvelope.cluster`: `S.String.pipe(S.maxLength(128))`, so the empty string too. */
const CLUSTER_LENGTH_MAX = 128

/** `PeerEnvelope`. */
const isEnvelope = (u: unknown): u is PeerEnvelope =>
  isStruct(u, ENVELOPE) &&
  isString(u["cluster"], 0, CLUSTER_LENGTH_MAX) &&
  isNodeIndex(u["from"]) &&
  isNodeIndex(u["to"]) &&
  isArrayOf(u["messages"], LIMITS.messagesPerEnvelopeMax, isMessage)

// ---------------------------------------------------------------------------------------------
// Client bodies

const APPEND_REQUEST = ["value", "client", "seq"] as const

/**
 * Returns `u` as an AppendRequest if `S.decodeUnknownEither(AppendRequest, strict)` would decode it
 * and `client` and `seq` come together (the rule the server adds, src/server/body.ts), undefined
 * otherwise; never throws. As for envelopes, the Schema stays the definition and says what is
 * wrong with a body this rejects (test/core/fast-decode.test.ts proves they agree).
 */
export function fastDecodeAppend(u: unknown): AppendRequest | undefined {
  try {
    if (!isStruct(u, APPEND_REQUEST) || !isInt(u["value"])) return undefined
    const hasClient = Object.prototype.hasOwnProperty.call(u, "client")
    const hasSeq = Object.prototype.hasOwnProperty.call(u, "seq")
    if (hasClient !== hasSeq) return undefined
    if (hasClient && !(isClientId(u["client"]) && isNat(u["seq"]))) return undefined
    return u as AppendRequest
  } catch {
    return undefined
  }
}
