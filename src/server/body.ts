/**
 * Request bodies: read with a size limit (413 past it, checked on Content-Length first and then
 * while streaming), parsed as JSON, and decoded with the wire schemas (extra fields are errors).
 * Every failure is a BadRequest whose message names the field and what was wrong with it.
 */
import { Effect, Either, ParseResult, Schema as S } from "effect"
import { AppendRequest, strict } from "../core/messages.ts"
import { BadRequest, PayloadTooLarge } from "./errors.ts"

export const CLIENT_BODY_MAX_BYTES = 1024 * 1024
export const PEER_BODY_MAX_BYTES = 64 * 1024 * 1024

/** Reads the body as UTF-8 text, at most `maxBytes` bytes. */
export const readBody = (request: Request, maxBytes: number): Effect.Effect<string, BadRequest | PayloadTooLarge> =>
  Effect.gen(function* () {
    const declared = request.headers.get("content-length")
    if (declared !== null && Number(declared) > maxBytes) {
      return yield* new PayloadTooLarge({ message: `body of ${declared} bytes is over the limit of ${maxBytes} bytes` })
    }
    if (request.body === null) return ""
    const bytes = yield* Effect.tryPromise({
      try: () => readLimited(request.body as ReadableStream<Uint8Array>, maxBytes),
      catch: (e) => new BadRequest({ message: `could not read the body: ${e instanceof Error ? e.message : String(e)}` })
    })
    if (bytes === null) return yield* new PayloadTooLarge({ message: `body is over the limit of ${maxBytes} bytes` })
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes)
    } catch {
      return yield* new BadRequest({ message: "body is not valid UTF-8" })
    }
  })

/** The stream's bytes, or null as soon as they pass `maxBytes`. */
async function readLimited(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array | null> {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      return null
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

/** Decodes an append body; `client` and `seq` must come together. */
export function decodeAppend(json: unknown): Either.Either<AppendRequest, BadRequest> {
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
  const s = JSON.stringify(v) ?? String(v)
  return `${kindOf(v)} ${s.length > 40 ? s.slice(0, 37) + "..." : s}`.trim()
}

function kindOf(v: unknown): string {
  if (v === null) return "null"
  if (Array.isArray(v)) return "an array"
  if (typeof v === "number") return ""
  return typeof v === "object" ? "an object" : `a ${typeof v}`
}
