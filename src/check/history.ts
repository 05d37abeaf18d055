/**
 * Typed operations of the single-list append workload, read from Jepsen EDN histories.
 *
 * An op is one history event (an invocation or a completion). The workload's values are Jepsen
 * list-append transactions on a single key:
 *
 *   append: invoke `[[:append 0 5] [:r 0 nil]]`, ok `[[:append 0 5] [:r 0 [1 2 5]]]`
 *           (the read is the list right after the append; an ok `[[:append 0 5]]` without a read
 *           only says 5 was appended, not where);
 *   read:   invoke `[[:r 0 nil]]`, ok `[[:r 0 [1 2 5]]]` (an ok read of `nil` is the empty list).
 *
 * Events that are not client transactions are left out and counted: non-client events
 * (`:process :nemesis` or any keyword process) on purpose, and client ops whose `:f` is not `:txn`
 * with their lines, so that a reader can say what it left out. A client op without `:f`, or one
 * whose fields cannot be read, is an error; or, when asked, left out with its line and why.
 * Invocations pair with completions by process, as in Jepsen: a process runs one op at a time; an
 * `:info` completion means the outcome is unknown (the process is then retired; Jepsen uses a
 * fresh process number next). An invocation never completed counts as `:info`. No Bun or Node
 * APIs.
 */
import {
  EdnList,
  EdnMap,
  Keyword,
  formatEdn,
  lineLocator,
  readEdnForms,
  type EdnValue,
  type Form,
} from "./edn.ts"
import type { MicroOp, Op, OpType } from "./op.ts"

export type { MicroOp, Op, OpType }

/** An invocation paired with its completion: one operation of the workload. */
export interface Txn {
  /** Position in invocation order, from 0. */
  readonly id: number
  readonly kind: "append" | "read"
  readonly key: number
  readonly invoke: Op
  /** null when the history ends before the op completes (counted as :info). */
  readonly completion: Op | null
  readonly outcome: "ok" | "fail" | "info"
  /** The appended value (appends only). */
  readonly value: number | null
  /** The list an ok op observed (reads, and appends that returned the list); otherwise null. */
  readonly list: readonly number[] | null
  /** Rank of the invocation in the history's real-time order. */
  readonly invokeRank: number
  /** Rank of the completion; Infinity for :info (the op may take effect at any later time). */
  readonly completeRank: number
}

/**
 * A history that cannot be checked: bad shapes, bad pairing, non-unique appended values. `rule`
 * is the reason without what this op holds (alike for every op with the same fault).
 */
export class HistoryError extends Error {
  override readonly name = "HistoryError"
  constructor(
    readonly reason: string,
    readonly line?: number,
    readonly rule: string = reason,
  ) {
    super(line === undefined ? reason : `line ${line}: ${reason}`)
  }
}

/**
 * A client event a reader left out: `not-txn`, a client op whose `:f` is not `:txn` (`rule` names
 * its `:f`); `unreadable`, one it could not read (`rule` is the fault, `reason` the full message).
 */
export interface SkippedEvent {
  readonly kind: "not-txn" | "unreadable"
  readonly rule: string
  readonly reason: string
  readonly line: number | undefined
}

/** The client ops of a history file, and what was left out. */
export interface ParsedHistory {
  readonly ops: Op[]
  /** Events left out as not client transactions: `nonClient` plus the `not-txn` ones of `skipped`. */
  readonly ignored: number
  /** Non-client events (a keyword `:process`, such as `:nemesis`). */
  readonly nonClient: number
  /** The client events left out, in file order. */
  readonly skipped: readonly SkippedEvent[]
}

/** How {@link parseHistory} reads. */
export interface ParseOptions {
  /** Leave out (as `unreadable` in `skipped`) client ops it cannot read, rather than throw. */
  readonly skipUnreadable?: boolean
  /** Told the offset in `text` of each form read (a long read's progress line). */
  readonly onProgress?: (offset: number) => void
}

