/**
 * `paxos check FILE`: reads a Jepsen EDN history and decides whether it is linearizable.
 *
 * Exit 0 valid, 1 invalid, 2 usage error, unreadable file, or nothing to check: no client op of
 * the list-append form (`:f :txn`) in the file. Client ops of another `:f`, and ops whose fields
 * it cannot read, are skipped and reported (how many, why, a line of each kind), also beside a
 * verdict; non-client events (`:process :nemesis`) are skipped on purpose and only counted. A short
 * summary goes to stdout; for an invalid history each anomaly follows, with the ops that show it
 * as EDN lines. Every error is one line on stderr, never a stack trace.
 */
import { readFile } from "node:fs/promises"
import { closest, shortUsage } from "../cli/args.ts"
import { stderrProgress } from "../progress.ts"
import { checkOps, type CheckResult, type CheckStats, ERROR_KINDS } from "./checker.ts"
import { EdnError, formatOp } from "./edn.ts"
import { HistoryError, parseHistory, type ParsedHistory, type SkippedEvent } from "./history.ts"

/** Where the command writes: one call per line. Defaults to console.log / console.error. */
export interface CheckIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
}

/** The options of `paxos check`. */
export const CHECK_FLAGS = ["max-errors", "quiet"]

export const CHECK_USAGE = `usage: paxos check [--max-errors N] [--quiet] FILE

Decides whether a Jepsen list-append history (a history.edn, one op map a line; - for stdin) is
linearizable, exactly, and on an invalid one prints the smallest set of ops that shows each
anomaly.

options:
  --max-errors N   ops shown per kind of anomaly (default: 10)
  --quiet          no progress line on a long read (default: one after 2 s)

exit codes: 0 valid, 1 invalid, 2 usage, unreadable file, or nothing to check`

const defaultIo: CheckIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
}

/** Runs `paxos check` with the arguments after `check`; returns the exit code. */
export async function checkCommand(argv: string[], io: CheckIo = defaultIo): Promise<number> {
  const args = parseArgs(argv)
  if (typeof args === "string") {
    io.err(`paxos check: ${args}\n${shortUsage(CHECK_USAGE)}`)
    return 2
  }
  if (args.help) {
    io.out(CHECK_USAGE)
    return 0
  }
  let text: string
  try {
    text = await readFile(args.file, "utf8")
  } catch (e) {
    io.err(`paxos check: cannot read ${args.file}: ${fileError(e)}`)
    return 2
  }
  let parsed: ParsedHistory | undefined
  let result: CheckResult
  // A line on stderr only when reading the ops takes more than a couple of seconds (a large file).
  const progress = stderrProgress({ label: "check", total: Math.max(1, text.length) / 1e6, unit: "MB", quiet: args.quiet, showAfterMs: 2_000 })
  try {
    parsed = parseHistory(text, { skipUnreadable: true, onProgress: (at) => progress.update({ done: at / 1e6 }) })
    if (parsed.ops.length === 0) {
      io.err(`paxos check: ${args.file}: nothing to check: ${nothingToCheck(parsed)}`)
      return 2
    }
    result = checkOps(parsed.ops, { maxErrorsPerKind: args.maxErrors })
  } catch (e) {
    const leftOut = parsed !== undefined && parsed.skipped.length > 0 ? `; skipped before: ${skippedGroups(parsed.skipped).join("; ")}` : ""
    io.err(`paxos check: ${describeFailure(args.file, e)}${leftOut}`)
    return 2
  } finally {
    progress.finish()
  }
  report(args.file, { ...result, stats: { ...result.stats, ignored: parsed.nonClient } }, parsed.skipped, io)
  return result.valid ? 0 : 1
}

/** Why a file with no client op of the list-append form has nothing to check, on one line. */
function nothingToCheck(p: ParsedHistory): string {
  if (p.nonClient === 0 && p.skipped.length === 0) return "the file holds no ops"
  const nonClient = p.nonClient > 0 ? [`${count(p.nonClient, "non-client event")} (such as :process :nemesis)`] : []
  return `no client op of the list-append form (:f :txn), only ${[...nonClient, ...skippedGroups(p.skipped)].join("; ")}`
}

/** The client events left out, one phrase per kind and rule, in the order they first occur, each with its first line. */
function skippedGroups(skipped: readonly SkippedEvent[]): string[] {
  const groups = new Map<string, { first: SkippedEvent; n: number }>()
  for (const s of skipped) {
    const key = `${s.kind} ${s.rule}`
    const g = groups.get(key)
    if (g === undefined) groups.set(key, { first: s, n: 1 })
    else g.n++
  }
  return [...groups.values()].map(({ first, n }) => {
    if (first.kind === "not-txn") return `${count(n, "client op")} with ${first.rule}, not :txn${example(first, "")}`
    const found = first.reason === first.rule ? "" : first.reason.startsWith(`${first.rule}, `) ? first.reason.slice(first.rule.length) : `: ${first.reason}`
    return `${count(n, "unreadable op")}: ${first.rule}${example(first, found)}`
  })
}

