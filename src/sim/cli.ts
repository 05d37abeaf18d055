/**
 * `paxos sim` / `bun run sim`: runs the deterministic simulator over many seeds and prints a summary.
 *
 *   bun run sim [--seeds N] [--seed S] [--nodes 3|5] [--ops N] [--clients N] [--no-faults]
 *               [--bug NAME [--expect-violation]] [--require-paths] [--out DIR]
 *               [--jobs N] [--stop-on-violation] [--quiet]
 *
 * Without --nodes, seeds alternate between 3 and 5 nodes. Seeds run in --jobs worker threads
 * (default: one per core; 1 runs them in this thread), each exactly as it runs alone. A failing
 * seed is printed when found, with the one command that replays it exactly. A progress line goes
 * to stderr (progress.ts) unless --quiet. Exit 0 when no seed violated anything (with
 * --expect-violation: when some seed did, which is how the planted bugs are shown to be caught),
 * 1 otherwise, 2 on bad usage.
 */
import { availableParallelism } from "node:os"
import { BUG_NAMES, type BugName } from "../core/config.ts"
import { closest, shortUsage } from "../cli/args.ts"
import { formatOp } from "../check/edn.ts"
import { stderrProgress } from "../progress.ts"
import { MAX_JOBS, runSeeds, type RanSeed } from "./pool.ts"
import { RunDigest } from "./seed.ts"
import { defaultSimOptions, type SimOptions } from "./world.ts"

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
  jobs: number
  stopOnViolation: boolean
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
  "path.duplicates-answered",
  // Membership (docs/MEMBERSHIP.md): changes of each kind, and the hard cases.
  "member.add",
  "member.bind",
  "member.promote",
  "member.remove",
  "member.replace",
  "member.wiped-removed",
  "member.remove-leader",
  "member.leader-removed-itself",
  "member.undecided-at-crash",
  "member.recovered-in-phase1",
  "member.promises-two-configs",
  "member.promoted-in-partition",
  "member.wipe-refused",
  "member.refused.in-flight",
  "member.former-answered"
] as const

export const SIM_USAGE = `usage: paxos sim [--seeds N] [--seed S] [--nodes 3|5] [--ops N] [--clients N] [--no-faults]
                 [--bug NAME [--expect-violation]] [--require-paths] [--out DIR]
                 [--jobs N] [--stop-on-violation] [--quiet]

Runs the real core on 3 or 5 simulated nodes under seeded faults (crashes, partitions, pauses,
lost, duplicated and delayed messages, slow disks) and checks every safety property after every
step and the client history at the end. A seed replays exactly.

options:
  --seeds N            how many seeds to run, from --seed on (default: 1)
  --seed S             the first seed (default: 1)
  --nodes 3|5          nodes per run (default: 3 for odd seeds, 5 for even ones)
  --ops N              client operations per seed (default: 500)
  --clients N          concurrent clients per seed (default: 5)
  --no-faults          no faults at all (default: faults drawn from the seed)
  --bug NAME           plant a bug the checks must catch: ${BUG_NAMES.join(", ")} (default: none)
  --expect-violation   with --bug: exit 0 only if a violation was found
  --require-paths      exit 1 unless every protocol path was seen over the seeds
  --out DIR            write each failing seed's history here, as EDN (default: none)
  --jobs N             seeds in parallel worker threads, 1 to ${MAX_JOBS} (default: the number of cores)
  --stop-on-violation  stop at the first violation
  --quiet              no progress line

exit codes: 0 no violation (or, with --expect-violation, one found), 1 otherwise, 2 usage`

export const SIM_FLAGS = ["seeds", "seed", "nodes", "ops", "clients", "no-faults", "bug", "expect-violation", "require-paths", "out", "quiet", "jobs", "stop-on-violation"]

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    seeds: 1, seed: 1, nodes: undefined, ops: 500, clients: 5, faults: true, bug: undefined,
    expectViolation: false, requirePaths: false, out: undefined, quiet: false,
    jobs: defaultJobs(), stopOnViolation: false
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
      case "--jobs": a.jobs = int(1, MAX_JOBS); break
      case "--stop-on-violation": a.stopOnViolation = true; break
      default: {
        const close = flag.startsWith("--") ? closest(flag.slice(2), SIM_FLAGS) : null
        throw new UsageError(`unknown argument ${JSON.stringify(flag)}${close === null ? "" : ` (did you mean --${close}?)`}`)
      }
    }
  }
  if (!seedsGiven) a.seeds = 1
  if (a.expectViolation && a.bug === undefined) throw new UsageError("--expect-violation goes with --bug")
  return a
}

