/** Peer authentication: forged, altered, misdirected, stale and replayed envelopes are refused. */
import assert from "node:assert/strict"
import {
  AUTH_HEADERS,
  BOOTS_MAX,
  DEFAULT_SKEW_MS,
  decodeFrame,
  encodeFrame,
  importSecret,
  newBootId,
  REPLAY_WINDOW,
  Signer,
  UPGRADE_BODY,
  Verifier
} from "../../src/auth/peer-auth.ts"
import { test } from "../portable.ts"

const enc = new TextEncoder()
const secret = "correct horse battery staple 42"
const body = enc.encode('{"messages":[]}')
const NOW = 1_800_000_000_000

async function pair(cluster = "c1") {
  const key = await importSecret(secret)
  return { signer: new Signer(key, cluster, 0, "boota"), verifier: new Verifier(key, cluster, 1) }
}

test("an envelope signed with the cluster secret is accepted once", async () => {
  const { signer, verifier } = await pair()
  const s = await signer.sign(1, body, NOW)
  assert.equal(await verifier.verify(0, s, body, NOW), null)
  assert.equal(await verifier.verify(0, s, body, NOW), "Replayed")
})

test("another secret, an altered body, another receiver or sender, another cluster: BadMac", async () => {
  const { signer, verifier } = await pair()
  const s = await signer.sign(1, body, NOW)
  const other = new Signer(await importSecret("another secret of enough length"), "c1", 0, "boota")
  assert.equal(await verifier.verify(0, await other.sign(1, body, NOW), body, NOW), "BadMac")
  assert.equal(await verifier.verify(0, s, enc.encode('{"messages":[1]}'), NOW), "BadMac")
  assert.equal(await verifier.verify(2, s, body, NOW), "BadMac", "a sender cannot claim another's index")
  const wrongTo = await signer.sign(2, body, NOW)
  assert.equal(await verifier.verify(0, wrongTo, body, NOW), "BadMac", "an envelope for node 2 is not valid at node 1")
  const { verifier: otherCluster } = await pair("c2")
  assert.equal(await otherCluster.verify(0, await signer.sign(1, body, NOW), body, NOW), "BadMac")
})

test("stale timestamps and counters outside the window are refused; out-of-order ones inside are fine", async () => {
  const { signer, verifier } = await pair()
  assert.equal(await verifier.verify(0, await signer.sign(1, body, NOW - 60_000), body, NOW), "Stale")
  const a = await signer.sign(1, body, NOW)
  const b = await signer.sign(1, body, NOW)
  assert.equal(await verifier.verify(0, b, body, NOW), null)
  assert.equal(await verifier.verify(0, a, body, NOW), null, "reordered but new")
  const old = await signer.sign(1, body, NOW)
  for (let i = 0; i < REPLAY_WINDOW + 2; i++) await verifier.verify(0, await signer.sign(1, body, NOW), body, NOW)
  assert.equal(await verifier.verify(0, old, body, NOW), "Replayed", "older than the window")
})

test("a restarted sender (new boot id) is accepted; each boot's envelopes are accepted once", async () => {
  const key = await importSecret(secret)
  const verifier = new Verifier(key, "c1", 1)
  const first = new Signer(key, "c1", 0, "boota")
  const early = await first.sign(1, body, NOW)
  const seen = await first.sign(1, body, NOW)
  assert.equal(await verifier.verify(0, seen, body, NOW), null)
  const second = new Signer(key, "c1", 0, "bootb")
  assert.equal(await verifier.verify(0, await second.sign(1, body, NOW + 5), body, NOW + 5), null)
  // A delayed envelope of the previous boot is a genuine message (Paxos tolerates delays): accepted once.
  assert.equal(await verifier.verify(0, early, body, NOW + 5), null)
  assert.equal(await verifier.verify(0, early, body, NOW + 6), "Replayed")
  assert.equal(await verifier.verify(0, seen, body, NOW + 6), "Replayed")
})

