import assert from "node:assert/strict"
import { test } from "../portable.ts"
import { checkHistoryText, type CheckResult } from "../../src/check/checker.ts"
import { EdnError } from "../../src/check/edn.ts"
import { lines } from "./support.ts"

/** Checks EDN text; `:time`/`:index` may be left out (file order is then real-time order). */
function check(text: string): CheckResult {
  return checkHistoryText(lines(text), { maxErrorsPerKind: 100 })
}

/** The kinds of error found, sorted, without repeats. */
function kinds(r: CheckResult): string[] {
  return [...new Set(r.errors.map((e) => e.kind))].sort()
}

/** The :index of each op of error i. */
function opIndexes(r: CheckResult, i = 0): number[] {
  return (r.errors[i]?.ops ?? []).map((o) => o.index)
}

function assertValid(r: CheckResult): void {
  assert.deepEqual(r.errors, [], `expected valid, got ${r.errors.map((e) => `${e.kind}: ${e.message}`).join("; ")}`)
  assert.equal(r.valid, true)
}

test("checker: valid sequential history", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0, :time 10, :index 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0, :time 20, :index 1}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0, :time 30, :index 2}
    {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [1 2]]], :process 0, :time 40, :index 3}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1, :time 50, :index 4}
    {:type :ok, :f :txn, :value [[:r 0 [1 2]]], :process 1, :time 60, :index 5}
  `)
  assertValid(r)
  assert.deepEqual(r.stats, {
    ops: 3,
    events: 6,
    ignored: 0,
    appends: { ok: 2, fail: 0, info: 0 },
    reads: { ok: 1, fail: 0, info: 0 },
    finalLength: 2,
  })
})

test("checker: empty history is valid", () => {
  const r = checkHistoryText("")
  assertValid(r)
  assert.equal(r.stats.ops, 0)
})

test("checker: concurrent appends may take effect in either order", () => {
  assertValid(
    check(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 1}
      {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [2]]], :process 1}
      {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [2 1]]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 2}
      {:type :ok, :f :txn, :value [[:r 0 [2 1]]], :process 2}
    `),
  )
})

test("checker: reads concurrent with an append may see it or not, nil reads are empty lists", () => {
  assertValid(
    check(`
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 3}
      {:type :ok, :f :txn, :value [[:r 0 nil]], :process 3}
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 2}
      {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
      {:type :ok, :f :txn, :value [[:r 0 nil]], :process 2}
      {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    `),
  )
})

test("checker: stale read — a read misses an append that completed before it began", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 []]], :process 1}
  `)
  assert.equal(r.valid, false)
  assert.deepEqual(kinds(r), ["stale-read"])
  assert.deepEqual(opIndexes(r), [0, 1, 2, 3])
  assert.match(r.errors[0]?.message ?? "", /read op 2 .* missing 1 .*append op 0/)
})

test("checker: stale read — a read sees less than an earlier read", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 2}
    {:type :ok, :f :txn, :value [[:r 0 nil]], :process 2}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
  `)
  assert.deepEqual(kinds(r), ["stale-read"])
  assert.deepEqual(opIndexes(r), [1, 2, 3, 4], "the two reads are the whole proof")
})

test("checker: a value read before its append was invoked", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1 2]]], :process 1}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [1 2]]], :process 0}
  `)
  assert.deepEqual(kinds(r), ["real-time"])
  assert.deepEqual(opIndexes(r), [2, 3, 4, 5])
  assert.match(r.errors[0]?.message ?? "", /read op 2 .* read 2 .* before append op 4/)
})

test("checker: appends ordered against real time", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1]], :process 0}
    {:type :invoke, :f :txn, :value [[:append 0 2]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 2]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [2 1]]], :process 1}
  `)
  assert.deepEqual(kinds(r), ["real-time"])
  assert.deepEqual(opIndexes(r), [0, 1, 2, 3, 4, 5], "both appends and the read that orders them")
})

