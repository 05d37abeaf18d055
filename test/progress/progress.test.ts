/**
 * The progress line (src/progress.ts) with a fake clock: how often it draws on a terminal and in
 * plain output, what a line says, and how other output passes it. Runs under Bun and Deno.
 */
import assert from "node:assert/strict"
import { duration, Progress, type ProgressOptions } from "../../src/progress.ts"
import { test } from "../portable.ts"

const CLEAR = "\r\x1b[K"

/** A progress over a fake clock; `out` collects every write. */
function fake(o: Partial<ProgressOptions> = {}) {
  const clock = { t: 1_000 }
  const out: string[] = []
  const p = new Progress({ label: "sim", total: 200, unit: "seeds", tty: true, write: (s) => out.push(s), now: () => clock.t, ...o })
  return { p, out, clock }
}

test("progress: a terminal line is redrawn at most every 250 ms however often it is updated", () => {
  const { p, out, clock } = fake({ total: 100_000 })
  for (let i = 1; i <= 2_000; i++) {
    clock.t += 1
    p.update({ done: i })
  }
  // 2 s of updates, one a millisecond: the first draws, then one per 250 ms.
  assert.equal(out.length, 8)
  for (const w of out) {
    assert.ok(w.startsWith(CLEAR), JSON.stringify(w))
    assert.ok(!w.includes("\n"), "a terminal line never ends a line")
  }
})

test("progress: the terminal line says done/total, rate, elapsed, left and the counts", () => {
  const { p, out, clock } = fake()
  clock.t += 10_000
  p.update({ done: 50, counts: [["violations", 1]] })
  assert.deepEqual(out, [`${CLEAR}sim 50/200 seeds 25%  5.0 seeds/s  elapsed 10s  left 30s  violations 1`])
})

test("progress: the rate counts something else when a rate unit is given", () => {
  const { p, out, clock } = fake({ label: "chaos", total: 60, unit: "s", rateUnit: "ops" })
  clock.t += 20_000
  p.update({ done: 20, rated: 3_000, counts: [["errors", 4]] })
  assert.deepEqual(out, [`${CLEAR}chaos 20/60 s 33%  150 ops/s  elapsed 20s  left 40s  errors 4`])
})

test("progress: the terminal line is cut to the terminal's width", () => {
  const { p, out } = fake({ columns: () => 20 })
  p.update({ done: 1 })
  assert.equal(out[0], `${CLEAR}sim 1/200 seeds 0% `, "19 characters: one less than the width")
})

test("progress: plain output is a line every 5 s when the run is slow", () => {
  const { p, out, clock } = fake({ tty: false, total: 1_000_000 })
  for (let i = 1; i <= 210; i++) {
    clock.t += 100
    p.update({ done: i })
  }
  // 21 s, less than a tenth done: a line at 5, 10, 15 and 20 s.
  assert.equal(out.length, 4)
  assert.equal(out[0], "sim: 50/1000000 seeds 0%, 10.0 seeds/s, elapsed 5s, left 27h46m\n")
  for (const line of out) assert.ok(line.endsWith("\n") && !line.includes("\r"), JSON.stringify(line))
})

test("progress: plain output is a line every tenth when that comes first, never two within a second", () => {
  const { p, out, clock } = fake({ tty: false, total: 100 })
  // A tenth every 1.5 s: a line at each tenth.
  for (let i = 1; i <= 100; i++) {
    clock.t += 150
    p.update({ done: i })
  }
  assert.deepEqual(
    out.map((l) => l.split(" ")[1]),
    ["10/100", "20/100", "30/100", "40/100", "50/100", "60/100", "70/100", "80/100", "90/100", "100/100"]
  )
  // A tenth every 100 ms: still at most one line a second.
  const fast = fake({ tty: false, total: 100 })
  for (let i = 1; i <= 100; i++) {
    fast.clock.t += 20
    fast.p.update({ done: i })
  }
  assert.equal(fast.out.length, 2, "2 s of a run that passes a tenth every 200 ms: one line a second")
})

test("progress: other output goes above the terminal line, which is drawn again after it", () => {
  const { p, out, clock } = fake()
  const printed: string[] = []
  p.above(() => printed.push("before any line"))
  assert.equal(out.length, 0, "nothing to clear before the first draw")
  clock.t += 1_000
  p.update({ done: 10 })
  p.above(() => {
    out.push("<violation>")
  })
  assert.deepEqual(out.slice(1), [CLEAR, "<violation>", `${CLEAR}sim 10/200 seeds 5%  10.0 seeds/s  elapsed 1s  left 19s`])
  p.finish()
  assert.equal(out.at(-1), CLEAR, "finish takes the line away")
  p.update({ done: 11 })
  p.above(() => out.push("after"))
  assert.equal(out.at(-1), "after", "nothing is drawn after finish")
  assert.deepEqual(printed, ["before any line"])
})

test("progress: quiet writes nothing, and other output still passes", () => {
  for (const tty of [true, false]) {
    const { p, out, clock } = fake({ tty, quiet: true, total: 10 })
    for (let i = 1; i <= 10; i++) {
      clock.t += 2_000
      p.update({ done: i })
      p.above(() => out.push(`line ${i}`))
    }
    p.finish()
    assert.deepEqual(out, Array.from({ length: 10 }, (_, i) => `line ${i + 1}`))
  }
})

test("progress: nothing is shown before showAfterMs", () => {
  const { p, out, clock } = fake({ showAfterMs: 1_000 })
  clock.t += 999
  p.update({ done: 150 })
  assert.equal(out.length, 0)
  clock.t += 1
  p.update({ done: 160 })
  assert.equal(out.length, 1)
})

test("progress: durations and a bad total", () => {
  assert.deepEqual([0, 42.4, 60, 185, 3_600, 7_620].map(duration), ["0s", "42s", "1m00s", "3m05s", "1h00m", "2h07m"])
  assert.throws(() => fake({ total: 0 }), /positive number/)
})
