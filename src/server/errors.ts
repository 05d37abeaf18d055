/**
 * Errors of the HTTP API as tagged errors, each with the status the README documents. On the wire they are
 * `{"error":"<Tag>","message":"...","definite":true|false}`: `definite` says the request was
 * definitely not applied (every 4xx, and 503); 504 means the outcome is unknown.
 */
import { Data } from "effect"

/** 400: the request is malformed; `message` names the field and what is wrong. */
export class BadRequest extends Data.TaggedError("BadRequest")<{ readonly message: string }> {}
/**
 * 401: the request is not authenticated: a peer request without a valid MAC (`reason` is the
 * AuthFailure), or a client request without the client token (`bearer`: answer with
 * WWW-Authenticate).
 */
export class Unauthorized extends Data.TaggedError("Unauthorized")<{ readonly message: string; readonly reason: string; readonly bearer: boolean }> {}
/** 404: no such path. */
export class NotFound extends Data.TaggedError("NotFound")<{ readonly message: string }> {}
/** 405: a known path with another method. */
export class MethodNotAllowed extends Data.TaggedError("MethodNotAllowed")<{
  readonly message: string
  readonly allow: readonly string[]
}> {}
/** 413: the body is over the limit of its path. */
export class PayloadTooLarge extends Data.TaggedError("PayloadTooLarge")<{ readonly message: string }> {}
/** 408: the body did not arrive in time (a slow or stalled client); not applied. */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{ readonly message: string }> {}
/** 503: definitely not applied (no leader, overloaded, shutting down). `reason` is the core's. */
export class Unavailable extends Data.TaggedError("Unavailable")<{ readonly message: string; readonly reason: string }> {}
/**
 * 503 from GET /ready: the node cannot serve now. `reason` is readiness.ts's (NoLeader,
 * LeaderWithoutQuorum, Behind); `fields` are added to the body (leader, applied, leaderCommit).
 */
export class NotReady extends Data.TaggedError("NotReady")<{ readonly message: string; readonly reason: string; readonly fields: Readonly<Record<string, unknown>> }> {}
/**
 * 409: a change of membership the cluster refused, definitely (invalid, such as adding a member
 * twice or removing the last voter, or another change in flight); `message` says why.
 */
export class Conflict extends Data.TaggedError("Conflict")<{ readonly message: string; readonly reason: string }> {}
/** 504: proposed, but no decision was seen in time: it may or may not be applied. */
export class OutcomeUnknown extends Data.TaggedError("OutcomeUnknown")<{ readonly message: string; readonly reason: string }> {}

/** 500: a defect in the server; the outcome of the request is unknown. */
export class InternalError extends Data.TaggedError("InternalError")<{ readonly message: string }> {}

export type ApiError =
  | BadRequest
  | Unauthorized
  | NotFound
  | MethodNotAllowed
  | RequestTimeout
  | PayloadTooLarge
  | Unavailable
  | Conflict
  | NotReady
  | OutcomeUnknown
  | InternalError

export interface ErrorBody {
  readonly status: number
  readonly json: string
  readonly headers: Record<string, string>
}

const STATUS: Record<ApiError["_tag"], number> = {
  BadRequest: 400,
  Unauthorized: 401,
  NotFound: 404,
  MethodNotAllowed: 405,
  RequestTimeout: 408,
  PayloadTooLarge: 413,
  Conflict: 409,
  Unavailable: 503,
  NotReady: 503,
  OutcomeUnknown: 504,
  InternalError: 500
}

/** The status, JSON body and headers of an API error. */
export function errorBody(e: ApiError): ErrorBody {
  const status = STATUS[e._tag]
  const definite = e._tag !== "OutcomeUnknown" && e._tag !== "InternalError"
  const fields: Record<string, unknown> = { error: e._tag, message: e.message, definite }
  if (e._tag === "Unavailable" || e._tag === "OutcomeUnknown" || e._tag === "Unauthorized" || e._tag === "NotReady" || e._tag === "Conflict") fields.reason = e.reason
  if (e._tag === "NotReady") Object.assign(fields, e.fields)
  const headers: Record<string, string> = {}
  if (e._tag === "MethodNotAllowed") headers.allow = e.allow.join(", ")
  if (e._tag === "Unavailable" || e._tag === "NotReady") headers["retry-after"] = "1"
  if (e._tag === "Unauthorized" && e.bearer) headers["www-authenticate"] = 'Bearer realm="paxos"'
  if (e._tag === "RequestTimeout") headers.connection = "close"
  return { status, json: JSON.stringify(fields), headers }
}
