/**
 * The membership endpoints of the client API (docs/MEMBERSHIP.md, "Interface"), cold paths:
 *   - GET /members: the members in force as this node knows them, `{"epoch","leader","members":
 *     [{"id","address","voter","leader","joined"}],"pending"}`, `pending` being the change decided
 *     but not yet in force (`{"from": slot, "epoch", "members"}`) or null;
 *   - POST /members/add {"address"}: adds a learner at `address` (it joins with --join and is
 *     promoted once caught up);
 *   - POST /members/remove {"address"};
 *   - POST /members/promote {"address","force"?}: makes a learner a voter now; without `force`,
 *     refused (409) while the learner is more than PROMOTE_BEHIND_MAX slots behind this node's
 *     commit point, as its /status says;
 *   - POST /members/join {"address","incarnation"}: what a node started with --join asks. The
 *     member at `address` (a learner that `paxos member add` made) gets bound to the joining data
 *     dir's incarnation, by a Bind through the log; the answer, once applied here, says the
 *     cluster id, the member id and the membership. A retry is safe: a member bound to the same
 *     incarnation answers at once, as joined.
 *
 * A change goes through the log like an append, and is answered once applied at this node: 200
 * with `{"slot"}` and the membership after it (as GET /members shows it), 409 when the log refused
 * it (`Conflict`, definite: adding a member twice, removing the last voter, another change in
 * flight), 503 when it was not proposed, 504 when its outcome is unknown. Bodies are JSON, decoded
 * strictly (extra fields are 400).
 */
import { Effect, Either, Schema as S } from "effect"
import { latestConfig, memberByAddress, type Change, type Config, type Membership } from "../core/membership.ts"
import { Incarnation } from "../core/messages.ts"
import { strict } from "../core/messages.ts"
import type { Reply } from "../core/state.ts"
import { CLIENT_GONE, describeIssues, parseJson, readBody } from "./body.ts"
import { clientTimeout } from "./client-api.ts"
import { dialName, parseAddress } from "./cluster-config.ts"
import { readiness } from "../core/readiness.ts"
import { BadRequest, Conflict, Unavailable, type ApiError } from "./errors.ts"
import { countClientGone, okJson, type ApiDeps, type Call } from "./http.ts"

type Reconfigured = Extract<Reply, { _tag: "Reconfigured" }>

/** A learner more than this many slots behind this node's commit point is not promoted without `force`. */
export const PROMOTE_BEHIND_MAX = 64
/** How long promote waits for the learner's /status. */
const PROMOTE_STATUS_MS = 2_000

/** An address as a member has it, `host:port`. */
const AddressField = S.String.pipe(S.minLength(1), S.maxLength(300))
const AddressBody = S.Struct({ address: AddressField })
const PromoteBody = S.Struct({ address: AddressField, force: S.optionalWith(S.Boolean, { exact: true }) })
const JoinBody = S.Struct({ address: AddressField, incarnation: Incarnation })

const ADDRESS_HINT = "a node's address, host:port"
const ADDRESS_EXAMPLE = '{"address": "10.0.0.4:5000"}'
const PROMOTE_EXAMPLE = '{"address": "10.0.0.4:5000", "force": false}'
const JOIN_EXAMPLE = '{"address": "10.0.0.4:5000", "incarnation": "<16 hex digits>"}'

/** The newest configuration a membership holds: the pending one, else the one in force. */
export const newest = latestConfig

/** Reads a client body as JSON and decodes it with `schema` (strict); a 400 naming the problem otherwise. */
function readJson<A, I>(c: Call, schema: S.Schema<A, I>, example: string, hints: Record<string, string>): Effect.Effect<A | typeof CLIENT_GONE, ApiError> {
  return Effect.gen(function* () {
    const body = yield* Effect.promise(() => readBody(c.req, c.d.http.clientBodies, c.watch))
    if (body === CLIENT_GONE) return CLIENT_GONE
    if (!("text" in body)) return yield* Effect.fail(body)
    const json = parseJson(body.text, example)
    if (Either.isLeft(json)) return yield* Effect.fail(json.left)
    const decoded = S.decodeUnknownEither(schema, { ...strict, errors: "all" })(json.right)
    if (Either.isLeft(decoded)) return yield* Effect.fail(new BadRequest({ message: `${describeIssues(decoded.left, json.right, hints)}; expected JSON like ${example}` }))
    return decoded.right
  })
}

/** `host:port` as members name it, or a 400. */
function memberAddress(text: string): Effect.Effect<string, BadRequest> {
  const a = parseAddress(text)
  return typeof a === "string" ? Effect.fail(new BadRequest({ message: `field "address": ${a}` })) : Effect.succeed(a.name)
}