test("a boot is forgotten only once all its envelopes are stale; at most BOOTS_MAX fresh boots per sender", async () => {
  const key = await importSecret(secret)
  const verifier = new Verifier(key, "c1", 1)
  const old = new Signer(key, "c1", 0, "old")
  const recorded = await old.sign(1, body, NOW)
  assert.equal(await verifier.verify(0, recorded, body, NOW), null)
  const t1 = NOW + DEFAULT_SKEW_MS
  assert.equal(await verifier.verify(0, await new Signer(key, "c1", 0, "new").sign(1, body, t1), body, t1), null)
  assert.equal(await verifier.verify(0, recorded, body, t1), "Replayed", "still remembered while it is fresh")
  // Many boots later, one a window apart (a pruning pass runs when a new boot arrives): the old
  // boot is forgotten, and its recorded envelope is stale, not new.
  for (let i = 0; i < BOOTS_MAX + 3; i++) {
    const t = NOW + (i + 1) * (DEFAULT_SKEW_MS + 1)
    assert.equal(await verifier.verify(0, await new Signer(key, "c1", 0, `b${i}`).sign(1, body, t), body, t), null, `boot ${i}`)
  }
  assert.equal(await verifier.verify(0, recorded, body, NOW + DEFAULT_SKEW_MS + 1), "Stale")
  // BOOTS_MAX boots within one window: the next one is refused until older ones go stale.
  const v2 = new Verifier(key, "c1", 1)
  for (let i = 0; i < BOOTS_MAX; i++) assert.equal(await v2.verify(0, await new Signer(key, "c1", 0, `x${i}`).sign(1, body, NOW), body, NOW), null)
  assert.equal(await v2.verify(0, await new Signer(key, "c1", 0, "one-too-many").sign(1, body, NOW), body, NOW), "Replayed")
  const later = NOW + DEFAULT_SKEW_MS + 1
  assert.equal(await v2.verify(0, await new Signer(key, "c1", 0, "later").sign(1, body, later), body, later), null)
})

test("text and its UTF-8 bytes are the same body; headers and frames carry a signature", async () => {
  const key = await importSecret(secret)
  const signer = new Signer(key, "c1", 0, newBootId())
  const verifier = new Verifier(key, "c1", 1)
  const text = '{"messages":["ünïcødé ✓"]}'
  assert.equal(await verifier.verify(0, await signer.sign(1, text, NOW), enc.encode(text), NOW), null)
  assert.equal(await verifier.verify(0, await signer.sign(1, enc.encode(text), NOW), text, NOW), null)

  const h = await signer.headers(1, UPGRADE_BODY, NOW)
  assert.equal(h[AUTH_HEADERS.from], "0")
  const parsed = Verifier.parse((k) => h[k] ?? null)
  if (typeof parsed === "string") throw new Error(parsed)
  assert.equal(await verifier.verify(0, parsed, UPGRADE_BODY, NOW), null)
  assert.equal(await verifier.verify(0, parsed, UPGRADE_BODY, NOW), "Replayed", "an upgrade cannot be replayed")

  const frame = await signer.frame(1, text, NOW)
  assert.match(frame, /^v1 [0-9a-f]{16} \d+ \d+ [0-9a-f]{64}\n/)
  const f = decodeFrame(frame)
  if (typeof f === "string") throw new Error(f)
  assert.equal(f.body, text)
  assert.equal(await verifier.verify(0, f.signed, f.body, NOW), null)
  // The frame's MAC covers the envelope: another body under the same header fails.
  const forged = decodeFrame(encodeFrame(f.signed, '{"messages":[]}'))
  if (typeof forged === "string") throw new Error(forged)
  assert.equal(await verifier.verify(0, forged.signed, forged.body, NOW), "BadMac")
})

