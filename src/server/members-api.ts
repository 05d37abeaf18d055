/**
 * The membership endpoints of the client API (docs/MEMBERSHIP.md, "Interface"), cold paths:
 *   - POST /members/join {"address","incarnation"}: what a node started with --join asks. The
 *     member at `address` (a learner that `paxos member add` made) gets bound to the joining data
 *     dir's incarnation, by a Bind through the log; the answer, once applied here, says the
 *     cluster id, the member id and the membership. A retry is safe: a member bound to the same
 *     incarnation answers at once, as joined.
 *
 * A change goes through the log like an append, and is answered once applied at this node: 200,
 * 409 when the log refused it (`Conflict`, definite), 503 when it was not proposed, 504 when its
 * outcome is unknown. Bodies are JSON, decoded strictly (extra fields are 400).
 */
import { Effect, Either, Schema as S } from "effect"
import { memberByAddress, type Change, type Config, type Membership } from "../core/membership.ts"
import { Incarnation } from "../core/messages.ts"
import { strict } from "../core/messages.ts"
import type { Reply } from "../core/state.ts"
import { CLIENT_GONE, describeIssues, parseJson, readBody } from "./body.ts"
import { clientTimeout } from "./client-api.ts"
import { parseAddress } from "./cluster-config.ts"
import { BadRequest, Conflict, type ApiError } from "./errors.ts"
import { countClientGone, okJson, type ApiDeps, type Call } from "./http.ts"

type Reconfigured = Extract<Reply, { _tag: "Reconfigured" }>

/** An address as a member has it, `host:port`. */
const AddressField = S.String.pipe(S.minLength(1), S.maxLength(300))
const JoinBody = S.Struct({ address: AddressField, incarnation: Incarnation })

const ADDRESS_HINT = "a node's address, host:port"
const JOIN_EXAMPLE = '{"address": "10.0.0.4:5000", "incarnation": "<16 hex digits>"}'

/** The newest configuration a membership holds: the pending one, else the one in force. */
export const newest = (m: Membership): Config => m.next?.config ?? m.current

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
