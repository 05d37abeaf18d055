/**
 * `paxos bench` (`bun run bench`): closed-loop load against our cluster, and with `--vs-etcd` the
 * same load from the same load generator against a local 3-member etcd, interleaved run by run so
 * that the ratios ours/etcd are measured side by side under the same machine noise.
 *
 * For each concurrency: `--runs` runs per system (order alternating: A B, B A, ...), each a warm-up
 * then a measured window; the point's figures are the medians over its runs. Figures: ops/s,
 * latency mean/p50/p95/p99/max (ms), peer bytes, peer messages and fsyncs per operation (deltas of
 * the servers' counters over the window, summed over members), server CPU per operation (from
 * /proc/PID/stat), the bench's own CPU share, and each member's RSS (VmRSS) after the window.
 *
 * `--soak N` instead appends N values at one concurrency and reports every 10%.
 * The report is a table on stdout, and `results.json` plus `summary.txt` in `--out`.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs"
import { cpus, loadavg, release } from "node:os"
import { join, resolve } from "node:path"
import { parseToken } from "../auth/client-token.ts"
import { parseFlags, readTokenFile, str, type Parsed } from "../cli/args.ts"
import { processCpuSeconds } from "../server/metrics.ts"
import { isCompiled } from "../cli/self.ts"
import { serveEcho, startEcho } from "./echo.ts"
import { ETCD_INSTALL_HINT, findEtcd, startEtcd } from "./etcd.ts"
import { runLoad, type ClientKind, type Workload } from "./loadgen.ts"
import { attachPaxos, nodeCommand, startPaxos } from "./paxos.ts"
import { summarizeProfile, type ProfileSummary } from "./profile.ts"
import { fmt, median, mib, ratio, summarize, table, type LatencySummary } from "./stats.ts"
import { cpuSeconds, endpointsFor, rssBytes, type SystemUnderTest, type Target, type Totals } from "./system.ts"

export const BENCH_USAGE = `usage: paxos bench [options]   (bun run bench -- [options])

  --concurrency LIST   closed-loop clients per point, comma-separated (default 1,5,32,128)
  --target leader|spread
                       send every request to the leader (default), or spread connections over all nodes
  --list               ask for the whole list in each reply (default: ?list=false)
  --http-only          send GET /health instead of appends: the HTTP stack alone, no consensus, no disk
  --warmup S           seconds of warm-up before each measured window (default 2; 10 with --soak)
  --prewarm S          seconds of unrecorded load on each system before the sweep's first point, at the
                       sweep's highest concurrency, so the runs measure warm code (default 20; 0: none)
  --duration S         seconds of each measured window (default 10)
  --runs N             runs per point and system; medians are reported (default 3)
  --out DIR            where results.json and summary.txt go (default runs/bench-<timestamp>/)
  --config F           measure a running cluster instead of starting one; its nodes may be on other
                       machines (their RSS and CPU then come from each node's /status)
  --token-file T       the client token of a --config cluster that needs one (or $PAXOS_CLIENT_TOKEN_FILE)
  --binary PATH|source the node binary to start (default: this binary when compiled, else dist/paxos);
                       "source" runs bun src/cli/main.ts (readable CPU profiles)
  --nodes N            nodes to start (default 3)
  --client raw|fetch   the load generator's HTTP client (default raw: HTTP/1.1 on Bun.connect)
  --timeout MS         a request unanswered this long counts as an error (default 10000)
  --vs-etcd            the same load against a local 3-member etcd, interleaved run by run, with ratios
  --etcd-binary PATH   the etcd to start (default: etcd on PATH)
  --echo               also measure a bare Bun.serve echo server (the HTTP ceiling of this machine)
  --soak [N]           instead of the sweep: N appends (default 1000000) at one concurrency
                       (--concurrency C, default 32), reported every 10%
  --soak-timeout S     the soak stops after this many seconds even if N is not reached (default 3600)
  --profile            run the nodes under Bun's CPU profiler; summaries in OUT/profile/
  --peer-auth          start the nodes with a cluster secret (--secret-file), as start-servers and
                       Jepsen do: every peer frame is signed and verified (default: no secret, like etcd
                       without TLS)
  --unsafe-no-fsync    start the nodes with --unsafe-no-fsync: every fdatasync becomes an fstat on the
                       same thread, so the run shows what the disk costs (targets are then not checked;
                       etcd, if measured, keeps its fsync)
`

const DEFAULT_SOAK = 1_000_000
const SOAK_WARMUP_S = 10
/**
 * A node's JavaScript is compiled while it runs: Bun's JIT threads were still busy 30 s into a
 * 32-client load, and appends/s rose 20% from the first 10 s run to the sixth (docs/PERFORMANCE.md,
 * "Warm code"). A server runs for days, so the sweep measures warm code: every system gets this
 * much load before the first point (etcd, compiled ahead of time, needs none but gets the same).
 */
