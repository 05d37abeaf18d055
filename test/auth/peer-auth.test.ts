/** Peer authentication: forged, altered, misdirected, stale and replayed envelopes are refused. */
import assert from "node:assert/strict"
import { importSecret, Signer, Verifier, REPLAY_WINDOW } from "../../src/auth/peer-auth.ts"
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

test("a restarted sender (new boot id) is accepted, and its previous boot is then refused", async () => {
  const key = await importSecret(secret)
  const verifier = new Verifier(key, "c1", 1)
  const first = new Signer(key, "c1", 0, "boota")
  const early = await first.sign(1, body, NOW)
  assert.equal(await verifier.verify(0, await first.sign(1, body, NOW), body, NOW), null)
  const second = new Signer(key, "c1", 0, "bootb")
  assert.equal(await verifier.verify(0, await second.sign(1, body, NOW + 5), body, NOW + 5), null)
  assert.equal(await verifier.verify(0, early, body, NOW + 5), "Replayed")
})

test("headers are parsed strictly; a short secret is refused", async () => {
  const h = (m: Record<string, string>) => (k: string) => m[k] ?? null
  assert.equal(Verifier.parse(h({})), "Missing")
  assert.equal(Verifier.parse(h({ "x-paxos-mac": "ab", "x-paxos-boot": "B!", "x-paxos-counter": "1", "x-paxos-time": "1" })), "Malformed")
  assert.equal(Verifier.parse(h({ "x-paxos-mac": "ab", "x-paxos-boot": "b", "x-paxos-counter": "0", "x-paxos-time": "1" })), "Malformed")
  await assert.rejects(importSecret("short"), /at least 16 bytes/)
})
