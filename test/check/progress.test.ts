/**
 * What the check's progress line reads: the checker tells how far through the text it has read,
 * op by op, and `paxos check --quiet` is accepted (no progress line at all).
 */
import assert from "node:assert/strict"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { checkHistoryText } from "../../src/check/checker.ts"
import { checkCommand } from "../../src/check/cli.ts"
import { test } from "../portable.ts"
import { lines } from "./support.ts"

const HISTORY = lines(`
  {:index 0, :time 10, :type :invoke, :process 0, :f :txn, :value [[:append 0 1] [:r 0 nil]]}
  {:index 1, :time 20, :type :ok, :process 0, :f :txn, :value [[:append 0 1] [:r 0 [1]]]}
  {:index 2, :time 30, :type :invoke, :process 1, :f :txn, :value [[:r 0 nil]]}
  {:index 3, :time 40, :type :ok, :process 1, :f :txn, :value [[:r 0 [1]]]}
`)

test("check progress: the checker reports the offset of each op it reads", () => {
  const offsets: number[] = []
  const r = checkHistoryText(HISTORY, { onProgress: (at) => offsets.push(at) })
  assert.equal(r.valid, true)
  assert.deepEqual(offsets, [...HISTORY.matchAll(/\{:index/g)].map((m) => m.index))
})

test("check progress: --quiet is accepted", async () => {
  const dir = await mkdtemp(join(tmpdir(), "paxos-check-"))
  try {
    const file = join(dir, "history.edn")
    await writeFile(file, HISTORY)
    const err: string[] = []
    const code = await checkCommand(["--quiet", file], { out: () => {}, err: (l) => err.push(l) })
    assert.deepEqual(err, [])
    assert.equal(code, 0)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
