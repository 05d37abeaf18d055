import assert from "node:assert/strict"
import { test } from "../portable.ts"
import {
  Char,
  EdnError,
  EdnFloat,
  EdnList,
  EdnMap,
  EdnSet,
  EdnTagged,
  Keyword,
  Sym,
  formatEdn,
  formatOp,
  parseEdn,
  parseEdnAll,
  readEdnForms,
  type EdnValue,
} from "../../src/check/edn.ts"

const kw = Keyword.of

/** Asserts that parsing fails with an EdnError at the given line (and column, if given). */
function assertEdnError(text: string, line: number, column?: number, reason?: RegExp): void {
  assert.throws(
    () => parseEdnAll(text),
    (e: unknown) => {
      assert.ok(e instanceof EdnError, `expected EdnError, got ${String(e)}`)
      assert.equal(e.line, line, `line of ${JSON.stringify(text)}: ${e.message}`)
      if (column !== undefined) assert.equal(e.column, column, `column: ${e.message}`)
      if (reason !== undefined) assert.match(e.reason, reason)
      return true
    },
  )
}

test("edn: scalars", () => {
  assert.equal(parseEdn("nil"), null)
  assert.equal(parseEdn("true"), true)
  assert.equal(parseEdn("false"), false)
  assert.equal(parseEdn("42"), 42)
  assert.equal(parseEdn("-7"), -7)
  assert.equal(parseEdn("+7"), 7)
  assert.equal(parseEdn("0"), 0)
  assert.equal(parseEdn("5N"), 5)
  assert.equal(parseEdn("9007199254740991"), Number.MAX_SAFE_INTEGER)
  assert.equal(parseEdn("123456789012345678901234567890"), 123456789012345678901234567890n)
  assert.equal(parseEdn("-123456789012345678901234567890N"), -123456789012345678901234567890n)
  assert.equal(parseEdn("0x1F"), 31)
  assert.equal(parseEdn("2r1010"), 10)
  assert.equal(parseEdn('"a\\"b\\\\c\\nd\\te\\u0041"'), 'a"b\\c\nd\teA')
  assert.equal(parseEdn('"multi\nline"'), "multi\nline")
  assert.equal(parseEdn(":type"), kw("type"))
  assert.equal((parseEdn(":jepsen.history/op") as Keyword).name, "jepsen.history/op")
  assert.equal(parseEdn(":a"), parseEdn(":a"), "keywords are interned")
  assert.deepEqual(parseEdn("foo.bar/baz"), new Sym("foo.bar/baz"))
})

test("edn: floats, ratios, decimals and symbolic values", () => {
  const f = (s: string) => parseEdn(s) as EdnFloat
  assert.equal(f("1.5").value, 1.5)
  assert.equal(f("-2.5e3").value, -2500)
  assert.equal(f("1E10").value, 1e10)
  assert.equal(f("1/4").value, 0.25)
  assert.equal(f("3.14M").value, 3.14)
  assert.equal(f("##Inf").value, Infinity)
  assert.equal(f("##-Inf").value, -Infinity)
  assert.ok(Number.isNaN(f("##NaN").value))
  assert.equal(formatEdn(parseEdn("1/4")), "1/4")
})

test("edn: characters", () => {
  const c = (s: string) => (parseEdn(s) as Char).char
  assert.equal(c("\\a"), "a")
  assert.equal(c("\\newline"), "\n")
  assert.equal(c("\\space"), " ")
  assert.equal(c("\\tab"), "\t")
  assert.equal(c("\\u0041"), "A")
  assert.equal(c("\\("), "(")
  assert.deepEqual(parseEdn("[\\a \\b]"), [new Char("a"), new Char("b")])
  assert.equal(formatEdn(new Char("\n")), "\\newline")
})

test("edn: collections, comments, commas, discard", () => {
  const v = parseEdn(`
    ; a comment
    {:a [1, 2, 3], :b (x y), :c #{1 2}, "k" nil #_ :ignored, :d #_#_ 1 2 :e}
  `) as EdnMap
  assert.ok(v instanceof EdnMap)
  assert.deepEqual(v.get(kw("a")), [1, 2, 3])
  assert.deepEqual((v.get(kw("b")) as EdnList).items, [new Sym("x"), new Sym("y")])
  assert.deepEqual((v.get(kw("c")) as EdnSet).items, [1, 2])
  assert.equal(v.get("k"), null)
  assert.equal(v.get(kw("d")), kw("e"))
  assert.equal(v.entries.length, 5)
  assert.deepEqual(parseEdn("[1 #_2 3 #_ [4 5]]"), [1, 3])
  assert.deepEqual(parseEdn("[]"), [])
  assert.deepEqual((parseEdn("{}") as EdnMap).entries, [])
})

