/**
 * The exact linearizability checker for a single append-only list (README, "History files").
 *
 * Every ok list (reads, and appends that returned the list) is a snapshot of the one list, so
 * the longest ok list L fixes the order of every value any op observed. Each operation that takes
 * part gets a position in that order:
 *
 *   - an append whose value is at index i of L:          pos = 2i + 1
 *   - an ok read that returned a list of length k:       pos = 2k  (just after the k-th append)
 *   - an ok append whose value is in no list:            pos = 2|L| + 1  (after everything seen)
 *
 * :info appends whose value appears in L take part (they took effect; they never completed, so
 * they only ever need to come *after* something); :info appends whose value appears nowhere, all
 * :fail ops, and :info reads are left out (they may be taken to have had no effect).
 *
 * The checks: (1) each ok append's list ends with its own value; (2) each ok list is a prefix of
 * L ("divergent" otherwise); (3) no value is twice in L; (4) each value of L was appended by an
 * invoked op ("phantom") that did not :fail ("failed-append-appears"); (5) real time: whenever A
 * completed before B was invoked, pos(A) <= pos(B). The sweep finds every B with some such A of
 * larger position: ops sorted by completion, B taken in invocation order, a running maximum of
 * the positions of ops completed before B's invocation. O(n log n) plus the total list size.
 *
 * Why this is exact. Soundness: each error names ops whose results no sequential list can
 * produce in an order that respects real time (their lists disagree, show a value that was never
 * or unsuccessfully appended, or put an op before one that finished before it began). A
 * violation of (5) is pos(A) > pos(B): for an append A and read B it means B's list misses A's
 * value; for a read A and append B, A's list already held B's value; for appends, A's value
 * sits after B's; for reads, A saw more than B; for an ok append A seen nowhere, B (or the list
 * placing B) misses A's value. Completeness: if no check fails, sort the taking-part ops by
 * (pos, completion rank). Appends then run in the order of L followed by the never-seen ok
 * appends (equal positions, ordered by completion), so a read at pos 2k follows exactly the first
 * k appends and returns L[0..k), its own list by (2); an ok append at index i returns
 * L[0..i], its own list by (1)-(3); every value of L is appended once by a taking-part op by
 * (3)-(4) and uniqueness of appended values. Real time holds: if A completed before B was
 * invoked then pos(A) <= pos(B) by (5); equal positions occur only between reads of equal
 * length or between never-seen appends, and the tie-break by completion rank puts A first since
 * A completed before B was even invoked. So the sorted order is a linearization.
 *
 * Note: an ok append that appears in no list is not by itself an error: it may be linearized
 * after every observed list. It is reported as "lost-append" as soon as some op invoked after it
 * completed observed a list without it. No Bun or Node APIs here.
 */
import { pairOps, readTxns, type Op, type Txn } from "./history.ts"

/** The kinds of anomaly, in the order they are reported. */
export const ERROR_KINDS = [
  "own-value-not-last",
  "divergent",
  "duplicate",
  "phantom",
  "failed-append-appears",
  "lost-append",
  "stale-read",
  "real-time",
] as const

export type ErrorKind = (typeof ERROR_KINDS)[number]

/** One anomaly: a sentence, and the smallest set of history events that shows it. */
export interface CheckError {
  readonly kind: ErrorKind
  readonly message: string
  /** Invocations and completions of the operations involved, sorted by :index. */
  readonly ops: readonly Op[]
}

/** Operations by outcome (an invocation never completed counts as info). */
export interface OutcomeCounts {
  ok: number
  fail: number
  info: number
}

export interface CheckStats {
  /** Client operations (invocations). */
  ops: number
  /** Client events (invocations and completions). */
  events: number
  /** Events skipped as non-client (nemesis, other :f). */
  ignored: number
  appends: OutcomeCounts
  reads: OutcomeCounts
  /** Length of the longest ok list. */
  finalLength: number
}

export interface CheckResult {
  readonly valid: boolean
  /** The anomalies found, at most `maxErrorsPerKind` of each kind, in a stable order. */
  readonly errors: CheckError[]
  /** How many anomalies of each kind were found in all (including those not listed). */
  readonly errorCounts: Partial<Record<ErrorKind, number>>
  readonly stats: CheckStats
}