const PREWARM_S = 20

export interface BenchOptions {
  readonly concurrency: readonly number[]
  readonly target: Target
  readonly list: boolean
  readonly httpOnly: boolean
  readonly warmupS: number
  readonly prewarmS: number
  readonly durationS: number
  readonly runs: number
  readonly out: string
  readonly config: string | undefined
  /** The client token file for --config (flag, else $PAXOS_CLIENT_TOKEN_FILE). */
  readonly tokenFile: string | undefined
  readonly binary: string
  readonly nodes: number
  readonly client: ClientKind
  readonly timeoutMs: number
  readonly vsEtcd: boolean
  readonly etcdBinary: string | undefined
  readonly echo: boolean
  readonly soak: number | undefined
  readonly soakTimeoutS: number
  readonly profile: boolean
  /** Start the nodes with a cluster secret (peer authentication on). */
  readonly peerAuth: boolean
  /** Start the nodes with --unsafe-no-fsync (the disk's share; no targets checked). */
  readonly unsafeNoFsync: boolean
}

// ---------------------------------------------------------------------------------------------
// Options

const SPEC = {
  concurrency: "value",
  target: "value",
  list: "bool",
  "http-only": "bool",
  warmup: "value",
  prewarm: "value",
  duration: "value",
  runs: "value",
  out: "value",
  config: "value",
  "token-file": "value",
  binary: "value",
  nodes: "value",
  client: "value",
  timeout: "value",
  "vs-etcd": "bool",
  "etcd-binary": "value",
  echo: "bool",
  soak: "value",
  "soak-timeout": "value",
  profile: "bool",
  "peer-auth": "bool",
  "unsafe-no-fsync": "bool",
  "serve-echo": "value"
} as const

const timestamp = (): string => new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

function num(p: Parsed, name: string, dflt: number, ok: (x: number) => boolean, what: string): number | string {
  const v = str(p, name)
  if (v === undefined) return dflt
  const x = Number(v)
  if (v.trim() === "" || !Number.isFinite(x) || !ok(x)) return `--${name} needs ${what}, got '${v}'`
  return x
}

/** The client token in `file` (checked as the server checks it), or undefined without one; throws with one line. */
function readBenchToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined
  const text = readTokenFile(file)
  try {
    return parseToken(text)
  } catch (e) {
    throw new Error(`--token-file ${file}: ${(e as Error).message}`)
  }
}

/** The default node binary: this one when compiled, else dist/paxos of this checkout. */
function defaultBinary(): string {
  if (isCompiled()) return process.execPath
  return resolve(import.meta.dir, "..", "..", "dist", "paxos")
}

