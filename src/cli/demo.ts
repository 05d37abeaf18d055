/**
 * `paxos demo` (`bun run demo`): a 3-node cluster of the real binary on loopback, with fresh data
 * dirs in a temp dir. Several concurrent clients append through different nodes; the leader is
 * SIGKILLed mid-load and restarted; more appends follow. Then a member is replaced: `paxos member
 * remove` takes a follower out (its process is stopped and its data dir deleted), `paxos member
 * add` adds a fresh node on a port of its own, which starts with an empty data dir and `--join`,
 * catches up and becomes a voter; the last appends go through the new members. It prints every
 * member's list, writes the history it saw (Jepsen EDN) and `paxos check`'s verdict on it, and
 * stops everything it started, also on Ctrl-C. Exit 0 when the history is linearizable, the
 * replacement went through and the members' lists agree.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { checkOps } from "../check/checker.ts"
import { getJson, readList } from "../client/http.ts"
import { History } from "../client/history.ts"
import { runWorkload } from "../client/workload.ts"
import { LocalCluster } from "./local-cluster.ts"
import { ensureBuilt } from "./build.ts"
import { isCompiled } from "./self.ts"

const WORKERS = 6
const TIMEOUT_MS = 8_000

/** The binary to run: this one when compiled, else dist/paxos (built when missing or stale). */
function binary(): string {
  if (isCompiled()) return process.execPath
  return ensureBuilt(resolve(dirname(Bun.main), "..", ".."), say)
}

function say(line: string): void {
  process.stdout.write(`demo: ${line}\n`)
}