/** " (e.g. line 7, found x)": where the first event of a group is, and what it holds. */
function example(s: SkippedEvent, found: string): string {
  return s.line === undefined ? "" : ` (e.g. line ${s.line}${found})`
}

/** "1 op", "2 ops". */
function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`
}

interface Args {
  readonly file: string
  readonly maxErrors: number
  readonly help: boolean
  readonly quiet: boolean
}

/** Parses the arguments, or returns what is wrong with them. */
function parseArgs(argv: readonly string[]): Args | string {
  let file: string | undefined
  let maxErrors = 10
  let quiet = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === "-h" || a === "--help") return { file: "", maxErrors, help: true, quiet }
    if (a === "--max-errors") {
      const n = Number(argv[++i])
      if (!Number.isSafeInteger(n) || n < 0) return "--max-errors needs a non-negative integer"
      maxErrors = n
    } else if (a === "--quiet") quiet = true
    else if (a.startsWith("-") && a !== "-") {
      const close = a.startsWith("--") ? closest(a.slice(2), [...CHECK_FLAGS, "help"]) : null
      return `unknown option ${a}${close === null ? "" : ` (did you mean --${close}?)`}`
    }
    else if (file !== undefined) return "expected exactly one FILE"
    else file = a
  }
  if (file === undefined) return "missing FILE"
  return { file: file === "-" ? "/dev/stdin" : file, maxErrors, help: false, quiet }
}

/** A one-line reason for a failed file read. */
function fileError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code
  if (code === "ENOENT") return "no such file"
  if (code === "EISDIR") return "it is a directory"
  if (code === "EACCES") return "permission denied"
  return oneLine(e instanceof Error ? e.message : String(e))
}

/** A one-line description of why a history could not be checked. */
function describeFailure(file: string, e: unknown): string {
  if (e instanceof EdnError) return `${file}:${e.line}:${e.column}: malformed EDN: ${e.reason}`
  if (e instanceof HistoryError)
    return `${file}${e.line === undefined ? "" : `:${e.line}`}: not a list-append history: ${oneLine(e.reason)}`
  if (e instanceof RangeError) return `${file}: too large or too deeply nested to check (${oneLine(e.message)})`
  return `${file}: internal error: ${oneLine(e instanceof Error ? e.message : String(e))}`
}

/** Collapses a message to one line. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim()
}

/**
 * Prints the summary, what was left out and why, the verdict and, for an invalid history, each
 * anomaly with its ops.
 */
function report(file: string, result: CheckResult, skipped: readonly SkippedEvent[], io: CheckIo): void {
  io.out(`history: ${file}`)
  for (const line of summary(result.stats)) io.out(line)
  const leftOut = skipped.length === 0 ? "" : `; ${count(skipped.length, "client event")} skipped (see above)`
  if (skipped.length > 0) {
    io.out(`skipped: ${count(skipped.length, "client event")} it could not use, left out of the verdict:`)
    for (const g of skippedGroups(skipped)) io.out(`  ${g}`)
  }
  if (result.valid) {
    io.out(`verdict: valid (linearizable)${leftOut}`)
    return
  }
  const counts = ERROR_KINDS.filter((k) => (result.errorCounts[k] ?? 0) > 0).map((k) => `${k} ${result.errorCounts[k]}`)
  const total = Object.values(result.errorCounts).reduce((a, b) => a + (b ?? 0), 0)
  io.out(`verdict: INVALID (not linearizable): ${total} anomal${total === 1 ? "y" : "ies"} (${counts.join(", ")})${leftOut}`)
  for (const e of result.errors) {
    io.out("")
    io.out(`${e.kind}: ${e.message}`)
    for (const op of e.ops) io.out(`  ${formatOp(op)}`)
  }
  for (const k of ERROR_KINDS) {
    const shown = result.errors.filter((e) => e.kind === k).length
    const all = result.errorCounts[k] ?? 0
    if (all > shown) io.out(`\n(${all - shown} more ${k} anomalies not shown; see --max-errors)`)
  }
  io.err(`paxos check: ${file} is not linearizable: ${counts.join(", ")}`)
}

/** The summary lines for the stats. */
function summary(s: CheckStats): string[] {
  const outcome = (c: { ok: number; fail: number; info: number }) => `${c.ok} ok, ${c.fail} fail, ${c.info} info`
  const skipped = s.ignored > 0 ? `; ${s.ignored} non-client events skipped` : ""
  return [
    `ops: ${s.ops} (${s.events} events${skipped})`,
    `appends: ${s.appends.ok + s.appends.fail + s.appends.info} (${outcome(s.appends)})`,
    `reads: ${s.reads.ok + s.reads.fail + s.reads.info} (${outcome(s.reads)})`,
    `final list length: ${s.finalLength}`,
  ]
}
