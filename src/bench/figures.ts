/**
 * The figures of `paxos bench`: what its snapshots of a system hold (the servers' counters, each
 * member's CPU and RSS), and the arithmetic that turns two snapshots into one run's figures, runs
 * into a point's medians, two systems' points into ratios, a soak's marks into its rows, and all
 * of these into the targets. No I/O but the snapshot itself.
 */
import { loadavg } from "node:os"
import { processCpuSeconds } from "../server/metrics.ts"
import { median, ratio, summarize, type LatencySummary } from "./stats.ts"
import { cpuSeconds, rssBytes, type SystemUnderTest, type Totals } from "./system.ts"

/** What a system's members report and use at one moment, and the bench's own CPU. */
export interface Snapshot {
  readonly totals: Totals
  /** Per member: CPU seconds used and resident bytes, from /proc, or from its own report when its process is not on this machine. */
  readonly cpu: ReadonlyArray<number | null>
  readonly rss: ReadonlyArray<number | null>
  readonly benchCpu: number
  readonly t: number
}

export async function snapshot(sys: SystemUnderTest): Promise<Snapshot> {
  const t = performance.now()
  const pids = sys.members.map((m) => m.pid())
  const cpu = pids.map(cpuSeconds)
  const rss = pids.map(rssBytes)
  const benchCpu = processCpuSeconds()
  const totals = await sys.totals()
  const reported = (mine: ReadonlyArray<number | null>, theirs: ReadonlyArray<number | null> | undefined) =>
    mine.map((x, i) => (pids[i] !== null ? x : (theirs?.[i] ?? null)))
  return { totals, cpu: reported(cpu, totals.cpuSeconds), rss: reported(rss, totals.rss), benchCpu, t }
}

const delta = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined ? null : a - b

const perOp = (d: number | null, ops: number): number | null => (d === null || ops <= 0 ? null : d / ops)

const msOf = (seconds: number | null): number | null => (seconds === null ? null : seconds * 1000)

/** The figures of one run (or, as medians, of one point). */
export interface Figures extends LatencySummary {
  readonly opsPerSec: number | null
  readonly peerBytesPerOp: number | null
  readonly peerMessagesPerOp: number | null
  readonly fsyncsPerOp: number | null
  /** Mean duration of one fsync (ours: one SQLite commit, write and fsync), ms. */
  readonly fsyncMs: number | null
  /** CPU milliseconds all members used per operation. */
  readonly serverCpuMsPerOp: number | null
  /** The bench process's CPU use over the window, in cores (1.0 = one core busy). */
  readonly benchCpuCores: number | null
  /** VmRSS of each member after the window, in bytes. */
  readonly rssBytes: ReadonlyArray<number | null>
  readonly errors: number
}

export interface RunResult extends Figures {
  readonly run: number
  readonly ops: number
  /** Operations the servers counted in the window (the denominator of the per-op figures). */
  readonly serverOps: number | null
  readonly elapsedMs: number
  readonly errorKinds: Record<string, number>
  readonly leader: number
  readonly listLength: ReadonlyArray<number | null>
  readonly loadavg: number
  /** Per member: how much each server counter grew over the window. */
  readonly counterDeltas: ReadonlyArray<Record<string, number> | null>
  /** Our nodes only: batching and storage figures from the counters, per member. */
  readonly phases?: ReadonlyArray<Phases | null>
}

export interface Phases {
  /** Batches the node loop ran, and inputs per batch (group commit). */
  readonly batches: number
  readonly inputsPerBatch: number | null
  /** Wall time of one persist (SQLite transaction with its fsync), mean, ms. */
  readonly persistMsPerFsync: number | null
  /** Wall time in the node loop (step, persist, send) per append, µs. */
  readonly loopUsPerOp: number | null
  /** Of which persisting, per append, µs. */
  readonly persistUsPerOp: number | null
  readonly cpuMsPerOp: number | null
}

