/**
 * The membership endpoints on a real cluster (docs/MEMBERSHIP.md, "Interface"): GET /members;
 * POST /members/add, /remove, /promote answered once applied, 409 when the log refuses (a member
 * added twice, a learner that has not joined, the last voter), 400 for bad bodies, 401 without the
 * client token; promote's check that a learner caught up (against a stand-in that reports its
 * applied slot); a node added and started with --join, caught up and promoted by the leader; once
 * removed, its /append answers Removed; the epoch in /status and /metrics.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { append, readList, status } from "../../src/client/http.ts"
import { freePorts, type LocalCluster } from "../../src/cli/local-cluster.ts"
import type { MembersView, MemberView } from "../../src/server/members-api.ts"
import { cleanup, ensureBinary, startCluster, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

const TOKEN = "members-api-test-token-0123456789"
let cluster: LocalCluster
let node: string
let tokenFile: string

beforeAll(async () => {
  const dir = tempDir()
  tokenFile = join(dir, "token")
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
  ;({ cluster } = await startCluster(3, ["--client-token-file", tokenFile, "--snapshot-every", "50"]))
  node = cluster.names[0] as string
}, 30_000)


const auth = { authorization: `Bearer ${TOKEN}` }

async function call(path: string, body?: unknown, at = node): Promise<{ status: number; json: MembersView & { error?: string; message?: string; reason?: string } }> {
  const res = await fetch(`http://${at}${path}`, body === undefined ? { headers: auth } : { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) })
  return { status: res.status, json: (await res.json()) as MembersView }
}

/** The newest configuration a view shows: the pending one, else the one in force. */
const newest = (v: MembersView): readonly MemberView[] => v.pending?.members ?? v.members

test("GET /members: the members in force, who leads, no change pending; the client token is needed", async () => {
  const r = await call("/members")
  expect(r.status).toBe(200)
  expect(r.json.epoch).toBe(0)
  expect(r.json.pending).toBeNull()
  expect(r.json.members.map((m) => [m.id, m.address, m.voter, m.joined])).toEqual(cluster.names.map((n, i) => [i, n, true, true]))
  expect(r.json.members.filter((m) => m.leader).map((m) => m.address)).toEqual([r.json.leader as string])
  expect((await fetch(`http://${node}/members`)).status).toBe(401)
})

test("bad bodies get 400 naming the problem, and change nothing", async () => {
  const cases: Array<[string, unknown, string]> = [
    ["/members/add", "{", "not valid JSON"],
    ["/members/add", {}, 'missing field "address"'],
    ["/members/add", { address: "a b:1" }, "no valid host"],
    ["/members/add", { address: "h:99999" }, "port outside"],
    ["/members/add", { address: "h:1", extra: 1 }, 'unexpected field "extra"'],
    ["/members/promote", { address: "h:1", force: "yes" }, 'field "force" must be true or false'],
    ["/members/join", { address: "h:1", incarnation: "nothex" }, "incarnation"]
  ]
  for (const [path, body, why] of cases) {
    const r = await call(path, body)
    expect({ path, body, status: r.status }).toEqual({ path, body, status: 400 })
    expect(r.json.message).toContain(why)
  }
  expect((await call("/members")).json.epoch).toBe(0)
})

