/**
 * The runs of `paxos bench`: one measured run of a system (a warm-up, then a window between two
 * snapshots), the prewarm, the sweep (every concurrency, `--runs` runs per system in alternating
 * order, medians and ratios per point) and the soak (N appends at one concurrency, a row every
 * 10%). Figures come from figures.ts; what is printed, from report.ts.
 */
import { stderrProgress } from "../progress.ts"
import {
  figuresOf,
  medianFigures,
  memoryOf,
  ratiosOf,
  snapshot,
  soakRowOf,
  soakTargets,
  sweepTargets,
  type Point,
  type Ratios,
  type RunResult,
  type Snapshot,
  type SoakMark,
  type SoakResult,
  type SoakRow,
  type TargetCheck
} from "./figures.ts"
import { runLoad, type Workload } from "./loadgen.ts"
import type { BenchOptions } from "./options.ts"
import { note, pointRow, printSoakEnd, printSoakRow, printSoakStart, printSweep, ratioRow, type Out } from "./report.ts"
import { fmt, summarize } from "./stats.ts"
import { endpointsFor, type SystemUnderTest } from "./system.ts"

/** `--http-only`: every system under test answers GET /health without consensus or disk. */
const HEALTH: Workload = { method: "GET", path: "/health", contentType: "application/json", body: () => "" }

/** What each request of a sweep is for `sys`: an append (or a read of the list), or GET /health. */
const workloadOf = (sys: SystemUnderTest, o: BenchOptions): Workload => (o.httpOnly ? HEALTH : sys.workload(o.list))

async function measure(sys: SystemUnderTest, o: BenchOptions, concurrency: number, run: number): Promise<RunResult> {
  const endpoints = await endpointsFor(sys, o.target)
  const leader = await sys.leader()
  let before: Snapshot | null = null
  let after: Snapshot | null = null
  const res = await runLoad({
    endpoints,
    concurrency,
    workload: workloadOf(sys, o),
    client: o.client,
    warmupMs: o.warmupS * 1000,
    durationMs: o.durationS * 1000,
    timeoutMs: o.timeoutMs,
    onWindowStart: async () => {
      before = await snapshot(sys)
    },
    onWindowEnd: async () => {
      after = await snapshot(sys)
    }
  })
  return figuresOf(sys, res, before as unknown as Snapshot, after as unknown as Snapshot, run, leader)
}

/** `--prewarm`: unrecorded load on every system, one after the other, before the sweep's first point. */
async function prewarm(systems: readonly SystemUnderTest[], o: BenchOptions): Promise<void> {
  if (o.prewarmS <= 0) return
  const concurrency = Math.max(...o.concurrency)
  for (const s of systems) {
    const res = await runLoad({
      endpoints: await endpointsFor(s, o.target),
      concurrency,
      workload: workloadOf(s, o),
      client: o.client,
      warmupMs: o.prewarmS * 1000,
      durationMs: 1,
      timeoutMs: o.timeoutMs
    })
    note(`  prewarm ${s.kind}: ${o.prewarmS} s at c=${concurrency}${res.errors > 0 ? `, errors ${res.errors} ${JSON.stringify(res.errorKinds)}` : ""}`)
  }
}