test("frames without a header are Missing; broken headers are Malformed", () => {
  assert.equal(decodeFrame('{"cluster":"c1","from":0,"to":1,"messages":[]}'), "Missing")
  assert.equal(decodeFrame(" [1]"), "Missing")
  assert.equal(decodeFrame(""), "Malformed")
  assert.equal(decodeFrame("v1 abc 1 2"), "Malformed")
  assert.equal(decodeFrame("v1 abc 1 2\n{}"), "Malformed")
  assert.equal(decodeFrame(`v1 abc 0 2 ${"a".repeat(64)}\n{}`), "Malformed", "counter 0")
  assert.equal(decodeFrame(`v1 ABC 1 2 ${"a".repeat(64)}\n{}`), "Malformed", "boot is lower-case")
  assert.equal(decodeFrame(`v1 abc 1 2 ${"g".repeat(64)}\n{}`), "Malformed", "mac is hex")
  assert.equal(decodeFrame(`v2 abc 1 2 ${"a".repeat(64)}\n{}`), "Malformed")
  assert.equal(decodeFrame(`v1 abc 1 2 ${"a".repeat(200)}\n{}`), "Malformed")
  const ok = decodeFrame(`v1 abc 1 2 ${"A".repeat(64)}\n{}`)
  assert.ok(typeof ok !== "string" && ok.signed.mac === "a".repeat(64) && ok.body === "{}")
})

test("headers are parsed strictly; a short secret is refused", async () => {
  const h = (m: Record<string, string>) => (k: string) => m[k] ?? null
  assert.equal(Verifier.parse(h({})), "Missing")
  assert.equal(Verifier.parse(h({ "x-paxos-mac": "ab", "x-paxos-boot": "B!", "x-paxos-counter": "1", "x-paxos-time": "1" })), "Malformed")
  assert.equal(Verifier.parse(h({ "x-paxos-mac": "ab", "x-paxos-boot": "b", "x-paxos-counter": "0", "x-paxos-time": "1" })), "Malformed")
  assert.throws(() => importSecret("short"), /at least 16 bytes/)
})

test("the MAC is HMAC-SHA256 over the documented material (docs/SECURITY.md), as WebCrypto computes it", async () => {
  // The wire format must not depend on which HMAC implementation signs: a node of an older build
  // (which signed with crypto.subtle) and one of this build verify each other's envelopes.
  const { signer, verifier } = await pair()
  const text = '{"messages":[{"_tag":"Heartbeat"}]} é'
  const s = signer.sign(1, text, NOW)
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
  const material = enc.encode(`paxos-peer-v1\nc1\n0\n1\n${s.boot}\n${s.counter}\n${s.time}\n${text}`)
  const expected = Array.from(new Uint8Array(await crypto.subtle.sign("HMAC", key, material)), (b) => b.toString(16).padStart(2, "0")).join("")
  assert.equal(s.mac, expected)
  // The receiving side accepts WebCrypto's MAC, in upper case too; one flipped digit is BadMac.
  const c = s.counter + 1
  const m2 = enc.encode(`paxos-peer-v1\nc1\n0\n1\n${s.boot}\n${c}\n${s.time}\n${text}`)
  const upper = Array.from(new Uint8Array(await crypto.subtle.sign("HMAC", key, m2)), (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase()
  const parsed = Verifier.parse((k) => ({ [AUTH_HEADERS.mac]: upper, [AUTH_HEADERS.boot]: s.boot, [AUTH_HEADERS.counter]: String(c), [AUTH_HEADERS.time]: String(s.time) })[k] ?? null)
  assert.ok(typeof parsed !== "string")
  const flipped = { ...parsed, mac: (parsed.mac[0] === "0" ? "1" : "0") + parsed.mac.slice(1) }
  assert.equal(verifier.verify(0, flipped, text, NOW), "BadMac")
  assert.equal(verifier.verify(0, parsed, text, NOW), null)
  assert.equal(verifier.verify(0, s, text, NOW), null)
})
