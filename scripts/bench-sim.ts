/**
 * Benchmark of the simulator's speed: seeds per second for the default scenario (3 nodes, 500
 * client ops, faults throughout) on one core. Warm-up, then several measured runs over distinct
 * seeds; reports the median and the spread. Speed is never asserted by a timed test.
 *
 *   bun scripts/bench-sim.ts [--runs 5] [--seeds 40] [--nodes 3|5] [--json FILE]
 */
import { defaultSimOptions, simulate } from "../src/sim/world.ts"

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const runs = arg("--runs", 5)
const seeds = arg("--seeds", 40)
const nodes = arg("--nodes", 3) === 5 ? 5 : 3
const jsonIdx = process.argv.indexOf("--json")

function measure(firstSeed: number): { seedsPerSecond: number; ticksPerSecond: number; violations: number } {
  let ticks = 0
  let violations = 0
  const t0 = performance.now()
  for (let s = firstSeed; s < firstSeed + seeds; s++) {
    const r = simulate(defaultSimOptions(s, { nodes }))
    ticks += r.ticks
    violations += r.violations.length
  }
  const sec = (performance.now() - t0) / 1000
  return { seedsPerSecond: seeds / sec, ticksPerSecond: ticks / sec, violations }
}

measure(1_000_000) // warm-up: JIT and caches, not counted
const results = Array.from({ length: runs }, (_, i) => measure(1 + i * seeds))
const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}
const sps = results.map((r) => r.seedsPerSecond)
const report = {
  scenario: { nodes, ops: 500, faults: true, seedsPerRun: seeds, runs },
  seedsPerSecondMedian: median(sps),
  seedsPerSecondMin: Math.min(...sps),
  seedsPerSecondMax: Math.max(...sps),
  ticksPerSecondMedian: median(results.map((r) => r.ticksPerSecond)),
  violations: results.reduce((n, r) => n + r.violations, 0)
}
console.log(
  `sim bench (${nodes} nodes, 500 ops, faults): median ${report.seedsPerSecondMedian.toFixed(1)} seeds/s ` +
    `(min ${report.seedsPerSecondMin.toFixed(1)}, max ${report.seedsPerSecondMax.toFixed(1)}) over ${runs} runs of ${seeds} seeds; ` +
    `${Math.round(report.ticksPerSecondMedian)} ticks/s; violations ${report.violations}`
)
if (jsonIdx >= 0 && process.argv[jsonIdx + 1]) await Bun.write(process.argv[jsonIdx + 1] as string, JSON.stringify(report, null, 2))
