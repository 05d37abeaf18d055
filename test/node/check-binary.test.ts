/**
 * `dist/paxos check` as a user runs it, on the compiled binary: a file it can check nothing in
 * (empty, or ops of another form than list-append) exits 2 with one line saying so; a file with
 * one good op among lines it cannot use is checked, and says how many it skipped and why.
 */
import { afterAll, expect, test } from "bun:test"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { cleanup, ensureBinary, tempDir } from "./support.ts"

afterAll(cleanup)

async function check(text: string): Promise<{ code: number; out: string; err: string }> {
  const file = join(tempDir("paxos-check-bin-"), "history.edn")
  writeFileSync(file, text)
  const p = Bun.spawn([ensureBinary(), "check", file], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { code: await p.exited, out, err }
}

test("nothing to check: an empty file, and a file of ops of another form, exit 2 with one line", async () => {
  const empty = await check("")
  expect(empty.code).toBe(2)
  expect(empty.err.trim().split("\n")).toHaveLength(1)
  expect(empty.err).toContain("nothing to check")
  const other = await check(
    ["{:type :invoke, :f :append, :value 1, :process 0, :time 1, :index 0}", "{:type :ok, :f :append, :value 1, :process 0, :time 2, :index 1}"].join("\n") + "\n"
  )
  expect(other.code).toBe(2)
  expect(other.err).toContain("nothing to check")
  expect(other.err).toContain(":append")
  expect(other.out).not.toContain("valid")
})

test("one good op among lines it cannot use: checked, with how many were skipped and why", async () => {
  const r = await check(
    [
      "{:type :invoke, :f :txn, :value [[:append 0 5] [:r 0 nil]], :process 0, :time 1, :index 0}",
      "{:type :ok, :f :txn, :value [[:append 0 5] [:r 0 [5]]], :process 0, :time 2, :index 1}",
      "{:type :ok, :f :append, :value 1, :process 1, :time 3, :index 2}",
      "{:type :weird, :f :txn, :value [[:append 0 6]], :process 2, :time 4, :index 3}"
    ].join("\n") + "\n"
  )
  expect(r.code).toBe(0)
  expect(r.out).toMatch(/valid/)
  expect(`${r.out}${r.err}`).toMatch(/2 client events skipped/)
})
