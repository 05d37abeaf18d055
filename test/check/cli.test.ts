import assert from "node:assert/strict"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "../portable.ts"
import { checkCommand } from "../../src/check/cli.ts"
import { lines } from "./support.ts"

/** Runs `paxos check` with the given args, capturing its output. */
async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await checkCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}

/** Writes `text` to a fresh temporary file, runs `fn` with its path, then removes it. */
async function withFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "paxos-check-"))
  try {
    const path = join(dir, "history.edn")
    await writeFile(path, text)
    return await fn(path)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const VALID = lines(`
  {:index 0, :time 10, :type :invoke, :process 0, :f :txn, :value [[:append 0 1] [:r 0 nil]]}
  {:index 1, :time 15, :type :info, :process :nemesis, :f :start-partition, :value nil}
  {:index 2, :time 20, :type :ok, :process 0, :f :txn, :value [[:append 0 1] [:r 0 [1]]]}
  {:index 3, :time 30, :type :invoke, :process 1, :f :txn, :value [[:r 0 nil]]}
  {:index 4, :time 40, :type :ok, :process 1, :f :txn, :value [[:r 0 [1]]]}
`)

const STALE = lines(`
  {:index 0, :time 10, :type :invoke, :process 0, :f :txn, :value [[:append 0 1] [:r 0 nil]]}
  {:index 1, :time 20, :type :ok, :process 0, :f :txn, :value [[:append 0 1] [:r 0 [1]]]}
  {:index 2, :time 30, :type :invoke, :process 1, :f :txn, :value [[:r 0 nil]]}
  {:index 3, :time 40, :type :ok, :process 1, :f :txn, :value [[:r 0 nil]]}
`)

test("cli: a valid history exits 0 with a summary", async () => {
  const r = await withFile(VALID, (p) => run([p]))
  assert.equal(r.code, 0)
  assert.deepEqual(r.err, [])
  const text = r.out.join("\n")
  assert.match(text, /ops: 2 \(4 events; 1 non-client events skipped\)/)
  assert.match(text, /appends: 1 \(1 ok, 0 fail, 0 info\)/)
  assert.match(text, /reads: 1 \(1 ok, 0 fail, 0 info\)/)
  assert.match(text, /final list length: 1/)
  assert.match(text, /verdict: valid/)
})

test("cli: an invalid history exits 1 and prints each anomaly with its ops as EDN", async () => {
  const r = await withFile(STALE, (p) => run([p]))
  assert.equal(r.code, 1)
  assert.match(r.out.join("\n"), /verdict: INVALID \(not linearizable\): 1 anomaly \(stale-read 1\)/)
  const i = r.out.findIndex((l) => l.startsWith("stale-read: "))
  assert.ok(i >= 0, r.out.join("\n"))
  assert.deepEqual(r.out.slice(i + 1, i + 5), [
    "  {:type :invoke, :f :txn, :value [[:append 0 1] [:r 0 nil]], :process 0, :time 10, :index 0}",
    "  {:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0, :time 20, :index 1}",
    "  {:type :invoke, :f :txn, :value [[:r 0 nil]], :process 1, :time 30, :index 2}",
    "  {:type :ok, :f :txn, :value [[:r 0 nil]], :process 1, :time 40, :index 3}",
  ])
  assert.equal(r.err.length, 1)
  assert.match(r.err[0] ?? "", /is not linearizable: stale-read 1/)
})

test("cli: --max-errors limits what is printed", async () => {
  const ls = [
    "{:type :invoke, :f :txn, :value [[:append 0 1]], :process 0}",
    "{:type :ok, :f :txn, :value [[:append 0 1] [:r 0 [1]]], :process 0}",
  ]
  for (let i = 1; i <= 5; i++) ls.push(`{:type :invoke, :f :txn, :value [[:r 0 nil]], :process ${i}}`, `{:type :ok, :f :txn, :value [[:r 0 []]], :process ${i}}`)
  const r = await withFile(ls.join("\n"), (p) => run(["--max-errors", "2", p]))
  assert.equal(r.code, 1)
  assert.equal(r.out.filter((l) => l.startsWith("stale-read: ")).length, 2)
  assert.ok(r.out.some((l) => l.includes("3 more stale-read anomalies not shown")))
})

test("cli: unreadable, malformed or unsupported input exits 2 with one line on stderr", async () => {
  const missing = await run([join(tmpdir(), "no-such-dir-paxos", "history.edn")])
  assert.equal(missing.code, 2)
  assert.deepEqual(missing.out, [])
  assert.equal(missing.err.length, 1)
  assert.match(missing.err[0] ?? "", /^paxos check: cannot read .*: no such file$/)

  const malformed = await withFile('{:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}\n{:type :ok, "x}\n', (p) =>
    run([p]),
  )
  assert.equal(malformed.code, 2)
  assert.equal(malformed.err.length, 1)
  assert.match(malformed.err[0] ?? "", /history\.edn:2:\d+: malformed EDN: unterminated string/)

  const bad = await withFile("{:type :ok, :f :txn, :value [[:r 0 nil]], :process 0}\n", (p) => run([p]))
  assert.equal(bad.code, 2)
  assert.match(bad.err[0] ?? "", /history\.edn:1: not a list-append history: .*no pending invocation/)

  const dir = await mkdtemp(join(tmpdir(), "paxos-check-"))
  try {
    const isDir = await run([dir])
    assert.equal(isDir.code, 2)
    assert.equal(isDir.err.length, 1)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test("cli: usage errors exit 2; --help exits 0", async () => {
  for (const args of [[], ["a", "b"], ["--bogus", "f"], ["--max-errors", "x", "f"]]) {
    const r = await run(args)
    assert.equal(r.code, 2, JSON.stringify(args))
    assert.equal(r.err.length, 1)
    assert.match(r.err[0] ?? "", /usage: paxos check/)
  }
  const help = await run(["--help"])
  assert.equal(help.code, 0)
  assert.match(help.out[0] ?? "", /usage: paxos check/)
})

test("cli: an empty file, or one of comments only, has nothing to check: exit 2 with one line", async () => {
  for (const text of ["", "\n  \n", "; no ops here\n"]) {
    const r = await withFile(text, (p) => run([p]))
    assert.equal(r.code, 2, JSON.stringify(text))
    assert.deepEqual(r.out, [])
    assert.equal(r.err.length, 1)
    assert.match(r.err[0] ?? "", /^paxos check: .*history\.edn: nothing to check: the file holds no ops$/)
  }
})

test("cli: a file with no op of the list-append form exits 2, saying what it holds", async () => {
  const appendF = lines(`
    {:type :invoke, :f :append, :value 1, :process 0, :time 1, :index 0}
    {:type :ok, :f :append, :value 1, :process 0, :time 2, :index 1}
    {:type :info, :f :start-partition, :value nil, :process :nemesis, :time 3, :index 2}
    {:type :invoke, :f :read, :value nil, :process 1, :time 4, :index 3}
  `)
  const r = await withFile(appendF, (p) => run([p]))
  assert.equal(r.code, 2)
  assert.deepEqual(r.out, [])
  assert.equal(r.err.length, 1)
  assert.match(r.err[0] ?? "", /nothing to check: no client op of the list-append form \(:f :txn\)/)
  assert.match(r.err[0] ?? "", /1 non-client event/)
  assert.match(r.err[0] ?? "", /2 client ops with :f :append, not :txn \(e\.g\. line 1\)/)
  assert.match(r.err[0] ?? "", /1 client op with :f :read, not :txn \(e\.g\. line 4\)/)

  const nemesisOnly = await withFile("{:type :info, :f :kill, :value nil, :process :nemesis}\n", (p) => run([p]))
  assert.equal(nemesisOnly.code, 2)
  assert.match(nemesisOnly.err[0] ?? "", /nothing to check: .*only 1 non-client event/)

  const unreadable = await withFile(
    lines(`
      {:type :invoke, :f :txn, :value [[:append 0 "x"]], :process 0}
      {:type :done, :f :txn, :value nil, :process 1}
    `),
    (p) => run([p]),
  )
  assert.equal(unreadable.code, 2)
  assert.equal(unreadable.err.length, 1)
  assert.match(unreadable.err[0] ?? "", /1 unreadable op: appended value must be a safe integer \(e\.g\. line 1, found "x"\)/)
  assert.match(unreadable.err[0] ?? "", /1 unreadable op: op :type must be :invoke, :ok, :fail or :info \(e\.g\. line 2, found :done\)/)
})

test("cli: lines it cannot use are skipped and reported by reason, beside a valid or an invalid verdict", async () => {
  const unreadable = [
    '{:type :invoke, :f :txn, :value [[:append 0 "x"]], :process 7}',
    "{:type :invoke, :f :txn, :value [[:append 0 :y]], :process 8}",
    "{:type :invoke, :value [[:r 0 nil]], :process 9}",
    "{:type :invoke, :f :cas, :value [0 1], :process 10}",
  ]
  const one = [unreadable[0], "{:type :invoke, :f :txn, :value [[:r 0 nil]], :process 0}", ...unreadable.slice(1)].join("\n")
  const valid = await withFile(one, (p) => run([p]))
  assert.equal(valid.code, 0, valid.err.join("\n"))
  assert.deepEqual(valid.err, [])
  assert.ok(valid.out.includes("skipped: 4 client events it could not use, left out of the verdict:"), valid.out.join("\n"))
  assert.ok(valid.out.includes('  2 unreadable ops: appended value must be a safe integer (e.g. line 1, found "x")'), valid.out.join("\n"))
  assert.ok(valid.out.includes("  1 unreadable op: op has no :f (e.g. line 4)"), valid.out.join("\n"))
  assert.ok(valid.out.includes("  1 client op with :f :cas, not :txn (e.g. line 5)"), valid.out.join("\n"))
  assert.match(valid.out.join("\n"), /verdict: valid \(linearizable\); 4 client events skipped/)

  const invalid = await withFile(STALE + unreadable.join("\n") + "\n", (p) => run([p]))
  assert.equal(invalid.code, 1)
  assert.ok(invalid.out.includes("skipped: 4 client events it could not use, left out of the verdict:"), invalid.out.join("\n"))
  assert.match(invalid.out.join("\n"), /verdict: INVALID \(not linearizable\): 1 anomaly \(stale-read 1\); 4 client events skipped/)

  // Nemesis ops are skipped on purpose: counted in the summary, not reported as skipped lines.
  const nemesis = await withFile(VALID, (p) => run([p]))
  assert.equal(nemesis.code, 0)
  assert.ok(!nemesis.out.some((l) => l.startsWith("skipped:")), nemesis.out.join("\n"))
})
