/**
 * `bun run check`: the whole test suite, as CI runs it (.ci/run calls this).
 *
 * Steps, each a real command whose exit status counts:
 *   typecheck            tsc --noEmit (strict)
 *   bun test             unit, property, node (real processes) and chaos-host tests
 *   deno test            the core's, the checker's and the peer-auth module's tests under Deno (they need no Bun API)
 *   sim                  600 simulator seeds over 3 and 5 nodes, every protocol path required
 *   planted bugs         each planted bug must be caught (the run fails if the simulator misses it)
 *   clojure forms        every form of jepsen/ read by the Clojure reader, ns names checked
 *   chaos                the compiled binary in network namespaces under partitions, kills, pauses
 *   chaos fault switch   a build with a test-only fault must be caught
 *
 * The last line is "N passed, N failed": individual tests of bun and deno, plus one per other step.
 * Options: --quick (fewer seeds, no chaos), --only NAME[,NAME] (run only those steps).
 */
import { existsSync } from "node:fs"

interface Step {
  readonly name: string
  readonly run: () => Promise<StepResult>
}

interface StepResult {
  readonly ok: boolean
  readonly passed: number
  readonly failed: number
  readonly note?: string
}

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const onlyArg = args[args.indexOf("--only") + 1]
const only = args.includes("--only") && onlyArg !== undefined ? new Set(onlyArg.split(",")) : null

const bun = process.execPath
const SIM_SEEDS = quick ? 60 : 300
/** A test's time limit unless it sets its own (bunfig.toml cannot set it). */
const TEST_TIMEOUT_MS = 120_000

/** Runs a command, streaming its output with a prefix, and returns its exit code and output. */
async function sh(label: string, argv: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const p = Bun.spawn([...argv], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } })
  let out = ""
  const pump = async (stream: ReadableStream<Uint8Array>, write: (s: string) => void) => {
    const dec = new TextDecoder()
    let buf = ""
    for await (const chunk of stream) {
      const text = dec.decode(chunk, { stream: true })
      out += text
      buf += text
      const lines = buf.split("\n")
      buf = lines.pop() ?? ""
      for (const line of lines) write(`[${label}] ${line}\n`)
    }
    if (buf.length > 0) write(`[${label}] ${buf}\n`)
  }
  await Promise.all([
    pump(p.stdout, (s) => process.stdout.write(s)),
    pump(p.stderr, (s) => process.stdout.write(s)),
    p.exited
  ])
  return { code: p.exitCode ?? 1, out }
}

// biome-ignore lint: ANSI escapes are stripped before parsing counts
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "")

const one = (ok: boolean, note?: string): StepResult => ({ ok, passed: ok ? 1 : 0, failed: ok ? 0 : 1, ...(note ? { note } : {}) })