const K = {
  type: Keyword.of("type"),
  f: Keyword.of("f"),
  value: Keyword.of("value"),
  process: Keyword.of("process"),
  time: Keyword.of("time"),
  index: Keyword.of("index"),
  txn: Keyword.of("txn"),
  append: Keyword.of("append"),
  r: Keyword.of("r"),
}
const TYPES: ReadonlyMap<Keyword, OpType> = new Map([
  [Keyword.of("invoke"), "invoke"],
  [Keyword.of("ok"), "ok"],
  [Keyword.of("fail"), "fail"],
  [Keyword.of("info"), "info"],
] as const)
const KNOWN_KEYS = new Set<EdnValue>([K.type, K.f, K.value, K.process, K.time, K.index])

/**
 * Reads a history file's text: one op map per top-level form (Jepsen's `history.edn`), or one
 * top-level vector or list of op maps. Throws EdnError; throws HistoryError for an op it cannot
 * read unless `skipUnreadable` is set.
 */
export function parseHistory(text: string, options: ParseOptions = {}): ParsedHistory {
  const forms: Form[] = []
  for (const f of readEdnForms(text)) {
    forms.push(f)
    options.onProgress?.(f.offset)
  }
  const only = forms.length === 1 ? forms[0]?.value : undefined
  const items = Array.isArray(only) ? only : only instanceof EdnList ? only.items : undefined
  const located = items ?? forms.map((f) => f.value)
  const where = lineLocator(text)
  const ops: Op[] = []
  const skipped: SkippedEvent[] = []
  let nonClient = 0
  located.forEach((v, position) => {
    const line = v instanceof EdnMap && v.offset >= 0 ? where(v.offset).line : forms[items ? 0 : position]?.line
    let event: Op | LeftOut
    try {
      event = opFromEdn(v, position, line)
    } catch (e) {
      if (!(options.skipUnreadable === true && e instanceof HistoryError)) throw e
      skipped.push({ kind: "unreadable", rule: e.rule, reason: e.reason, line })
      return
    }
    if (!("left" in event)) ops.push(event)
    else if (event.left === "non-client") nonClient++
    else skipped.push({ kind: "not-txn", rule: `:f ${brief(event.f)}`, reason: `:f ${brief(event.f)}, not :txn`, line })
  })
  const notTxn = skipped.filter((s) => s.kind === "not-txn").length
  return { ops, ignored: nonClient + notTxn, nonClient, skipped }
}

/** An event that is not a client transaction: a non-client one, or a client op of another `:f`. */
export type LeftOut = { readonly left: "non-client" } | { readonly left: "not-txn"; readonly f: EdnValue }

/**
 * Converts one parsed op map to an Op, or says why it is left out (a keyword process such as
 * `:nemesis`, or `:f` other than `:txn`). `position` is the default `:index`. Throws HistoryError
 * for an op it cannot read.
 */
export function opFromEdn(v: EdnValue, position: number, line?: number): Op | LeftOut {
  const fail = (f: Fault): never => {
    throw new HistoryError(f.reason, line, f.rule)
  }
  if (!(v instanceof EdnMap)) return fail(fault("expected an op map", v))
  const process = v.get(K.process)
  if (process instanceof Keyword) return { left: "non-client" }
  const f = v.get(K.f)
  if (f === undefined) return fail(fault("op has no :f"))
  if (f !== K.txn) return { left: "not-txn", f }
  const typeKw = v.get(K.type)
  const type = typeKw instanceof Keyword ? TYPES.get(typeKw) : undefined
  if (type === undefined) return fail(fault("op :type must be :invoke, :ok, :fail or :info", typeKw))
  if (!(Number.isSafeInteger(process) || typeof process === "string"))
    return fail(fault("op :process must be an integer, string or keyword", process))
  const index = optionalInt(v.get(K.index), ":index", fail) ?? position
  const time = optionalInt(v.get(K.time), ":time", fail) ?? -1
  const raw = v.get(K.value) ?? null
  const value = raw === null ? null : microOps(raw, type, fail)
  const extra = v.entries.filter(([k]) => !KNOWN_KEYS.has(k))
  return {
    type,
    f: "txn",
    process: process as number | string,
    time,
    index,
    value,
    ...(value === null && raw !== null ? { rawValue: raw } : {}),
    ...(extra.length > 0 ? { extra } : {}),
    ...(line !== undefined ? { line } : {}),
  }
}

/** Why an op cannot be read: `rule` names the fault, `reason` adds what the op holds. */
interface Fault {
  readonly rule: string
  readonly reason: string
}