export async function demoCommand(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    process.stderr.write(`paxos demo: takes no arguments\nusage: paxos demo\n`)
    return 2
  }
  const dir = mkdtempSync(join(tmpdir(), "paxos-demo-"))
  const command = [binary()]
  const cluster = await LocalCluster.create({ command, n: 3, dir })
  const onSignal = () => {
    say("interrupted: stopping the nodes")
    void cluster.stop().then(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  try {
    return await scenario(cluster, dir, command)
  } finally {
    await cluster.stop()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}

async function scenario(cluster: LocalCluster, dir: string, command: readonly string[]): Promise<number> {
  /** The members, by index: the three of the config, until the replacement. */
  let members = [0, 1, 2]
  const names = () => members.map((i) => cluster.names[i] as string)
  say(`cluster ${names().join(", ")} (data and logs in ${dir})`)
  cluster.startAll()
  await cluster.waitAllHealthy()
  await cluster.waitAllReady()
  const leader = await cluster.waitLeader()
  say(`leader: ${cluster.names[leader]}`)
  const history = new History()
  const values = new Values()
  const load = (limit: number) =>
    runWorkload({ nodes: names(), workers: WORKERS, history, timeoutMs: TIMEOUT_MS, next: () => values.take(limit) })

  say(`${WORKERS} clients append 1..100 through all three nodes`)
  const first = await load(100)
  say(`  ok ${first.ok}, fail ${first.fail}, info ${first.info}`)

  say(`appending 101..200 while the leader ${cluster.names[leader]} is SIGKILLed`)
  const during = load(200)
  await Bun.sleep(150)
  const killedAt = performance.now()
  await cluster.kill(leader)
  const newLeader = await cluster.waitLeader(20_000, [leader])
  say(`  new leader ${cluster.names[newLeader]} after ${Math.round(performance.now() - killedAt)} ms`)
  const second = await during
  say(`  ok ${second.ok}, fail ${second.fail}, info ${second.info}`)

  say(`restarting ${cluster.names[leader]} with its data`)
  cluster.start(leader)
  await cluster.waitHealthy(leader)

  say("appending 201..300 through all three nodes")
  const third = await load(300)
  say(`  ok ${third.ok}, fail ${third.fail}, info ${third.info}`)

  // The replacement: a follower leaves, a fresh node on a new empty data dir joins.
  const current = await cluster.waitLeader()
  const gone = members.find((i) => i !== current) as number
  const fresh = await cluster.extend()
  const goneName = cluster.names[gone] as string
  const freshName = cluster.names[fresh] as string
  say(`replacing ${goneName} by a fresh node ${freshName}`)
  const removed = await member(command, ["remove", goneName, "--config", cluster.configFile])
  await cluster.kill(gone, "SIGTERM")
  cluster.wipe(gone)
  say(`  stopped ${goneName} and deleted its data dir`)
  const added = removed && (await member(command, ["add", freshName, "--config", cluster.configFile]))
  members = [...members.filter((i) => i !== gone), fresh]
  let joined = false
  if (added) {
    say(`  $ paxos server --config ${cluster.configFile} --node ${freshName} --data-dir ${cluster.nodes[fresh]?.dataDir} --join`)
    cluster.start(fresh, { flags: ["--join"] })
    await cluster.waitHealthy(fresh)
    const voterMs = await waitVoter(names(), freshName)
    joined = voterMs !== null
    say(joined ? `  ${freshName} joined, caught up and became a voter after ${voterMs} ms` : `  ${freshName} did NOT become a voter in time`)
    await member(command, ["list", "--config", cluster.configFile])
  }

  say(`appending 301..400 through the members ${names().join(", ")}`)
  const fourth = await load(400)
  say(`  ok ${fourth.ok}, fail ${fourth.fail}, info ${fourth.info}`)

  const lists = await converged(names())
  for (let k = 0; k < lists.length; k++) say(`${names()[k]} list (${lists[k]?.length ?? "?"} values): ${JSON.stringify(lists[k])}`)
  const same = lists.every((l) => l !== null && JSON.stringify(l) === JSON.stringify(lists[0]))
  say(same ? "all three members hold the same list" : "the members' lists DIFFER")

  const file = join(dir, "history.edn")
  writeFileSync(file, history.toEdn())
  const result = checkOps(history.ops)
  say(`history: ${file} (${history.ops.length} events)`)
  say(`paxos check: ${result.valid ? "valid (linearizable)" : `INVALID: ${result.errors.map((e) => `${e.kind}: ${e.message}`).slice(0, 3).join("; ")}`}`)
  return result.valid && same && joined ? 0 : 1
}

/** Runs `paxos member ARGS`, showing the command and what it printed; whether it exited 0. */
async function member(command: readonly string[], args: readonly string[]): Promise<boolean> {
  say(`  $ paxos member ${args.join(" ")}`)
  const p = Bun.spawn([...command, "member", ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  for (const line of (out + err).trimEnd().split("\n")) if (line !== "") say(`    ${line}`)
  return code === 0
}

/** Milliseconds until a member of `names` shows `node` as a voter (GET /members), or null after 20 s. */
async function waitVoter(names: readonly string[], node: string): Promise<number | null> {
  const t0 = performance.now()
  while (performance.now() - t0 < 20_000) {
    for (const n of names) {
      const r = await getJson(n, "/members", { timeoutMs: 1_000 })
      const ms = (r.type === "ok" ? (r.value as { members?: Array<{ address: string; voter: boolean }> }).members : undefined) ?? []
      if (ms.some((m) => m.address === node && m.voter)) return Math.round(performance.now() - t0)
    }
    await Bun.sleep(100)
  }
  return null
}

/** The values to append: 1, 2, 3, ..., each handed out once. */
class Values {
  private next = 1
  /** The next value if it is at most `limit`, else null. */
  take(limit: number): number | null {
    return this.next <= limit ? this.next++ : null
  }
}

/** Every node's list once they agree (or after a few seconds, whatever they hold). */
async function converged(names: readonly string[]): Promise<Array<number[] | null>> {
  let lists: Array<number[] | null> = []
  for (let i = 0; i < 50; i++) {
    lists = await Promise.all(names.map(async (n) => {
      const r = await readList(n, 3_000)
      return r.type === "ok" ? r.value : null
    }))
    if (lists.every((l) => l !== null && JSON.stringify(l) === JSON.stringify(lists[0]))) break
    await Bun.sleep(100)
  }
  return lists
}