function phasesOf(before: Snapshot, after: Snapshot, ops: number): Array<Phases | null> {
  return after.totals.members.map((a, i) => {
    const b = before.totals.members[i]
    if (a === null || b === null || b === undefined) return null
    const d = (k: string) => (a[k] ?? 0) - (b[k] ?? 0)
    const batches = d("batches")
    const fsyncs = d("fsyncs")
    return {
      batches,
      inputsPerBatch: batches > 0 ? d("batchInputs") / batches : null,
      persistMsPerFsync: fsyncs > 0 ? d("persistMicros") / 1000 / fsyncs : null,
      loopUsPerOp: perOp(d("batchMicros"), ops),
      persistUsPerOp: perOp(d("persistMicros"), ops),
      cpuMsPerOp: perOp(msOf(delta(after.cpu[i], before.cpu[i])), ops)
    }
  })
}

function counterDeltas(before: Totals, after: Totals): Array<Record<string, number> | null> {
  return after.members.map((a, i) => {
    const b = before.members[i]
    if (a === null || b === null || b === undefined) return null
    const d: Record<string, number> = {}
    for (const [k, v] of Object.entries(a)) if (typeof v === "number" && typeof b[k] === "number") d[k] = v - (b[k] as number)
    return d
  })
}

/** The servers' figures per operation over the window between two snapshots of a system. */
type PerOpFigures = Pick<Figures, "peerBytesPerOp" | "peerMessagesPerOp" | "fsyncsPerOp" | "fsyncMs" | "serverCpuMsPerOp">

/**
 * The window between two snapshots: the operations the servers counted in it (`serverOps`), the
 * denominator of the per-op figures (those, else the `clientOps` the load generator counted), and
 * the figures per operation, summed over the `members`.
 */
function windowOf(members: number, before: Snapshot, after: Snapshot, clientOps: number): { serverOps: number | null; ops: number; perOperation: PerOpFigures } {
  const serverOps = delta(after.totals.ops, before.totals.ops)
  const ops = serverOps !== null && serverOps > 0 ? serverOps : clientOps
  let cpu: number | null = 0
  for (let i = 0; i < members; i++) {
    const d = delta(after.cpu[i], before.cpu[i])
    cpu = d === null || cpu === null ? null : cpu + d
  }
  return {
    serverOps,
    ops,
    perOperation: {
      peerBytesPerOp: perOp(delta(after.totals.peerBytes, before.totals.peerBytes), ops),
      peerMessagesPerOp: perOp(delta(after.totals.peerMessages, before.totals.peerMessages), ops),
      fsyncsPerOp: perOp(delta(after.totals.fsyncs, before.totals.fsyncs), ops),
      fsyncMs: perOp(msOf(delta(after.totals.fsyncSeconds, before.totals.fsyncSeconds)), delta(after.totals.fsyncs, before.totals.fsyncs) ?? 0),
      serverCpuMsPerOp: cpu === null ? null : perOp(cpu * 1000, ops)
    }
  }
}

/** One measured run's figures, from the load generator's result and the snapshots at the window's ends. */
export function figuresOf(
  sys: SystemUnderTest,
  res: { ops: number; errors: number; errorKinds: Record<string, number>; elapsedMs: number; latencies: { sorted(): Float64Array } },
  before: Snapshot,
  after: Snapshot,
  run: number,
  leader: number
): RunResult {
  const lat = summarize(res.latencies.sorted())
  const { serverOps, ops, perOperation } = windowOf(sys.members.length, before, after, res.ops)
  const wallS = (after.t - before.t) / 1000
  const r: RunResult = {
    run,
    ops: res.ops,
    serverOps,
    elapsedMs: res.elapsedMs,
    opsPerSec: res.elapsedMs > 0 ? res.ops / (res.elapsedMs / 1000) : null,
    ...lat,
    ...perOperation,
    benchCpuCores: wallS > 0 ? (after.benchCpu - before.benchCpu) / wallS : null,
    rssBytes: after.rss,
    errors: res.errors,
    errorKinds: res.errorKinds,
    leader,
    listLength: after.totals.listLength,
    counterDeltas: counterDeltas(before.totals, after.totals),
    loadavg: loadavg()[0] as number
  }
  return sys.kind === "paxos" ? { ...r, phases: phasesOf(before, after, ops) } : r
}