/** One job per core, within 1 to MAX_JOBS. */
function defaultJobs(): number {
  return Math.max(1, Math.min(MAX_JOBS, availableParallelism()))
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

function addCounters(into: Record<string, number>, r: RanSeed): void {
  for (const [k, v] of Object.entries(r.counters)) into[k] = (into[k] ?? 0) + v
  into["path.preemptions"] =
    (into["path.stepped-down.preempted"] ?? 0) + (into["path.stepped-down.higher-ballot"] ?? 0)
}

async function writeFailure(dir: string, r: RanSeed): Promise<string> {
  const { mkdir, writeFile } = await import("node:fs/promises")
  await mkdir(dir, { recursive: true })
  const path = `${dir}/sim-seed-${r.seed}.edn`
  await writeFile(path, (r.history ?? []).map(formatOp).join("\n") + "\n")
  return path
}

/** What the summary reports of a run. */
interface Totals {
  readonly counters: Record<string, number>
  run: number
  ops: number
  violating: number
  stopped: boolean
  readonly digest: RunDigest
}

export async function simCommand(argv: readonly string[]): Promise<number> {
  let a: Args
  try {
    a = parseArgs(argv)
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`paxos sim: ${e.message}\n${shortUsage(SIM_USAGE)}`)
      return 2
    }
    throw e
  }
  const t: Totals = { counters: {}, run: 0, ops: 0, violating: 0, stopped: false, digest: new RunDigest() }
  const jobs = Math.min(a.jobs, a.seeds)
  const progress = stderrProgress({ label: "sim", total: a.seeds, unit: "seeds", quiet: a.quiet })
  const status = () => ({ done: t.run, counts: [["violations", t.violating]] as const })
  // Keeps the line's clock going while workers run long seeds (this thread is free then).
  const timer = jobs > 1 ? setInterval(() => progress.update(status()), 250) : null
  const started = performance.now()
  try {
    const r = await runSeeds({
      first: a.seed,
      count: a.seeds,
      jobs,
      optionsFor: (seed) => optionsFor(a, seed),
      onOutcome: async (r) => {
        t.run++
        t.ops += r.ops
        t.digest.add(r.digest)
        addCounters(t.counters, r)
        if (r.violations.length > 0) t.violating++
        progress.update(status())
        if (r.violations.length > 0 && (!a.quiet || !a.expectViolation)) {
          const where = a.out === undefined ? null : await writeFailure(a.out, r)
          progress.above(() => {
            console.log(`seed ${r.seed} (${r.nodes} nodes): ${r.violations.length} violation(s)`)
            for (const v of r.violations.slice(0, 5)) console.log(`  ${v}`)
            console.log(`  replay: ${replayCommand(a, r.seed)}`)
            if (where !== null) console.log(`  history: ${where}`)
          })
        }
        return r.violations.length > 0 && (a.expectViolation || a.stopOnViolation)
      }
    })
    t.stopped = r.stopped
  } catch (e) {
    progress.finish()
    console.error(`paxos sim: ${e instanceof Error ? e.message : String(e)}`)
    return 1
  } finally {
    if (timer !== null) clearInterval(timer)
  }
  progress.finish()
  const seconds = (performance.now() - started) / 1000
  printSummary(a, t, jobs, seconds)
  if (a.expectViolation) {
    if (t.violating === 0) console.log(`FAIL: planted bug ${a.bug} was not caught in ${t.run} seeds`)
    else console.log(`ok: planted bug ${a.bug} caught after ${t.run} seed(s)`)
    return t.violating > 0 ? 0 : 1
  }
  let missing: string[] = []
  if (a.requirePaths) {
    missing = REQUIRED_PATHS.filter((p) => (t.counters[p] ?? 0) === 0)
    if (missing.length > 0) console.log(`FAIL: protocol paths never exercised: ${missing.join(", ")}`)
  }
  return t.violating === 0 && missing.length === 0 ? 0 : 1
}

function printSummary(a: Args, t: Totals, jobs: number, seconds: number): void {
  if (!a.quiet) {
    const keys = Object.keys(t.counters).sort()
    const show = (prefix: string) =>
      keys.filter((k) => k.startsWith(prefix)).map((k) => `${k.slice(prefix.length)}=${t.counters[k]}`).join(" ")
    console.log(`faults: ${show("fault.")}`)
    console.log(`paths:  ${show("path.")}`)
    console.log(`members: ${show("member.")}`)
    console.log(`clients: ${show("client.")}`)
  }
  const ran = t.stopped ? `${t.run} of ${a.seeds} seeds run (stopped at a violation)` : `${t.run} seeds run`
  console.log(
    `sim: ${ran}, ${t.ops} ops checked, ${t.violating} with violations` +
      `${a.bug !== undefined ? ` (planted bug ${a.bug})` : ""}; digest ${t.digest}; ` +
      `${seconds.toFixed(1)} s, ${(t.run / seconds).toFixed(1)} seeds/s, ${jobs} job${jobs === 1 ? "" : "s"}`
  )
}
