/**
 * The chaos harness (src/chaos/run.ts): flags, the report, and real runs.
 *
 * Real runs need the compiled node (`bun run build` makes dist/paxos). With root and network
 * namespaces (hosts.sh check), they run on the test hosts paxos-h1..5 with every nemesis:
 *  - a short run of the real node with partitions, kills, pauses and changes of membership passes
 *    (exit 0, valid history also for `dist/paxos check`, faults really applied, changes of
 *    membership completed, some while another fault was in force, no warning);
 *  - a run of the faulty test build (buildFaulty: stale local reads) is caught (exit 1), retried
 *    up to 3 runs;
 *  - Ctrl-C (SIGINT) in the middle of a run leaves no namespace, iptables rule or node behind.
 * Without namespaces the loopback run (process faults only) still runs. Skipped, with the
 * reason printed, when the binary is missing. Traffic goes only to 127.0.0.1 and the test
 * hosts' addresses 10.77.0.x on our own bridge.
 *
 * The netns runs make namespaces with fixed names: on a shared machine run them one at a time,
 * e.g. `flock /tmp/netns.lock bun test test/chaos`.
 */
import { describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CHAOS_USAGE, chaosCommand, parseChaosArgs, type ChaosOptions } from "../../src/chaos/run.ts"
import { latencySvg, percentiles, problems, resultsJson, type RunReport } from "../../src/chaos/report.ts"
import { buildFaulty } from "../../src/chaos/faulty.ts"
import { hostsAvailable } from "../../src/chaos/netns.ts"

const REPO = join(import.meta.dir, "..", "..")
const RUN_TS = join(REPO, "src", "chaos", "run.ts")
const BINARY = join(REPO, "dist", "paxos")
const haveBinary = existsSync(BINARY)
const avail = hostsAvailable()

const binarySkip = haveBinary ? "" : ` [skipped: ${BINARY} missing; run \`bun run build\`]`
const netnsSkip = !haveBinary ? binarySkip : avail.ok ? "" : ` [skipped: no network namespaces: ${avail.reason}]`
if (!haveBinary) console.warn(`test/chaos/run.test.ts: real runs skipped: ${BINARY} missing (bun run build)`)
else if (!avail.ok) console.warn(`test/chaos/run.test.ts: netns runs skipped: ${avail.reason}`)

interface RunOutcome {
  code: number | null
  stdout: string
  stderr: string
  out: string
  results: Record<string, unknown> | null
}

/** Runs `bun src/chaos/run.ts ARGS --out DIR` to completion (bounded), and reads results.json. */
async function runChaos(args: string[], timeoutMs: number, outDir?: string): Promise<RunOutcome> {
  const out = outDir ?? mkdtempSync(join(tmpdir(), "chaos-test-"))
  const proc = Bun.spawn([process.execPath, RUN_TS, ...args, "--out", out], { cwd: REPO, stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  const timer = setTimeout(() => proc.kill("SIGINT"), timeoutMs)
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  const file = join(out, "results.json")
  const results = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : null
  return { code, stdout, stderr, out, results }
}

function netnsLeft(): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "pipe" })
  return r.stdout
    .toString()
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith("paxos-h"))
}

function forwardRulesLeft(): string[] {
  const r = Bun.spawnSync(["iptables", "-w", "-S", "FORWARD"], { stdout: "pipe", stderr: "pipe" })
  return r.stdout
    .toString()
    .split("\n")
    .filter((l) => l.includes("paxos-br0"))
}

