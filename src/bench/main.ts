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
 *
 * This module runs it: it starts (or attaches to) the systems, runs the sweep or the soak, stops
 * everything it started, also on a signal, and writes the report. The command line is options.ts,
 * the runs runs.ts, their figures figures.ts, the report report.ts; the systems are paxos.ts,
 * etcd.ts and echo.ts.
 */
import { mkdirSync } from "node:fs"
import { loadavg } from "node:os"
import { join, resolve } from "node:path"
import { serveEcho, startEcho } from "./echo.ts"
import { startEtcdToCompare } from "./etcd.ts"
import { status } from "../client/http.ts"
import { BENCH_USAGE, parseBenchArgs, readBenchToken, type BenchOptions } from "./options.ts"
import { attachPaxos, nodeCommand, startPaxos } from "./paxos.ts"
import { makeOut, note, printHeader, resultsHead, summarizeProfiles, writeResults } from "./report.ts"
import { soak, sweep } from "./runs.ts"
import type { SystemUnderTest } from "./system.ts"

export { parseBenchArgs, type BenchOptions } from "./options.ts"
export type { Point } from "./figures.ts"

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
      const held = await valuesHeld(ours)
      const what = plannedAppends(o)
      if (what !== null) {
        if (held > 0 && !o.yes) {
          process.stderr.write(`paxos bench: the cluster of ${o.config} holds ${held} values already, and the bench would append ${what} to it; add --yes to do it anyway\n`)
          return 2
        }
        note(`bench: appending ${what} to the running cluster of ${o.config} (it holds ${held} values)`)
      }
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
      const etcd = await startEtcdToCompare(o.etcdBinary, join(outDir, "etcd"))
      if (etcd !== null) systems.push(etcd)
    }
    if (o.echo && o.soak === undefined) systems.push(await startEcho())
    for (const m of ours.members) {
      const pid = m.pid()
      if (pid !== null) pids.set(pid, m.name)
    }
    const knobs = { ...o, out: outDir }
    printHeader(out, systems, o, fsyncOff)
    const result = resultsHead(argv, startedAt, knobs, fsyncOff, systems)
    if (o.soak !== undefined) result.soak = await soak(ours, o, out, fsyncOff)
    else Object.assign(result, await sweep(systems, o, out, fsyncOff))
    leaderName = ours.members[await ours.leader().catch(() => -1)]?.name ?? null
    result.finishedAt = new Date().toISOString()
    result.loadavgAtEnd = loadavg()
    await stopAll()
    if (o.profile) result.profiles = summarizeProfiles(profileDir, pids, leaderName, out)
    writeResults(outDir, result, out)
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

/** The most values any member of `sys` holds (what its /status says; 0 when none answers). */
async function valuesHeld(sys: SystemUnderTest): Promise<number> {
  const all = await Promise.all(sys.members.map((m) => status(m.name, 2_000)))
  return Math.max(0, ...all.map((s) => s?.listLength ?? 0))
}

/** What the run will append to the cluster, in words (null: nothing, with --http-only). */
export function plannedAppends(o: BenchOptions): string | null {
  if (o.soak !== undefined) return `${o.soak} values`
  if (o.httpOnly) return null
  const seconds = o.prewarmS + o.runs * o.concurrency.length * (o.warmupS + o.durationS)
  return `as many values as it can in ${seconds} s of load (${o.runs} runs of ${o.warmupS + o.durationS} s at each of concurrency ${o.concurrency.join(", ")}, after ${o.prewarmS} s of prewarm)`
}
