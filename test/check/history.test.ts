import assert from "node:assert/strict"
import { test } from "../portable.ts"
import { Keyword } from "../../src/check/edn.ts"
import { HistoryError, pairOps, parseHistory, readTxns, realTimeOrder } from "../../src/check/history.ts"
import { lines } from "./support.ts"

/** Asserts that reading and pairing `text` fails with a HistoryError matching `re` (and line). */
function assertHistoryError(text: string, re: RegExp, line?: number): void {
  assert.throws(
    () => readTxns(lines(text)),
    (e: unknown) => {
      assert.ok(e instanceof HistoryError, `expected HistoryError, got ${String(e)}`)
      assert.match(e.message, re)
      if (line !== undefined) assert.equal(e.line, line, e.message)
      return true
    },
  )
}

test("history: ops are typed, non-client ops skipped, defaults filled in", () => {
  const { ops, ignored } = parseHistory(
    lines(`
      {:type :invoke, :f :txn, :value [[:append 0 5] [:r 0 nil]], :process 3, :time 123456, :index 7}
      {:type :info, :f :start, :value nil, :process :nemesis}
      {:type :invoke, :f :read, :value nil, :process 4}
      {:type :ok, :f :txn, :value [[:append 0 5] [:r 0 [1 2 5]]], :process 3, :error nil, :node "n1"}
    `),
  )
  assert.equal(ignored, 2)
  assert.equal(ops.length, 2)
  assert.deepEqual(ops[0], {
    type: "invoke",
    f: "txn",
    process: 3,
    time: 123456,
    index: 7,
    value: [
      ["append", 0, 5],
      ["r", 0, null],
    ],
    line: 1,
  })
  assert.equal(ops[1]?.index, 3, "index defaults to the position in the file")
  assert.equal(ops[1]?.time, -1, "time defaults to -1, as in jepsen.history")
  assert.deepEqual(ops[1]?.extra, [
    [Keyword.of("error"), null],
    [Keyword.of("node"), "n1"],
  ])
  assert.equal(ops[1]?.line, 4)
})

test("history: invocations pair with completions by process", () => {
  const { txns } = readTxns(
    lines(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :ok, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :info, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:append 0 2]], :process 5}
      {:type :ok, :f :txn, :value [[:append 0 2]], :process 5}
      {:type :invoke, :f :txn, :value [[:append 0 3] [:r 0 nil]], :process "c1"}
      {:type :ok, :f :txn, :value [[:append 0 3] [:r 0 [2 3]]], :process "c1"}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    `),
  )
  assert.deepEqual(
    txns.map((t) => [t.id, t.kind, t.outcome, t.value, t.list, t.invokeRank, t.completeRank]),
    [
      [0, "append", "info", 1, null, 0, Infinity],
      [1, "read", "ok", null, [], 1, 2],
      [2, "append", "ok", 2, null, 4, 5],
      [3, "append", "ok", 3, [2, 3], 6, 7],
      [4, "read", "info", null, null, 8, Infinity],
    ],
  )
  assert.equal(txns[4]?.completion, null)
})

test("history: a :fail or :info completion may carry any value", () => {
  const { txns } = readTxns(
    lines(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :fail, :f :txn, :value :oops, :process 0}
      {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0}
      {:type :info, :f :txn, :value nil, :process 0}
    `),
  )
  assert.deepEqual(
    txns.map((t) => t.outcome),
    ["fail", "info"],
  )
  assert.equal(txns[0]?.completion?.rawValue, Keyword.of("oops"))
})

test("history: pairing errors name the ops and lines", () => {
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}
    `,
    /process 0 invoked again while op :index 0 \(line 1\) was still pending/,
    2,
  )
  assertHistoryError(
    `
      {:type :ok, :f :txn, :value [[:r 0 nil]], :process 0}
    `,
    /:ok completion for process 0, which has no pending invocation/,
    1,
  )
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}
      {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    `,
    /does not match its invocation/,
    2,
  )
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}
      {:type :ok, :f :txn, :value [[:append 0 2]], :process 0}
    `,
    /does not match its invocation/,
  )
})

test("history: shape errors", () => {
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:r 0 nil] [:append 0 1]], :process 0}`, /unsupported txn/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [], :process 0}`, /unsupported txn/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:cas 0 1 2]], :process 0}`, /micro-op must be/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:append 0 "x"]], :process 0}`, /safe integer/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:append 0 1.5]], :process 0}`, /safe integer/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:append 0 99999999999999999999]], :process 0}`, /safe integer/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:append :x 1]], :process 0}`, /key must be an integer/)
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}
      {:type :ok, :f :txn, :value [[:r 0 [1 :a]]], :process 0}
    `,
    /non-integer :a/,
    2,
  )
  assertHistoryError(`{:type :done, :f :txn, :value nil, :process 0}`, /:type must be/)
  assertHistoryError(`{:type :invoke, :value [[:r 0 nil]], :process 0}`, /no :f/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1.5}`, /:process must be/)
  assertHistoryError(`{:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0, :time "x"}`, /:time must be/)
  assertHistoryError(`[1 2]`, /expected an op map, found 1/)
  assertHistoryError(`{:type :invoke, :f :txn, :value 5, :process 0}`, /vector of micro-ops/)
})

test("history: workload preconditions — one key, unique appended values", () => {
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}
      {:type :invoke, :f :txn, :value [[:append 1 2]], :process 1}
    `,
    /uses key 1 .* key 0; only one list/,
  )
  assertHistoryError(
    `
      {:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}
      {:type :fail, :f :txn, :value [[:append 0 1]], :process 0}
      {:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}
    `,
    /value 1 is appended by both op :index 0 \(line 1\) and op :index 2 \(line 3\)/,
  )
})

test("history: real-time order follows :time when the file is out of order, else the file", () => {
  const { ops } = parseHistory(
    lines(`
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0, :time 20}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1, :time 10}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 2, :time 10}
    `),
  )
  assert.deepEqual(realTimeOrder(ops), [1, 2, 0])
  const untimed = ops.map((o, i) => ({ ...o, time: i === 1 ? -1 : o.time }))
  assert.deepEqual(realTimeOrder(untimed), [0, 1, 2])
  assert.equal(pairOps([]).length, 0)
})

test("history: what is left out is counted and listed; unreadable ops are skipped only when asked", () => {
  const text = lines(`
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}
    {:type :info, :f :kill, :value nil, :process :nemesis}
    {:type :invoke, :f :append, :value 3, :process 1}
    {:type :invoke, :f :txn, :value [[:append 0 1.5]], :process 2}
  `)
  assert.throws(() => parseHistory(text), /line 4: appended value must be a safe integer, found 1\.5/)
  const p = parseHistory(text, { skipUnreadable: true })
  assert.equal(p.ops.length, 1)
  assert.equal(p.nonClient, 1)
  assert.equal(p.ignored, 2, "non-client events and client ops of another :f, as before")
  assert.deepEqual(p.skipped, [
    { kind: "not-txn", rule: ":f :append", reason: ":f :append, not :txn", line: 3 },
    { kind: "unreadable", rule: "appended value must be a safe integer", reason: "appended value must be a safe integer, found 1.5", line: 4 },
  ])
})