/** Pids of processes whose command line mentions `needle` (the run's directory). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = []
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(needle)) pids.push(Number(d))
    } catch {
      // gone
    }
  }
  return pids
}

function cleanupDir(o: RunOutcome): void {
  rmSync(o.out, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------

describe("chaos: flags", () => {
  test("defaults", () => {
    const o = parseChaosArgs([]) as ChaosOptions
    expect(typeof o).toBe("object")
    expect(o.timeLimitS).toBe(60)
    expect(o.concurrency).toBe(10)
    expect(o.rate).toBeNull()
    expect(o.nodes).toBe(5)
    expect(o.members).toBeNull()
    expect(o.nemesis).toEqual(["partition", "kill", "pause", "member"])
    expect(o.intervalS).toBe(5)
    expect(o.binary).toBe("dist/paxos")
    expect(o.out).toBeNull()
  })

  test("every option", () => {
    const o = parseChaosArgs([
      "--time-limit", "12.5", "--concurrency", "3", "--rate", "50", "--nodes", "3", "--members", "2", "--nemesis", "kill,pause",
      "--interval", "2", "--seed", "42", "--binary", "/x/paxos", "--out", "/tmp/o", "--timeout", "900", "--read-ratio", "0.5", "--loopback", "--quiet",
    ]) as ChaosOptions
    expect(o).toEqual({
      timeLimitS: 12.5, concurrency: 3, rate: 50, nodes: 3, members: 2, nemesis: ["kill", "pause"], intervalS: 2, seed: 42,
      binary: "/x/paxos", out: "/tmp/o", timeoutMs: 900, readRatio: 0.5, loopback: true, quiet: true,
    })
    expect((parseChaosArgs(["--nemesis", "none"]) as ChaosOptions).nemesis).toEqual([])
  })

  test("bad usage is one line and exit 2, before anything starts", async () => {
    expect(parseChaosArgs(["--nodes", "0"])).toContain("--nodes")
    expect(parseChaosArgs(["--nemesis", "clock"])).toContain("clock")
    expect(parseChaosArgs(["--nodes", "4", "--members", "5"])).toContain("--members")
    expect(parseChaosArgs(["--time-limit", "x"])).toContain("--time-limit")
    expect(parseChaosArgs(["--bogus"])).toContain("--bogus")
    expect(parseChaosArgs(["extra"])).toContain("extra")
    expect(CHAOS_USAGE).toContain("--nemesis")
    const errors: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write
    try {
      expect(await chaosCommand(["--concurrency", "-1"])).toBe(2)
      expect(await chaosCommand(["--binary", "/nonexistent/paxos"])).toBe(2)
    } finally {
      process.stderr.write = write
    }
    expect(errors.join("")).toContain("not found")
  })
})

describe("chaos: report", () => {
  const sample = (kind: "append" | "read" | "final-read", type: "ok" | "fail" | "info", startS: number, latMs: number) => ({
    kind, type, start: startS * 1e9, end: startS * 1e9 + latMs * 1e6, node: "127.0.0.1:1", attempts: 1,
  })
  const report = (over: Partial<RunReport> = {}): RunReport => ({
    options: {}, mode: "loopback", nodes: ["127.0.0.1:1"], out: "/tmp/x", startedAt: "2025-01-01T00:00:00.000Z",
    wallSeconds: 5, clientSeconds: 3, clientStart: 0, clientEnd: 3e9, check: null, checkError: "not checked",
    samples: [sample("append", "ok", 0.1, 5), sample("read", "ok", 1.2, 50), sample("append", "info", 2, 2000), sample("final-read", "ok", 3.5, 3)],
    faults: [{ kind: "kill", variant: "leader", targets: ["127.0.0.1:1"], start: 1e9, end: 2e9, applied: true }],
    kinds: ["kill", "pause"], membership: null, crashes: [], invariantViolations: [], finalReads: [{ node: "127.0.0.1:1", ok: true, attempts: 1, length: 1 }],
    faultyBuild: null, notes: [], interrupted: false, ...over,
  })

  test("percentiles are nearest-rank", () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1))
    expect([p.p50, p.p95, p.p99, p.max, p.count]).toEqual([50, 95, 99, 100, 100])
    expect(percentiles([]).p50).toBeNull()
  })

  test("results count ops and faults; problems decide the verdict", () => {
    const r = resultsJson(report())
    expect(r.verdict).toBe("invalid") // not checked
    expect((r.ops as { byType: unknown }).byType).toEqual({ ok: 3, fail: 0, info: 1 })
    expect((r.faults as { applied: unknown }).applied).toEqual({ kill: 1, pause: 0 })
    const crashed = problems(report({ crashes: [{ node: "n", exitCode: 70, signal: null, time: 1e9 }] }))
    expect(crashed.some((p) => p.includes("exit code 70"))).toBe(true)
    const inv = problems(report({ invariantViolations: [{ node: "n", line: "PAXOS-INVARIANT-VIOLATION x" }] }))
    expect(inv.some((p) => p.includes("PAXOS-INVARIANT-VIOLATION"))).toBe(true)
  })

  test("the plot is one SVG document with points, shading and bars", () => {
    const svg = latencySvg(report())
    expect(svg.startsWith("<svg")).toBe(true)
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true)
    expect(svg).toContain("<circle")
    expect(svg).toContain("kill leader")
    expect((svg.match(/<svg/g) ?? []).length).toBe(1)
  })
})

describe("chaos: real runs", () => {
  test(`a short loopback run (process faults) passes${binarySkip}`, async () => {
    if (!haveBinary) return
    const o = await runChaos(["--loopback", "--time-limit", "8", "--interval", "2", "--nodes", "3", "--seed", "7", "--binary", BINARY], 60_000)
    if (o.code !== 0) console.error(o.stdout, o.stderr)
    expect(o.code).toBe(0)
    expect(o.stdout).toContain("partition nemesis is left out")
    const r = o.results as Record<string, unknown>
    expect(r.verdict).toBe("valid")
    expect(r.mode).toBe("loopback")
    for (const f of ["history.edn", "latency.svg", "results.json", join("n1", "node.log")]) expect(existsSync(join(o.out, f))).toBe(true)
    expect(processesMentioning(o.out)).toEqual([])
    // Again into the same directory (as `bun run check` does with runs/ci-chaos): nodes that
    // started on the first run's list would make every value appear twice, or refuse the data.
    const again = await runChaos(["--loopback", "--time-limit", "4", "--interval", "2", "--nodes", "3", "--seed", "7", "--binary", BINARY], 60_000, o.out)
    if (again.code !== 0) console.error(again.stdout, again.stderr)
    expect(again.code).toBe(0)
    expect(again.stdout).toContain("removed the data and logs an earlier run left")
    expect((again.results as Record<string, unknown>).verdict).toBe("valid")
    expect(readFileSync(join(o.out, "n1", "node.log"), "utf8").match(/# chaos: start #1 /g)?.length).toBe(1)
    cleanupDir(o)
  }, 120_000)

  test(`a 30 s run with every nemesis, changes of membership among them, passes${netnsSkip}`, async () => {
    if (!haveBinary || !avail.ok) return
    const o = await runChaos(["--time-limit", "30", "--interval", "2", "--nemesis", "member,partition,kill,pause", "--seed", "20", "--binary", BINARY], 150_000)
    if (o.code !== 0) console.error(o.stdout, o.stderr)
    expect(o.code).toBe(0)
    const r = o.results as {
      verdict: string
      mode: string
      warnings: string[]
      faults: { applied: Record<string, number> }
      ops: { byType: { ok: number } }
      faultyBuild: unknown
      membership: { attempted: number; completed: number; completedUnderFaults: number; spares: string[]; final: { members: unknown[] } }
      finalReads: { nodes: unknown[]; identicalLength: boolean }
    }
    expect(r.verdict).toBe("valid")
    expect(r.mode).toBe("netns")
    expect(r.faultyBuild).toBeNull()
    const applied = Object.values(r.faults.applied).reduce((a, b) => a + b, 0)
    expect(applied).toBeGreaterThanOrEqual(3)
    expect(r.ops.byType.ok).toBeGreaterThan(50)
    // 5 hosts: 3 members and 2 spares at the start; changes completed, some under faults.
    expect(r.membership.spares).toHaveLength(2)
    expect(r.membership.completed).toBeGreaterThan(0)
    expect(r.membership.completedUnderFaults).toBeGreaterThan(0)
    expect(r.warnings).toEqual([])
    expect(r.finalReads.nodes).toHaveLength(r.membership.final.members.length)
    expect(r.finalReads.identicalLength).toBe(true)
    const history = readFileSync(join(o.out, "history.edn"), "utf8")
    expect(history).toContain(":process :nemesis")
    expect(history).toMatch(/:f :(grow|shrink), :value \{:node "10\.77\.0\.\d+:5000", :via "10\.77\.0\.\d+:5000", :result :(added|removed)/)
    // The history as written, read back by the checker's own command.
    const check = Bun.spawnSync([BINARY, "check", join(o.out, "history.edn")], { stdout: "pipe", stderr: "pipe" })
    expect(check.stdout.toString()).toContain("verdict: valid")
    expect(check.exitCode).toBe(0)
    expect(netnsLeft()).toEqual([])
    expect(forwardRulesLeft()).toEqual([])
    expect(processesMentioning(o.out)).toEqual([])
    cleanupDir(o)
  }, 180_000)

  test(`the faulty build (stale local reads) is caught${netnsSkip}`, async () => {
    if (!haveBinary || !avail.ok) return
    const faulty = await buildFaulty({ outfile: join(tmpdir(), `paxos-faulty-${process.pid}`) })
    try {
      // The fault lives in its own entry point: the normal binary holds none of it.
      expect(readFileSync(BINARY).includes("a test build that must fail chaos runs")).toBe(false)
      let caught: RunOutcome | null = null
      for (let attempt = 1; attempt <= 3 && caught === null; attempt++) {
        const o = await runChaos(["--time-limit", "12", "--interval", "3", "--nemesis", "partition,pause", "--seed", String(100 + attempt), "--binary", faulty], 120_000)
        const r = o.results as { faultyBuild: unknown; checker: { valid?: boolean } } | null
        expect(r?.faultyBuild).toBe("local-reads")
        if (o.code === 1 && r?.checker.valid === false) caught = o
        else {
          console.warn(`faulty run ${attempt} not caught (exit ${o.code}): ${o.stdout.split("\n").slice(-8).join("\n")}`)
          cleanupDir(o)
        }
      }
      expect(caught).not.toBeNull()
      const c = caught as RunOutcome
      expect(c.stdout).toContain("INVALID (faulty build: local-reads)")
      expect(netnsLeft()).toEqual([])
      cleanupDir(c)
    } finally {
      rmSync(faulty, { force: true })
    }
  }, 400_000)

  test(`Ctrl-C stops the nodes, heals and removes the hosts${netnsSkip}`, async () => {
    if (!haveBinary || !avail.ok) return
    const out = mkdtempSync(join(tmpdir(), "chaos-test-int-"))
    const proc = Bun.spawn([process.execPath, RUN_TS, "--time-limit", "60", "--interval", "1", "--nemesis", "partition,pause", "--binary", BINARY, "--out", out], {
      cwd: REPO,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
    })
    // Read its output as it comes; interrupt once a fault is in place (partition rules or a paused node).
    let stdout = ""
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of proc.stdout) stdout += decoder.decode(chunk, { stream: true })
    })()
    const deadline = Date.now() + 60_000
    try {
      while (Date.now() < deadline && proc.exitCode === null && !/nemesis: (partition|pause) \S+ applied/.test(stdout)) await Bun.sleep(100)
    } finally {
      proc.kill("SIGINT")
    }
    expect(stdout).toMatch(/nemesis: (partition|pause) \S+ applied/)
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000)
    const code = await proc.exited
    clearTimeout(timer)
    await reading
    expect(stdout).toContain("SIGINT")
    expect(code).toBe(130)
    expect(netnsLeft()).toEqual([])
    expect(forwardRulesLeft()).toEqual([])
    expect(processesMentioning(out)).toEqual([])
    expect(existsSync(join(out, "history.edn"))).toBe(true)
    rmSync(out, { recursive: true, force: true })
  }, 120_000)
})