test("checker: lost acknowledged append", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1]], :process 0}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [2]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [2]]], :process 1}
  `)
  assert.deepEqual(kinds(r), ["lost-append"])
  assert.equal(r.errorCounts["lost-append"], 2)
  assert.deepEqual(opIndexes(r, 0), [0, 1, 2, 3])
  assert.deepEqual(opIndexes(r, 1), [0, 1, 4, 5])
  assert.match(r.errors[1]?.message ?? "", /acknowledged append of 1 .* appears in no list/)
})

test("checker: an acknowledged append nobody could have seen yet is fine", () => {
  assertValid(
    check(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :invoke, :f :txn, :value [[:append 0 2]], :process 0}
      {:type :ok, :f :txn, :value [[:append 0 2]], :process 0}
      {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
    `),
  )
})

test("checker: divergent lists", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [2]]], :process 1}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 2}
    {:type :ok, :f :txn, :value [[:r 0 [1 2]]], :process 2}
  `)
  assert.deepEqual(kinds(r), ["divergent"])
  assert.deepEqual(opIndexes(r), [1, 3, 4, 5], "the longest list and the one that disagrees")
  assert.match(r.errors[0]?.message ?? "", /index 0: append op 1 .* has 2 where .* read op 4 .* has 1/)
})

test("checker: an append whose list does not end with its own value", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [1 2]]], :process 1}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1 2]]], :process 0}
  `)
  assert.deepEqual(kinds(r), ["own-value-not-last"])
  assert.deepEqual(opIndexes(r), [0, 3])
})

test("checker: a value twice in the list", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1 1]]], :process 1}
  `)
  assert.deepEqual(kinds(r), ["duplicate"])
  assert.deepEqual(opIndexes(r), [2, 3])
})

test("checker: a phantom value nobody appended", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1 7]]], :process 1}
  `)
  assert.deepEqual(kinds(r), ["phantom"])
  assert.deepEqual(opIndexes(r), [2, 3])
  assert.match(r.errors[0]?.message ?? "", /value 7 at index 1/)
})

test("checker: a value from a failed append must never appear", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :fail, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0, :error :no-quorum}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
  `)
  assert.deepEqual(kinds(r), ["failed-append-appears"])
  assert.deepEqual(opIndexes(r), [0, 1, 2, 3])
  assert.equal(r.stats.appends.fail, 1)
})

test("checker: a failed append that does not appear is fine", () => {
  assertValid(
    check(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :fail, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :ok, :f :txn, :value [[:r 0 []]], :process 1}
    `),
  )
})

test("checker: an :info append may appear, even long after", () => {
  assertValid(
    check(`
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
      {:type :info, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0, :error :timeout}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :ok, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 5}
      {:type :ok, :f :txn, :value [[:append 0 2] [:r 0 [2]]], :process 5}
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
      {:type :ok, :f :txn, :value [[:r 0 [2 1]]], :process 1}
    `),
  )
})

test("checker: an :info append may not appear", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :info, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 []]], :process 1}
  `)
  assertValid(r)
  assert.equal(r.stats.appends.info, 1)
})

test("checker: an :info append's value read before it was invoked", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :info, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
  `)
  assert.deepEqual(kinds(r), ["real-time"])
})

