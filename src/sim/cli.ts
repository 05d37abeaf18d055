/**
 * `paxos sim` / `bun run sim`: runs the deterministic simulator over many seeds and prints a summary.
 *
 *   bun run sim [--seeds N] [--seed S] [--nodes 3|5] [--ops N] [--clients N] [--no-faults]
 *               [--bug NAME [--expect-violation]] [--require-paths] [--out DIR] [--quiet]
 *
 * Without --nodes, seeds alternate between 3 and 5 nodes. A failing seed prints one command that
 * replays it exactly. Exit 0 when no seed violated anything (with --expect-violation: when some seed
 * did, which is how the planted bugs are shown to be caught), 1 otherwise, 2 on bad usage.
 */
import { BUG_NAMES, type BugName } from "../core/config.ts"
import { formatOp } from "../check/edn.ts"
import { defaultSimOptions, simulate, type SimOptions, type SimResult } from "./world.ts"

interface Args {
  seeds: number
  seed: number
  nodes: 3 | 5 | undefined
  ops: number
  clients: number
  faults: boolean
  bug: BugName | undefined
  expectViolation: boolean
  requirePaths: boolean
  out: string | undefined
  quiet: boolean
}

/** Protocol paths that the CI seeds must all exercise (issue: "no path goes untested"). */
export const REQUIRED_PATHS = [
  "path.elections",
  "path.elected",
  "path.preemptions",
  "path.noop-fills",
  "path.reproposed",
  "path.snapshots",
  "path.snapshot-installs",
  "path.snapshot-chunks",
  "path.catchups",
  "path.retransmits",
  "path.duplicates-answered"
] as const

const USAGE =
  "usage: paxos sim [--seeds N] [--seed S] [--nodes 3|5] [--ops N] [--clients N] [--no-faults] " +
  "[--bug " + BUG_NAMES.join("|") + " [--expect-violation]] [--require-paths] [--out DIR] [--quiet]"

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    seeds: 1, seed: 1, nodes: undefined, ops: 500, clients: 5, faults: true, bug: undefined,
    expectViolation: false, requirePaths: false, out: undefined, quiet: false
  }
  let seedsGiven = false
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new UsageError(`${flag} needs a value`)
      return v
    }
    const int = (lo: number, hi: number): number => {
      const raw = value()
      const v = Number(raw)
      if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new UsageError(`${flag} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(raw)}`)
      return v
    }
    switch (flag) {
      case "--seeds": a.seeds = int(1, 10_000_000); seedsGiven = true; break
      case "--seed": a.seed = int(0, 0xffffffff); break
      case "--nodes": {
        const n = int(3, 5)
        if (n !== 3 && n !== 5) throw new UsageError("--nodes must be 3 or 5")
        a.nodes = n
        break
      }
      case "--ops": a.ops = int(1, 1_000_000); break
      case "--clients": a.clients = int(1, 100); break
      case "--no-faults": a.faults = false; break
      case "--bug": {
        const b = value()
        if (!(BUG_NAMES as readonly string[]).includes(b)) throw new UsageError(`unknown bug ${JSON.stringify(b)}; one of ${BUG_NAMES.join(", ")}`)
        a.bug = b as BugName
        break
      }
      case "--expect-violation": a.expectViolation = true; break
      case "--require-paths": a.requirePaths = true; break
      case "--out": a.out = value(); break
      case "--quiet": a.quiet = true; break
      default: throw new UsageError(`unknown argument ${JSON.stringify(flag)}`)
    }
  }
  if (!seedsGiven) a.seeds = 1
  if (a.expectViolation && a.bug === undefined) throw new UsageError("--expect-violation goes with --bug")
  return a
}

const nodesFor = (a: Args, seed: number): 3 | 5 => a.nodes ?? (seed % 2 === 0 ? 5 : 3)

function optionsFor(a: Args, seed: number): SimOptions {
  return defaultSimOptions(seed, { nodes: nodesFor(a, seed), ops: a.ops, clients: a.clients, faults: a.faults, bug: a.bug })
}

