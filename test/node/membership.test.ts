/**
 * Changes of membership on real processes, under concurrent appends (docs/MEMBERSHIP.md): a
 * 3-node cluster grows to 5 (paxos member add, then paxos server --join; the leader promotes each
 * once it caught up), shrinks to 3 removing the leader among others (it hands over), and replaces
 * a member whose data dir was wiped: restarted with its old command it is refused and never votes;
 * removed, added again and started with --join it serves again. Every acknowledged append is in
 * every member's final list, none twice, and the history is linearizable.
 */
import { afterAll, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { checkOps } from "../../src/check/checker.ts"
import { History } from "../../src/client/history.ts"
import { append, getJson, readList } from "../../src/client/http.ts"
import { runWorkload } from "../../src/client/workload.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import type { MembersView } from "../../src/server/members-api.ts"
import { cleanup, ensureBinary, startCluster, waitFor } from "./support.ts"

afterAll(cleanup)


/** `paxos member ARGS --config F`: exit code and output. */
async function member(c: LocalCluster, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([ensureBinary(), "member", ...args, "--config", c.configFile], { stdout: "pipe", stderr: "pipe" })
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  return { code, out, err }
}

/** A change through paxos member, tried again while another change is in flight (one at a time). */
async function change(c: LocalCluster, args: string[]): Promise<string> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const r = await member(c, args)
    if (r.code === 0) return r.out
    if (!r.err.includes("in flight") || Date.now() > deadline) throw new Error(`paxos member ${args.join(" ")}: exit ${r.code}: ${r.err}`)
    await Bun.sleep(200)
  }
}

/** The members as `at` sees them (GET /members), or null. */
async function view(at: string): Promise<MembersView | null> {
  const r = await getJson(at, "/members", { timeoutMs: 2_000 })
  return r.type === "ok" ? (r.value as MembersView) : null
}

/** Waits until some node of `live` says the members in force are exactly `want` (address: voter?), with no change pending. */
async function membersAre(live: readonly string[], want: Record<string, boolean>, what: string): Promise<MembersView> {
  let seen: MembersView | null = null
  await waitFor(
    what,
    async () => {
      for (const at of live) {
        const v = await view(at)
        if (v === null || v.pending !== null) continue
        seen = v
        const got = Object.fromEntries(v.members.map((m) => [m.address, m.voter]))
        if (JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort()) && v.leader !== null) return true
      }
      return false
    },
    45_000
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last seen: ${JSON.stringify(seen)}`)
  })
  return seen as unknown as MembersView
}

test("grow 3 to 5, shrink to 3 removing the leader, replace a wiped member: under load, nothing acknowledged is lost or doubled", async () => {
  const { cluster: c } = await startCluster(3, ["--snapshot-every", "200"])
  const live = [...c.names]
  const history = new History()
  let stop = false
  let next = 1
  const load = runWorkload({ nodes: live, workers: 8, history, timeoutMs: 8_000, next: () => next++, stop: () => stop })
  const voters = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, true]))
  try {
    // Grow: add a learner, start it with --join; the leader promotes it once it caught up.
    for (let k = 0; k < 2; k++) {
      const i = await c.extend()
      const name = c.names[i] as string
      const out = await change(c, ["add", name])
      expect(out).toContain(`added ${name}`)
      c.start(i, { flags: ["--join"] })
      await c.waitHealthy(i, 30_000)
      live.push(name)
      await membersAre(live, voters(live), `${name} to be a voter`)
    }
    expect(live).toHaveLength(5)
    const five = await membersAre(live, voters(live), "five voters")
    console.log(`grew to 5: epoch ${five.epoch}, leader ${five.leader}, list ${next - 1} values handed out`)

    // Shrink: remove the leader, then one of the joined nodes.
    const leader = five.leader as string
    const joinedOne = live[4] as string
    for (const gone of [leader, joinedOne]) {
      await change(c, ["remove", gone])
      live.splice(live.indexOf(gone), 1)
      await membersAre(live, voters(live), `${gone} to be removed`)
    }
    const three = await membersAre(live, voters(live), "three voters")
    expect(three.leader).not.toBe(leader)
    // The removed leader stepped down and handed over; asked directly, it says it was removed.
    await waitFor("the removed leader to answer Removed", async () => {
      const r = await append(leader, { value: -1 }, { timeoutMs: 2_000 })
      return r.type === "fail" && r.message.includes("this node was removed from the cluster")
    }, 15_000)
    const leaderLog = readFileSync(c.nodes[c.names.indexOf(leader)]?.logFile as string, "utf8")
    expect(leaderLog).toMatch(/stepped-down .*reason=removed/)
    for (const gone of [leader, joinedOne]) await c.kill(c.names.indexOf(gone))
    console.log(`shrank to 3 without ${leader} (the leader) and ${joinedOne}: new leader ${three.leader}`)

    // Replace: an initial member loses its data dir.
    const victimName = live.find((n) => n !== three.leader && c.names.indexOf(n) < 3) as string
    const victim = c.names.indexOf(victimName)
    await c.kill(victim)
    c.wipe(victim)
    // Restarted with its old command, it is refused and never votes.
    c.start(victim)
    await waitFor("the wiped member to exit", () => c.nodes[victim]?.proc === null, 20_000)
    expect(c.nodes[victim]?.exits.at(-1)).toBe(1)
    const refusal = readFileSync(c.nodes[victim]?.logFile as string, "utf8")
    expect(refusal).toContain("voted before under another data directory")
    expect(refusal).toContain(`paxos member remove ${victimName}`)
    // Removed, added again (a new member id), and started with --join: it serves again.
    live.splice(live.indexOf(victimName), 1)
    await change(c, ["remove", victimName])
    await membersAre(live, voters(live), `${victimName} to be removed`)
    await change(c, ["add", victimName])
    c.start(victim, { flags: ["--join"] })
    await c.waitHealthy(victim, 30_000)
    live.push(victimName)
    const final = await membersAre(live, voters(live), `${victimName} to be a voter again`)
    const replaced = final.members.find((m) => m.address === victimName)
    expect(replaced?.id).toBeGreaterThanOrEqual(5)
    console.log(`replaced ${victimName}: member ${replaced?.id} now, epoch ${final.epoch}`)
    await Bun.sleep(1_000)
  } finally {
    stop = true
  }
  const res = await load
  // Every member's final list: the same, holding every acknowledged append once.
  let lists: number[][] = []
  await waitFor("the members' lists to agree", async () => {
    const got = await Promise.all(live.map(async (n) => {
      const r = await readList(n, 5_000)
      return r.type === "ok" ? r.value : null
    }))
    if (got.some((l) => l === null)) return false
    lists = got as number[][]
    return lists.every((l) => JSON.stringify(l) === JSON.stringify(lists[0]))
  }, 30_000)
  const final = lists[0] as number[]
  expect(new Set(final).size).toBe(final.length)
  const present = new Set(final)
  expect(res.acked.filter((v) => !present.has(v))).toEqual([])
  expect(res.ok).toBeGreaterThan(100)
  const verdict = checkOps(history.ops)
  if (!verdict.valid) console.error(verdict.errors.slice(0, 3))
  expect(verdict.valid).toBe(true)
  console.log(`under load: ${res.ok} ok, ${res.fail} fail, ${res.info} info; final list ${final.length} on ${live.length} members; linearizable`)
}, 240_000)