export interface Point {
  readonly system: string
  readonly concurrency: number
  readonly median: Figures
  readonly runs: readonly RunResult[]
}

const FIGURE_KEYS = [
  "opsPerSec",
  "meanMs",
  "p50Ms",
  "p95Ms",
  "p99Ms",
  "maxMs",
  "peerBytesPerOp",
  "peerMessagesPerOp",
  "fsyncsPerOp",
  "fsyncMs",
  "serverCpuMsPerOp",
  "benchCpuCores"
] as const

/** A point's figures: the medians of its runs (RSS member by member; errors summed). */
export function medianFigures(runs: readonly RunResult[]): Figures {
  const m: Record<string, number | null> = {}
  for (const k of FIGURE_KEYS) m[k] = median(runs.map((r) => r[k]))
  const members = Math.max(0, ...runs.map((r) => r.rssBytes.length))
  return {
    ...(m as unknown as Omit<Figures, "rssBytes" | "errors">),
    meanMs: m.meanMs ?? Number.NaN,
    p50Ms: m.p50Ms ?? Number.NaN,
    p95Ms: m.p95Ms ?? Number.NaN,
    p99Ms: m.p99Ms ?? Number.NaN,
    maxMs: m.maxMs ?? Number.NaN,
    rssBytes: Array.from({ length: members }, (_, i) => median(runs.map((r) => r.rssBytes[i] ?? null))),
    errors: runs.reduce((s, r) => s + r.errors, 0)
  }
}

const maxRss = (f: Figures): number | null => {
  const v = f.rssBytes.filter((x): x is number => x !== null)
  return v.length === 0 ? null : Math.max(...v)
}

export interface Ratios {
  readonly concurrency: number
  readonly opsPerSec: number | null
  readonly meanMs: number | null
  readonly p50Ms: number | null
  readonly p95Ms: number | null
  readonly p99Ms: number | null
  readonly maxMs: number | null
  readonly peerBytesPerOp: number | null
  readonly fsyncsPerOp: number | null
  readonly fsyncMs: number | null
  readonly serverCpuMsPerOp: number | null
  readonly maxRss: number | null
}

/** The ratios a/b of two systems' figures at concurrency `c`. */
export function ratiosOf(c: number, a: Figures, b: Figures): Ratios {
  return {
    concurrency: c,
    opsPerSec: ratio(a.opsPerSec, b.opsPerSec),
    meanMs: ratio(a.meanMs, b.meanMs),
    p50Ms: ratio(a.p50Ms, b.p50Ms),
    p95Ms: ratio(a.p95Ms, b.p95Ms),
    p99Ms: ratio(a.p99Ms, b.p99Ms),
    maxMs: ratio(a.maxMs, b.maxMs),
    peerBytesPerOp: ratio(a.peerBytesPerOp, b.peerBytesPerOp),
    fsyncsPerOp: ratio(a.fsyncsPerOp, b.fsyncsPerOp),
    fsyncMs: ratio(a.fsyncMs, b.fsyncMs),
    serverCpuMsPerOp: ratio(a.serverCpuMsPerOp, b.serverCpuMsPerOp),
    maxRss: ratio(maxRss(a), maxRss(b))
  }
}

export interface TargetCheck {
  readonly name: string
  readonly goal: string
  readonly value: number | null
  readonly met: boolean | null
}

/** The sweep's targets, from the ratios ours/etcd at c=32 and c=1. */
export function sweepTargets(ratios: readonly Ratios[]): TargetCheck[] {
  const at = (c: number) => ratios.find((r) => r.concurrency === c)
  const out: TargetCheck[] = []
  const c32 = at(32)
  const c1 = at(1)
  if (c32 !== undefined) out.push({ name: "appends/s at c=32, ours/etcd", goal: ">= 4", value: c32.opsPerSec, met: c32.opsPerSec === null ? null : c32.opsPerSec >= 4 })
  if (c1 !== undefined) out.push({ name: "p50 latency at c=1, ours/etcd", goal: "<= 1", value: c1.p50Ms, met: c1.p50Ms === null ? null : c1.p50Ms <= 1 })
  if (c32 !== undefined) out.push({ name: "p99 latency at c=32, ours/etcd", goal: "<= 0.5", value: c32.p99Ms, met: c32.p99Ms === null ? null : c32.p99Ms <= 0.5 })
  return out
}