export interface CheckOptions {
  /** Errors kept per kind (all are counted). Default 10. */
  readonly maxErrorsPerKind?: number
  /** Told how far the reading of a history's text has come: the offset of each op read. */
  readonly onProgress?: (offset: number) => void
}

/** Checks a history file's text. Throws EdnError or HistoryError when it cannot be checked. */
export function checkHistoryText(text: string, options: CheckOptions = {}): CheckResult {
  const { txns, ops, ignored } = readTxns(text, options.onProgress)
  const result = checkTxns(txns, options)
  return { ...result, stats: { ...result.stats, events: ops.length, ignored } }
}

/** Checks client ops (events). Throws HistoryError when they cannot be paired. */
export function checkOps(ops: readonly Op[], options: CheckOptions = {}): CheckResult {
  const result = checkTxns(pairOps(ops), options)
  return { ...result, stats: { ...result.stats, events: ops.length } }
}

/** Checks paired operations (from {@link pairOps}, in invocation order). */
export function checkTxns(txns: readonly Txn[], options: CheckOptions = {}): CheckResult {
  const sink = new Sink(options.maxErrorsPerKind ?? 10)
  const ctx = orderOf(txns, sink)
  checkOwnValues(ctx)
  checkProvenance(ctx)
  checkRealTime(ctx, placements(ctx))
  const errors = [...sink.errors].sort((a, b) => ERROR_KINDS.indexOf(a.kind) - ERROR_KINDS.indexOf(b.kind))
  return {
    valid: sink.total === 0,
    errors,
    errorCounts: sink.counts,
    stats: statsOf(txns, ctx.L.length),
  }
}

// ---------------------------------------------------------------------------------------------

/** Collects errors, keeping at most `max` of each kind. */
class Sink {
  readonly errors: CheckError[] = []
  readonly counts: Partial<Record<ErrorKind, number>> = {}
  total = 0
  constructor(private readonly max: number) {}

  /** Records an anomaly shown by the given operations (undefined entries are skipped). */
  add(kind: ErrorKind, message: string, txns: ReadonlyArray<Txn | undefined>): void {
    const n = (this.counts[kind] ?? 0) + 1
    this.counts[kind] = n
    this.total++
    if (n <= this.max) this.errors.push({ kind, message, ops: eventsOf(txns) })
  }
}

/** The invocations and completions of distinct operations, sorted by :index. */
function eventsOf(txns: ReadonlyArray<Txn | undefined>): Op[] {
  const seen = new Set<Txn>()
  const out: Op[] = []
  for (const t of txns) {
    if (t === undefined || seen.has(t)) continue
    seen.add(t)
    out.push(t.invoke)
    if (t.completion !== null) out.push(t.completion)
  }
  return out.sort((a, b) => a.index - b.index)
}

/** What the checks share: the order L and who shows which part of it. */
interface Ctx {
  readonly txns: readonly Txn[]
  readonly sink: Sink
  /** The longest ok list, and the op that returned it. */
  readonly L: readonly number[]
  readonly longest: Txn | undefined
  /** Ops whose list is not a prefix of L. */
  readonly divergent: ReadonlySet<Txn>
  /** Index in L of each value's first occurrence. */
  readonly indexOf: ReadonlyMap<number, number>
  /** Ops with a list that is a prefix of L, by (length, id). */
  readonly byLength: readonly Txn[]
}

/** Finds L, reports divergent lists and duplicates, and indexes L. */
function orderOf(txns: readonly Txn[], sink: Sink): Ctx {
  let longest: Txn | undefined
  for (const t of txns) if (t.list !== null && t.list.length > (longest?.list?.length ?? -1)) longest = t
  const L = longest?.list ?? []
  const divergent = new Set<Txn>()
  for (const t of txns) {
    if (t.list === null || t === longest) continue
    const j = firstDifference(t.list, L)
    if (j === -1) continue
    divergent.add(t)
    sink.add("divergent", divergenceMessage(t, longest as Txn, j), [longest, t])
  }
  const byLength = txns
    .filter((t) => t.list !== null && !divergent.has(t))
    .sort((a, b) => (a.list?.length ?? 0) - (b.list?.length ?? 0) || a.id - b.id)
  const ctx: Ctx = { txns, sink, L, longest, divergent, indexOf: new Map(), byLength }
  indexValues(ctx)
  return ctx
}

