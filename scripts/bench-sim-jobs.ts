/**
 * What `paxos sim --jobs 2` gains over `--jobs 1`: the same seeds run both ways, alternating
 * (1 then 2, then 2 then 1, ...), each run a fresh process timed wall-clock from start to exit.
 * Prints the median time of each, their ratio, and whether every run's summary (counters, ops,
 * violations and the digest of every seed's history) was the same. The target on a 2-core
 * machine: a ratio of at most 0.60 at 2,000 seeds.
 *
 *   bun scripts/bench-sim-jobs.ts [--seeds 2000] [--runs 3] [--first 1]
 */
import { join } from "node:path"
import { median } from "../src/bench/stats.ts"

const USAGE = "usage: bun scripts/bench-sim-jobs.ts [--seeds 1-100000] [--runs 1-20] [--first SEED]"
const MAIN = join(import.meta.dir, "..", "src", "cli", "main.ts")

function arg(name: string, dflt: number, lo: number, hi: number): number {
  const i = process.argv.indexOf(name)
  if (i < 0) return dflt
  const raw = process.argv[i + 1]
  const v = Number(raw)
  if (!Number.isSafeInteger(v) || v < lo || v > hi) {
    console.error(`bench-sim-jobs: ${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(raw ?? "")}\n${USAGE}`)
    process.exit(2)
  }
  return v
}

for (const a of process.argv.slice(2)) {
  if (a.startsWith("-") && !["--seeds", "--runs", "--first"].includes(a)) {
    console.error(`bench-sim-jobs: unknown argument ${JSON.stringify(a)}\n${USAGE}`)
    process.exit(2)
  }
}
const seeds = arg("--seeds", 2000, 1, 100_000)
const runs = arg("--runs", 3, 1, 20)
const first = arg("--first", 1, 0, 0xffffffff - 100_000)

/** One run of the CLI: wall seconds, and its summary (the counters and the last line without time, rate and jobs). */
async function run(jobs: number): Promise<{ seconds: number; summary: string }> {
  const argv = [process.execPath, MAIN, "sim", "--seed", String(first), "--seeds", String(seeds), "--jobs", String(jobs)]
  const t0 = performance.now()
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  const seconds = (performance.now() - t0) / 1000
  if (code !== 0) {
    console.error(`bench-sim-jobs: sim --jobs ${jobs} exited ${code}: ${(stderr || stdout).trim().split("\n").slice(-3).join(" | ")}`)
    process.exit(1)
  }
  const summary = stdout.replace(/; [\d.]+ s, [\d.]+ seeds\/s, \d+ jobs?$/m, "").trim()
  console.log(`  --jobs ${jobs}: ${seconds.toFixed(1)} s`)
  return { seconds, summary }
}

console.log(`sim --seed ${first} --seeds ${seeds}: --jobs 1 against --jobs 2, ${runs} run(s) each, alternating`)
const times: Record<1 | 2, number[]> = { 1: [], 2: [] }
const summaries = new Set<string>()
for (let r = 0; r < runs; r++) {
  for (const jobs of r % 2 === 0 ? ([1, 2] as const) : ([2, 1] as const)) {
    const { seconds, summary } = await run(jobs)
    times[jobs].push(seconds)
    summaries.add(summary)
  }
}
const m1 = median(times[1]) as number
const m2 = median(times[2]) as number
console.log(`median --jobs 1: ${m1.toFixed(1)} s; --jobs 2: ${m2.toFixed(1)} s`)
console.log(`ratio --jobs 2 / --jobs 1: ${(m2 / m1).toFixed(2)} (target at most 0.60 on 2 cores)`)
console.log(`summaries equal: ${summaries.size === 1 ? "yes" : `NO (${summaries.size} different)`}`)
if (summaries.size === 1) console.log(`summary: ${[...summaries][0]?.split("\n").at(-1)}`)
process.exit(summaries.size === 1 ? 0 : 1)
