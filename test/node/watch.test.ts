/**
 * The deadlines of requests in flight (src/server/watch.ts): each lane runs its deadlines in the
 * order they were set, once, at their delay and not before; a cancelled one never runs.
 */
import { expect, test } from "bun:test"
import { Watch } from "../../src/server/watch.ts"

test("deadlines of two delays run once each, at their delay, never when cancelled", () => {
  let now = 1_000
  const w = new Watch(() => now)
  try {
    const ran: string[] = []
    w.after(100, () => ran.push("a100"))
    const b = w.after(100, () => ran.push("b100"))
    now += 10
    w.after(30, () => ran.push("c30"))
    w.after(100, () => ran.push("d100"))
    w.cancel(b)
    w.cancel(0)
    w.sweep(now + 29)
    expect(ran).toEqual([])
    w.sweep(now + 30)
    expect(ran).toEqual(["c30"])
    w.sweep(1_099)
    expect(ran).toEqual(["c30"])
    w.sweep(1_100)
    expect(ran).toEqual(["c30", "a100"])
    w.sweep(1_110)
    w.sweep(5_000)
    expect(ran).toEqual(["c30", "a100", "d100"])
  } finally {
    w.stop()
  }
})

test("a deadline set while others are due waits for its own delay", () => {
  let now = 0
  const w = new Watch(() => now)
  try {
    const ran: number[] = []
    w.after(50, () => {
      ran.push(1)
      w.after(50, () => ran.push(2))
    })
    now = 60
    w.sweep(now)
    expect(ran).toEqual([1])
    w.sweep(109)
    expect(ran).toEqual([1])
    w.sweep(110)
    expect(ran).toEqual([1, 2])
  } finally {
    w.stop()
  }
})
