/**
 * What a chaos run leaves: `results.json` (verdict, checker errors, op counts, throughput,
 * latency percentiles, faults applied, changes of membership), the plot `latency.svg`
 * (hand-written SVG: the latency of every op over time coloured by outcome, nemesis periods
 * shaded, changes of membership marked, and throughput per second), and the short summary printed
 * on stdout.
 */
import { formatOp } from "../check/edn.ts"
import type { CheckResult } from "../check/checker.ts"
import type { Crash, Mode } from "./cluster.ts"
import type { OpKind, Outcome3, Sample } from "./clients.ts"
import { ATTEMPTED, type ChangeOp, type ChangeRecord, type View } from "./members.ts"
import { describe, short, type FaultKind, type FaultRecord } from "./nemesis.ts"

export interface FinalRead {
  readonly node: string
  readonly ok: boolean
  readonly attempts: number
  /** Length of the list it returned (ok only). */
  readonly length: number | null
}

export interface RunReport {
  readonly options: Record<string, unknown>
  readonly mode: Mode
  readonly nodes: readonly string[]
  readonly out: string
  readonly startedAt: string
  /** Wall-clock seconds of the whole run, set-up to tear-down. */
  readonly wallSeconds: number
  /** Seconds during which clients invoked ops. */
  readonly clientSeconds: number
  /** When the clients began and stopped invoking ops (ns since the run began). */
  readonly clientStart: number
  readonly clientEnd: number
  readonly check: CheckResult | null
  /** Why the history could not be checked (then check is null). */
  readonly checkError: string | null
  readonly samples: readonly Sample[]
  readonly faults: readonly FaultRecord[]
  /** The fault kinds of the nemesis proper (partition, kill, pause). */
  readonly kinds: readonly FaultKind[]
  /** The member nemesis's doings; null when it did not run. */
  readonly membership: MembershipReport | null
  readonly crashes: readonly Crash[]
  readonly invariantViolations: ReadonlyArray<{ node: string; line: string }>
  readonly finalReads: readonly FinalRead[]
  readonly faultyBuild: string | null
  readonly notes: readonly string[]
  readonly interrupted: boolean
}

export interface MembershipReport {
  /** The hosts that started as members, and the spares. */
  readonly initial: readonly string[]
  readonly spares: readonly string[]
  readonly changes: readonly ChangeRecord[]
  /** The newest configuration after healing (null: no host answered). */
  readonly final: View | null
}

export interface Percentiles {
  readonly count: number
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
  readonly max: number | null
  readonly mean: number | null
}

/** Nearest-rank percentiles of values (milliseconds, rounded to 0.01). */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, mean: null }
  const xs = [...values].sort((a, b) => a - b)
  const at = (p: number) => round2(xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))] as number)
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return { count: xs.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round2(xs[xs.length - 1] as number), mean: round2(mean) }
}

const round2 = (x: number) => Math.round(x * 100) / 100
const ms = (ns: number) => ns / 1e6

type Counts = Record<Outcome3, number>
const zero = (): Counts => ({ ok: 0, fail: 0, info: 0 })

/** Op counts by kind and outcome. */
export function opCounts(samples: readonly Sample[]): Record<OpKind | "total", Counts> {
  const c: Record<OpKind | "total", Counts> = { append: zero(), read: zero(), "final-read": zero(), total: zero() }
  for (const s of samples) {
    c[s.kind][s.type]++
    c.total[s.type]++
  }
  return c
}

/** The problems that make the run fail (empty: it passed). */
export function problems(r: RunReport): string[] {
  const out: string[] = []
  if (r.interrupted) out.push("the run was interrupted")
  if (r.check === null) out.push(`the history could not be checked: ${r.checkError ?? "unknown reason"}`)
  else if (!r.check.valid) {
    const kinds = Object.entries(r.check.errorCounts).map(([k, n]) => `${n} ${k}`)
    out.push(`history is not linearizable: ${kinds.join(", ")}`)
  }
  if (r.invariantViolations.length > 0) out.push(`PAXOS-INVARIANT-VIOLATION logged by ${[...new Set(r.invariantViolations.map((v) => v.node))].join(", ")}`)
  for (const c of r.crashes) out.push(`node ${c.node} exited on its own (${c.signal ?? `exit code ${c.exitCode}`}) at ${(c.time / 1e9).toFixed(1)} s`)
  const failed = r.finalReads.filter((f) => !f.ok)
  if (failed.length > 0) out.push(`no final read succeeded at ${failed.map((f) => f.node).join(", ")} after healing (liveness)`)
  return out
}

