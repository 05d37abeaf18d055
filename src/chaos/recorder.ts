/**
 * The history of a chaos run, as Jepsen writes it: one op map a line, client ops and nemesis ops
 * interleaved in the order they happened, all timed on one clock (nanoseconds since the run began)
 * and numbered by one `:index`.
 *
 * Client ops use the list-append workload's values (src/client/history.ts): an append is invoke
 * `[[:append 0 v] [:r 0 nil]]`, ok `[[:append 0 v] [:r 0 [...]]]`; a read is `[[:r 0 nil]]`, ok
 * `[[:r 0 [...]]]`. A completion may carry `:error` and `:node` (which node was asked), as
 * Jepsen's clients do. Nemesis ops have `:process :nemesis` and `:type :info` for both the
 * invocation and the completion, with `:f` such as `:start-partition` and `:kill` (the checker
 * skips them).
 */
import { closeSync, openSync, writeSync } from "node:fs"
import { EdnMap, Keyword, formatEdn, formatOp, type EdnValue } from "../check/edn.ts"
import type { MicroOp, Op, OpType } from "../check/history.ts"

export const KEY = 0

export const appendValue = (v: number, list?: readonly number[] | null): MicroOp[] => [
  ["append", KEY, v],
  ["r", KEY, list ?? null],
]
export const readValue = (list?: readonly number[] | null): MicroOp[] => [["r", KEY, list ?? null]]

/** Extra fields of a client completion. */
export interface OpExtra {
  readonly error?: string
  readonly node?: string
}

export const kw = (name: string): Keyword => Keyword.of(name)

export class Recorder {
  /** The client ops (invocations and completions), in order: what the checker reads. */
  readonly ops: Op[] = []
  private readonly t0: bigint
  private index = 0
  /**
   * history.edn, written line by line as events happen. Every ok op carries the whole list (the
   * Elle's list-append format), so the text of a long run is quadratic in its length: holding it in memory
   * (or joining it into one string) ran a 300 s closed-loop run out of memory. Nothing of it is
   * kept here; what is not yet written waits in a small buffer.
   */
  private fd: number | null = null
  private pending: string[] = []
  private pendingBytes = 0

  constructor(t0: bigint = process.hrtime.bigint()) {
    this.t0 = t0
  }

  /** Starts writing the history to `path` (truncating it); lines recorded before are written first. */
  open(path: string): void {
    this.fd = openSync(path, "w")
    this.flush()
  }

  /** Writes what is buffered; call before reading the file. */
  flush(): void {
    if (this.fd === null || this.pending.length === 0) return
    writeSync(this.fd, this.pending.join(""))
    this.pending = []
    this.pendingBytes = 0
  }

  /** Flushes and closes the file. */
  close(): void {
    this.flush()
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }

  /** Nanoseconds since the run began. */
  now(): number {
    return Number(process.hrtime.bigint() - this.t0)
  }

  /** Records a client event and returns it. */
  client(type: OpType, proc: number, value: readonly MicroOp[], extra: OpExtra = {}): Op {
    const entries: Array<readonly [EdnValue, EdnValue]> = []
    if (extra.error !== undefined) entries.push([kw("error"), kw(keywordSafe(extra.error))])
    if (extra.node !== undefined) entries.push([kw("node"), extra.node])
    const op: Op = {
      type,
      f: "txn",
      process: proc,
      time: this.now(),
      index: this.index++,
      value,
      ...(entries.length > 0 ? { extra: entries } : {}),
    }
    this.ops.push(op)
    this.line(formatOp(op))
    return op
  }

  /**
   * Records a nemesis event (`:type :info`, `:process :nemesis`), with `extra` fields such as
   * `:error`; returns its time.
   */
  nemesis(f: string, value: EdnValue, extra: ReadonlyArray<readonly [string, EdnValue]> = []): number {
    const time = this.now()
    const m = new EdnMap([
      [kw("type"), kw("info")],
      [kw("f"), kw(f)],
      [kw("value"), value],
      ...extra.map(([k, v]) => [kw(k), v] as const),
      [kw("process"), kw("nemesis")],
      [kw("time"), time],
      [kw("index"), this.index++],
    ])
    this.line(formatEdn(m))
    return time
  }

  private line(text: string): void {
    this.pending.push(text, "\n")
    this.pendingBytes += text.length + 1
    if (this.fd !== null && this.pendingBytes >= 1 << 20) this.flush()
  }
}

/** A string usable as a keyword name (letters, digits and - . _ only). */
export function keywordSafe(s: string): string {
  const k = s.replace(/[^A-Za-z0-9\-._]+/g, "-").replace(/^-+|-+$/g, "")
  return k.length === 0 || /^\d/.test(k) ? `e-${k}` : k
}
