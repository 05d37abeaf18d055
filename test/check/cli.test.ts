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
