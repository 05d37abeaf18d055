/**
 * `paxos sim --jobs N`: seeds in worker threads run exactly as they run alone.
 *
 *  - each seed's digest (its whole history, final lists, counters and violations) is the same with
 *    --jobs 1 and --jobs 2, and the same for a seed that ran after others in one worker as for
 *    that seed alone in a fresh process (no state leaks from seed to seed);
 *  - the summary (counters, ops, violations, digest) is the same whatever --jobs;
 *  - a planted bug is caught with --jobs 2, and --stop-on-violation stops at the first violation,
 *    printing it with its replay command before the summary;
 *  - the compiled binary (`bun run build`) runs seeds in its workers too, from any directory;
 *  - --jobs outside 1..64 is refused with a one-line reason.
 * Seeds here run 60 client ops rather than 500, to keep the file quick.
 */
import { describe, expect, test } from "bun:test"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ensureBuilt } from "../../src/cli/build.ts"
import { runSeeds, type RanSeed } from "../../src/sim/pool.ts"
import { RunDigest } from "../../src/sim/seed.ts"
import { defaultSimOptions } from "../../src/sim/world.ts"

const ROOT = join(import.meta.dir, "..", "..")
const MAIN = join(ROOT, "src", "cli", "main.ts")
const OPS = 60
const SEEDS = 6

const optionsFor = (seed: number) => defaultSimOptions(seed, { nodes: seed % 2 === 0 ? 5 : 3, ops: OPS })

async function ranWith(jobs: number): Promise<RanSeed[]> {
  const out: RanSeed[] = []
  const r = await runSeeds({ first: 1, count: SEEDS, jobs, optionsFor, onOutcome: (o) => (out.push(o), false) })
  expect(r.stopped).toBe(false)
  return out.sort((a, b) => a.seed - b.seed)
}

async function sim(args: string[], argv0 = [process.execPath, MAIN], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn([...argv0, "sim", ...args], { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  return { code, stdout, stderr }
}

/** The summary without what may differ between equal runs: the time, the rate, the jobs. */
const summaryOf = (stdout: string) => stdout.replace(/; [\d.]+ s, [\d.]+ seeds\/s, \d+ jobs?$/m, "")

describe("sim --jobs", () => {
  test("each seed's digest is the same in this thread and in two workers, and as the seed alone", async () => {
    const one = await ranWith(1)
    const two = await ranWith(2)
    expect(two.map((o) => [o.seed, o.digest])).toEqual(one.map((o) => [o.seed, o.digest]))
    expect(new Set(two.map((o) => o.worker))).toEqual(new Set([0, 1]))
    // A seed that ran after others in the same worker, against that seed alone in a new process.
    const late = two.filter((o) => o.before >= 1).at(-1) as RanSeed
    expect(late).toBeDefined()
    const alone = await sim(["--seed", String(late.seed), "--seeds", "1", "--ops", String(OPS), "--jobs", "1", "--quiet"])
    expect(alone.code).toBe(0)
    expect(alone.stdout).toContain(`digest ${late.digest};`)
  }, 240_000)

  test("the summary is the same with --jobs 1 and --jobs 2", async () => {
    const args = ["--seeds", String(SEEDS), "--ops", String(OPS)]
    const [one, two] = [await sim([...args, "--jobs", "1"]), await sim([...args, "--jobs", "2"])]
    expect([one.code, two.code]).toEqual([0, 0])
    expect(one.stdout).toContain(`sim: ${SEEDS} seeds run`)
    expect(two.stdout).toMatch(/, 2 jobs$/m)
    expect(summaryOf(two.stdout)).toBe(summaryOf(one.stdout))
  }, 240_000)

  test("a planted bug is caught with --jobs 2", async () => {
    const r = await sim(["--bug", "stale-read", "--expect-violation", "--seeds", "200", "--jobs", "2", "--quiet"])
    expect(r.stdout).toContain("ok: planted bug stale-read caught")
    expect(r.code).toBe(0)
  }, 240_000)

  test("--stop-on-violation stops at the first violation, printed with its replay command before the summary", async () => {
    const r = await sim(["--bug", "accept-lower-ballot", "--stop-on-violation", "--seeds", "200", "--jobs", "2"])
    expect(r.code).toBe(1)
    const replay = r.stdout.indexOf("  replay: bun run sim --seed ")
    const summary = r.stdout.indexOf("sim: ")
    expect(replay).toBeGreaterThan(-1)
    expect(summary).toBeGreaterThan(replay)
    const m = /^sim: (\d+) of 200 seeds run \(stopped at a violation\), \d+ ops checked, 1 with violations/m.exec(r.stdout)
    expect(m).not.toBeNull()
    expect(Number(m?.[1])).toBeLessThan(200)
  }, 240_000)

  test("the compiled binary runs seeds in two workers, from a directory without the sources", async () => {
    const bin = ensureBuilt(ROOT)
    const r = await sim(["--seeds", String(SEEDS), "--ops", String(OPS), "--jobs", "2", "--quiet"], [bin], mkdtempSync(join(tmpdir(), "sim-bin-")))
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const digest = new RunDigest()
    for (const o of await ranWith(1)) digest.add(o.digest)
    expect(r.stdout).toContain(`sim: ${SEEDS} seeds run, `)
    expect(r.stdout).toContain(`digest ${digest};`)
  }, 240_000)

  test("--jobs outside 1..64 is refused in one line", async () => {
    for (const bad of ["0", "65", "two"]) {
      const r = await sim(["--jobs", bad])
      expect(r.code).toBe(2)
      expect(r.stderr.split("\n")[0]).toBe(`paxos sim: --jobs must be an integer from 1 to 64, got "${bad}"`)
    }
  }, 60_000)
})