/** Submits `change` through the log and waits until this node applied it (or the error). */
export function submitChange(d: ApiDeps, c: Call, change: Change): Effect.Effect<Reconfigured, ApiError> {
  return Effect.gen(function* () {
    const timeoutMs = clientTimeout(c.req)
    if (timeoutMs instanceof BadRequest) return yield* Effect.fail(timeoutMs)
    return yield* Effect.async<Reconfigured, ApiError>((resume) => {
      const rid = d.node.reconfigWith(
        change,
        (_body, error, reply) => resume(error !== null ? Effect.fail(error) : reply?._tag === "Reconfigured" ? Effect.succeed(reply) : Effect.dieMessage("no Reconfigured reply")),
        timeoutMs
      )
      // The client went away: its answer is no longer awaited (the change may still be applied).
      return Effect.sync(() => void (rid !== 0 && d.node.abandon(rid)))
    })
  })
}

/** One member as GET /members shows it. */
export interface MemberView {
  readonly id: number
  readonly address: string
  readonly voter: boolean
  /** It leads, as the answering node knows. */
  readonly leader: boolean
  /** It is bound to a data dir (a learner added and not joined yet is not). */
  readonly joined: boolean
}

/** The body of GET /members (and of a change's answer, with the change's `slot`). */
export interface MembersView {
  /** The node that answered. */
  readonly node: string
  /** The count of changes of members in force. */
  readonly epoch: number
  readonly leader: string | null
  /** The members in force. */
  readonly members: readonly MemberView[]
  /** A change decided but not yet in force: from which slot, and the members then. */
  readonly pending: { readonly from: number; readonly epoch: number; readonly members: readonly MemberView[] } | null
  readonly slot?: number
}

function memberView(c: Config, leader: number | null): MemberView[] {
  return c.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter, leader: m.id === leader, joined: m.incarnation !== null }))
}

/** The body of GET /members for `m` (and of a change's answer). */
export function membersView(d: ApiDeps, m: Membership): MembersView {
  const leader = d.node.state.leader
  return {
    node: d.who().address,
    epoch: m.current.epoch,
    leader: leader === null ? null : d.nameOf(leader),
    members: memberView(m.current, leader),
    pending: m.next === null ? null : { from: m.next.from, epoch: m.next.config.epoch, members: memberView(m.next.config, leader) }
  }
}

/** GET /members (see the top of this file). */
export const getMembers = (c: Call): Effect.Effect<Response> => Effect.sync(() => okJson(JSON.stringify(membersView(c.d, c.d.node.state.membership))))

/** The answer to a change applied at `r.slot`. */
const changed = (d: ApiDeps, r: Reconfigured): Response => okJson(JSON.stringify({ slot: r.slot, ...membersView(d, r.membership) }))

/** The member at `address` in the newest configuration this node knows, or a 409 naming the members. */
function memberAt(d: ApiDeps, address: string) {
  const c = newest(d.node.state.membership)
  const m = memberByAddress(c, address)
  if (m !== undefined) return Effect.succeed(m)
  return Effect.fail(new Conflict({ reason: "NotAMember", message: `${address} is not a member (members: ${c.members.map((x) => x.address).join(", ")})` }))
}

/** POST /members/add {"address"}: a learner at `address`, with the next member id. */
export function postAdd(c: Call): Effect.Effect<Response, ApiError> {
  return Effect.gen(function* () {
    const body = yield* readJson(c, AddressBody, ADDRESS_EXAMPLE, { address: ADDRESS_HINT })
    if (body === CLIENT_GONE) return countClientGone(c.d)
    const address = yield* memberAddress(body.address)
    return changed(c.d, yield* submitChange(c.d, c, { _tag: "Add", address }))
  })
}

/** POST /members/remove {"address"}. */
export function postRemove(c: Call): Effect.Effect<Response, ApiError> {
  return Effect.gen(function* () {
    const body = yield* readJson(c, AddressBody, ADDRESS_EXAMPLE, { address: ADDRESS_HINT })
    if (body === CLIENT_GONE) return countClientGone(c.d)
    const m = yield* memberAt(c.d, yield* memberAddress(body.address))
    return changed(c.d, yield* submitChange(c.d, c, { _tag: "Remove", id: m.id }))
  })
}

