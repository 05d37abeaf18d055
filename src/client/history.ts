/**
 * Records what clients saw as a Jepsen list-append history (README, "History files"), one op a line in EDN:
 *   append invoke [[:append 0 5] [:r 0 nil]], ok [[:append 0 5] [:r 0 [1 2 5]]]
 *   read   invoke [[:r 0 nil]],               ok [[:r 0 [1 2 5]]]
 * A :fail or :info completion repeats the invocation's value. After an :info the process is
 * retired (Jepsen's convention: its op may still take effect), so callers take a new process id.
 */
import { formatOp } from "../check/edn.ts"
import type { MicroOp, Op, OpType } from "../check/history.ts"

const KEY = 0

export const appendTxn = (v: number, list?: readonly number[] | null): MicroOp[] => [
  ["append", KEY, v],
  ["r", KEY, list ?? null]
]
export const readTxn = (list?: readonly number[] | null): MicroOp[] => [["r", KEY, list ?? null]]

export class History {
  readonly ops: Op[] = []
  private readonly t0 = process.hrtime.bigint()

  invoke(proc: number, value: readonly MicroOp[]): void {
    this.add("invoke", proc, value)
  }

  complete(proc: number, type: Exclude<OpType, "invoke">, value: readonly MicroOp[]): void {
    this.add(type, proc, value)
  }

  /** The history as EDN text, one op a line. */
  toEdn(): string {
    return this.ops.map(formatOp).join("\n") + "\n"
  }

  private add(type: OpType, proc: number, value: readonly MicroOp[]): void {
    const time = Number(process.hrtime.bigint() - this.t0)
    this.ops.push({ type, f: "txn", process: proc, time, index: this.ops.length, value })
  }
}