/** Parses the bench's flags; a one-line reason when they are wrong. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | { serveEcho: number } | string {
  // `--soak` may stand alone: then it means the default count.
  const args = argv.flatMap((a, i) => (a === "--soak" && (argv[i + 1] === undefined || argv[i + 1]?.startsWith("-")) ? [`--soak=${DEFAULT_SOAK}`] : [a]))
  const p = parseFlags(args, SPEC)
  if (typeof p === "string") return p
  if (p.positionals.length > 0) return `unexpected argument '${p.positionals[0]}'`
  const echoPort = str(p, "serve-echo")
  if (echoPort !== undefined) {
    const port = Number(echoPort)
    return Number.isInteger(port) && port > 0 && port < 65536 ? { serveEcho: port } : `--serve-echo needs a port, got '${echoPort}'`
  }
  const cText = str(p, "concurrency")
  const conc = (cText ?? "1,5,32,128").split(",").map((s) => Number(s.trim()))
  if (conc.length === 0 || conc.some((c) => !Number.isInteger(c) || c < 1 || c > 4096)) return `--concurrency needs a comma-separated list of integers 1..4096, got '${cText}'`
  const target = str(p, "target") ?? "leader"
  if (target !== "leader" && target !== "spread") return `--target must be leader or spread, got '${target}'`
  const client = str(p, "client") ?? "raw"
  if (client !== "raw" && client !== "fetch") return `--client must be raw or fetch, got '${client}'`
  // A soak compares its first tenth with its last: a longer warm-up keeps the JIT and the first
  // growth of the WAL file out of the first tenth, which would otherwise measure them, not the log.
  const warmupS = num(p, "warmup", str(p, "soak") !== undefined ? SOAK_WARMUP_S : 2, (x) => x >= 0 && x <= 3600, "seconds (0..3600)")
  const prewarmS = num(p, "prewarm", PREWARM_S, (x) => x >= 0 && x <= 3600, "seconds (0..3600)")
  const durationS = num(p, "duration", 10, (x) => x > 0 && x <= 3600, "seconds (more than 0, at most 3600)")
  const runs = num(p, "runs", 3, (x) => Number.isInteger(x) && x >= 1 && x <= 100, "an integer 1..100")
  const nodes = num(p, "nodes", 3, (x) => Number.isInteger(x) && x >= 1 && x <= 9, "an integer 1..9")
  const timeoutMs = num(p, "timeout", 10_000, (x) => x >= 10 && x <= 600_000, "milliseconds (10..600000)")
  const soakTimeoutS = num(p, "soak-timeout", 3600, (x) => x > 0 && x <= 86_400, "seconds")
  for (const v of [warmupS, prewarmS, durationS, runs, nodes, timeoutMs, soakTimeoutS]) if (typeof v === "string") return v
  let soak: number | undefined
  const soakText = str(p, "soak")
  if (soakText !== undefined) {
    soak = Number(soakText.replace(/[_,]/g, ""))
    if (!Number.isInteger(soak) || soak < 10 || soak > 1e9) return `--soak needs a count of appends (10..1e9), got '${soakText}'`
    if (conc.length > 1 && cText !== undefined) return "--soak runs at one concurrency: give --concurrency C with a single value"
    if (p.flags["http-only"] === true) return "--soak appends; it does not go with --http-only"
  }
  const binary = str(p, "binary") ?? defaultBinary()
  if (binary === "source" && isCompiled()) return "--binary source needs the bench to run under bun (bun run bench), not the compiled binary"
  if (str(p, "config") !== undefined && p.flags.profile === true) return "--profile needs nodes started by the bench (not --config)"
  if (str(p, "config") !== undefined && p.flags["peer-auth"] === true) return "--peer-auth is for nodes started by the bench (a --config cluster has its own secret, or none)"
  if (str(p, "config") !== undefined && p.flags["unsafe-no-fsync"] === true) return "--unsafe-no-fsync is for nodes started by the bench (a --config cluster runs as it was started)"
  if (str(p, "token-file") !== undefined && str(p, "config") === undefined) return "--token-file goes with --config (the nodes the bench starts need no token)"
  return {
    concurrency: soak !== undefined && cText === undefined ? [32] : conc,
    target,
    list: p.flags.list === true,
    httpOnly: p.flags["http-only"] === true,
    warmupS: warmupS as number,
    prewarmS: prewarmS as number,
    durationS: durationS as number,
    runs: runs as number,
    out: str(p, "out") ?? join("runs", `bench-${timestamp()}`),
    config: str(p, "config"),
    tokenFile: str(p, "token-file") ?? (str(p, "config") === undefined ? undefined : process.env.PAXOS_CLIENT_TOKEN_FILE || undefined),
    binary,
    nodes: nodes as number,
    client,
    timeoutMs: timeoutMs as number,
    vsEtcd: p.flags["vs-etcd"] === true,
    etcdBinary: str(p, "etcd-binary"),
    echo: p.flags.echo === true,
    soak,
    soakTimeoutS: soakTimeoutS as number,
    profile: p.flags.profile === true,
    peerAuth: p.flags["peer-auth"] === true,
    unsafeNoFsync: p.flags["unsafe-no-fsync"] === true
  }
}

// ---------------------------------------------------------------------------------------------
// One measured run

interface Snapshot {
  readonly totals: Totals
  /** Per member: CPU seconds used and resident bytes, from /proc, or from its own report when its process is not on this machine. */
  readonly cpu: ReadonlyArray<number | null>
  readonly rss: ReadonlyArray<number | null>
  readonly benchCpu: number
  readonly t: number
}