/** Counts of one kind of change (or of all). */
export interface ChangeCounts {
  /** Changes asked of the cluster (a view told what to ask). */
  attempted: number
  /** Answered 200: the change is in the log. */
  completed: number
  /** Definitely not made: refused by the log (409), or not proposed (503, no connection). */
  refused: number
  /** No answer in time, or a 504: may or may not have been made. */
  unknown: number
}

export interface MembershipCounts extends ChangeCounts {
  readonly byOp: Record<ChangeOp, ChangeCounts>
  /** Ops that asked nothing: no host to add, too few members to remove one, no view. */
  readonly notTried: number
  /** Completed changes whose request overlapped a partition, kill or pause in force. */
  readonly completedUnderFaults: number
  /** The same, by the kind of the fault (a change may count under several). */
  readonly underFaultsByKind: Record<FaultKind, number>
  /** Nodes added that a later view showed as voters. */
  readonly addedBecameVoters: number
  /** Why changes were refused or unknown: the error (409's reason is in the message) and count. */
  readonly errors: Record<string, number>
}

/** Whether fault f was in force at some moment between start and end (ns). */
function overlaps(f: FaultRecord, start: number, end: number): boolean {
  if (!f.applied) return false
  const from = f.appliedAt ?? f.start
  return from < end && (f.end ?? Infinity) > start
}

/** The counts of the member nemesis's changes, and which completed while a fault was in force. */
export function membershipCounts(changes: readonly ChangeRecord[], faults: readonly FaultRecord[]): MembershipCounts {
  const zeroes = (): ChangeCounts => ({ attempted: 0, completed: 0, refused: 0, unknown: 0 })
  const all = zeroes()
  const byOp: Record<ChangeOp, ChangeCounts> = { grow: zeroes(), shrink: zeroes() }
  const underFaultsByKind: Record<FaultKind, number> = { partition: 0, kill: 0, pause: 0 }
  const errors: Record<string, number> = {}
  let notTried = 0
  let completedUnderFaults = 0
  let addedBecameVoters = 0
  for (const ch of changes) {
    if (!ATTEMPTED.includes(ch.result)) {
      notTried++
      continue
    }
    for (const c of [all, byOp[ch.op]]) {
      c.attempted++
      if (ch.result === "added" || ch.result === "removed") c.completed++
      else if (ch.result === "refused") c.refused++
      else c.unknown++
    }
    if (ch.error !== undefined) {
      const key = ch.error.status === null ? ch.error.error : `${ch.error.status} ${ch.error.error}`
      errors[key] = (errors[key] ?? 0) + 1
    }
    if (ch.result === "added" && typeof ch.voterAt === "number") addedBecameVoters++
    if (ch.result !== "added" && ch.result !== "removed") continue
    const under = faults.filter((f) => overlaps(f, ch.start, ch.end))
    if (under.length > 0) completedUnderFaults++
    for (const k of new Set(under.map((f) => f.kind))) underFaultsByKind[k]++
  }
  return { ...all, byOp, notTried, completedUnderFaults, underFaultsByKind, addedBecameVoters, errors }
}

/**
 * Loud words on a run that is valid but shows less than it seems to: with the member nemesis, no
 * change of membership completed (every one refused or unknown: nothing about membership was
 * tested), or none completed while another fault was in force.
 */
