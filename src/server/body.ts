/**
 * Request bodies: read with a size limit (413 past it, checked on Content-Length first and then
 * while streaming), a time limit (408) and a budget of bytes being read at once (503), parsed as JSON, and decoded with the wire schemas (extra fields are errors).
 * Every failure is a BadRequest whose message names the field and what was wrong with it.
 */
import { Either, ParseResult, Schema as S } from "effect"
import { fastDecodeAppend } from "../core/fast-decode.ts"
import { AppendRequest, strict } from "../core/messages.ts"
import { BadRequest, PayloadTooLarge, RequestTimeout, Unavailable } from "./errors.ts"
import type { Watch } from "./watch.ts"

/** One client body (POST /append), at most. */
export const CLIENT_BODY_MAX_BYTES = 1024 * 1024
/** One peer body (POST /peer/envelope), at most. */
export const PEER_BODY_MAX_BYTES = 64 * 1024 * 1024
/** Bytes of client bodies being read at once, over all requests; past it, 503 at once. */
export const CLIENT_BODY_BUDGET_BYTES = 64 * 1024 * 1024
/** Bytes of peer bodies being read at once, over all requests; past it, 503 at once. */
export const PEER_BODY_BUDGET_BYTES = 256 * 1024 * 1024
/** A client body must have arrived this long after the headers (a slow client gets 408). */
export const CLIENT_BODY_TIMEOUT_MS = 10_000
/** A peer body must have arrived this long after the headers. */
export const PEER_BODY_TIMEOUT_MS = 30_000

/**
 * Bytes that bodies being read may hold at once. A body takes its declared Content-Length up
 * front (or its chunks as they come, when it declares none) and gives it all back when read.
 */
export class ByteBudget {
  used = 0
  constructor(readonly max: number) {}
  take(n: number): boolean {
    if (this.used + n > this.max) return false
    this.used += n
    return true
  }
  give(n: number): void {
    this.used = Math.max(0, this.used - n)
  }
}

export interface BodyLimits {
  readonly maxBytes: number
  readonly budget: ByteBudget
  readonly timeoutMs: number
}

const overBudget = (b: ByteBudget) =>
  new Unavailable({ message: `the node is reading ${b.max} bytes of request bodies already; not applied, try again later`, reason: "Overloaded" })

/** A body's outcome when its client went away before sending it all (nobody reads an answer). */
export const CLIENT_GONE: unique symbol = Symbol("client-gone")
export type BodyResult = { readonly text: string } | BadRequest | PayloadTooLarge | RequestTimeout | Unavailable | typeof CLIENT_GONE

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** A Content-Length header's value: a plain number, or null (absent, or not a number: read as a stream). */
function declaredLength(header: string | null): number | null {
  if (header === null || header.length > 15 || !/^\d+$/.test(header)) return null
  return Number(header)
}

/**
 * Reads the body as UTF-8 text: at most `maxBytes` (413), within `timeoutMs` of the headers (408),
 * while the bytes of all bodies being read stay within the budget (503). A body with a
 * Content-Length takes its length from the budget up front and is read whole (Bun reads exactly
 * that many bytes); any other body (chunked) is read as a stream and takes its bytes from the
 * budget as they come. Both ways end in the same answers.
 */
export async function readBody(request: Request, limits: BodyLimits, watch: Watch): Promise<BodyResult> {
  const { maxBytes, budget, timeoutMs } = limits
  const declared = declaredLength(request.headers.get("content-length"))
  if (declared !== null && declared > maxBytes) return tooLarge(maxBytes)
  // With a length, the body is never touched as a stream (making one costs the hot path).
  const stream = declared === null ? request.body : null
  if (declared === null && stream === null) return { text: "" }
  const upFront = declared ?? 0
  if (!budget.take(upFront)) return overBudget(budget)
  let taken = upFront
  const account = (total: number): boolean => {
    // Bytes past the declared length (all of a body without one) are taken as they come.
    const extra = total - taken
    if (extra <= 0) return true
    if (!budget.take(extra)) return false
    taken += extra
    return true
  }
  let id = 0
  try {
    const r = await new Promise<Uint8Array | "timeout" | "gone" | "too-large" | "over-budget">((resolve) => {
      if (declared !== null) {
        id = watch.after(timeoutMs, () => resolve("timeout"))
        request.bytes().then(resolve, () => resolve("gone"))
        return
      }
      const reader = (stream as ReadableStream<Uint8Array>).getReader()
      id = watch.after(timeoutMs, () => {
        void reader.cancel().catch(() => undefined)
        resolve("timeout")
      })
      readLimited(reader, maxBytes, account).then(resolve, () => resolve("gone"))
    })
    if (r === "timeout") return new RequestTimeout({ message: `the body did not arrive within ${timeoutMs} ms of the headers; not applied` })
    if (r === "gone") return CLIENT_GONE
    if (r === "too-large") return tooLarge(maxBytes)
    if (r === "over-budget") return overBudget(budget)
    try {
      return { text: utf8.decode(r) }
    } catch {
      return new BadRequest({ message: "body is not valid UTF-8" })
    }
  } finally {
    watch.cancel(id)
    budget.give(taken)
  }
}

const tooLarge = (maxBytes: number) => new PayloadTooLarge({ message: `body is over the limit of ${maxBytes} bytes` })