/** The one command that replays `seed` exactly. */
export function replayCommand(a: Pick<Args, "ops" | "clients" | "faults" | "bug" | "nodes">, seed: number): string {
  const parts = ["bun run sim", `--seed ${seed}`, `--nodes ${a.nodes ?? (seed % 2 === 0 ? 5 : 3)}`]
  if (a.ops !== 500) parts.push(`--ops ${a.ops}`)
  if (a.clients !== 5) parts.push(`--clients ${a.clients}`)
  if (!a.faults) parts.push("--no-faults")
  if (a.bug !== undefined) parts.push(`--bug ${a.bug}`)
  return parts.join(" ")
}

function addCounters(into: Record<string, number>, r: SimResult): void {
  for (const [k, v] of Object.entries(r.counters)) into[k] = (into[k] ?? 0) + v
  into["path.preemptions"] =
    (into["path.stepped-down.preempted"] ?? 0) + (into["path.stepped-down.higher-ballot"] ?? 0)
}

async function writeFailure(dir: string, r: SimResult): Promise<string> {
  const { mkdir, writeFile } = await import("node:fs/promises")
  await mkdir(dir, { recursive: true })
  const path = `${dir}/sim-seed-${r.seed}.edn`
  await writeFile(path, r.history.map(formatOp).join("\n") + "\n")
  return path
}

export async function simCommand(argv: readonly string[]): Promise<number> {
  let a: Args
  try {
    a = parseArgs(argv)
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`paxos sim: ${e.message}\n${USAGE}`)
      return 2
    }
    throw e
  }
  const counters: Record<string, number> = {}
  let ops = 0
  let run = 0
  let violating = 0
  const started = performance.now()
  for (let seed = a.seed; seed < a.seed + a.seeds; seed++) {
    const r = simulate(optionsFor(a, seed))
    run++
    ops += r.history.filter((op) => op.type === "invoke").length
    addCounters(counters, r)
    if (r.violations.length > 0) {
      violating++
      if (!a.quiet || !a.expectViolation) {
        console.log(`seed ${seed} (${nodesFor(a, seed)} nodes): ${r.violations.length} violation(s)`)
        for (const v of r.violations.slice(0, 5)) console.log(`  ${v}`)
        console.log(`  replay: ${replayCommand(a, seed)}`)
        if (a.out !== undefined) console.log(`  history: ${await writeFailure(a.out, r)}`)
      }
      if (a.expectViolation) break
    }
  }
  const seconds = (performance.now() - started) / 1000
  printSummary(a, counters, run, ops, violating, seconds)
  if (a.expectViolation) {
    if (violating === 0) console.log(`FAIL: planted bug ${a.bug} was not caught in ${run} seeds`)
    else console.log(`ok: planted bug ${a.bug} caught after ${run} seed(s)`)
    return violating > 0 ? 0 : 1
  }
  let missing: string[] = []
  if (a.requirePaths) {
    missing = REQUIRED_PATHS.filter((p) => (counters[p] ?? 0) === 0)
    if (missing.length > 0) console.log(`FAIL: protocol paths never exercised: ${missing.join(", ")}`)
  }
  return violating === 0 && missing.length === 0 ? 0 : 1
}

function printSummary(a: Args, counters: Record<string, number>, run: number, ops: number, violating: number, seconds: number): void {
  if (!a.quiet) {
    const keys = Object.keys(counters).sort()
    const show = (prefix: string) =>
      keys.filter((k) => k.startsWith(prefix)).map((k) => `${k.slice(prefix.length)}=${counters[k]}`).join(" ")
    console.log(`faults: ${show("fault.")}`)
    console.log(`paths:  ${show("path.")}`)
    console.log(`clients: ${show("client.")}`)
  }
  console.log(
    `sim: ${run} seeds run, ${ops} ops checked, ${violating} with violations` +
      `${a.bug !== undefined ? ` (planted bug ${a.bug})` : ""}; ${seconds.toFixed(1)} s, ${(run / seconds).toFixed(1)} seeds/s`
  )
}