export function warnings(r: RunReport): string[] {
  if (r.membership === null) return []
  const m = membershipCounts(r.membership.changes, r.faults)
  const out: string[] = []
  if (m.completed === 0) {
    out.push(
      `NO CHANGE OF MEMBERSHIP COMPLETED (${m.attempted} attempted: ${m.refused} refused, ${m.unknown} unknown; ${m.notTried} not tried): this run proves nothing about changes of membership`,
    )
  } else if (r.kinds.length > 0 && m.completedUnderFaults === 0) {
    out.push(`no change of membership completed while a ${r.kinds.join(", ")} was in force: this run proves nothing about changes under faults`)
  }
  return out
}

/** The content of results.json. */
export function resultsJson(r: RunReport): Record<string, unknown> {
  const counts = opCounts(r.samples)
  const ok = r.samples.filter((s) => s.type === "ok" && s.kind !== "final-read")
  const lat = (kind?: OpKind) => percentiles(ok.filter((s) => kind === undefined || s.kind === kind).map((s) => ms(s.end - s.start)))
  const inPhase = r.samples.filter((s) => s.kind !== "final-read")
  const secs = Math.max(r.clientSeconds, 1e-9)
  const applied = faultCounts(r.faults, r.kinds)
  const probs = problems(r)
  const finalLengths = r.finalReads.filter((f) => f.ok).map((f) => f.length)
  return {
    verdict: probs.length === 0 ? "valid" : "invalid",
    valid: probs.length === 0,
    problems: probs,
    warnings: warnings(r),
    mode: r.mode,
    nodes: r.nodes,
    faultyBuild: r.faultyBuild,
    startedAt: r.startedAt,
    wallSeconds: round2(r.wallSeconds),
    clientSeconds: round2(r.clientSeconds),
    options: r.options,
    notes: r.notes,
    checker:
      r.check === null
        ? { error: r.checkError }
        : {
            valid: r.check.valid,
            errorCounts: r.check.errorCounts,
            stats: r.check.stats,
            errors: r.check.errors.map((e) => ({ kind: e.kind, message: e.message, ops: e.ops.map(formatOp) })),
          },
    invariantViolations: r.invariantViolations,
    crashes: r.crashes.map((c) => ({ ...c, timeSeconds: round2(c.time / 1e9) })),
    ops: {
      total: r.samples.length,
      byType: counts.total,
      append: counts.append,
      read: counts.read,
      finalRead: counts["final-read"],
      appendRetries: r.samples.filter((s) => s.kind === "append").reduce((a, s) => a + s.attempts - 1, 0),
    },
    throughput: {
      okPerSecond: round2(ok.length / secs),
      opsPerSecond: round2(inPhase.length / secs),
      appendsOkPerSecond: round2(ok.filter((s) => s.kind === "append").length / secs),
    },
    latencyMs: { ok: lat(), okAppend: lat("append"), okRead: lat("read") },
    finalReads: { nodes: r.finalReads, identicalLength: finalLengths.length > 0 && finalLengths.every((l) => l === finalLengths[0]) },
    faults: {
      applied: applied.byKind,
      appliedByVariant: applied.byVariant,
      attempted: r.faults.length,
      notApplied: r.faults.length - applied.total,
      events: r.faults.map((f) => ({
        kind: f.kind,
        variant: f.variant,
        applied: f.applied,
        targets: f.targets,
        startSeconds: round2(f.start / 1e9),
        endSeconds: f.end === null ? null : round2(f.end / 1e9),
        ...(f.grudge !== undefined ? { grudge: f.grudge } : {}),
        ...(f.note !== undefined ? { note: f.note } : {}),
      })),
    },
    membership: r.membership === null ? null : membershipJson(r.membership, r.faults),
  }
}

function membershipJson(m: MembershipReport, faults: readonly FaultRecord[]): Record<string, unknown> {
  const counts = membershipCounts(m.changes, faults)
  return {
    initial: m.initial,
    spares: m.spares,
    ...counts,
    provesNothing: counts.completed === 0,
    final: m.final === null ? null : { epoch: m.final.epoch, leader: m.final.leader, members: m.final.members, from: m.final.from },
    changes: m.changes.map((c) => ({
      op: c.op,
      node: c.node,
      via: c.via,
      result: c.result,
      startSeconds: round2(c.start / 1e9),
      endSeconds: round2(c.end / 1e9),
      underFaults: faults.filter((f) => overlaps(f, c.start, c.end)).map((f) => `${f.kind}/${f.variant}`),
      ...(c.error !== undefined ? { error: c.error } : {}),
      ...(c.started !== undefined ? { started: c.started } : {}),
      ...(c.voterAt !== undefined ? { voterSeconds: c.voterAt === null ? null : round2(c.voterAt / 1e9) } : {}),
    })),
  }
}