/** The fault `rule`, and what was found instead when given. */
function fault(rule: string, ...found: [] | [EdnValue | undefined]): Fault {
  return { rule, reason: found.length === 0 ? rule : `${rule}, found ${brief(found[0])}` }
}

/** An optional integer field: undefined when absent or nil. */
function optionalInt(v: EdnValue | undefined, name: string, fail: (f: Fault) => never): number | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === "number" && Number.isSafeInteger(v)) return v
  return fail(fault(`op ${name} must be an integer`, v))
}

/**
 * The micro-ops of a txn value. On :fail and :info completions a value that is not micro-ops is
 * tolerated (returns null: the outcome carries no observation); elsewhere it is an error.
 */
function microOps(raw: EdnValue, type: OpType, fail: (f: Fault) => never): readonly MicroOp[] | null {
  const lenient = type === "fail" || type === "info"
  const items = Array.isArray(raw) ? raw : raw instanceof EdnList ? raw.items : undefined
  if (items === undefined) return lenient ? null : fail(fault("txn :value must be a vector of micro-ops", raw))
  const out: MicroOp[] = []
  for (const item of items) {
    const m = microOp(item)
    if ("rule" in m) return lenient ? null : fail(m)
    out.push(m)
  }
  return out
}

/** One micro-op, or why it is not one. */
function microOp(v: EdnValue): MicroOp | Fault {
  const items = Array.isArray(v) ? v : v instanceof EdnList ? v.items : undefined
  if (items === undefined || items.length !== 3) return fault("micro-op must be [:append k v] or [:r k list]", v)
  const [f, key, arg] = items as [EdnValue, EdnValue, EdnValue]
  if (!(typeof key === "number" && Number.isSafeInteger(key))) return fault("micro-op key must be an integer", key)
  if (f === K.append) {
    if (typeof arg === "number" && Number.isSafeInteger(arg)) return ["append", key, arg]
    return fault("appended value must be a safe integer", arg)
  }
  if (f !== K.r) return fault("micro-op must be :append or :r", f)
  if (arg === null) return ["r", key, null]
  const list = Array.isArray(arg) ? arg : arg instanceof EdnList ? arg.items : undefined
  if (list === undefined) return fault("read result must be a vector of integers or nil", arg)
  for (const x of list)
    if (!(typeof x === "number" && Number.isSafeInteger(x)))
      return { rule: "read list holds a non-integer", reason: `read list holds a non-integer ${brief(x)}` }
  return ["r", key, list as number[]]
}

/** A short rendering of a value for error messages. */
function brief(v: EdnValue | undefined): string {
  if (v === undefined) return "nothing"
  const s = formatEdn(v)
  return s.length > 60 ? s.slice(0, 57) + "..." : s
}

/** Where an op came from, for messages. */
function at(op: Op): string {
  return `op :index ${op.index}${op.line !== undefined ? ` (line ${op.line})` : ""}`
}

/**
 * The events in real-time order, as positions into `ops`. Jepsen writes histories in time order;
 * we keep file order unless every op has a :time and the times are not already non-decreasing,
 * in which case we sort by :time (stably, so equal times keep file order).
 */
export function realTimeOrder(ops: readonly Op[]): number[] {
  const order = ops.map((_, i) => i)
  let sorted = true
  for (let i = 0; i < ops.length; i++) {
    const t = (ops[i] as Op).time
    if (t < 0) return order
    if (i > 0 && t < (ops[i - 1] as Op).time) sorted = false
  }
  if (!sorted) order.sort((a, b) => (ops[a] as Op).time - (ops[b] as Op).time || a - b)
  return order
}

/** What an invocation asks for. */
interface Request {
  readonly kind: "append" | "read"
  readonly key: number
  readonly value: number | null
}

/** Classifies an invocation's txn: `[[:append k v]]`, `[[:append k v] [:r k _]]` or `[[:r k _]]`. */
function request(op: Op): Request {
  const ops = op.value ?? []
  const [first, second] = ops
  const bad = (): never => {
    throw new HistoryError(
      `${at(op)}: unsupported txn (want [[:append k v] [:r k nil]], [[:append k v]] or [[:r k nil]])`,
      op.line,
    )
  }
  if (first === undefined || ops.length > 2) return bad()
  if (first[0] === "append") {
    if (second !== undefined && (second[0] !== "r" || second[1] !== first[1])) return bad()
    return { kind: "append", key: first[1], value: first[2] }
  }
  if (second !== undefined) return bad()
  return { kind: "read", key: first[1], value: null }
}

