/**
 * Runs a range of seeds, in this thread (`jobs` 1) or in `jobs` worker threads (worker.ts), and
 * hands each outcome to `onOutcome` as it arrives. Workers take seeds in increasing order, one at a
 * time, whichever is free next; each seed's outcome is what it is alone (seed.ts), so only the
 * order of arrival depends on `jobs`.
 */
import { dirname, join } from "node:path"
import { isCompiled } from "../cli/self.ts"
import { runSeed, type SeedOutcome } from "./seed.ts"
import type { SimOptions } from "./world.ts"

/**
 * The worker's module. In the compiled binary it is the second entrypoint of `bun run build`,
 * which Bun keeps under its path below the entrypoints' common folder (src/), next to the main
 * entry; from source it is the file next to this one.
 */
function workerPath(): string {
  return isCompiled() ? join(dirname(Bun.main), "sim", "worker.ts") : new URL("./worker.ts", import.meta.url).href
}

/** The most worker threads a run may use. */
export const MAX_JOBS = 64

export interface RanSeed extends SeedOutcome {
  /** Which worker ran it (0 in this thread). */
  readonly worker: number
  /** How many seeds that worker ran before this one. */
  readonly before: number
}

export interface PoolOptions {
  readonly first: number
  readonly count: number
  /** 1 to MAX_JOBS; 1 runs every seed in this thread. */
  readonly jobs: number
  readonly optionsFor: (seed: number) => SimOptions
  /** Called once per seed, one call at a time; true stops the run (the seeds in flight are dropped). */
  readonly onOutcome: (o: RanSeed) => boolean | Promise<boolean>
}

/** Resolves when every seed ran, or with `stopped` when `onOutcome` asked to stop. */
export async function runSeeds(o: PoolOptions): Promise<{ stopped: boolean }> {
  if (!Number.isSafeInteger(o.jobs) || o.jobs < 1 || o.jobs > MAX_JOBS) throw new RangeError(`jobs must be 1 to ${MAX_JOBS}, got ${o.jobs}`)
  const jobs = Math.min(o.jobs, o.count)
  if (jobs <= 1) {
    for (let i = 0; i < o.count; i++) {
      if (await o.onOutcome({ ...runSeed(o.optionsFor(o.first + i)), worker: 0, before: i })) return { stopped: true }
    }
    return { stopped: false }
  }
  return inWorkers(o, jobs)
}

function inWorkers(o: PoolOptions, jobs: number): Promise<{ stopped: boolean }> {
  const end = o.first + o.count
  let next = o.first
  let inFlight = 0
  let settled = false
  /** Outcomes are handled one at a time, in order of arrival. */
  let handled: Promise<void> = Promise.resolve()
  const workers: Worker[] = []
  return new Promise((resolve, reject) => {
    const done = (r: { stopped: boolean } | Error) => {
      if (settled) return
      settled = true
      for (const w of workers) w.terminate()
      if (r instanceof Error) reject(r)
      else resolve(r)
    }
    const feed = (w: Worker) => {
      if (settled || next >= end) return
      w.postMessage(o.optionsFor(next++))
      inFlight++
    }
    for (let k = 0; k < jobs; k++) {
      const w = new Worker(workerPath())
      workers.push(w)
      w.onmessage = (e: MessageEvent<Omit<RanSeed, "worker">>) => {
        inFlight--
        feed(w)
        const outcome: RanSeed = { ...e.data, worker: k }
        handled = handled
          .then(async () => {
            if (settled) return
            if (await o.onOutcome(outcome)) done({ stopped: true })
            else if (inFlight === 0 && next >= end) done({ stopped: false })
          })
          .catch((err: unknown) => done(err instanceof Error ? err : new Error(String(err))))
      }
      w.onerror = (e: ErrorEvent) => done(new Error(`simulator worker ${k} failed: ${e.message}`))
      w.onmessageerror = () => done(new Error(`simulator worker ${k} sent a message that could not be read`))
      feed(w)
    }
  })
}
