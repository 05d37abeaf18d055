import assert from "node:assert/strict"
import { test } from "../portable.ts"
import { checkHistoryText, checkOps, type CheckResult } from "../../src/check/checker.ts"
import { formatOp } from "../../src/check/edn.ts"
import { pairOps, type MicroOp, type Op, type Txn } from "../../src/check/history.ts"
import { bruteForce, pick, rng, simulate, type SimOptions } from "./support.ts"

/** Random simulation parameters for a seed. */
function options(seed: number, txns: number): SimOptions {
  const r = rng(seed * 7919 + 1)
  return {
    seed,
    txns,
    processes: 1 + pick(r, 8),
    readRatio: r() * 0.5,
    listRatio: 0.3 + r() * 0.7,
    failRatio: r() * 0.15,
    infoRatio: r() * 0.15,
  }
}

/** Describes a result for assertion messages. */
function why(r: CheckResult): string {
  return r.errors.map((e) => `${e.kind}: ${e.message}`).join("\n")
}

/** A copy of `ops` with the op at `index` given a new value (and optionally type). */
function replace(ops: readonly Op[], index: number, value: readonly MicroOp[], type?: Op["type"]): Op[] {
  const out = [...ops]
  const old = out[index] as Op
  out[index] = { ...old, value, type: type ?? old.type }
  return out
}

/** The final read's completion (the simulator puts it last) and its list. */
function finalRead(ops: readonly Op[]): { at: number; list: number[] } {
  const at = ops.length - 1
  const m = (ops[at] as Op).value?.[0]
  assert.ok(m !== undefined && m[0] === "r" && m[2] !== null)
  return { at, list: [...m[2]] }
}

/** Ok appends by value. */
function okAppends(txns: readonly Txn[]): Map<number, Txn> {
  return new Map(txns.filter((t) => t.kind === "append" && t.outcome === "ok").map((t) => [t.value as number, t]))
}

test("random: histories of a simulated linearizable list are valid", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const ops = simulate(options(seed, 1 + (seed % 120)))
    const r = checkOps(ops)
    assert.ok(r.valid, `seed ${seed}:\n${why(r)}`)
    if (seed % 10 === 0) {
      const viaText = checkHistoryText(ops.map(formatOp).join("\n"))
      assert.deepEqual(viaText.stats, r.stats, `seed ${seed}: text round trip`)
      assert.ok(viaText.valid)
    }
  }
})

test("random: dropping an acknowledged value from the final list is caught", () => {
  let tried = 0
  for (let seed = 1; seed <= 200; seed++) {
    const ops = simulate(options(seed, 10 + (seed % 90)))
    const { at, list } = finalRead(ops)
    const acked = okAppends(pairOps(ops))
    const candidates = list.map((v, i) => [v, i] as const).filter(([v]) => acked.has(v))
    if (candidates.length === 0) continue
    const [, i] = candidates[pick(rng(seed), candidates.length)] as readonly [number, number]
    list.splice(i, 1)
    const r = checkOps(replace(ops, at, [["r", 0, list]]))
    assert.equal(r.valid, false, `seed ${seed}: dropping index ${i} went unnoticed`)
    tried++
  }
  assert.ok(tried > 150, `only ${tried} histories could be mutated`)
})

test("random: swapping two values in the final list is caught", () => {
  let tried = 0
  for (let seed = 1; seed <= 200; seed++) {
    const ops = simulate({ ...options(seed, 10 + (seed % 90)), listRatio: 0.8 })
    const { at, list } = finalRead(ops)
    const withList = new Set(
      pairOps(ops)
        .filter((t) => t.kind === "append" && t.list !== null)
        .map((t) => t.value),
    )
    const idx = list.map((v, i) => [v, i] as const).filter(([v]) => withList.has(v))
    if (idx.length < 2) continue
    const r0 = rng(seed)
    const a = (idx[pick(r0, idx.length)] as readonly [number, number])[1]
    let b = a
    while (b === a) b = (idx[pick(r0, idx.length)] as readonly [number, number])[1]
    ;[list[a], list[b]] = [list[b] as number, list[a] as number]
    const r = checkOps(replace(ops, at, [["r", 0, list]]))
    assert.equal(r.valid, false, `seed ${seed}: swapping indexes ${a} and ${b} went unnoticed`)
    tried++
  }
  assert.ok(tried > 150, `only ${tried} histories could be mutated`)
})

