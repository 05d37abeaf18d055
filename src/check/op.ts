/**
 * One event of a single-list append history (an invocation or a completion), as typed data:
 * history.ts reads it from EDN, edn.ts prints it, the checker and the recorders use it. Only
 * types here; no Bun or Node APIs.
 */
import type { EdnValue } from "./edn-value.ts"

/** The type of a history event. */
export type OpType = "invoke" | "ok" | "fail" | "info"

/** A micro-op: `[:append key value]` or `[:r key list-or-nil]`. */
export type MicroOp = readonly ["append", number, number] | readonly ["r", number, readonly number[] | null]

/** One client event of the history. `time` is Jepsen's nanoseconds, -1 when the file has none. */
export interface Op {
  readonly type: OpType
  readonly f: "txn"
  readonly process: number | string
  readonly time: number
  readonly index: number
  /** The micro-ops; null when the value is nil or (on :fail/:info only) not micro-ops. */
  readonly value: readonly MicroOp[] | null
  /** The value as written when it is not micro-ops (kept for printing). */
  readonly rawValue?: EdnValue
  /** Other keys of the op map (`:error`, ...), kept for printing. */
  readonly extra?: ReadonlyArray<readonly [EdnValue, EdnValue]>
  /** The line of the history file the op starts on, when read from a file. */
  readonly line?: number
}