export function faultCounts(faults: readonly FaultRecord[], kinds: readonly FaultKind[]): { byKind: Record<string, number>; byVariant: Record<string, number>; total: number } {
  const byKind: Record<string, number> = {}
  const byVariant: Record<string, number> = {}
  for (const k of kinds) byKind[k] = 0
  let total = 0
  for (const f of faults) {
    if (!f.applied) continue
    total++
    byKind[f.kind] = (byKind[f.kind] ?? 0) + 1
    byVariant[`${f.kind}/${f.variant}`] = (byVariant[`${f.kind}/${f.variant}`] ?? 0) + 1
  }
  return { byKind, byVariant, total }
}

/** The text printed on stdout at the end. */
export function summaryText(r: RunReport): string {
  const res = resultsJson(r)
  const probs = res.problems as string[]
  const c = opCounts(r.samples)
  const fmt = (x: Counts) => `${x.ok} ok, ${x.fail} fail, ${x.info} info`
  const lines: string[] = []
  lines.push(`chaos: ${probs.length === 0 ? "VALID" : "INVALID"}${r.faultyBuild !== null ? ` (faulty build: ${r.faultyBuild})` : ""}`)
  lines.push(`  ops: ${r.samples.length} (appends ${fmt(c.append)}; reads ${fmt(c.read)}; final reads ${fmt(c["final-read"])})`)
  const applied = faultCounts(r.faults, r.kinds)
  if (r.kinds.length === 0) lines.push("  faults: none (--nemesis none)")
  else {
    const per = r.kinds.map((k) => {
      const vs = Object.entries(applied.byVariant)
        .filter(([key]) => key.startsWith(`${k}/`))
        .map(([key, n]) => `${key.slice(k.length + 1)} ${n}`)
      return `${k} ${applied.byKind[k] ?? 0}${vs.length > 0 ? ` (${vs.join(", ")})` : ""}`
    })
    lines.push(`  faults really applied: ${per.join("; ")}; ${r.faults.length - applied.total} attempted but not applied`)
  }
  if (r.membership !== null) {
    const m = membershipCounts(r.membership.changes, r.faults)
    const by = (op: ChangeOp) => `${op} ${m.byOp[op].completed}/${m.byOp[op].attempted}`
    lines.push(
      `  membership changes: ${m.attempted} attempted, ${m.completed} completed (${by("grow")}, ${by("shrink")}), ${m.refused} refused, ${m.unknown} unknown, ${m.notTried} not tried; ` +
        `${m.completedUnderFaults} completed under faults (partition ${m.underFaultsByKind.partition}, kill ${m.underFaultsByKind.kill}, pause ${m.underFaultsByKind.pause}); ${m.addedBecameVoters} added nodes seen voting`,
    )
    const f = r.membership.final
    if (f !== null) lines.push(`  final members (epoch ${f.epoch}): ${f.members.map((x) => `${short(x.address)}${x.voter ? "" : " (learner)"}`).join(" ")}`)
  }
  const t = res.throughput as { okPerSecond: number; opsPerSecond: number }
  const l = (res.latencyMs as { ok: Percentiles }).ok
  lines.push(`  throughput: ${t.okPerSecond} ok ops/s (${t.opsPerSecond} ops/s attempted) over ${round2(r.clientSeconds)} s`)
  if (l.count > 0) lines.push(`  latency of ok ops (ms): p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, max ${l.max}`)
  const fr = r.finalReads
  if (fr.length > 0) {
    const lens = fr.map((f) => (f.ok ? String(f.length) : "FAILED"))
    lines.push(`  final reads (list length per node): ${fr.map((f, i) => `${f.node}=${lens[i]}`).join(" ")}`)
  }
  if (r.check !== null && !r.check.valid) {
    for (const e of r.check.errors.slice(0, 3)) {
      lines.push(`  checker ${e.kind}: ${e.message}`)
      for (const op of e.ops.slice(0, 6)) lines.push(`      ${abbreviate(formatOp(op), 240)}`)
    }
  }
  for (const p of probs) lines.push(`  problem: ${p}`)
  for (const w of warnings(r)) lines.push(`  WARNING: ${w}`)
  lines.push(`  output: ${r.out} (history.edn, results.json, latency.svg, n*/node.log)`)
  return lines.join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------------
// The plot

const COLORS: Record<Outcome3, string> = { ok: "#2f9e44", fail: "#e03131", info: "#f08c00" }
const FAULT_COLORS: Record<FaultKind, string> = { partition: "#4dabf7", kill: "#ff6b6b", pause: "#9775fa" }
const CHANGE_COLORS: Record<ChangeOp, string> = { grow: "#0ca678", shrink: "#e8590c" }
const MAX_POINTS = 40_000

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
}