/** The first index where `list` is not a prefix of `L`, or -1 if it is one. */
function firstDifference(list: readonly number[], L: readonly number[]): number {
  for (let j = 0; j < list.length; j++) if (list[j] !== L[j]) return j
  return -1
}

/** Fills ctx.indexOf with the first index of each value of L; reports values seen twice. */
function indexValues(ctx: Ctx): void {
  const indexOf = ctx.indexOf as Map<number, number>
  ctx.L.forEach((v, j) => {
    const i = indexOf.get(v)
    if (i === undefined) {
      indexOf.set(v, j)
      return
    }
    const w = shortestShowing(ctx, j)
    ctx.sink.add("duplicate", `value ${v} appears twice in the list of ${desc(w)}, at indexes ${i} and ${j}`, [w])
  })
}

/** The op with the shortest list that still reaches index i of L (it exists for i < |L|). */
function shortestShowing(ctx: Ctx, i: number): Txn {
  const xs = ctx.byLength
  let lo = 0
  let hi = xs.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((xs[mid]?.list?.length ?? 0) > i) hi = mid
    else lo = mid + 1
  }
  return xs[lo] as Txn
}

/** Every ok append's list must end with its own value. */
function checkOwnValues(ctx: Ctx): void {
  for (const t of ctx.txns) {
    if (t.kind !== "append" || t.list === null) continue
    const last = t.list[t.list.length - 1]
    if (last === t.value) continue
    const ending = last === undefined ? "an empty list" : `a list ending with ${last}`
    ctx.sink.add("own-value-not-last", `${desc(t)} appended ${t.value} but returned ${ending}: ${show(t.list)}`, [t])
  }
}

/** Every value of L must come from an invoked append that did not fail. */
function checkProvenance(ctx: Ctx): void {
  const appends = new Map<number, Txn>()
  for (const t of ctx.txns) if (t.kind === "append" && t.value !== null) appends.set(t.value, t)
  for (const [v, i] of ctx.indexOf) {
    const a = appends.get(v)
    if (a !== undefined && a.outcome !== "fail") continue
    const w = shortestShowing(ctx, i)
    if (a === undefined)
      ctx.sink.add("phantom", `value ${v} at index ${i} of the list of ${desc(w)} was never appended by any op`, [w])
    else
      ctx.sink.add(
        "failed-append-appears",
        `value ${v} of the failed ${desc(a)} appears at index ${i} of the list of ${desc(w)}`,
        [a, w],
      )
  }
}

/** Where an operation sits in the order. */
interface Place {
  readonly pos: number
  /** Index in L of an append's value; undefined for reads and for appends seen in no list. */
  readonly at: number | undefined
  /** An op whose list shows this append's index (itself when its own list does). */
  readonly witness: Txn | undefined
}

/** The positions of the operations that take part (see the module comment). */
function placements(ctx: Ctx): Map<Txn, Place> {
  const places = new Map<Txn, Place>()
  const unseen = 2 * ctx.L.length + 1
  for (const t of ctx.txns) {
    if (ctx.divergent.has(t) || t.outcome === "fail") continue
    if (t.kind === "read") {
      if (t.list !== null) places.set(t, { pos: 2 * t.list.length, at: undefined, witness: t })
      continue
    }
    const i = t.value === null ? undefined : ctx.indexOf.get(t.value)
    if (i !== undefined) {
      const own = t.list !== null && t.list.length === i + 1 && t.list[i] === t.value
      places.set(t, { pos: 2 * i + 1, at: i, witness: own ? t : shortestShowing(ctx, i) })
    } else if (t.outcome === "ok") places.set(t, { pos: unseen, at: undefined, witness: undefined })
  }
  return places
}

/**
 * Real time: for each op B (in invocation order), the op A of largest position among those
 * completed before B was invoked must not be placed after B.
 */