test("random: making a read stale is caught", () => {
  let tried = 0
  for (let seed = 1; seed <= 200; seed++) {
    const ops = simulate(options(seed, 10 + (seed % 90)))
    const txns = pairOps(ops)
    const acked = [...okAppends(txns).values()]
    const r0 = rng(seed)
    const reads = txns.filter((t) => t.kind === "read" && t.list !== null && t.list.length > 0)
    const pairs = reads.flatMap((rd) =>
      acked.filter((a) => a.completeRank < rd.invokeRank && rd.list?.includes(a.value as number)).map((a) => [rd, a] as const),
    )
    if (pairs.length === 0) continue
    const [rd, a] = pairs[pick(r0, pairs.length)] as readonly [Txn, Txn]
    const list = (rd.list ?? []).slice(0, rd.list?.indexOf(a.value as number))
    const r = checkOps(replace(ops, (rd.completion as Op).index, [["r", 0, list]]))
    assert.equal(r.valid, false, `seed ${seed}: stale read went unnoticed`)
    const kinds = Object.keys(r.errorCounts)
    assert.ok(kinds.includes("stale-read") || kinds.includes("lost-append"), `seed ${seed}: ${why(r)}`)
    tried++
  }
  assert.ok(tried > 150, `only ${tried} histories could be mutated`)
})

test("random: an acknowledged append turned into a :fail that shows up is caught", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const ops = simulate(options(seed, 10 + (seed % 50)))
    const { list } = finalRead(ops)
    const acked = okAppends(pairOps(ops))
    const v = list.find((x) => acked.has(x))
    if (v === undefined) continue
    const done = (acked.get(v) as Txn).completion as Op
    const r = checkOps(replace(ops, done.index, [["append", 0, v]], "fail"))
    assert.ok((r.errorCounts["failed-append-appears"] ?? 0) > 0, `seed ${seed}: ${why(r)}`)
  }
})

/** Randomly damages one observation or outcome of a small history. */
function mutate(ops: Op[], r: () => number): Op[] {
  const txns = pairOps(ops)
  const listed = txns.filter((t) => t.list !== null)
  const maxValue = txns.reduce((m, t) => Math.max(m, t.value ?? 0), 0)
  const choice = pick(r, 6)
  if (choice === 5 || listed.length === 0) {
    const acked = txns.filter((t) => t.kind === "append" && t.outcome === "ok")
    const t = acked[pick(r, Math.max(1, acked.length))]
    return t === undefined ? ops : replace(ops, (t.completion as Op).index, [["append", 0, t.value as number]], "fail")
  }
  const t = listed[pick(r, listed.length)] as Txn
  const list = [...(t.list ?? [])]
  if (choice === 0 && list.length > 0) list.splice(pick(r, list.length), 1)
  else if (choice === 1 && list.length > 1) {
    const i = pick(r, list.length - 1)
    ;[list[i], list[i + 1]] = [list[i + 1] as number, list[i] as number]
  } else if (choice === 2) list.splice(pick(r, list.length + 1), 0, 1 + pick(r, maxValue + 1))
  else if (choice === 3) list.length = pick(r, list.length + 1)
  else list.splice(0, list.length, ...((listed[pick(r, listed.length)] as Txn).list ?? []))
  const done = t.completion as Op
  const value: readonly MicroOp[] = t.kind === "read" ? [["r", 0, list]] : [["append", 0, t.value as number], ["r", 0, list]]
  return replace(ops, done.index, value)
}