/** POST /members/promote {"address","force"?}: a learner that caught up (or any, with force) becomes a voter. */
export function postPromote(c: Call): Effect.Effect<Response, ApiError> {
  const { d } = c
  return Effect.gen(function* () {
    const body = yield* readJson(c, PromoteBody, PROMOTE_EXAMPLE, { address: ADDRESS_HINT, force: "true or false" })
    if (body === CLIENT_GONE) return countClientGone(d)
    const m = yield* memberAt(d, yield* memberAddress(body.address))
    // A voter or a learner that has not joined: the log refuses it with its reason.
    if (body.force !== true && !m.voter && m.incarnation !== null) yield* caughtUp(d, m.address)
    return changed(d, yield* submitChange(d, c, { _tag: "Promote", id: m.id }))
  })
}

/** Fails with a 409 unless the node at `address` applied within PROMOTE_BEHIND_MAX slots of this node's commit point. */
function caughtUp(d: ApiDeps, address: string): Effect.Effect<void, Conflict> {
  const committed = Math.max(d.node.state.applied, d.node.state.knownDecided)
  const force = "promote it with --force to skip this check"
  return Effect.tryPromise(async () => {
    const a = parseAddress(address)
    if (typeof a === "string") throw new Error(a)
    const res = await fetch(`http://${dialName(a)}/status`, { signal: AbortSignal.timeout(PROMOTE_STATUS_MS) })
    const st = (await res.json()) as { applied?: unknown }
    if (typeof st.applied !== "number") throw new Error(`its /status answered ${res.status} without an applied slot`)
    return st.applied
  }).pipe(
    Effect.mapError((e) => new Conflict({ reason: "Behind", message: `cannot tell whether ${address} caught up: its /status did not answer (${e.message.slice(0, 200)}); ${force}` })),
    Effect.flatMap((applied) =>
      applied + PROMOTE_BEHIND_MAX < committed
        ? Effect.fail(
            new Conflict({
              reason: "Behind",
              message: `${address} is behind: it applied up to slot ${applied}, and the cluster committed up to slot ${committed} (more than ${PROMOTE_BEHIND_MAX} behind); wait for it to catch up (the leader promotes it then on its own), or ${force}`
            })
          )
        : Effect.void
    )
  )
}

/** What a joining node is told: its cluster, its member id, and the membership that binds it. */
const joined = (d: ApiDeps, id: number, membership: Membership): Response => okJson(JSON.stringify({ cluster: d.clusterId, id, membership }))

/** POST /members/join {"address","incarnation"} (see the top of this file). */
export function postJoin(c: Call): Effect.Effect<Response, ApiError> {
  const { d } = c
  return Effect.gen(function* () {
    const body = yield* readJson(c, JoinBody, JOIN_EXAMPLE, { address: ADDRESS_HINT, incarnation: "16 lowercase hex digits" })
    if (body === CLIENT_GONE) return countClientGone(d)
    const address = yield* memberAddress(body.address)
    const check = () => {
      const m = d.node.state.membership
      const member = memberByAddress(newest(m), address)
      if (member === undefined) {
        const members = newest(m).members.map((x) => x.address).join(", ")
        // Only a leader that applied what it committed knows no addition is missing here; any other
        // node may lag behind the addition (it restarted, or was cut off), so it says "not here".
        if (d.node.state.role._tag !== "Leader" || !readiness(d.node.state).ok) {
          return new Unavailable({ reason: "NotALearnerHere", message: `${address} is not a member as this node knows it (members: ${members}); it may lag behind: ask another member, or run paxos member add ${address} first` })
        }
        return new Conflict({ reason: "NotALearner", message: `${address} is not a member of the cluster (members: ${members}): run paxos member add ${address} first` })
      }
      if (member.incarnation === body.incarnation) return joined(d, member.id, m)
      if (member.incarnation !== null) {
        return new Conflict({
          reason: "BoundElsewhere",
          message: `${address} (member ${member.id}) is bound to another data directory already: remove it (paxos member remove ${address}), add it again (paxos member add ${address}) and start it with --join`
        })
      }
      return member.id
    }
    const first = check()
    if (first instanceof Response) return first
    if (typeof first !== "number") return yield* Effect.fail(first)
    const bound = yield* Effect.either(submitChange(d, c, { _tag: "Bind", id: first, incarnation: body.incarnation }))
    if (Either.isRight(bound)) return joined(d, first, bound.right.membership)
    // Refused: another request of the same join may have bound it a moment before (a retry is safe).
    if (bound.left._tag !== "Conflict") return yield* Effect.fail(bound.left)
    const again = check()
    if (again instanceof Response) return again
    return yield* Effect.fail(typeof again === "number" ? bound.left : again)
  })
}