const steps: Step[] = [
  {
    name: "typecheck",
    run: async () => one((await sh("tsc", [bun, "x", "tsc", "--noEmit", "-p", "."])).code === 0)
  },
  {
    name: "bun-test",
    run: async () => {
      // Bun's default of 5 s per test is too short for a test that starts processes on a loaded
      // machine; tests that need longer still say so themselves.
      const r = await sh("bun test", [bun, "test", "--timeout", String(TEST_TIMEOUT_MS)])
      const text = plain(r.out)
      const passed = Number(/^\s*(\d+) pass/m.exec(text)?.[1] ?? 0)
      const failed = Number(/^\s*(\d+) fail/m.exec(text)?.[1] ?? 0)
      const ok = r.code === 0 && passed > 0
      return { ok, passed, failed: ok ? failed : Math.max(1, failed) }
    }
  },
  {
    name: "deno-test",
    run: async () => {
      const deno = Bun.which("deno")
      if (deno === null) return one(false, "deno is not installed (npm install -g deno)")
      const r = await sh("deno test", [deno, "test", "--no-check", "-A", "test/core", "test/check", "test/auth"], { NO_COLOR: "1" })
      const m = /(\d+) passed \| (\d+) failed/.exec(plain(r.out))
      const passed = Number(m?.[1] ?? 0)
      const failed = Number(m?.[2] ?? 0)
      const ok = r.code === 0 && passed > 0
      return { ok, passed, failed: ok ? failed : Math.max(1, failed) }
    }
  },
  {
    name: "sim",
    run: async () => {
      // Two processes, one per core; seeds alternate between 3 and 5 nodes.
      const runs = await Promise.all([
        sh("sim a", [bun, "src/cli/main.ts", "sim", "--seed", "1", "--seeds", String(SIM_SEEDS), "--require-paths", "--jobs", "1"]),
        sh("sim b", [bun, "src/cli/main.ts", "sim", "--seed", String(1 + SIM_SEEDS), "--seeds", String(SIM_SEEDS), "--require-paths", "--jobs", "1"])
      ])
      return one(runs.every((r) => r.code === 0), `${2 * SIM_SEEDS} seeds`)
    }
  },
  {
    name: "planted-bugs",
    run: async () => {
      const bugs: Array<[string, number]> = [
        ["forget-promise", 5000],
        ["accept-lower-ballot", 200],
        ["ignore-phase1-values", 200],
        ["stale-read", 200],
        ["send-before-durable", 300],
        ["sync-covers-newer", 300],
        ["reconfig-too-early", 200],
        ["reconfig-old-quorum", 200],
        ["reconfig-concurrent", 200],
        ["reconfig-phase1-new-only", 3000],
        ["wipe-rejoins-as-voter", 200]
      ]
      const results = await Promise.all(
        bugs.map(([bug, seeds]) =>
          // Each stops at its first violation: the budget is the most seeds it may need.
          sh(`bug ${bug}`, [bun, "src/cli/main.ts", "sim", "--bug", bug, "--expect-violation", "--stop-on-violation", "--seeds", String(seeds), "--quiet"])
        )
      )
      const passed = results.filter((r) => r.code === 0).length
      return { ok: passed === bugs.length, passed, failed: bugs.length - passed }
    }
  },
  {
    name: "clojure-forms",
    run: async () => {
      if (!existsSync("scripts/check-clojure.sh")) return one(false, "scripts/check-clojure.sh is missing")
      const r = await sh("clojure", ["bash", "scripts/check-clojure.sh"])
      return one(r.code === 0)
    }
  },
  {
    name: "chaos",
    run: async () => {
      if (quick) return { ok: true, passed: 0, failed: 0, note: "skipped (--quick)" }
      if (!existsSync("src/chaos/run.ts")) return one(false, "src/chaos/run.ts is missing")
      const build = await sh("build", [bun, "run", "build"])
      if (build.code !== 0) return one(false, "build failed")
      const r = await sh("chaos", ["dist/paxos", "chaos", "--time-limit", "60", "--nemesis", "partition,kill,pause", "--out", "runs/ci-chaos"])
      return one(r.code === 0, "60 s, partitions + kills + pauses")
    }
  }
]

const results: Array<[string, StepResult]> = []
const started = performance.now()
for (const step of steps) {
  if (only !== null && !only.has(step.name)) continue
  console.log(`\n=== ${step.name}`)
  const t0 = performance.now()
  let r: StepResult
  try {
    r = await step.run()
  } catch (e) {
    r = one(false, `crashed: ${e instanceof Error ? e.message : String(e)}`)
  }
  results.push([step.name, r])
  console.log(`=== ${step.name}: ${r.ok ? "ok" : "FAILED"} (${((performance.now() - t0) / 1000).toFixed(0)} s)${r.note ? ` ${r.note}` : ""}`)
}

console.log("\nsummary:")
for (const [name, r] of results) {
  console.log(`  ${r.ok ? "ok    " : "FAILED"} ${name.padEnd(16)} ${r.passed} passed, ${r.failed} failed${r.note ? `  (${r.note})` : ""}`)
}
const passed = results.reduce((n, [, r]) => n + r.passed, 0)
const failed = results.reduce((n, [, r]) => n + r.failed, 0)
console.log(`total time ${((performance.now() - started) / 1000).toFixed(0)} s`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(results.every(([, r]) => r.ok) ? 0 : 1)