/** The sweep: after the prewarm, `--runs` runs per system at each concurrency, order alternating run by run. */
export async function sweep(systems: readonly SystemUnderTest[], o: BenchOptions, out: Out, fsyncOff: boolean): Promise<{ points: Point[]; ratios: Ratios[]; targets: TargetCheck[] }> {
  await prewarm(systems, o)
  const points: Point[] = []
  const ratios: Ratios[] = []
  const rows: string[][] = []
  for (const c of o.concurrency) {
    const runs = new Map<SystemUnderTest, RunResult[]>(systems.map((s) => [s, []]))
    for (let r = 0; r < o.runs; r++) {
      const order = r % 2 === 0 ? systems : [...systems].reverse()
      for (const s of order) {
        const res = await measure(s, o, c, r + 1)
        ;(runs.get(s) as RunResult[]).push(res)
        const errs = res.errors > 0 ? ` errors ${res.errors} ${JSON.stringify(res.errorKinds)}` : ""
        note(`  c=${c} run ${r + 1}/${o.runs} ${s.kind}: ${fmt(res.opsPerSec)} ops/s, p50 ${fmt(res.p50Ms)} ms, p99 ${fmt(res.p99Ms)} ms (load ${res.loadavg.toFixed(1)})${errs}`)
      }
    }
    const ps = systems.map((s) => ({ system: s.kind, concurrency: c, median: medianFigures(runs.get(s) as RunResult[]), runs: runs.get(s) as RunResult[] }))
    points.push(...ps)
    for (const p of ps) rows.push(pointRow(p.system, c, p.median))
    const ours = ps.find((p) => p.system === "paxos")
    const etcd = ps.find((p) => p.system === "etcd")
    if (ours !== undefined && etcd !== undefined) {
      const rt = ratiosOf(c, ours.median, etcd.median)
      ratios.push(rt)
      rows.push(ratioRow("ours/etcd", rt))
    }
  }
  const targets = fsyncOff ? [] : sweepTargets(ratios)
  printSweep(out, o.runs, rows, targets, fsyncOff)
  return { points, ratios, targets }
}

/** The soak: `--soak` appends at one concurrency on our nodes, a row every 10%, then memory fits and targets. */
export async function soak(sys: SystemUnderTest, o: BenchOptions, out: Out, fsyncOff: boolean): Promise<SoakResult> {
  const n = o.soak as number
  const c = o.concurrency[0] as number
  const every = Math.ceil(n / 10)
  const endpoints = await endpointsFor(sys, o.target)
  printSoakStart(out, o)
  let start: Snapshot | null = null
  const marks: Array<Promise<SoakMark>> = []
  const rows: SoakRow[] = []
  let prev: Omit<SoakMark, "lat"> | null = null
  let chain: Promise<void> = Promise.resolve()
  // A live line of how far the soak is (one updating line on a terminal, a plain line now and
  // then elsewhere, none with --quiet); the rows of each tenth print above it.
  const progress = stderrProgress({ label: "bench soak", total: n, unit: "appends", quiet: o.quiet })
  const emit = (m: SoakMark) => {
    const row = soakRowOf(sys.members.length, rows.length + 1, prev ?? { snap: start as unknown as Snapshot, ops: 0, elapsedMs: 0 }, m)
    rows.push(row)
    prev = m
    progress.above(() => printSoakRow(out, row))
  }
  const res = await runLoad({
    endpoints,
    concurrency: c,
    workload: sys.workload(o.list),
    client: o.client,
    warmupMs: o.warmupS * 1000,
    durationMs: o.soakTimeoutS * 1000,
    maxOps: n,
    timeoutMs: o.timeoutMs,
    progressEvery: every,
    countEvery: Math.max(1, Math.floor(n / 1000)),
    onCount: (ops, errors) => progress.update({ done: ops, counts: [["errors", errors]] }),
    onWindowStart: async () => {
      start = await snapshot(sys)
    },
    onProgress: (ops, elapsedMs, latencies) => {
      const lat = summarize(latencies.sortedRange(ops - every, ops))
      const mark = snapshot(sys).then((snap) => ({ snap, ops, elapsedMs, lat }))
      marks.push(mark)
      chain = chain.then(() => mark.then(emit))
    }
  })
  await Promise.all(marks)
  await chain
  progress.finish()
  const result: SoakResult = {
    appends: res.ops,
    target: n,
    concurrency: c,
    elapsedS: res.elapsedMs / 1000,
    errors: res.errors,
    errorKinds: res.errorKinds,
    rows,
    memory: memoryOf(rows, sys.members.length),
    targets: fsyncOff ? [] : soakTargets(rows)
  }
  printSoakEnd(out, result, sys.members.map((m) => m.name), fsyncOff)
  return result
}