async function snapshot(sys: SystemUnderTest): Promise<Snapshot> {
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

function counterDeltas(before: Totals, after: Totals): Array<Record<string, number> | null> {
  return after.members.map((a, i) => {
    const b = before.members[i]
    if (a === null || b === null || b === undefined) return null
    const d: Record<string, number> = {}
    for (const [k, v] of Object.entries(a)) if (typeof v === "number" && typeof b[k] === "number") d[k] = v - (b[k] as number)
    return d
  })
}

function figuresOf(
  sys: SystemUnderTest,
  res: { ops: number; errors: number; errorKinds: Record<string, number>; elapsedMs: number; latencies: { sorted(): Float64Array } },
  before: Snapshot,
  after: Snapshot,
  run: number,
  leader: number
): RunResult {
  const lat = summarize(res.latencies.sorted())
  const serverOps = delta(after.totals.ops, before.totals.ops)
  const ops = serverOps !== null && serverOps > 0 ? serverOps : res.ops
  let cpu: number | null = 0
  for (let i = 0; i < sys.members.length; i++) {
    const d = delta(after.cpu[i], before.cpu[i])
    cpu = d === null || cpu === null ? null : cpu + d
  }
  const wallS = (after.t - before.t) / 1000
  const r: RunResult = {
    run,
    ops: res.ops,
    serverOps,
    elapsedMs: res.elapsedMs,
    opsPerSec: res.elapsedMs > 0 ? res.ops / (res.elapsedMs / 1000) : null,
    ...lat,
    peerBytesPerOp: perOp(delta(after.totals.peerBytes, before.totals.peerBytes), ops),
    peerMessagesPerOp: perOp(delta(after.totals.peerMessages, before.totals.peerMessages), ops),
    fsyncsPerOp: perOp(delta(after.totals.fsyncs, before.totals.fsyncs), ops),
    fsyncMs: perOp(msOf(delta(after.totals.fsyncSeconds, before.totals.fsyncSeconds)), delta(after.totals.fsyncs, before.totals.fsyncs) ?? 0),
    serverCpuMsPerOp: cpu === null ? null : perOp(cpu * 1000, ops),
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

// ---------------------------------------------------------------------------------------------
// The sweep

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

function medianFigures(runs: readonly RunResult[]): Figures {
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

const POINT_HEADER = ["system", "c", "ops/s", "mean", "p50", "p95", "p99", "max", "peerB/op", "msgs/op", "fsync/op", "fsync ms", "cpu ms/op", "bench cpu", "RSS MiB", "errors"]

function pointRow(system: string, c: number, f: Figures): string[] {
  return [
    system,
    String(c),
    fmt(f.opsPerSec),
    fmt(f.meanMs),
    fmt(f.p50Ms),
    fmt(f.p95Ms),
    fmt(f.p99Ms),
    fmt(f.maxMs),
    fmt(f.peerBytesPerOp),
    fmt(f.peerMessagesPerOp),
    fmt(f.fsyncsPerOp),
    fmt(f.fsyncMs),
    fmt(f.serverCpuMsPerOp),
    fmt(f.benchCpuCores, 2),
    f.rssBytes.map(mib).join("/"),
    String(f.errors)
  ]
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

function ratiosOf(c: number, a: Figures, b: Figures): Ratios {
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

const x = (r: number | null): string => (r === null ? "-" : `${r.toFixed(2)}x`)

function ratioRow(label: string, r: Ratios): string[] {
  return [label, String(r.concurrency), x(r.opsPerSec), x(r.meanMs), x(r.p50Ms), x(r.p95Ms), x(r.p99Ms), x(r.maxMs), x(r.peerBytesPerOp), "", x(r.fsyncsPerOp), x(r.fsyncMs), x(r.serverCpuMsPerOp), "", x(r.maxRss), ""]
}

export interface TargetCheck {
  readonly name: string
  readonly goal: string
  readonly value: number | null
  readonly met: boolean | null
}

function sweepTargets(ratios: readonly Ratios[]): TargetCheck[] {
  const at = (c: number) => ratios.find((r) => r.concurrency === c)
  const out: TargetCheck[] = []
  const c32 = at(32)
  const c1 = at(1)
  if (c32 !== undefined) out.push({ name: "appends/s at c=32, ours/etcd", goal: ">= 4", value: c32.opsPerSec, met: c32.opsPerSec === null ? null : c32.opsPerSec >= 4 })
  if (c1 !== undefined) out.push({ name: "p50 latency at c=1, ours/etcd", goal: "<= 1", value: c1.p50Ms, met: c1.p50Ms === null ? null : c1.p50Ms <= 1 })
  if (c32 !== undefined) out.push({ name: "p99 latency at c=32, ours/etcd", goal: "<= 0.5", value: c32.p99Ms, met: c32.p99Ms === null ? null : c32.p99Ms <= 0.5 })
  return out
}

const targetLines = (ts: readonly TargetCheck[]): string[] =>
  ts.map((t) => `  ${t.met === null ? "n/a " : t.met ? "MET " : "MISS"}  ${t.name}: ${t.value === null ? "-" : t.value.toFixed(2)} (goal ${t.goal})`)

interface Out {
  readonly lines: string[]
  say(s: string): void
}

function makeOut(): Out {
  const lines: string[] = []
  return {
    lines,
    say(s: string) {
      lines.push(s)
      process.stdout.write(`${s}\n`)
    }
  }
}

const note = (s: string): void => {
  process.stderr.write(`${s}\n`)
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

/** What the bench prints instead of the targets when our nodes run without fsync. */
const NO_FSYNC_TARGETS = "targets: not checked: our nodes ran without fsync (--unsafe-no-fsync), so this run shows what the disk costs, not the targets"

async function sweep(systems: readonly SystemUnderTest[], o: BenchOptions, out: Out, fsyncOff: boolean): Promise<{ points: Point[]; ratios: Ratios[]; targets: TargetCheck[] }> {
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
  out.say(`medians of ${o.runs} run(s) per point; latency in ms; peerB, msgs and fsync per operation summed over members; cpu ms/op = all members' CPU per operation; bench cpu = the load generator's cores`)
  out.say(table(POINT_HEADER, rows))
  const targets = fsyncOff ? [] : sweepTargets(ratios)
  if (fsyncOff) {
    out.say("")
    out.say(NO_FSYNC_TARGETS)
  } else if (targets.length > 0) {
    out.say("")
    out.say("targets (ratios in this run, both systems with fsync on):")
    for (const l of targetLines(targets)) out.say(l)
  }
  return { points, ratios, targets }
}

// ---------------------------------------------------------------------------------------------
// The soak

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

const SOAK_HEADER = ["decile", "appends", "ops/s", "p50", "p99", "max", "peerB/op", "msgs/op", "fsync/op", "fsync ms", "cpu ms/op", "RSS MiB", "list length"]

async function soak(sys: SystemUnderTest, o: BenchOptions, out: Out, fsyncOff: boolean): Promise<SoakResult> {
  const n = o.soak as number
  const c = o.concurrency[0] as number
  const every = Math.ceil(n / 10)
  const endpoints = await endpointsFor(sys, o.target)
  out.say(`soak: ${n.toLocaleString("en-US")} appends at concurrency ${c} to ${o.target}, ${o.warmupS} s warm-up first; one row per 10%`)
  out.say(table(SOAK_HEADER, []).split("\n").slice(0, 2).join("\n"))
  let start: Snapshot | null = null
  const marks: Array<Promise<{ snap: Snapshot; ops: number; elapsedMs: number; lat: LatencySummary; rss: ReadonlyArray<number | null> }>> = []
  const rows: SoakRow[] = []
  let prev: { snap: Snapshot; ops: number; elapsedMs: number } | null = null
  let chain: Promise<void> = Promise.resolve()
  const emit = (m: { snap: Snapshot; ops: number; elapsedMs: number; lat: LatencySummary; rss: ReadonlyArray<number | null> }) => {
    const p = prev ?? { snap: start as unknown as Snapshot, ops: 0, elapsedMs: 0 }
    const serverOps = delta(m.snap.totals.ops, p.snap.totals.ops)
    const ops = serverOps !== null && serverOps > 0 ? serverOps : m.ops - p.ops
    let cpu: number | null = 0
    for (let i = 0; i < sys.members.length; i++) {
      const d = delta(m.snap.cpu[i], p.snap.cpu[i])
      cpu = d === null || cpu === null ? null : cpu + d
    }
    const row: SoakRow = {
      decile: rows.length + 1,
      appends: m.ops,
      elapsedS: m.elapsedMs / 1000,
      opsPerSec: (m.ops - p.ops) / ((m.elapsedMs - p.elapsedMs) / 1000),
      p50Ms: m.lat.p50Ms,
      p99Ms: m.lat.p99Ms,
      maxMs: m.lat.maxMs,
      peerBytesPerOp: perOp(delta(m.snap.totals.peerBytes, p.snap.totals.peerBytes), ops),
      peerMessagesPerOp: perOp(delta(m.snap.totals.peerMessages, p.snap.totals.peerMessages), ops),
      fsyncsPerOp: perOp(delta(m.snap.totals.fsyncs, p.snap.totals.fsyncs), ops),
      fsyncMs: perOp(msOf(delta(m.snap.totals.fsyncSeconds, p.snap.totals.fsyncSeconds)), delta(m.snap.totals.fsyncs, p.snap.totals.fsyncs) ?? 0),
      serverCpuMsPerOp: cpu === null ? null : perOp(cpu * 1000, ops),
      rssBytes: m.rss,
      listLength: m.snap.totals.listLength
    }
    rows.push(row)
    prev = m
    out.say(soakRow(row))
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
    onWindowStart: async () => {
      start = await snapshot(sys)
    },
    onProgress: (ops, elapsedMs, latencies) => {
      const lat = summarize(latencies.sortedRange(ops - every, ops))
      const mark = snapshot(sys).then((snap) => ({ snap, ops, elapsedMs, lat, rss: snap.rss }))
      marks.push(mark)
      chain = chain.then(() => mark.then(emit))
    }
  })
  await Promise.all(marks)
  await chain
  const memory = sys.members.map((_, i) => {
    const pts = rows.filter((r) => r.rssBytes[i] !== null && r.listLength[i] !== null)
    const f = fit(
      pts.map((r) => r.listLength[i] as number),
      pts.map((r) => r.rssBytes[i] as number)
    )
    return f === null ? null : { constantBytes: f.a, bytesPerValue: f.b }
  })
  const first = rows[0]
  const last = rows.at(-1)
  const targets: TargetCheck[] = []
  if (first !== undefined && last !== undefined && rows.length >= 2 && !fsyncOff) {
    const tp = ratio(last.opsPerSec, first.opsPerSec)
    const pb = ratio(last.peerBytesPerOp, first.peerBytesPerOp)
    targets.push({ name: "throughput, last 10% / first 10%", goal: "0.90..1.10", value: tp, met: tp === null ? null : Math.abs(tp - 1) <= 0.1 })
    targets.push({ name: "peer bytes per append, last 10% / first 10%", goal: "0.90..1.10", value: pb, met: pb === null ? null : Math.abs(pb - 1) <= 0.1 })
  }
  out.say("")
  out.say(`soak done: ${res.ops.toLocaleString("en-US")} appends in ${(res.elapsedMs / 1000).toFixed(1)} s, ${res.errors} errors${res.errors > 0 ? ` ${JSON.stringify(res.errorKinds)}` : ""}`)
  memory.forEach((m, i) => {
    if (m !== null) out.say(`  ${sys.members[i]?.name}: RSS ≈ ${mib(m.constantBytes)} MiB + ${m.bytesPerValue.toFixed(1)} bytes × list length`)
  })
  if (fsyncOff) out.say(NO_FSYNC_TARGETS)
  else if (targets.length > 0) {
    out.say("targets:")
    for (const l of targetLines(targets)) out.say(l)
  }
  return { appends: res.ops, target: n, concurrency: c, elapsedS: res.elapsedMs / 1000, errors: res.errors, errorKinds: res.errorKinds, rows, memory, targets }
}

const soakRow = (r: SoakRow): string =>
  table(SOAK_HEADER, [
    [
      `${r.decile * 10}%`,
      r.appends.toLocaleString("en-US"),
      fmt(r.opsPerSec),
      fmt(r.p50Ms),
      fmt(r.p99Ms),
      fmt(r.maxMs),
      fmt(r.peerBytesPerOp),
      fmt(r.peerMessagesPerOp),
      fmt(r.fsyncsPerOp),
      fmt(r.fsyncMs),
      fmt(r.serverCpuMsPerOp),
      r.rssBytes.map(mib).join("/"),
      r.listLength.map((l) => (l === null ? "-" : String(l))).join("/")
    ]
  ])
    .split("\n")
    .slice(2)
    .join("\n")

// ---------------------------------------------------------------------------------------------
// Profiles

/** Summarizes the nodes' profiles (named by pid) into OUT/profile/*.summary.txt; prints the leader's. */
function summarizeProfiles(dir: string, pids: Map<number, string>, leaderName: string | null, out: Out): ProfileSummary[] {
  let files: string[] = []
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))
  } catch {
    return []
  }
  const summaries: ProfileSummary[] = []
  for (const f of files.sort()) {
    const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f)?.[1] ?? Number.NaN)
    const node = pids.get(pid) ?? `pid ${pid}`
    try {
      const s = summarizeProfile(JSON.parse(readFileSync(join(dir, f), "utf8")), `${node}${node === leaderName ? " (leader)" : ""}`, join(dir, f))
      summaries.push(s)
      writeFileSync(join(dir, `${f.replace(/\.cpuprofile$/, "")}.summary.txt`), s.text)
    } catch (e) {
      note(`bench: cannot read profile ${f}: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  const leader = summaries.find((s) => s.label.endsWith("(leader)"))
  for (const s of leader === undefined ? summaries : [leader]) {
    out.say("")
    out.say(s.text)
  }
  return summaries
}

// ---------------------------------------------------------------------------------------------

function machine() {
  const c = cpus()
  return { cpus: c.length, cpuModel: c[0]?.model ?? "unknown", kernel: release(), bun: Bun.version, loadavgAtStart: loadavg() }
}

/** `paxos bench`: returns the exit code (0 done, 1 failed, 2 usage). */
export async function benchCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(BENCH_USAGE)
    return 0
  }
  const parsed = parseBenchArgs(argv)
  if (typeof parsed === "string") {
    process.stderr.write(`paxos bench: ${parsed} (see paxos bench --help)\n`)
    return 2
  }
  if ("serveEcho" in parsed) return serveEcho(parsed.serveEcho)
  const o = parsed
  const outDir = resolve(o.out)
  mkdirSync(outDir, { recursive: true })
  const out = makeOut()
  const systems: SystemUnderTest[] = []
  let stopping: Promise<void> | null = null
  const stopAll = (): Promise<void> => (stopping ??= Promise.all(systems.map((s) => s.stop().catch(() => {}))).then(() => {}))
  const onSignal = () => {
    note("bench: interrupted; stopping what it started")
    void stopAll().then(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const profileDir = join(outDir, "profile")
  const pids = new Map<number, string>()
  let leaderName: string | null = null
  const startedAt = new Date().toISOString()
  try {
    let ours: SystemUnderTest
    if (o.config !== undefined) {
      ours = await attachPaxos(o.config, readBenchToken(o.tokenFile))
    } else {
      if (o.binary !== "source" && !(await Bun.file(o.binary).exists())) {
        process.stderr.write(`paxos bench: no node binary at ${o.binary}; run 'bun run build' first, or give --binary PATH (or --binary source)\n`)
        return 1
      }
      const env: Record<string, string> = {}
      if (o.profile) {
        mkdirSync(profileDir, { recursive: true })
        env.BUN_OPTIONS = `--cpu-prof --cpu-prof-dir=${profileDir}`
      }
      note(`bench: starting ${o.nodes} nodes of ${o.binary} on loopback (data in ${join(outDir, "paxos")})${o.peerAuth ? ", with a cluster secret" : ""}${o.unsafeNoFsync ? ", WITHOUT fsync (--unsafe-no-fsync)" : ""}`)
      ours = await startPaxos({ command: nodeCommand(o.binary), dir: join(outDir, "paxos"), nodes: o.nodes, env, secret: o.peerAuth, unsafeNoFsync: o.unsafeNoFsync })
    }
    systems.push(ours)
    // As the nodes say, not as the flags say: a --config cluster may have been started without fsync.
    const fsyncOff = (await ours.totals()).unsafeNoFsync === true
    if (o.unsafeNoFsync && !fsyncOff) throw new Error("--unsafe-no-fsync: the nodes do not report fsync off in /status")
    if (o.vsEtcd && o.soak === undefined) {
      const bin = findEtcd(o.etcdBinary)
      if (bin === null) note(o.etcdBinary === undefined ? `${ETCD_INSTALL_HINT}; running ours only` : `no etcd at ${o.etcdBinary}; running ours only`)
      else {
        note(`bench: starting 3 etcd members of ${bin} on loopback (data in ${join(outDir, "etcd")})`)
        systems.push(await startEtcd(bin, join(outDir, "etcd")))
      }
    }
    if (o.echo && o.soak === undefined) systems.push(await startEcho())
    for (const m of ours.members) {
      const pid = m.pid()
      if (pid !== null) pids.set(pid, m.name)
    }
    const knobs = { ...o, out: outDir }
    out.say(`paxos bench: ${systems.map((s) => s.label).join(" | ")}`)
    if (fsyncOff) out.say("UNSAFE: our nodes run without fsync (/status says fsync false): every figure of ours below leaves the disk out")
    out.say(
      `knobs: ${o.soak === undefined ? `concurrency ${o.concurrency.join(",")}, ${o.prewarmS} s prewarm, then ${o.runs} run(s) of ${o.warmupS} s warm-up + ${o.durationS} s measured` : `soak ${o.soak} at concurrency ${o.concurrency[0]}`}, target ${o.target}, ${o.httpOnly ? "GET /health only" : o.list ? "full list in replies" : "?list=false"}, client ${o.client}; machine ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`
    )
    const result: Record<string, unknown> = {
      tool: "paxos bench",
      format: 1,
      command: `paxos bench ${argv.join(" ")}`.trim(),
      startedAt,
      machine: machine(),
      knobs,
      unsafeNoFsync: fsyncOff,
      systems: systems.map((s) => ({ kind: s.kind, label: s.label, members: s.members.map((m) => m.name), logDir: s.logDir }))
    }
    if (o.soak !== undefined) result.soak = await soak(ours, o, out, fsyncOff)
    else Object.assign(result, await sweep(systems, o, out, fsyncOff))
    leaderName = ours.members[await ours.leader().catch(() => -1)]?.name ?? null
    result.finishedAt = new Date().toISOString()
    result.loadavgAtEnd = loadavg()
    await stopAll()
    if (o.profile) result.profiles = summarizeProfiles(profileDir, pids, leaderName, out)
    writeFileSync(join(outDir, "results.json"), JSON.stringify(result, null, 2) + "\n")
    writeFileSync(join(outDir, "summary.txt"), out.lines.join("\n") + "\n")
    note(`bench: results in ${join(outDir, "results.json")} and ${join(outDir, "summary.txt")}`)
    return 0
  } catch (e) {
    process.stderr.write(`paxos bench: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  } finally {
    await stopAll()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}