function checkRealTime(ctx: Ctx, places: ReadonlyMap<Txn, Place>): void {
  const done = [...places.keys()]
    .filter((t) => Number.isFinite(t.completeRank))
    .sort((a, b) => a.completeRank - b.completeRank)
  let next = 0
  let best: { t: Txn; p: Place } | undefined
  for (const b of ctx.txns) {
    const pb = places.get(b)
    if (pb === undefined) continue
    for (; next < done.length && (done[next] as Txn).completeRank < b.invokeRank; next++) {
      const a = done[next] as Txn
      const pa = places.get(a) as Place
      if (best === undefined || pa.pos > best.p.pos) best = { t: a, p: pa }
    }
    if (best !== undefined && best.p.pos > pb.pos) reportRealTime(ctx, best.t, best.p, b, pb)
  }
}

/** Words and witnesses for a real-time violation: A completed before B began, but pos(A) > pos(B). */
function reportRealTime(ctx: Ctx, a: Txn, pa: Place, b: Txn, pb: Place): void {
  const nb = b.list?.length ?? 0
  if (a.kind === "append" && pa.at === undefined) {
    const head = `acknowledged append of ${a.value} (${desc(a)}) appears in no list, yet ${desc(b)}, invoked after it completed,`
    if (b.kind === "read") ctx.sink.add("lost-append", `${head} read ${nb} values without it`, [a, b])
    else ctx.sink.add("lost-append", `${head} appended ${b.value} at index ${pb.at} before it`, [a, b, pb.witness])
  } else if (b.kind === "read") {
    const why =
      a.kind === "append"
        ? `missing ${a.value} (index ${pa.at}), appended by ${desc(a)}`
        : `fewer than the ${a.list?.length ?? 0} values read by ${desc(a)}`
    ctx.sink.add("stale-read", `${desc(b)} read ${nb} values, ${why}, which completed before the read was invoked`, [a, b])
  } else if (a.kind === "read") {
    const msg = `${desc(a)} read ${b.value} (index ${pb.at}) and completed before ${desc(b)} appending it was invoked`
    ctx.sink.add("real-time", msg, [a, b])
  } else {
    const msg =
      `${desc(a)} appending ${a.value} completed before ${desc(b)} appending ${b.value} was invoked, ` +
      `yet ${a.value} is at index ${pa.at}, after ${b.value} at index ${pb.at}`
    ctx.sink.add("real-time", msg, [a, b, pa.witness])
  }
}

/** Counts operations by kind and outcome. */
function statsOf(txns: readonly Txn[], finalLength: number): CheckStats {
  const appends: OutcomeCounts = { ok: 0, fail: 0, info: 0 }
  const reads: OutcomeCounts = { ok: 0, fail: 0, info: 0 }
  let events = 0
  for (const t of txns) {
    ;(t.kind === "append" ? appends : reads)[t.outcome]++
    events += t.completion === null ? 1 : 2
  }
  return { ops: txns.length, events, ignored: 0, appends, reads, finalLength }
}

/** The divergence message: op t's list differs from the longest at index j. */
function divergenceMessage(t: Txn, longest: Txn, j: number): string {
  const L = longest.list ?? []
  const list = t.list ?? []
  const theirs = j < L.length ? `${L[j]}` : "nothing (it is shorter)"
  return (
    `lists disagree at index ${j}: ${desc(t)} has ${list[j]} where the longest list, of ${desc(longest)}, has ${theirs}` +
    ` (${show(list)} vs ${show(L)})`
  )
}

/** "read op 12 (process 3)": an operation by its invocation's :index. */
function desc(t: Txn): string {
  const outcome = t.outcome === "ok" ? "" : `${t.outcome} `
  return `${outcome}${t.kind} op ${t.invoke.index} (process ${JSON.stringify(t.invoke.process)})`
}

/** A list for messages, abbreviated when long. */
function show(list: readonly number[]): string {
  if (list.length <= 12) return `[${list.join(" ")}]`
  return `[${list.slice(0, 5).join(" ")} ... ${list.slice(-5).join(" ")}] (${list.length} values)`
}