/**
 * The stream's bytes; "too-large" as soon as they pass `maxBytes`, "over-budget" when `account`
 * (told the total so far) refuses. Rejects when the stream fails (the client went away).
 */
async function readLimited(
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array | undefined }>; cancel(): Promise<void> },
  maxBytes: number,
  account: (total: number) => boolean
): Promise<Uint8Array | "too-large" | "over-budget"> {
  const stop = () => void reader.cancel().catch(() => undefined)
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done || value === undefined) break
    total += value.byteLength
    if (total > maxBytes) {
      stop()
      return "too-large"
    }
    if (!account(total)) {
      stop()
      return "over-budget"
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

/** JSON.parse with a BadRequest naming the problem. */
export function parseJson(text: string, example: string): Either.Either<unknown, BadRequest> {
  if (text.trim().length === 0) return Either.left(new BadRequest({ message: `body is empty; expected JSON like ${example}` }))
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    return Either.left(new BadRequest({ message: `body is not valid JSON (${why}); expected JSON like ${example}` }))
  }
}

/** What each client field must be, for error messages. */
const APPEND_FIELDS: Record<string, string> = {
  value: "a safe integer, |value| <= 2^53-1",
  client: "a string of 1 to 128 characters",
  seq: "a non-negative safe integer"
}

export const APPEND_EXAMPLE = '{"value": 5} or {"value": 5, "client": "c1", "seq": 9}'

const decodeAppendEither = S.decodeUnknownEither(AppendRequest, { ...strict, errors: "all" })

/**
 * Decodes an append body; `client` and `seq` must come together. A valid body passes the
 * hand-written check of fast-decode.ts (proven to agree with the Schema); the Schema runs only on
 * a body that check rejects, to say what is wrong.
 */
export function decodeAppend(json: unknown): Either.Either<AppendRequest, BadRequest> {
  const fast = fastDecodeAppend(json)
  if (fast !== undefined) return Either.right(fast)
  try {
    return decodeAppendUnsafe(json)
  } catch (e) {
    return Either.left(new BadRequest({ message: `body could not be decoded (${e instanceof Error ? e.name : "error"}); expected JSON like ${APPEND_EXAMPLE}` }))
  }
}

function decodeAppendUnsafe(json: unknown): Either.Either<AppendRequest, BadRequest> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(new BadRequest({ message: `body must be a JSON object like ${APPEND_EXAMPLE}, got ${kindOf(json)}` }))
  }
  const r = decodeAppendEither(json)
  if (Either.isLeft(r)) return Either.left(new BadRequest({ message: describeIssues(r.left, json, APPEND_FIELDS) }))
  if ((r.right.client === undefined) !== (r.right.seq === undefined)) {
    const missing = r.right.client === undefined ? "client" : "seq"
    return Either.left(new BadRequest({ message: `field "${missing}" is missing: "client" and "seq" must be given together (for exactly-once retries)` }))
  }
  return Either.right(r.right)
}

/**
 * One sentence per problem: `field "value" must be ... (got 1.5)`, `missing field ...`,
 * `unexpected field ...`. `hints` describes what known fields must be.
 */
export function describeIssues(err: ParseResult.ParseError, input: unknown, hints: Record<string, string> = {}): string {
  try {
    return describeIssuesUnsafe(err, input, hints)
  } catch {
    // A pathological input (nesting deep enough to exhaust the stack while formatting it).
    return "the body does not match the schema (and is too deeply nested to describe)"
  }
}

function describeIssuesUnsafe(err: ParseResult.ParseError, input: unknown, hints: Record<string, string>): string {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(err)
  const seen = new Set<string>()
  const parts: string[] = []
  for (const issue of issues) {
    const path = formatPath(issue.path)
    if (seen.has(path)) continue
    seen.add(path)
    const field = path.length === 0 ? "body" : `field "${path}"`
    const hint = hints[path]
    if (issue._tag === "Missing") parts.push(`missing field "${path}"${hint === undefined ? "" : `: it must be ${hint}`}`)
    else if (issue._tag === "Unexpected") {
      const allowed = Object.keys(hints)
      parts.push(`unexpected field "${path}"${allowed.length > 0 ? ` (allowed fields: ${allowed.join(", ")})` : ""}`)
    } else if (hint !== undefined) parts.push(`${field} must be ${hint}, got ${shown(valueAt(input, issue.path))}`)
    else parts.push(`${field}: ${issue.message}`)
    if (parts.length >= 5) break
  }
  return parts.join("; ")
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ""
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out.length === 0 ? String(p) : `.${String(p)}`
  return out
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = input
  for (const p of path) {
    if (typeof v !== "object" || v === null) return undefined
    v = (v as Record<PropertyKey, unknown>)[p]
  }
  return v
}

function shown(v: unknown): string {
  if (v === null) return "null"
  if (v === undefined) return "nothing"
  if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) return `${v} (not a safe integer)`
  if (typeof v === "number" && !Number.isInteger(v)) return `${v} (not an integer)`
  let s: string
  try {
    s = JSON.stringify(v) ?? String(v)
  } catch {
    s = "(too deeply nested to show)"
  }
  return `${kindOf(v)} ${s.length > 40 ? s.slice(0, 37) + "..." : s}`.trim()
}

function kindOf(v: unknown): string {
  if (v === null) return "null"
  if (Array.isArray(v)) return "an array"
  if (typeof v === "number") return ""
  return typeof v === "object" ? "an object" : `a ${typeof v}`
}