const f1 = (x: number) => (Math.round(x * 10) / 10).toString()

/** The latency and throughput plot as an SVG document. */
export function latencySvg(r: RunReport): string {
  const W = 1100
  const left = 70
  const right = 20
  const plotW = W - left - right
  const top1 = 72
  const h1 = 360
  const top2 = top1 + h1 + 60
  const h2 = 170
  const H = top2 + h2 + 70
  const samples = r.samples
  const changes = r.membership?.changes.filter((c) => ATTEMPTED.includes(c.result)) ?? []
  const tEndNs = maxOf([1, maxOf(samples.map((s) => s.end)), maxOf(r.faults.map((f) => f.end ?? f.start)), maxOf(changes.map((c) => c.end))])
  const tMax = Math.max(1, Math.ceil(tEndNs / 1e9))
  const x = (ns: number) => left + (ns / 1e9 / tMax) * plotW

  const lats = samples.map((s) => Math.max(ms(s.end - s.start), 0.01))
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.1, Math.min(1, minOf(lats))))))
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(10, maxOf(lats)))))
  const y = (latMs: number) => top1 + h1 - ((Math.log10(Math.max(latMs, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * h1

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  const verdict = problems(r).length === 0 ? "valid" : "INVALID"
  out.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(`chaos run: ${r.nodes.length} nodes (${r.mode}), ${r.kinds.length > 0 ? r.kinds.join("+") : "no faults"}: ${verdict}${r.faultyBuild !== null ? ` [faulty build: ${r.faultyBuild}]` : ""}`)}</text>`,
  )
  out.push(`<text x="${left}" y="40" fill="#555">${esc(`${r.startedAt}  ${samples.length} ops  ${r.out}`)}</text>`)

  // Nemesis periods, shaded in both panels.
  let row = 0
  for (const f of r.faults) {
    if (!f.applied) continue
    const x0 = x(f.start)
    const x1 = Math.max(x0 + 1, x(f.end ?? tEndNs))
    for (const [t, h] of [[top1, h1], [top2, h2]] as const) {
      out.push(`<rect x="${f1(x0)}" y="${t}" width="${f1(x1 - x0)}" height="${h}" fill="${FAULT_COLORS[f.kind]}" fill-opacity="0.16"><title>${esc(`${f.kind} ${f.variant}: ${describe(f)}`)}</title></rect>`)
    }
    out.push(`<text x="${f1(x0 + 2)}" y="${top1 + 11 + 11 * (row % 3)}" fill="${FAULT_COLORS[f.kind]}" font-size="10">${esc(`${f.kind} ${f.variant}`)}</text>`)
    row++
  }

  // Changes of membership: a bar from request to answer below the time axis, a line across both
  // panels where one completed, a hollow dot where one was refused or its outcome is unknown.
  for (const c of changes) {
    const done = c.result === "added" || c.result === "removed"
    const y0 = top1 + h1 + 24
    const tip = esc(`${c.op} ${c.node ?? ""}: ${c.result}${c.error !== undefined ? ` (${c.error.message.slice(0, 120)})` : ""}`)
    out.push(`<line x1="${f1(x(c.start))}" x2="${f1(Math.max(x(c.start) + 1, x(c.end)))}" y1="${y0}" y2="${y0}" stroke="${CHANGE_COLORS[c.op]}" stroke-width="3"><title>${tip}</title></line>`)
    if (done) out.push(`<line x1="${f1(x(c.end))}" x2="${f1(x(c.end))}" y1="${top1}" y2="${top2 + h2}" stroke="${CHANGE_COLORS[c.op]}" stroke-opacity="0.7"><title>${tip}</title></line>`)
    else out.push(`<circle cx="${f1(x(c.end))}" cy="${y0}" r="3" fill="white" stroke="${CHANGE_COLORS[c.op]}"><title>${tip}</title></circle>`)
  }

  // Latency panel: axes and grid.
  out.push(`<text x="${left}" y="${top1 - 8}" font-weight="bold">latency of each op (ms, log scale), at the time it was invoked</text>`)
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    const yy = f1(y(v))
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`)
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v >= 1 ? v.toFixed(0) : v.toString()}</text>`)
  }
  out.push(`<rect x="${left}" y="${top1}" width="${plotW}" height="${h1}" fill="none" stroke="#888"/>`)

  // Points: ok first, then fail and info on top. Reads are squares, appends circles.
  const ordered = [...samples.keys()].sort((a, b) => rank((samples[a] as Sample).type) - rank((samples[b] as Sample).type))
  const okIdx = ordered.filter((i) => (samples[i] as Sample).type === "ok")
  const keepEvery = okIdx.length > MAX_POINTS ? Math.ceil(okIdx.length / MAX_POINTS) : 1
  let okSeen = 0
  for (const i of ordered) {
    const s = samples[i] as Sample
    if (s.type === "ok" && okSeen++ % keepEvery !== 0) continue
    const cx = f1(x(s.start))
    const cy = f1(y(lats[i] as number))
    const color = COLORS[s.type]
    if (s.kind === "append") out.push(`<circle cx="${cx}" cy="${cy}" r="1.8" fill="${color}" fill-opacity="0.6"/>`)
    else out.push(`<rect x="${f1(x(s.start) - 1.6)}" y="${f1(y(lats[i] as number) - 1.6)}" width="3.2" height="3.2" fill="${s.kind === "final-read" ? "#1c7ed6" : color}" fill-opacity="0.7"/>`)
  }

  // Throughput panel: completions per second, stacked by outcome.
  const buckets = Array.from({ length: tMax }, () => zero())
  for (const s of samples) {
    const b = buckets[Math.min(tMax - 1, Math.floor(s.end / 1e9))]
    if (b !== undefined) b[s.type]++
  }
  const peak = Math.max(1, maxOf(buckets.map((b) => b.ok + b.fail + b.info)))
  const yStep = niceStep(peak / 4)
  const yTop = yStep * Math.ceil(peak / yStep)
  const y2 = (v: number) => top2 + h2 - (v / yTop) * h2
  out.push(`<text x="${left}" y="${top2 - 8}" font-weight="bold">ops completed per second (stacked: ok, fail, info)</text>`)
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${f1(y2(v))}" y2="${f1(y2(v))}" stroke="#ddd"/>`)
    out.push(`<text x="${left - 6}" y="${f1(y2(v))}" text-anchor="end" dominant-baseline="middle">${Math.round(v)}</text>`)
  }
  const bw = plotW / tMax
  buckets.forEach((b, sec) => {
    let base = 0
    for (const t of ["ok", "fail", "info"] as const) {
      if (b[t] === 0) continue
      out.push(`<rect x="${f1(left + sec * bw + 0.5)}" y="${f1(y2(base + b[t]))}" width="${f1(Math.max(0.5, bw - 1))}" height="${f1(y2(base) - y2(base + b[t]))}" fill="${COLORS[t]}" fill-opacity="0.8"><title>${sec}-${sec + 1} s: ${b[t]} ${t}</title></rect>`)
      base += b[t]
    }
  })
  out.push(`<rect x="${left}" y="${top2}" width="${plotW}" height="${h2}" fill="none" stroke="#888"/>`)

  // Time axis (both panels) and the end of the client phase.
  const step = niceStep(tMax / 12)
  for (let t = 0; t <= tMax + 1e-9; t += step) {
    const xx = f1(left + (t / tMax) * plotW)
    out.push(`<line x1="${xx}" x2="${xx}" y1="${top1 + h1}" y2="${top1 + h1 + 4}" stroke="#888"/>`)
    out.push(`<text x="${xx}" y="${top1 + h1 + 16}" text-anchor="middle">${f1(t)}</text>`)
    out.push(`<line x1="${xx}" x2="${xx}" y1="${top2 + h2}" y2="${top2 + h2 + 4}" stroke="#888"/>`)
    out.push(`<text x="${xx}" y="${top2 + h2 + 16}" text-anchor="middle">${f1(t)}</text>`)
  }
  out.push(`<text x="${left + plotW / 2}" y="${top2 + h2 + 32}" text-anchor="middle">time since the run began (s)</text>`)
  if (r.clientEnd > 0) {
    const cx = f1(x(r.clientEnd))
    out.push(`<line x1="${cx}" x2="${cx}" y1="${top1}" y2="${top2 + h2}" stroke="#333" stroke-dasharray="4 3"/>`)
    out.push(`<text x="${f1(x(r.clientEnd) - 4)}" y="${top1 + h1 + 30}" text-anchor="end" fill="#333">time limit: heal, final reads &#8594;</text>`)
  }

  // Legend.
  const ly = H - 18
  const legend: Array<[string, string, "circle" | "rect"]> = [
    ["ok", COLORS.ok, "circle"],
    ["fail", COLORS.fail, "circle"],
    ["info (unknown)", COLORS.info, "circle"],
    ["read (square)", "#666", "rect"],
    ["final read", "#1c7ed6", "rect"],
  ]
  let lx = left
  for (const [label, color, shape] of legend) {
    out.push(shape === "circle" ? `<circle cx="${lx + 5}" cy="${ly - 4}" r="4" fill="${color}"/>` : `<rect x="${lx + 1}" y="${ly - 8}" width="8" height="8" fill="${color}"/>`)
    out.push(`<text x="${lx + 13}" y="${ly}">${esc(label)}</text>`)
    lx += 30 + label.length * 6.5
  }
  for (const k of ["partition", "kill", "pause"] as const) {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${FAULT_COLORS[k]}" fill-opacity="0.35"/>`)
    out.push(`<text x="${lx + 18}" y="${ly}">${k}</text>`)
    lx += 30 + k.length * 6.5
  }
  if (r.membership !== null) {
    for (const op of ["grow", "shrink"] as const) {
      out.push(`<line x1="${lx}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" stroke="${CHANGE_COLORS[op]}" stroke-width="3"/>`)
      out.push(`<text x="${lx + 18}" y="${ly}">${op}</text>`)
      lx += 30 + op.length * 6.5
    }
  }
  out.push("</svg>")
  return out.join("\n") + "\n"
}

/** Largest of xs (-Infinity when empty), without spreading a long array into arguments. */
function maxOf(xs: readonly number[]): number {
  let m = -Infinity
  for (const v of xs) if (v > m) m = v
  return m
}

function minOf(xs: readonly number[]): number {
  let m = Infinity
  for (const v of xs) if (v < m) m = v
  return m
}

/** The text cut to n characters, keeping its end (an op's list ends with what matters). */
function abbreviate(text: string, n: number): string {
  if (text.length <= n) return text
  const head = Math.floor(n * 0.45)
  return `${text.slice(0, head)} ... ${text.slice(text.length - (n - head - 5))}`
}

function rank(t: Outcome3): number {
  return t === "ok" ? 0 : t === "fail" ? 1 : 2
}

function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))))
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}