test("edn: tagged literals, records, namespaced maps, metadata, regex, objects", () => {
  const inst = parseEdn('#inst "2024-01-02T03:04:05.000-00:00"') as EdnTagged
  assert.equal(inst.tag, "inst")
  assert.equal(inst.value, "2024-01-02T03:04:05.000-00:00")
  const uuid = parseEdn('#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"') as EdnTagged
  assert.equal(uuid.tag, "uuid")
  const rec = parseEdn("#jepsen.history.Op{:index 0, :time 5, :type :invoke}") as EdnMap
  assert.ok(rec instanceof EdnMap, "a tagged map reads as the map")
  assert.equal(rec.tag, "jepsen.history.Op")
  assert.equal(rec.get(kw("time")), 5)
  const ns = parseEdn("#:jepsen{:a 1, :b/c 2, :_/d 3}") as EdnMap
  assert.deepEqual(
    ns.entries.map(([k]) => (k as Keyword).name),
    ["jepsen/a", "b/c", "d"],
  )
  assert.deepEqual(parseEdn("^{:meta true} [1]"), [1])
  assert.deepEqual(parseEdn('#"a\\d+"'), new EdnTagged("regex", "a\\d+"))
  const obj = parseEdn('#object[java.lang.Object 0x1b2c "java.lang.Object@1b2c"]') as EdnTagged
  assert.equal(obj.tag, "object")
  assert.ok(Array.isArray(obj.value))
  const err = parseEdn('#error {:cause "boom", :via [{:type java.io.IOException}]}')
  assert.ok(err instanceof EdnMap)
})

test("edn: readEdnForms gives line and column of each top-level form", () => {
  const forms = [...readEdnForms('{:a 1}\n\n  [2]\n"s"  :k\n')]
  assert.deepEqual(
    forms.map((f) => [f.line, f.column]),
    [
      [1, 1],
      [3, 3],
      [4, 1],
      [4, 6],
    ],
  )
})

test("edn: malformed input gives EdnError with line and column, never a crash", () => {
  assertEdnError("{:a 1}\n{:b [1 2}\n", 2, 9, /does not close/)
  assertEdnError("{:a 1}\n{:b [1 2\n", 2, 5, /unterminated '\['/)
  assertEdnError('\n\n"abc', 3, 1, /unterminated string/)
  assertEdnError("{:a}", 1, 1, /even number/)
  assertEdnError("[1 2]]", 1, 6, /unmatched/)
  assertEdnError("[12abc]", 1, 2, /invalid number/)
  assertEdnError("\\foo", 1, 1, /character literal/)
  assertEdnError('"\\q"', 1, 2, /escape/)
  assertEdnError("#_", 1, 1)
  assertEdnError("[#_]", 1, 4, /after #_/)
  assertEdnError("##Foo", 1, 1, /symbolic/)
  assertEdnError("#{1", 1, 1)
  assertEdnError("'a", 1, 1, /quote/)
  assertEdnError("[1 @x]", 1, 4)
  assertEdnError(":", 1, 1, /keyword/)
  assertEdnError("[".repeat(5000), 1, undefined, /nesting/)
  assert.throws(() => parseEdn(""), EdnError)
  assert.throws(() => parseEdn("1 2"), EdnError)
})

test("edn: formatEdn writes Clojure pr style and round-trips", () => {
  const text =
    '{:a [1 2 nil true], :b (x "s\\n\\"q\\"" \\c), :c #{:k}, :d #inst "2024", :e 12345678901234567890N, :f 1.5, :g {}}'
  const v = parseEdn(text)
  assert.equal(formatEdn(v), text)
  assert.deepEqual(parseEdn(formatEdn(v)), v)
  const samples: EdnValue[] = [null, 0, -3, "x", [], kw("a/b"), new EdnFloat(2, "2.0")]
  for (const s of samples) assert.deepEqual(parseEdn(formatEdn(s)), s)
})

test("edn: formatOp prints one op on one line in Jepsen's style", () => {
  assert.equal(
    formatOp({ type: "invoke", f: "txn", process: 3, time: 123456, index: 0, value: [["append", 0, 5]] }),
    "{:type :invoke, :f :txn, :value [[:append 0 5]], :process 3, :time 123456, :index 0}",
  )
  assert.equal(
    formatOp({
      type: "ok",
      f: "txn",
      process: "c1",
      time: 7,
      index: 9,
      value: [
        ["append", 0, 5],
        ["r", 0, [1, 2, 5]],
      ],
      extra: [[kw("error"), [kw("timeout"), "slow"]]],
    }),
    '{:type :ok, :f :txn, :value [[:append 0 5] [:r 0 [1 2 5]]], :process "c1", :time 7, :index 9, :error [:timeout "slow"]}',
  )
  assert.equal(
    formatOp({ type: "invoke", f: "txn", process: 0, time: -1, index: 2, value: [["r", 0, null]] }),
    "{:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0, :index 2}",
  )
})

test("edn: a 100k-line file parses in linear time", () => {
  const line = '{:index 1, :time 2, :type :ok, :process 3, :f :txn, :value [[:append 0 5] [:r 0 [1 2 3 4 5]]]}\n'
  const text = line.repeat(100_000)
  const t0 = performance.now()
  let n = 0
  for (const _ of readEdnForms(text)) n++
  const ms = performance.now() - t0
  assert.equal(n, 100_000)
  assert.ok(ms < 3000, `parsing took ${ms.toFixed(0)} ms`)
})