test("add, refusals, promote's catch-up check, remove: each answered once applied, or 409 with the reason", async () => {
  const [port] = await freePorts(1)
  const learner = `127.0.0.1:${port}`
  const added = await call("/members/add", { address: learner })
  expect(added.status).toBe(200)
  expect(typeof added.json.slot).toBe("number")
  expect(newest(added.json).find((m) => m.address === learner)).toEqual({ id: 3, address: learner, voter: false, leader: false, joined: false })
  // Added twice: refused by the log, definitely.
  const twice = await call("/members/add", { address: learner })
  expect([twice.status, twice.json.error, twice.json.reason]).toEqual([409, "Conflict", "Refused"])
  expect(twice.json.message).toContain(`${learner} is a member already`)
  // Not joined yet: it cannot be promoted.
  const early = await call("/members/promote", { address: learner })
  expect(early.status).toBe(409)
  expect(early.json.message).toContain("has not joined yet")
  // Bound by a join with no process behind it; a stand-in answers its /status, far behind.
  const joined = await call("/members/join", { address: learner, incarnation: "00000000000000ab" })
  expect(joined.status).toBe(200)
  // The join is safe to retry; another data dir for the same learner is refused.
  expect((await call("/members/join", { address: learner, incarnation: "00000000000000ab" })).status).toBe(200)
  const other = await call("/members/join", { address: learner, incarnation: "00000000000000cd" })
  expect([other.status, other.json.reason]).toEqual([409, "BoundElsewhere"])
  for (let v = 0; v < 100; v++) expect((await append(cluster.names[v % 3] as string, { value: v }, { timeoutMs: 5_000, token: TOKEN })).type).toBe("ok")
  const standIn = Bun.serve({ port, hostname: "127.0.0.1", fetch: () => Response.json({ applied: 0 }) })
  try {
    const behind = await call("/members/promote", { address: learner })
    expect([behind.status, behind.json.reason]).toEqual([409, "Behind"])
    expect(behind.json.message).toMatch(new RegExp(`${learner} is behind: it applied up to slot 0, and the cluster committed up to slot \\d+ \\(more than 64 behind\\)`))
    expect(behind.json.message).toContain("--force")
  } finally {
    void standIn.stop(true)
  }
  // Without the stand-in nothing answers its /status: promote cannot tell, and says so.
  const unknown = await call("/members/promote", { address: learner })
  expect([unknown.status, unknown.json.reason]).toEqual([409, "Behind"])
  expect(unknown.json.message).toContain(`cannot tell whether ${learner} caught up`)
  // Forced: a voter that never answers; three of four voters still make a quorum.
  const forced = await call("/members/promote", { address: learner, force: true })
  expect(forced.status).toBe(200)
  expect(newest(forced.json).find((m) => m.address === learner)?.voter).toBe(true)
  expect((await append(node, { value: 1000 }, { timeoutMs: 5_000, token: TOKEN })).type).toBe("ok")
  // Removing what is no member, and the removal itself.
  const nobody = await call("/members/remove", { address: "127.0.0.1:1" })
  expect([nobody.status, nobody.json.reason]).toEqual([409, "NotAMember"])
  const removed = await call("/members/remove", { address: learner })
  expect(removed.status).toBe(200)
  expect(newest(removed.json).map((m) => m.address)).toEqual(cluster.names)
  await waitFor("the removal to come into force", async () => (await call("/members")).json.pending === null)
  const after = await call("/members")
  expect(after.json.epoch).toBe(3)
  const st = (await status(node, 2_000)) as unknown as { membership: { epoch: number; voters: string[]; learners: string[]; member: boolean; pending: unknown } }
  expect(st.membership).toEqual({ epoch: 3, voters: cluster.names, learners: [], member: true, pending: null })
  const metrics = await (await fetch(`http://${node}/metrics`)).text()
  expect(metrics).toMatch(/paxos_membership_epoch\{node="[^"]+"\} 3/)
  expect(metrics).toMatch(/paxos_members\{node="[^"]+",role="voter"\} 3/)
  expect(metrics).toMatch(/paxos_members\{node="[^"]+",role="learner"\} 0/)
}, 60_000)

test("a node added and started with --join catches up, is promoted by the leader, and once removed answers Removed", async () => {
  const [port] = await freePorts(1)
  const address = `127.0.0.1:${port}`
  expect((await call("/members/add", { address })).status).toBe(200)
  const dir = join(tempDir(), "joiner")
  const proc = Bun.spawn([ensureBinary(), "server", "--config", cluster.configFile, "--node", address, "--data-dir", dir, "--join", "--client-token-file", tokenFile], {
    stdout: "ignore",
    stderr: Bun.file(join(tempDir(), "joiner.log"))
  })
  try {
    await waitFor("the joiner to be promoted", async () => (await call("/members")).json.members.find((m) => m.address === address)?.voter === true, 30_000)
    const st = await status(address, 2_000)
    const leaderSt = await status(node, 2_000)
    expect(st?.listLength).toBeGreaterThanOrEqual(101)
    expect(st?.counters.snapshotsInstalled).toBeGreaterThanOrEqual(1)
    expect((st as unknown as { id: number }).id).toBe(4)
    expect(st?.cluster).toBe(leaderSt?.cluster)
    // It serves like any member.
    expect((await append(address, { value: 2000 }, { timeoutMs: 5_000, token: TOKEN })).type).toBe("ok")
    expect((await call("/members/remove", { address })).status).toBe(200)
    await waitFor("the removed node to answer Removed", async () => {
      const r = await append(address, { value: 3000 }, { timeoutMs: 2_000, token: TOKEN })
      return r.type === "fail" && r.error === "Unavailable" && r.message.includes("this node was removed from the cluster")
    }, 15_000)
  } finally {
    proc.kill("SIGKILL")
    await proc.exited
  }
}, 90_000)

test("a member removed while it was cut off learns it when it comes back, from the members it asks", async () => {
  const leader = (await call("/members")).json.leader as string
  const i = cluster.names.findIndex((n) => n !== leader)
  const victim = cluster.names[i] as string
  const proc = cluster.nodes[i]?.proc
  if (proc == null) throw new Error("no process")
  // Paused long enough that the others give its connections up: the leader's last heartbeat cannot reach it.
  proc.kill("SIGSTOP")
  try {
    await Bun.sleep(2_500)
    const removed = await call("/members/remove", { address: victim }, leader)
    expect(removed.status).toBe(200)
    await waitFor("the removal to come into force", async () => (await call("/members", undefined, leader)).json.pending === null)
    expect((await append(leader, { value: 4000 }, { timeoutMs: 5_000, token: TOKEN })).type).toBe("ok")
  } finally {
    proc.kill("SIGCONT")
  }
  // It campaigns, as a member it thinks it is; the members answer with the slots that removed it.
  await waitFor("the removed node to answer Removed", async () => {
    const r = await append(victim, { value: 4001 }, { timeoutMs: 2_000, token: TOKEN })
    return r.type === "fail" && r.message.includes("this node was removed from the cluster")
  }, 20_000)
  const others = cluster.names.filter((n) => n !== victim)
  const links = await Promise.all(others.map(async (n) => (await status(n, 2_000))?.counters.formerMemberLinks ?? 0))
  expect(links.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
  const l = await readList(leader, 5_000, TOKEN)
  expect(l.type === "ok" ? l.value.includes(4001) : true).toBe(false)
}, 60_000)