/** A random small history with random (mostly inconsistent) observations. */
function randomHistory(r: () => number): Op[] {
  const n = 1 + pick(r, 6)
  const procs = 1 + pick(r, 3)
  const ops: Op[] = []
  const pending = new Map<number, { kind: "append" | "read"; value: number }>()
  let started = 0
  let nextValue = 1
  let nextProc = procs
  const slots = Array.from({ length: procs }, (_, i) => i)
  const order = Array.from({ length: 3 + pick(r, 6) }, () => 1 + pick(r, 4))
  const emit = (type: Op["type"], process: number, value: readonly MicroOp[]) =>
    ops.push({ type, f: "txn", process, time: ops.length + 1, index: ops.length, value })
  while (started < n || pending.size > 0) {
    const s = pick(r, procs)
    const p = slots[s] as number
    const cur = pending.get(p)
    if (cur === undefined) {
      if (started >= n) continue
      started++
      const kind = r() < 0.4 ? "read" : "append"
      const value = kind === "append" ? nextValue++ : 0
      pending.set(p, { kind, value })
      emit("invoke", p, kind === "append" ? [["append", 0, value]] : [["r", 0, null]])
      continue
    }
    pending.delete(p)
    const x = r()
    const base = order.filter((v) => v < nextValue)
    const list = base.slice(0, pick(r, base.length + 1))
    if (cur.kind === "append" && r() < 0.7) list.push(cur.value)
    if (x < 0.1) emit("fail", p, [])
    else if (x < 0.25) {
      emit("info", p, [])
      slots[s] = nextProc++
    } else if (cur.kind === "read") emit("ok", p, [["r", 0, list]])
    else emit("ok", p, r() < 0.3 ? [["append", 0, cur.value]] : [["append", 0, cur.value], ["r", 0, list]])
  }
  return ops
}

test("random: the checker agrees with a brute-force search on small histories", () => {
  const verdicts = { valid: 0, invalid: 0 }
  for (let seed = 1; seed <= 3000; seed++) {
    const r = rng(seed * 31 + 7)
    let ops: Op[]
    if (seed % 3 === 0) ops = randomHistory(r)
    else {
      ops = simulate({ ...options(seed, 1 + pick(r, 6)), processes: 1 + pick(r, 3), finalRead: r() < 0.5 })
      if (r() < 0.7) ops = mutate(ops, r)
    }
    const txns = pairOps(ops)
    const expected = bruteForce(txns)
    const got = checkOps(ops)
    assert.equal(got.valid, expected, `seed ${seed}: checker says ${got.valid}, search says ${expected}\n${
      ops.map(formatOp).join("\n")
    }\n${why(got)}`)
    verdicts[expected ? "valid" : "invalid"]++
  }
  assert.ok(verdicts.valid > 300 && verdicts.invalid > 300, JSON.stringify(verdicts))
})

test(
  "random: 100k ops check in well under a few seconds",
  () => {
    const ops = simulate({
      seed: 42,
      txns: 50_000,
      processes: 10,
      readRatio: 0.002,
      listRatio: 0.002,
      failRatio: 0.02,
      infoRatio: 0.01,
      finalRead: true,
    })
    assert.ok(ops.length >= 100_000, `${ops.length} events`)
    const text = ops.map(formatOp).join("\n") + "\n"
    const t0 = performance.now()
    const r = checkHistoryText(text)
    const ms = performance.now() - t0
    assert.ok(r.valid, why(r))
    assert.equal(r.stats.events, ops.length)
    assert.ok(ms < 4000, `checking ${ops.length} events (${(text.length / 1e6).toFixed(1)} MB) took ${ms.toFixed(0)} ms`)
    // Losing one acknowledged value is still found, quickly.
    const { at, list } = finalRead(ops)
    list.splice(list.length >> 1, 1)
    const t1 = performance.now()
    const bad = checkOps(replace(ops, at, [["r", 0, list]]))
    assert.equal(bad.valid, false)
    assert.ok(performance.now() - t1 < 4000)
  },
  60_000,
)