/** The list an ok completion observed (null for an append that returned no list). */
function observed(req: Request, done: Op): readonly number[] | null {
  const ops = done.value ?? []
  const [first, second] = ops
  const bad = (want: string): never => {
    throw new HistoryError(`${at(done)}: ok completion does not match its invocation (want ${want})`, done.line)
  }
  if (req.kind === "read") {
    if (ops.length !== 1 || first?.[0] !== "r" || first[1] !== req.key) return bad(`[[:r ${req.key} list]]`)
    return first[2] ?? []
  }
  const want = `[[:append ${req.key} ${req.value}] [:r ${req.key} list]]`
  if (ops.length > 2 || first?.[0] !== "append" || first[1] !== req.key || first[2] !== req.value) return bad(want)
  if (second === undefined) return null
  if (second[0] !== "r" || second[1] !== req.key) return bad(want)
  return second[2] ?? []
}

/** A pending invocation. */
interface Pending {
  readonly op: Op
  readonly rank: number
  readonly req: Request
}

/** Builds the Txn of an invocation and its completion (null: never completed). */
function makeTxn(p: Pending, done: Op | null, doneRank: number): Omit<Txn, "id"> {
  const outcome = done === null || done.type === "info" ? "info" : done.type === "ok" ? "ok" : "fail"
  return {
    kind: p.req.kind,
    key: p.req.key,
    invoke: p.op,
    completion: done,
    outcome,
    value: p.req.value,
    list: outcome === "ok" && done !== null ? observed(p.req, done) : null,
    invokeRank: p.rank,
    completeRank: outcome === "info" ? Infinity : doneRank,
  }
}

/**
 * Pairs invocations with completions by process, in real-time order, and checks the workload's
 * preconditions: one key, and every appended value appended by one op only. Returns the
 * operations in invocation order. Throws HistoryError.
 */
export function pairOps(ops: readonly Op[]): Txn[] {
  const pending = new Map<number | string, Pending>()
  const txns: Array<Omit<Txn, "id">> = []
  realTimeOrder(ops).forEach((i, rank) => {
    const op = ops[i] as Op
    const open = pending.get(op.process)
    if (op.type === "invoke") {
      if (open !== undefined)
        throw new HistoryError(`${at(op)}: process ${op.process} invoked again while ${at(open.op)} was still pending`, op.line)
      pending.set(op.process, { op, rank, req: request(op) })
      return
    }
    if (open === undefined)
      throw new HistoryError(`${at(op)}: :${op.type} completion for process ${op.process}, which has no pending invocation`, op.line)
    pending.delete(op.process)
    txns.push(makeTxn(open, op, rank))
  })
  for (const p of pending.values()) txns.push(makeTxn(p, null, Infinity))
  txns.sort((a, b) => a.invokeRank - b.invokeRank)
  const result = txns.map((t, id) => ({ ...t, id }))
  checkPreconditions(result)
  return result
}

/** One key only; appended values unique (the checker identifies appends by value). */
function checkPreconditions(txns: readonly Txn[]): void {
  const byValue = new Map<number, Txn>()
  const first = txns[0]
  for (const t of txns) {
    if (first !== undefined && t.key !== first.key)
      throw new HistoryError(
        `${at(t.invoke)} uses key ${t.key} but ${at(first.invoke)} uses key ${first.key}; only one list is supported`,
        t.invoke.line,
      )
    if (t.kind !== "append" || t.value === null) continue
    const other = byValue.get(t.value)
    if (other !== undefined)
      throw new HistoryError(
        `value ${t.value} is appended by both ${at(other.invoke)} and ${at(t.invoke)}; appended values must be unique`,
        t.invoke.line,
      )
    byValue.set(t.value, t)
  }
}

/** Reads a history file's text and pairs its ops. Throws EdnError or HistoryError. */
export function readTxns(text: string, onProgress?: (offset: number) => void): { txns: Txn[]; ops: Op[]; ignored: number } {
  const { ops, ignored } = parseHistory(text, onProgress === undefined ? {} : { onProgress })
  return { txns: pairOps(ops), ops, ignored }
}
