/** The client API's bearer token: parsed strictly from its file, compared without early exit. */
import assert from "node:assert/strict"
import { checkBearer, constantTimeEqual, parseToken, TOKEN_MIN_BYTES } from "../../src/auth/client-token.ts"
import { test } from "../portable.ts"

const token = "s3cr3t-t0ken-0123456789"

test("a token file's text is trimmed; short, long and non-printable tokens are refused", () => {
  assert.equal(parseToken(`  ${token}\n`), token)
  assert.throws(() => parseToken("short"), new RegExp(`at least ${TOKEN_MIN_BYTES} bytes`))
  assert.throws(() => parseToken("x".repeat(2000)), /at most/)
  assert.throws(() => parseToken("has a space in the middle!"), /printable ASCII/)
})

test("constant-time equality: equal only for the same string", () => {
  assert.equal(constantTimeEqual(token, token), true)
  assert.equal(constantTimeEqual("", token), false)
  assert.equal(constantTimeEqual(token, ""), false)
  assert.equal(constantTimeEqual(token.slice(0, -1), token), false)
  assert.equal(constantTimeEqual(token + "x", token), false)
  assert.equal(constantTimeEqual(token.replace("s", "S"), token), false)
  // A guess that repeats the token (the comparison wraps around the shorter side) is not equal.
  assert.equal(constantTimeEqual(token + token, token), false)
})

test("Authorization: Bearer <token>", () => {
  assert.equal(checkBearer(`Bearer ${token}`, token), "ok")
  assert.equal(checkBearer(`bearer ${token}`, token), "ok")
  assert.equal(checkBearer(null, token), "Missing")
  assert.equal(checkBearer(`Basic ${token}`, token), "Missing")
  assert.equal(checkBearer("Bearer", token), "Missing")
  assert.equal(checkBearer("Bearer nope-nope-nope-nope", token), "BadToken")
  assert.equal(checkBearer(`Bearer ${token} extra`, token), "Missing")
})
