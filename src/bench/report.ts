/**
 * The report of `paxos bench`: the tables and lines it prints on stdout (and keeps for
 * summary.txt), its progress notes on stderr, the profile summaries, and results.json.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs"
import { cpus, loadavg, release } from "node:os"
import { join } from "node:path"
import type { Figures, Ratios, SoakResult, SoakRow, TargetCheck } from "./figures.ts"
import type { BenchOptions } from "./options.ts"
import { summarizeProfile, type ProfileSummary } from "./profile.ts"
import { fmt, mib, table } from "./stats.ts"
import type { SystemUnderTest } from "./system.ts"

/** Where the report goes: each line to stdout, and kept for summary.txt. */
export interface Out {
  readonly lines: string[]
  say(s: string): void
}

export function makeOut(): Out {
  const lines: string[] = []
  return {
    lines,
    say(s: string) {
      lines.push(s)
      process.stdout.write(`${s}\n`)
    }
  }
}

/** A progress note on stderr (not part of the report). */
export const note = (s: string): void => {
  process.stderr.write(`${s}\n`)
}

/** Prints what is measured and how: the systems, whether our nodes run without fsync, the knobs and the machine. */
export function printHeader(out: Out, systems: readonly SystemUnderTest[], o: BenchOptions, fsyncOff: boolean): void {
  out.say(`paxos bench: ${systems.map((s) => s.label).join(" | ")}`)
  if (fsyncOff) out.say("UNSAFE: our nodes run without fsync (/status says fsync false): every figure of ours below leaves the disk out")
  out.say(
    `knobs: ${o.soak === undefined ? `concurrency ${o.concurrency.join(",")}, ${o.prewarmS} s prewarm, then ${o.runs} run(s) of ${o.warmupS} s warm-up + ${o.durationS} s measured` : `soak ${o.soak} at concurrency ${o.concurrency[0]}`}, target ${o.target}, ${o.httpOnly ? "GET /health only" : o.list ? "full list in replies" : "?list=false"}, client ${o.client}; machine ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`
  )
}

/** The start of results.json: the command, the machine, the knobs and the systems; the runs add the rest. */
export function resultsHead(argv: readonly string[], startedAt: string, knobs: BenchOptions, fsyncOff: boolean, systems: readonly SystemUnderTest[]): Record<string, unknown> {
  return {
    tool: "paxos bench",
    format: 1,
    command: `paxos bench ${argv.join(" ")}`.trim(),
    startedAt,
    machine: machine(),
    knobs,
    unsafeNoFsync: fsyncOff,
    systems: systems.map((s) => ({ kind: s.kind, label: s.label, members: s.members.map((m) => m.name), logDir: s.logDir }))
  }
}

/** Writes results.json and summary.txt (what `out` printed) into `dir`. */
export function writeResults(dir: string, result: Record<string, unknown>, out: Out): void {
  writeFileSync(join(dir, "results.json"), JSON.stringify(result, null, 2) + "\n")
  writeFileSync(join(dir, "summary.txt"), out.lines.join("\n") + "\n")
  note(`bench: results in ${join(dir, "results.json")} and ${join(dir, "summary.txt")}`)
}

const POINT_HEADER = ["system", "c", "ops/s", "mean", "p50", "p95", "p99", "max", "peerB/op", "msgs/op", "fsync/op", "fsync ms", "cpu ms/op", "bench cpu", "RSS MiB", "errors"]

/** A row of the sweep's table: one system's medians at one point. */
export function pointRow(system: string, c: number, f: Figures): string[] {
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

const x = (r: number | null): string => (r === null ? "-" : `${r.toFixed(2)}x`)

/** A row of the sweep's table: the ratios of two systems at one point. */
export function ratioRow(label: string, r: Ratios): string[] {
  return [label, String(r.concurrency), x(r.opsPerSec), x(r.meanMs), x(r.p50Ms), x(r.p95Ms), x(r.p99Ms), x(r.maxMs), x(r.peerBytesPerOp), "", x(r.fsyncsPerOp), x(r.fsyncMs), x(r.serverCpuMsPerOp), "", x(r.maxRss), ""]
}

const targetLines = (ts: readonly TargetCheck[]): string[] =>
  ts.map((t) => `  ${t.met === null ? "n/a " : t.met ? "MET " : "MISS"}  ${t.name}: ${t.value === null ? "-" : t.value.toFixed(2)} (goal ${t.goal})`)

/** What the bench prints instead of the targets when our nodes run without fsync. */
const NO_FSYNC_TARGETS = "targets: not checked: our nodes ran without fsync (--unsafe-no-fsync), so this run shows what the disk costs, not the targets"

/** Prints the sweep's table (rows of {@link pointRow} and {@link ratioRow}) and its targets, or why they were not checked. */
export function printSweep(out: Out, runs: number, rows: readonly string[][], targets: readonly TargetCheck[], fsyncOff: boolean): void {
  out.say(`medians of ${runs} run(s) per point; latency in ms; peerB, msgs and fsync per operation summed over members; cpu ms/op = all members' CPU per operation; bench cpu = the load generator's cores`)
  out.say(table(POINT_HEADER, rows))
  if (fsyncOff) {
    out.say("")
    out.say(NO_FSYNC_TARGETS)
  } else if (targets.length > 0) {
    out.say("")
    out.say("targets (ratios in this run, both systems with fsync on):")
    for (const l of targetLines(targets)) out.say(l)
  }
}

const SOAK_HEADER = ["decile", "appends", "ops/s", "p50", "p99", "max", "peerB/op", "msgs/op", "fsync/op", "fsync ms", "cpu ms/op", "RSS MiB", "list length"]

/** Prints what the soak will do, and its table's header. */
export function printSoakStart(out: Out, o: BenchOptions): void {
  out.say(`soak: ${(o.soak as number).toLocaleString("en-US")} appends at concurrency ${o.concurrency[0]} to ${o.target}, ${o.warmupS} s warm-up first; one row per 10%`)
  out.say(table(SOAK_HEADER, []).split("\n").slice(0, 2).join("\n"))
}

/** Prints the soak's row of one tenth, in the columns of its header. */
export const printSoakRow = (out: Out, r: SoakRow): void => out.say(soakRow(r))

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

/** Prints how the soak ended: appends, time, errors, each member's memory fit, and the targets or why they were not checked. */
export function printSoakEnd(out: Out, r: SoakResult, members: readonly string[], fsyncOff: boolean): void {
  out.say("")
  out.say(`soak done: ${r.appends.toLocaleString("en-US")} appends in ${r.elapsedS.toFixed(1)} s, ${r.errors} errors${r.errors > 0 ? ` ${JSON.stringify(r.errorKinds)}` : ""}`)
  r.memory.forEach((m, i) => {
    if (m !== null) out.say(`  ${members[i]}: RSS ≈ ${mib(m.constantBytes)} MiB + ${m.bytesPerValue.toFixed(1)} bytes × list length`)
  })
  if (fsyncOff) out.say(NO_FSYNC_TARGETS)
  else if (r.targets.length > 0) {
    out.say("targets:")
    for (const l of targetLines(r.targets)) out.say(l)
  }
}

/** Summarizes the nodes' profiles (named by pid) into OUT/profile/*.summary.txt; prints the leader's. */
export function summarizeProfiles(dir: string, pids: Map<number, string>, leaderName: string | null, out: Out): ProfileSummary[] {
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

/** The machine the bench ran on, for results.json. */
function machine() {
  const c = cpus()
  return { cpus: c.length, cpuModel: c[0]?.model ?? "unknown", kernel: release(), bun: Bun.version, loadavgAtStart: loadavg() }
}
