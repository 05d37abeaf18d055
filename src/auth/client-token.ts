/**
 * The optional bearer token of the client API (`--client-token-file F` or PAXOS_CLIENT_TOKEN_FILE):
 * when a node has one, POST /append and GET /list need `Authorization: Bearer <token>`.
 * The comparison takes the same time whatever the token's content (no early exit), so the
 * time of a refusal says nothing about how much of a guess was right.
 */

/** Shortest token accepted (bytes, after trimming whitespace). */
export const TOKEN_MIN_BYTES = 16
/** Longest token accepted (it travels in a header, which Bun caps at 16 KiB in all). */
export const TOKEN_MAX_BYTES = 1024

const encoder = new TextEncoder()

/** The token in a file's text (trimmed); throws with a one-line reason when it is unusable. */
export function parseToken(text: string): string {
  const token = text.trim()
  const bytes = encoder.encode(token).length
  if (bytes < TOKEN_MIN_BYTES) throw new Error(`the client token must be at least ${TOKEN_MIN_BYTES} bytes (it has ${bytes})`)
  if (bytes > TOKEN_MAX_BYTES) throw new Error(`the client token must be at most ${TOKEN_MAX_BYTES} bytes (it has ${bytes})`)
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error("the client token must be printable ASCII without spaces (e.g. base64 or hex)")
  return token
}

/** Whether `a` equals `b`, in time that depends only on the length of `a` (the untrusted side). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a)
  const y = encoder.encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < x.length; i++) diff |= (x[i] as number) ^ (y.length === 0 ? 0 : (y[i % y.length] as number))
  return diff === 0
}

export type TokenCheck = "ok" | "Missing" | "BadToken"

/** Checks an Authorization header against the token. */
export function checkBearer(header: string | null, token: string): TokenCheck {
  if (header === null) return "Missing"
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  if (m === null) return "Missing"
  return constantTimeEqual(m[1] as string, token) ? "ok" : "BadToken"
}
