/**
 * Errors of the HTTP API as tagged errors, each with its SPEC status. On the wire they are
 * `{"error":"<Tag>","message":"...","definite":true|false}`: `definite` says the request was
 * definitely not applied (every 4xx, and 503); 504 means the outcome is unknown.
 */
import { Data } from "effect"

/** 400: the request is malformed; `message` names the field and what is wrong. */
export class BadRequest extends Data.TaggedError("BadRequest")<{ readonly message: string }> {}
/** 404: no such path. */
export class NotFound extends Data.TaggedError("NotFound")<{ readonly message: string }> {}
/** 405: a known path with another method. */
export class MethodNotAllowed extends Data.TaggedError("MethodNotAllowed")<{
  readonly message: string
  readonly allow: readonly string[]
}> {}
/** 413: the body is over the limit of its path. */
export class PayloadTooLarge extends Data.TaggedError("PayloadTooLarge")<{ readonly message: string }> {}
/** 503: definitely not applied (no leader, overloaded, shutting down). `reason` is the core's. */
export class Unavailable extends Data.TaggedError("Unavailable")<{ readonly message: string; readonly reason: string }> {}
/** 504: proposed, but no decision was seen in time: it may or may not be applied. */
export class OutcomeUnknown extends Data.TaggedError("OutcomeUnknown")<{ readonly message: string; readonly reason: string }> {}

/** 500: a defect in the server; the outcome of the request is unknown. */
export class InternalError extends Data.TaggedError("InternalError")<{ readonly message: string }> {}

export type ApiError = BadRequest | NotFound | MethodNotAllowed | PayloadTooLarge | Unavailable | OutcomeUnknown | InternalError

export interface ErrorBody {
  readonly status: number
  readonly json: string
  readonly headers: Record<string, string>
}

const STATUS: Record<ApiError["_tag"], number> = {
  BadRequest: 400,
  NotFound: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  Unavailable: 503,
  OutcomeUnknown: 504,
  InternalError: 500
}

/** The status, JSON body and headers of an API error. */
export function errorBody(e: ApiError): ErrorBody {
  const status = STATUS[e._tag]
  const definite = e._tag !== "OutcomeUnknown" && e._tag !== "InternalError"
  const fields: Record<string, unknown> = { error: e._tag, message: e.message, definite }
  if (e._tag === "Unavailable" || e._tag === "OutcomeUnknown") fields.reason = e.reason
  const headers: Record<string, string> = {}
  if (e._tag === "MethodNotAllowed") headers.allow = e.allow.join(", ")
  if (e._tag === "Unavailable") headers["retry-after"] = "1"
  return { status, json: JSON.stringify(fields), headers }
}
