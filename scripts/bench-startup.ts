/**
 * Start-up benchmark of the binary: time from spawning `paxos server` (fresh data dir, a free
 * loopback port, a one-node config) to its first 200 from GET /health.
 *
 *   bun scripts/bench-startup.ts [--binary dist/paxos] [--runs 10] [--warmup 2] [--json FILE]
 *
 * Polls /health every 2 ms. Prints min, median, p90 and max over the measured runs (the warm-up
 * runs are not counted); the target is a median under 300 ms.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePorts } from "../src/cli/local-cluster.ts"

interface Args {
  binary: string
  runs: number
  warmup: number
  json: string | undefined
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { binary: "dist/paxos", runs: 10, warmup: 2, json: undefined }
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1] as string]
    if (k === "--binary") a.binary = v
    else if (k === "--runs") a.runs = Number(v)
    else if (k === "--warmup") a.warmup = Number(v)
    else if (k === "--json") a.json = v
    else throw new Error(`unknown option ${k}`)
  }
  return a
}

/** One start: milliseconds until /health answers 200. */
async function once(binary: string, dir: string): Promise<number> {
  const [port] = await freePorts(1)
  const config = join(dir, `config-${port}`)
  writeFileSync(config, `127.0.0.1:${port}\n`)
  const t0 = performance.now()
  const proc = Bun.spawn([binary, "server", "--config", config, "--node", `127.0.0.1:${port}`, "--data-dir", join(dir, `d-${port}`)], {
    stdout: "ignore",
    stderr: "ignore"
  })
  try {
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`)
        if (r.status === 200) return performance.now() - t0
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > 10_000) throw new Error("no /health within 10 s")
      await Bun.sleep(2)
    }
  } finally {
    proc.kill("SIGKILL")
    await proc.exited
  }
}

const pct = (xs: number[], p: number): number => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2))
  const dir = mkdtempSync(join(tmpdir(), "paxos-startup-"))
  try {
    for (let i = 0; i < a.warmup; i++) await once(a.binary, dir)
    const xs: number[] = []
    for (let i = 0; i < a.runs; i++) xs.push(await once(a.binary, dir))
    const median = pct(xs, 0.5)
    const result = { binary: a.binary, runs: a.runs, minMs: Math.min(...xs), medianMs: median, p90Ms: pct(xs, 0.9), maxMs: Math.max(...xs) }
    console.log(
      `${a.binary}: start to /health 200 over ${a.runs} runs: min ${result.minMs.toFixed(0)} ms, median ${median.toFixed(0)} ms, p90 ${result.p90Ms.toFixed(0)} ms, max ${result.maxMs.toFixed(0)} ms (target < 300 ms: ${median < 300 ? "met" : "MISSED"})`
    )
    if (a.json !== undefined) writeFileSync(a.json, JSON.stringify(result, null, 2) + "\n")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
