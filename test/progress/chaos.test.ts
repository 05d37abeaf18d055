/**
 * The chaos run's progress line, as units: what it shows of the clients' ops and the time limit,
 * and `--quiet`. (test/chaos holds the real runs; these start nothing.)
 */
import { expect, test } from "bun:test"
import { ChaosProgress } from "../../src/chaos/progress.ts"
import { parseChaosArgs, type ChaosOptions } from "../../src/chaos/run.ts"
import { Progress } from "../../src/progress.ts"

function fake(quiet = false) {
  const clock = { t: 0, elapsed: 0, faults: 0 }
  const out: string[] = []
  const progress = new Progress({ label: "chaos", total: 60, unit: "s", rateUnit: "ops", tty: true, quiet, write: (s) => out.push(s), now: () => clock.t })
  const shown = new ChaosProgress(progress, 60, () => clock.elapsed, () => clock.faults)
  return { shown, out, clock }
}

test("chaos progress: seconds of the time limit, ops a second, :fail and :info ops, faults", () => {
  const { shown, out, clock } = fake()
  for (let i = 0; i < 30; i++) shown.onOp("ok")
  shown.onOp("fail")
  shown.onOp("fail")
  shown.onOp("info")
  clock.t = 10_000
  clock.elapsed = 10.4
  clock.faults = 3
  shown.tick()
  expect(out).toEqual(["\r\x1b[Kchaos 10/60 s 16%  3.3 ops/s  elapsed 10s  left 50s  fail 2  info 1  faults 3"])
  // Past the time limit (ops in flight finish after it) it stays at the limit.
  clock.t = 70_000
  clock.elapsed = 70
  shown.tick()
  expect(out.at(-1)).toStartWith("\r\x1b[Kchaos 60/60 s 100%")
})

test("chaos progress: --quiet turns it off", () => {
  expect((parseChaosArgs(["--quiet"]) as ChaosOptions).quiet).toBe(true)
  expect((parseChaosArgs([]) as ChaosOptions).quiet).toBe(false)
  const { shown, out, clock } = fake(true)
  shown.onOp("ok")
  clock.t = 5_000
  shown.tick()
  expect(out).toEqual([])
})
