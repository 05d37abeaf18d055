/**
 * CPU a 3-node cluster uses at rest: starts the nodes of BINARY on loopback with fresh data dirs,
 * lets them settle (a leader elected, the first snapshots done), then reads their CPU time from
 * /proc over a window and prints milliseconds of CPU per second, per node and together. Run it
 * for two builds one after the other to compare them (docs/PERFORMANCE.md, "The clock").
 *
 *   bun scripts/idle-cpu.ts [--binary dist/paxos] [--settle 10] [--window 20] [--rounds 1]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { cpuSeconds } from "../src/bench/system.ts"
import { LocalCluster } from "../src/cli/local-cluster.ts"

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? (process.argv[i + 1] as string) : dflt
}
const binary = resolve(arg("--binary", "dist/paxos"))
const settleS = Number(arg("--settle", "10"))
const windowS = Number(arg("--window", "20"))
const rounds = Number(arg("--rounds", "1"))
for (let round = 1; round <= rounds; round++) {
  const dir = mkdtempSync(join(tmpdir(), "idle-cpu-"))
  const cluster = await LocalCluster.create({ command: [binary], n: 3, dir })
  try {
    cluster.startAll()
    await cluster.waitAllHealthy()
    await Bun.sleep(settleS * 1000)
    const pids = cluster.nodes.map((n) => n.proc?.pid as number)
    const before = pids.map(cpuSeconds)
    await Bun.sleep(windowS * 1000)
    const ms = pids.map((pid, i) => (((cpuSeconds(pid) ?? Number.NaN) - (before[i] ?? Number.NaN)) * 1000) / windowS)
    const total = ms.reduce((a, b) => a + b, 0)
    console.log(`${binary} round ${round}: ${total.toFixed(0)} ms of CPU per second for 3 idle nodes (${ms.map((m) => m.toFixed(0)).join(" / ")})`)
  } finally {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
