/**
 * What a new user waits for, for two binaries side by side: a 3-node `start-servers` cluster from
 * launch to the first append that `paxos client` completes, and then one `paxos client` append
 * (the whole process: start, connect, append, exit) against that running cluster. Rounds
 * alternate A B, B A, ...; each side's medians and the ratio B/A are printed.
 *
 *   bun scripts/bench-first-minutes.ts --a OLD_BINARY --b NEW_BINARY [--rounds 7] [--appends 10]
 *
 * Each round starts the cluster in a fresh directory on free loopback ports, with the binary's own
 * start-servers and client, and stops it with SIGINT. When the binary has GET /ready, the time to
 * every node's 200 is reported too.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { freePorts } from "../src/cli/local-cluster.ts"
import { probeReady } from "../src/cli/ready.ts"
import { median } from "../src/bench/stats.ts"

function parse(argv: string[]): { a: string; b: string; rounds: number; appends: number } {
  const get = (k: string): string | undefined => {
    const i = argv.indexOf(`--${k}`)
    return i === -1 ? undefined : argv[i + 1]
  }
  const a = get("a")
  const b = get("b")
  if (a === undefined || b === undefined) {
    console.error("usage: bun scripts/bench-first-minutes.ts --a BINARY --b BINARY [--rounds N] [--appends N]")
    process.exit(2)
  }
  const rounds = Number(get("rounds") ?? 7)
  const appends = Number(get("appends") ?? 10)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100 || !Number.isInteger(appends) || appends < 1 || appends > 1000) {
    console.error("bench-first-minutes: --rounds 1..100 and --appends 1..1000")
    process.exit(2)
  }
  return { a: resolve(a), b: resolve(b), rounds, appends }
}

async function run(argv: string[], cwd: string): Promise<number> {
  const p = Bun.spawn(argv, { cwd, stdout: "ignore", stderr: "ignore", stdin: "ignore" })
  return p.exited
}

const ready = async (node: string): Promise<boolean> => (await probeReady(node, 500))?.ok === true

interface Round {
  readonly toFirstAppendMs: number
  readonly toAllReadyMs: number | null
  readonly appendMs: number
}

/** One round of `binary`: a cluster started, appended to until the first success, then timed appends. */
async function round(binary: string, appends: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), "paxos-first-"))
  const ports = await freePorts(3)
  const nodes = ports.map((p) => `127.0.0.1:${p}`)
  writeFileSync(join(dir, "config"), nodes.join("\n") + "\n")
  const t0 = performance.now()
  const cluster = Bun.spawn([binary, "start-servers", "config"], { cwd: dir, stdout: "ignore", stderr: "ignore", stdin: "ignore" })
  try {
    let toFirstAppendMs = Number.NaN
    for (let v = 1; performance.now() - t0 < 30_000; v++) {
      if ((await run([binary, "client", "--config", "config", "--timeout", "2000", String(v)], dir)) === 0) {
        toFirstAppendMs = performance.now() - t0
        break
      }
    }
    let toAllReadyMs: number | null = null
    while (performance.now() - t0 < 30_000) {
      const all = await Promise.all(nodes.map(ready))
      if (all.every(Boolean)) {
        toAllReadyMs = performance.now() - t0
        break
      }
      if (!(await ready(nodes[0] as string)) && (await fetch(`http://${nodes[0]}/ready`).catch(() => null))?.status === 404) break
      await Bun.sleep(5)
    }
    const times: number[] = []
    for (let i = 0; i < appends; i++) {
      const s = performance.now()
      if ((await run([binary, "client", "--config", "config", String(1000 + i)], dir)) !== 0) throw new Error(`${binary}: an append failed`)
      times.push(performance.now() - s)
    }
    return { toFirstAppendMs, toAllReadyMs, appendMs: median(times) as number }
  } finally {
    cluster.kill("SIGINT")
    await cluster.exited
    rmSync(dir, { recursive: true, force: true })
  }
}

const fmt = (n: number | null): string => (n === null || Number.isNaN(n) ? "-" : n.toFixed(0))

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2))
  const seen: Record<"A" | "B", Round[]> = { A: [], B: [] }
  const bin = { A: o.a, B: o.b } as const
  console.log(`A = ${o.a}\nB = ${o.b}\n${o.rounds} rounds, ${o.appends} timed appends each`)
  for (let r = 0; r < o.rounds; r++) {
    for (const side of r % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
      const x = await round(bin[side], o.appends)
      seen[side].push(x)
      console.log(`round ${r + 1} ${side}: launch to first append ${fmt(x.toFirstAppendMs)} ms, to every node ready ${fmt(x.toAllReadyMs)} ms, one client append ${fmt(x.appendMs)} ms`)
    }
  }
  const med = (side: "A" | "B", k: keyof Round) => median(seen[side].map((x) => x[k]))
  console.log("\nmedians (A, B, B/A):")
  for (const k of ["toFirstAppendMs", "appendMs"] as const) {
    const a = med("A", k) as number
    const b = med("B", k) as number
    console.log(`  ${k.padEnd(16)} A ${fmt(a).padStart(6)} ms  B ${fmt(b).padStart(6)} ms  B/A ${(b / a).toFixed(2)}`)
  }
  console.log(`  toAllReadyMs     A ${fmt(med("A", "toAllReadyMs")).padStart(6)} ms  B ${fmt(med("B", "toAllReadyMs")).padStart(6)} ms`)
}

await main()