export interface SoakRow {
  readonly decile: number
  readonly appends: number
  readonly elapsedS: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly peerBytesPerOp: number | null
  readonly peerMessagesPerOp: number | null
  readonly fsyncsPerOp: number | null
  readonly fsyncMs: number | null
  readonly serverCpuMsPerOp: number | null
  readonly rssBytes: ReadonlyArray<number | null>
  readonly listLength: ReadonlyArray<number | null>
}

export interface SoakResult {
  readonly appends: number
  readonly target: number
  readonly concurrency: number
  readonly elapsedS: number
  readonly errors: number
  readonly errorKinds: Record<string, number>
  readonly rows: readonly SoakRow[]
  /** Per member: RSS ≈ constant + bytesPerValue × list length (least squares over the deciles). */
  readonly memory: ReadonlyArray<{ readonly constantBytes: number; readonly bytesPerValue: number } | null>
  readonly targets: readonly TargetCheck[]
}

/** Least squares y = a + b x; null with fewer than two distinct x. */
function fit(xs: readonly number[], ys: readonly number[]): { a: number; b: number } | null {
  const n = xs.length
  if (n < 2) return null
  const mx = xs.reduce((s, v) => s + v, 0) / n
  const my = ys.reduce((s, v) => s + v, 0) / n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += ((xs[i] as number) - mx) ** 2
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my)
  }
  if (sxx === 0) return null
  const b = sxy / sxx
  return { a: my - b * mx, b }
}

/** A mark of the soak: the snapshot taken once `ops` appends were done, `elapsedMs` into the window, and the latencies of the tenth it ends. */
export interface SoakMark {
  readonly snap: Snapshot
  readonly ops: number
  readonly elapsedMs: number
  readonly lat: LatencySummary
}

/** The soak's row for the tenth from `prev` (the window's start, or the mark before) to `m`. */
export function soakRowOf(members: number, decile: number, prev: Omit<SoakMark, "lat">, m: SoakMark): SoakRow {
  const { perOperation } = windowOf(members, prev.snap, m.snap, m.ops - prev.ops)
  return {
    decile,
    appends: m.ops,
    elapsedS: m.elapsedMs / 1000,
    opsPerSec: (m.ops - prev.ops) / ((m.elapsedMs - prev.elapsedMs) / 1000),
    p50Ms: m.lat.p50Ms,
    p99Ms: m.lat.p99Ms,
    maxMs: m.lat.maxMs,
    ...perOperation,
    rssBytes: m.snap.rss,
    listLength: m.snap.totals.listLength
  }
}

/** Per member: RSS as a constant plus bytes per value of the list, fitted over the soak's rows; null where it cannot be. */
export function memoryOf(rows: readonly SoakRow[], members: number): SoakResult["memory"] {
  return Array.from({ length: members }, (_, i) => {
    const pts = rows.filter((r) => r.rssBytes[i] !== null && r.listLength[i] !== null)
    const f = fit(
      pts.map((r) => r.listLength[i] as number),
      pts.map((r) => r.rssBytes[i] as number)
    )
    return f === null ? null : { constantBytes: f.a, bytesPerValue: f.b }
  })
}

/** The soak's targets: throughput and peer bytes per append of the last tenth within 10% of the first's. */
export function soakTargets(rows: readonly SoakRow[]): TargetCheck[] {
  const first = rows[0]
  const last = rows.at(-1)
  if (first === undefined || last === undefined || rows.length < 2) return []
  const tp = ratio(last.opsPerSec, first.opsPerSec)
  const pb = ratio(last.peerBytesPerOp, first.peerBytesPerOp)
  return [
    { name: "throughput, last 10% / first 10%", goal: "0.90..1.10", value: tp, met: tp === null ? null : Math.abs(tp - 1) <= 0.1 },
    { name: "peer bytes per append, last 10% / first 10%", goal: "0.90..1.10", value: pb, met: pb === null ? null : Math.abs(pb - 1) <= 0.1 }
  ]
}
