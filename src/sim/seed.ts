/**
 * One seed of the simulator, reduced to what `paxos sim` needs of it: counts, violations and a
 * digest. The same function runs in the CLI's own thread (`--jobs 1`) and in each worker thread
 * (worker.ts), so a seed's outcome does not depend on where it ran.
 */
import { createHash } from "node:crypto"
import type { Op } from "../check/history.ts"
import { simulate, type SimOptions } from "./world.ts"

export interface SeedOutcome {
  readonly seed: number
  readonly nodes: 3 | 5
  /** Client ops invoked (each one checked). */
  readonly ops: number
  readonly counters: Record<string, number>
  readonly violations: readonly string[]
  /**
   * 16 hex digits of a SHA-256 over the seed's options, ticks, whole client history, every node's
   * final list, counters and violations: equal digests mean the seed ran the same.
   */
  readonly digest: string
  /** The client history, kept only for a seed with violations (`--out` writes it). */
  readonly history: Op[] | null
}

/** Runs one seed. A defect of the simulator itself counts as a violation of that seed. */
export function runSeed(opts: SimOptions): SeedOutcome {
  let outcome: Omit<SeedOutcome, "digest">
  let material: unknown
  try {
    const r = simulate(opts)
    const counters = sortedKeys(r.counters)
    outcome = {
      seed: opts.seed,
      nodes: opts.nodes,
      ops: r.history.reduce((n, op) => n + (op.type === "invoke" ? 1 : 0), 0),
      counters,
      violations: r.violations,
      history: r.violations.length > 0 ? r.history : null
    }
    material = [opts, r.ticks, r.history, r.lists, counters, r.violations]
  } catch (e) {
    const violations = [`simulator error: ${e instanceof Error ? e.message : String(e)}`]
    outcome = { seed: opts.seed, nodes: opts.nodes, ops: 0, counters: {}, violations, history: null }
    material = [opts, violations]
  }
  return { ...outcome, digest: createHash("sha256").update(JSON.stringify(material)).digest("hex").slice(0, 16) }
}

/** The same record with its keys in order, so that its JSON does not depend on insertion order. */
function sortedKeys(r: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of Object.keys(r).sort()) out[k] = r[k] as number
  return out
}

/**
 * The digest of a whole run: the sum modulo 2^64 of its seeds' digests. A sum does not depend on
 * the order in which the seeds finished, and needs no memory per seed.
 */
export class RunDigest {
  private sum = 0n

  add(seedDigest: string): void {
    this.sum = (this.sum + BigInt(`0x${seedDigest}`)) & 0xffff_ffff_ffff_ffffn
  }

  toString(): string {
    return this.sum.toString(16).padStart(16, "0")
  }
}