test("checker: ops never completed count as :info", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1]]], :process 1}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
  `)
  assertValid(r)
  assert.deepEqual(r.stats.appends, { ok: 0, fail: 0, info: 1 })
  assert.deepEqual(r.stats.reads, { ok: 1, fail: 0, info: 1 })
  assert.equal(r.stats.events, 4)
})

const JEPSEN_LINES = [
  '{:index 0, :time 1000, :type :invoke, :process 0, :f :txn, :value [[:append 0 1] [:r 0 nil]]}',
  '{:index 1, :time 1200, :type :info, :process :nemesis, :f :start-partition, :value :majority}',
  '{:index 2, :time 2000, :type :invoke, :process 1, :f :txn, :value [[:r 0 nil]]}',
  '{:index 3, :time 2500, :type :info, :process :nemesis, :f :start-partition, :value [:isolated {"n1" #{"n2" "n3"}}]}',
  '{:index 4, :time 3000, :type :ok, :process 0, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :node "n1"}',
  '{:index 5, :time 4000, :type :info, :process 1, :f :txn, :value [[:r 0 nil]], :error [:timeout "no answer in 1000 ms"]}',
  '{:index 6, :time 5000, :type :invoke, :process 6, :f :txn, :value [[:append 0 2] [:r 0 nil]]}',
  '{:index 7, :time 5100, :type :info, :process :nemesis, :f :kill, :value {"n1" :killed, "n2" #object[clojure.lang.Atom 0x1 {:status :ready}]}}',
  '{:index 8, :time 6000, :type :fail, :process 6, :f :txn, :value [[:append 0 2] [:r 0 nil]], :error :no-quorum}',
  '{:index 9, :time 7000, :type :invoke, :process 6, :f :txn, :value [[:r 0 nil]]}',
  '{:index 10, :time 8000, :type :ok, :process 6, :f :txn, :value [[:r 0 [1]]]}',
]

test("checker: Jepsen 0.3 history.edn (one map a line, extra keys, nemesis ops)", () => {
  const r = checkHistoryText(JEPSEN_LINES.join("\n") + "\n")
  assertValid(r)
  assert.equal(r.stats.ignored, 3)
  assert.equal(r.stats.ops, 4)
  assert.equal(r.stats.finalLength, 1)
})

test("checker: the same history as one vector, and as #jepsen.history.Op records", () => {
  const plain = checkHistoryText(JEPSEN_LINES.join("\n"))
  const vector = checkHistoryText("[" + JEPSEN_LINES.join("\n ") + "]\n")
  const records = checkHistoryText(JEPSEN_LINES.map((l) => "#jepsen.history.Op" + l).join("\n"))
  const commas = checkHistoryText("[" + JEPSEN_LINES.join(",\n") + "]")
  for (const r of [vector, records, commas]) assert.deepEqual(r, plain)
  assertValid(plain)
})

test("checker: the vector form is checked, not just read", () => {
  const r = checkHistoryText(`[
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 nil]], :process 1}
  ]`)
  assert.deepEqual(kinds(r), ["stale-read"])
  assert.equal(r.errors[0]?.ops[2]?.line, 4, "ops know their line in the file")
})

test("checker: :time decides real-time order when the file is not sorted", () => {
  const r = checkHistoryText(
    lines(`
      {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1, :time 30}
      {:type :ok, :f :txn, :value [[:r 0 []]], :process 1, :time 40}
      {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0, :time 10}
      {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0, :time 20}
    `),
  )
  assert.deepEqual(kinds(r), ["stale-read"])
})

test("checker: malformed EDN is an EdnError with its line", () => {
  assert.throws(
    () =>
      checkHistoryText(
        lines(`
          {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
          {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
          {:type :invoke, :f :txn, :value [[:r 0 nil], :process 1}
        `),
      ),
    (e: unknown) => e instanceof EdnError && e.line === 3,
  )
})

test("checker: errors are deterministic and capped per kind but fully counted", () => {
  const ls = [
    "{:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}",
    "{:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}",
  ]
  for (let i = 0; i < 30; i++) {
    ls.push(`{:type :invoke, :f :txn, :value [[:r 0 nil]], :process ${i + 1}}`)
    ls.push(`{:type :ok, :f :txn, :value [[:r 0 []]], :process ${i + 1}}`)
  }
  const text = ls.join("\n")
  const a = checkHistoryText(text, { maxErrorsPerKind: 5 })
  const b = checkHistoryText(text, { maxErrorsPerKind: 5 })
  assert.deepEqual(a, b)
  assert.equal(a.errors.length, 5)
  assert.equal(a.errorCounts["stale-read"], 30)
  assert.deepEqual(
    a.errors.map((e) => e.ops[2]?.index),
    [2, 4, 6, 8, 10],
  )
})

test("checker: several anomalies are reported in a stable kind order", () => {
  const r = check(`
    {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0}
    {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}
    {:type :invoke, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0}
    {:type :fail, :f :txn, :value [[:append 0 2] [:r 0 nil]], :process 0}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 [1 2 9]]], :process 1}
    {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1}
    {:type :ok, :f :txn, :value [[:r 0 nil]], :process 1}
  `)
  assert.deepEqual(
    r.errors.map((e) => e.kind),
    ["phantom", "failed-append-appears", "stale-read"],
  )
})
