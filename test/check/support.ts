/**
 * Test support for the checker: a seeded random source, a simulated linearizable list that
 * produces Jepsen-style histories, and a brute-force linearizability oracle for small histories.
 */
import type { MicroOp, Op, Txn } from "../../src/check/history.ts"
import { floatSource } from "../../src/core/prng.ts"

/** A small seeded PRNG returning floats in [0, 1) (the core's mulberry32). */
export const rng = floatSource

/** A random integer in [0, n). */
export function pick(r: () => number, n: number): number {
  return Math.floor(r() * n)
}

export interface SimOptions {
  readonly seed: number
  /** Operations to invoke (not counting the final read). */
  readonly txns: number
  readonly processes: number
  readonly readRatio: number
  /** Probability that an ok append returns the list (otherwise `[[:append 0 v]]`). */
  readonly listRatio: number
  readonly failRatio: number
  readonly infoRatio: number
  /** Add a final read after everything completed. Default true. */
  readonly finalRead?: boolean
}

interface Pending {
  readonly process: number
  readonly kind: "append" | "read"
  readonly value: number
  readonly fate: "ok" | "fail" | "info"
  readonly applies: boolean
  result: number[] | undefined
  applied: boolean
  wantsList: boolean
}

/**
 * Simulates clients against a linearizable list: each op takes effect at one instant between
 * its invocation and completion (:info ops maybe later, or never; :fail ops never).
 */
export function simulate(o: SimOptions): Op[] {
  const r = rng(o.seed)
  const list: number[] = []
  const ops: Op[] = []
  const slots: Array<Pending | undefined> = new Array(o.processes).fill(undefined)
  const procOf = slots.map((_, i) => i)
  let nextProcess = o.processes
  let nextValue = 1
  let invoked = 0
  const zombies: Pending[] = []
  const emit = (type: Op["type"], process: number, value: readonly MicroOp[]): void => {
    ops.push({ type, f: "txn", process, time: (ops.length + 1) * 1000, index: ops.length, value })
  }
  const apply = (p: Pending): void => {
    if (p.kind === "append") list.push(p.value)
    if (p.kind === "read" || p.wantsList) p.result = list.slice()
    p.applied = true
  }
  while (invoked < o.txns || slots.some((s) => s !== undefined)) {
    if (zombies.length > 0 && r() < 0.05) apply(zombies.splice(pick(r, zombies.length), 1)[0] as Pending)
    const s = pick(r, o.processes)
    const p = slots[s]
    const process = procOf[s] as number
    if (p === undefined) {
      if (invoked >= o.txns) continue
      invoked++
      const kind = r() < o.readRatio ? "read" : "append"
      const x = r()
      const fate = x < o.failRatio ? "fail" : x < o.failRatio + o.infoRatio ? "info" : "ok"
      const value = kind === "append" ? nextValue++ : 0
      const applies = fate === "ok" || (fate === "info" && r() < 0.5)
      slots[s] = { process, kind, value, fate, applies, result: undefined, applied: false, wantsList: r() < o.listRatio }
      emit("invoke", process, kind === "append" ? [["append", 0, value], ["r", 0, null]] : [["r", 0, null]])
    } else if (p.applies && !p.applied && (p.fate !== "info" || r() < 0.5)) {
      apply(p)
    } else {
      slots[s] = undefined
      if (p.fate === "ok") emit("ok", process, completionValue(p))
      else emit(p.fate, process, p.kind === "append" ? [["append", 0, p.value], ["r", 0, null]] : [["r", 0, null]])
      if (p.fate === "info") {
        procOf[s] = nextProcess++
        if (p.applies && !p.applied) zombies.push(p)
      }
    }
  }
  if (o.finalRead ?? true) {
    emit("invoke", nextProcess, [["r", 0, null]])
    emit("ok", nextProcess, [["r", 0, list.slice()]])
  }
  return ops
}

/** The value of an ok completion. */
function completionValue(p: Pending): readonly MicroOp[] {
  if (p.kind === "read") return [["r", 0, p.result ?? []]]
  return p.wantsList ? [["append", 0, p.value], ["r", 0, p.result ?? []]] : [["append", 0, p.value]]
}

/**
 * Decides linearizability by search: some order of the ops that respects real time, includes
 * every ok op and any subset of :info appends (never :fail ops), and reproduces every ok result.
 * Exponential: for small histories only.
 */
export function bruteForce(txns: readonly Txn[]): boolean {
  const cand = txns.filter((t) => t.outcome !== "fail" && !(t.kind === "read" && t.outcome === "info"))
  const required = cand.filter((t) => t.outcome === "ok").length
  const done = new Set<Txn>()
  const eq = (a: readonly number[], b: readonly number[]): boolean =>
    a.length === b.length && a.every((x, i) => x === b[i])
  const go = (list: number[], doneRequired: number): boolean => {
    if (doneRequired === required) return true
    for (const t of cand) {
      if (done.has(t)) continue
      if (cand.some((u) => !done.has(u) && u.completeRank < t.invokeRank)) continue
      const next = t.kind === "append" ? [...list, t.value as number] : list
      if (t.list !== null && !eq(t.list, next)) continue
      done.add(t)
      const ok = go(next, doneRequired + (t.outcome === "ok" ? 1 : 0))
      done.delete(t)
      if (ok) return true
    }
    return false
  }
  return go([], 0)
}

/** Strips common indentation and blank edges from a template of EDN lines. */
export function lines(text: string): string {
  const ls = text.split("\n").filter((l) => l.trim() !== "")
  const indent = Math.min(...ls.map((l) => l.length - l.trimStart().length))
  return ls.map((l) => l.slice(indent)).join("\n") + "\n"
}
