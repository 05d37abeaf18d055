/**
 * A/B of two node binaries: `paxos bench` against a cluster of each, alternating A B, B A, ...
 * for several rounds on this machine, so that both sides see the same drift in its speed. Prints
 * each run's figures, the median of each side, and the median of the paired ratios B/A.
 *
 *   bun scripts/ab.ts --a OLD_BINARY --b NEW_BINARY [--rounds 5] [--concurrency 1,32]
 *                     [--duration 8] [--prewarm 5] [--out DIR] [-- extra bench flags]
 *
 * Build the two sides first, e.g. `git worktree add /tmp/base main~1 && (cd /tmp/base && bun
 * install && bun run build)`. The standing rule for a change on the node's path: at least 5
 * rounds, appends/s at 32 clients may not drop by more than 5%.
 */
import { mkdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { median } from "../src/bench/stats.ts"

interface Args {
  a: string
  b: string
  rounds: number
  concurrency: string
  duration: number
  prewarm: number
  out: string
  extra: string[]
}

function parse(argv: string[]): Args {
  const dash = argv.indexOf("--")
  const extra = dash === -1 ? [] : argv.slice(dash + 1)
  const own = dash === -1 ? argv : argv.slice(0, dash)
  const get = (k: string): string | undefined => {
    const i = own.indexOf(`--${k}`)
    return i === -1 ? undefined : own[i + 1]
  }
  const a = get("a")
  const b = get("b")
  if (a === undefined || b === undefined) {
    console.error("usage: bun scripts/ab.ts --a BINARY --b BINARY [--rounds N] [--concurrency LIST] [--duration S] [--prewarm S] [--out DIR] [-- bench flags]")
    process.exit(2)
  }
  const num = (k: string, d: number): number => {
    const v = get(k)
    if (v === undefined) return d
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0 || n > 10_000) {
      console.error(`ab: --${k} must be a whole number, got ${v}`)
      process.exit(2)
    }
    return n
  }
  return {
    a: resolve(a),
    b: resolve(b),
    rounds: Math.max(1, num("rounds", 5)),
    concurrency: get("concurrency") ?? "1,32",
    duration: num("duration", 8),
    prewarm: num("prewarm", 5),
    out: resolve(get("out") ?? join("runs", `ab-${new Date().toISOString().replace(/[:.]/g, "-")}`)),
    extra
  }
}

interface Figures {
  readonly opsPerSec: number | null
  readonly p50Ms: number | null
  readonly p99Ms: number | null
}

/** One bench run of `binary`; its figures by concurrency. */
async function run(binary: string, o: Args, out: string): Promise<Map<number, Figures>> {
  const argv = [binary, "bench", "--binary", binary, "--concurrency", o.concurrency, "--runs", "1", "--warmup", "2", "--duration", String(o.duration), "--prewarm", String(o.prewarm), "--out", out, ...o.extra]
  const p = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" })
  const err = await new Response(p.stderr).text()
  if ((await p.exited) !== 0) throw new Error(`${argv.join(" ")} exited ${p.exitCode}: ${err.trim().split("\n").slice(-3).join(" | ")}`)
  const result = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { points: Array<{ concurrency: number; median: Figures }> }
  return new Map(result.points.map((pt) => [pt.concurrency, pt.median]))
}

const fmt = (n: number | null | undefined, digits = 1): string => (n === null || n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits))

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2))
  mkdirSync(o.out, { recursive: true })
  const levels = o.concurrency.split(",").map(Number)
  const sides = { A: o.a, B: o.b } as const
  const seen: Record<"A" | "B", Array<Map<number, Figures>>> = { A: [], B: [] }
  console.log(`A = ${o.a}\nB = ${o.b}\n${o.rounds} rounds, c=${o.concurrency}, ${o.duration} s windows, prewarm ${o.prewarm} s`)
  for (let r = 0; r < o.rounds; r++) {
    const order: Array<"A" | "B"> = r % 2 === 0 ? ["A", "B"] : ["B", "A"]
    for (const side of order) {
      const figs = await run(sides[side], o, join(o.out, `${side}-${r + 1}`))
      seen[side].push(figs)
      const line = levels.map((c) => `c=${c}: ${fmt(figs.get(c)?.opsPerSec, 0)} ops/s p50 ${fmt(figs.get(c)?.p50Ms, 3)} ms p99 ${fmt(figs.get(c)?.p99Ms, 3)} ms`).join("; ")
      console.log(`round ${r + 1} ${side}: ${line}`)
    }
  }
  console.log("\nmedians (A, B, paired B/A):")
  for (const c of levels) {
    for (const k of ["opsPerSec", "p50Ms", "p99Ms"] as const) {
      const a = seen.A.map((m) => m.get(c)?.[k] ?? null)
      const b = seen.B.map((m) => m.get(c)?.[k] ?? null)
      const ratios = a.map((x, i) => (x === null || b[i] === null || x === 0 ? null : (b[i] as number) / x))
      console.log(`  c=${c} ${k.padEnd(9)} A ${fmt(median(a), 3).padStart(9)}  B ${fmt(median(b), 3).padStart(9)}  B/A ${fmt(median(ratios), 3)}  (pairs ${ratios.map((x) => fmt(x, 3)).join(" ")})`)
    }
  }
  console.log(`\nruns in ${o.out}`)
}

await main()
