/**
 * `paxos demo` (`bun run demo`): a 3-node cluster of the real binary on loopback, with fresh data
 * dirs in a temp dir. Several concurrent clients append through different nodes; the leader is
 * SIGKILLed mid-load and restarted; more appends follow. It prints every node's list, writes the
 * history it saw (Jepsen EDN) and `paxos check`'s verdict on it, and stops everything it started,
 * also on Ctrl-C. Exit 0 when the history is linearizable and the lists agree.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { checkOps } from "../check/checker.ts"
import { readList } from "../client/http.ts"
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
  const cluster = await LocalCluster.create({ command: [binary()], n: 3, dir })
  const onSignal = () => {
    say("interrupted: stopping the nodes")
    void cluster.stop().then(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  try {
    return await scenario(cluster, dir)
  } finally {
    await cluster.stop()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}

async function scenario(cluster: LocalCluster, dir: string): Promise<number> {
  say(`cluster ${cluster.names.join(", ")} (data and logs in ${dir})`)
  cluster.startAll()
  await cluster.waitAllHealthy()
  await cluster.waitAllReady()
  const leader = await cluster.waitLeader()
  say(`leader: ${cluster.names[leader]}`)
  const history = new History()
  const values = new Values()
  const load = (limit: number) =>
    runWorkload({ nodes: cluster.names, workers: WORKERS, history, timeoutMs: TIMEOUT_MS, next: () => values.take(limit) })

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

  const lists = await converged(cluster)
  for (let i = 0; i < lists.length; i++) say(`${cluster.names[i]} list (${lists[i]?.length ?? "?"} values): ${JSON.stringify(lists[i])}`)
  const same = lists.every((l) => JSON.stringify(l) === JSON.stringify(lists[0]))
  say(same ? "all three nodes hold the same list" : "the nodes' lists DIFFER")

  const file = join(dir, "history.edn")
  writeFileSync(file, history.toEdn())
  const result = checkOps(history.ops)
  say(`history: ${file} (${history.ops.length} events)`)
  say(`paxos check: ${result.valid ? "valid (linearizable)" : `INVALID: ${result.errors.map((e) => `${e.kind}: ${e.message}`).slice(0, 3).join("; ")}`}`)
  return result.valid && same ? 0 : 1
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
async function converged(cluster: LocalCluster): Promise<Array<number[] | null>> {
  let lists: Array<number[] | null> = []
  for (let i = 0; i < 50; i++) {
    lists = await Promise.all(cluster.names.map(async (n) => {
      const r = await readList(n, 3_000)
      return r.type === "ok" ? r.value : null
    }))
    if (lists.every((l) => l !== null && JSON.stringify(l) === JSON.stringify(lists[0]))) break
    await Bun.sleep(100)
  }
  return lists
}
