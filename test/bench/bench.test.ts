/**
 * The bench: its flags, the raw HTTP/1.1 load generator against a local Bun.serve (Content-Length,
 * chunked and error answers), the profile summary, and a short real run of `paxos bench` against a
 * 3-node cluster of the binary: the report's shape and that appends were made. Nothing here asserts
 * a speed: the machine is shared and noisy.
 */
import { afterAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { networkInterfaces } from "node:os"
import { join } from "node:path"
import { benchCommand, parseBenchArgs, plannedAppends, type BenchOptions, type Point } from "../../src/bench/main.ts"
import { runLoad, type Workload } from "../../src/bench/loadgen.ts"
import { summarizeProfile, type CpuProfile } from "../../src/bench/profile.ts"
import { median, percentile, summarize } from "../../src/bench/stats.ts"
import { findEtcd, promSum } from "../../src/bench/etcd.ts"
import { cleanup, ensureBinary, makeCluster, tempDir } from "../node/support.ts"

afterAll(cleanup)

describe("flags", () => {
  test("defaults", () => {
    const o = parseBenchArgs([]) as BenchOptions
    expect(o.concurrency).toEqual([1, 5, 32, 128])
    expect(o.target).toBe("leader")
    expect(o.list).toBe(false)
    expect(o.runs).toBe(3)
    expect(o.prewarmS).toBe(20)
    expect(o.client).toBe("raw")
    expect(o.soak).toBeUndefined()
    expect(o.out).toMatch(/^runs\/bench-\d{8}T\d{6}Z$/)
  })

  test("--soak alone means a million appends at concurrency 32", () => {
    const o = parseBenchArgs(["--soak", "--warmup", "1"]) as BenchOptions
    expect(o.soak).toBe(1_000_000)
    expect(o.concurrency).toEqual([32])
    expect((parseBenchArgs(["--soak", "100_000", "--concurrency", "8"]) as BenchOptions).soak).toBe(100_000)
    expect((parseBenchArgs(["--soak"]) as BenchOptions).warmupS).toBe(10)
    expect((parseBenchArgs([]) as BenchOptions).warmupS).toBe(2)
  })

  test("bad input is one line naming the flag", () => {
    expect(parseBenchArgs(["--concurrency", "0"])).toContain("--concurrency")
    expect(parseBenchArgs(["--target", "all"])).toContain("--target")
    expect(parseBenchArgs(["--duration", "-1"])).toContain("--duration")
    expect(parseBenchArgs(["--prewarm", "x"])).toContain("--prewarm")
    expect(parseBenchArgs(["--bogus"])).toContain("--bogus")
    expect(parseBenchArgs(["--soak", "1000", "--concurrency", "1,2"])).toContain("one concurrency")
    expect(parseBenchArgs(["--config", "c", "--peer-auth"])).toContain("--peer-auth")
    expect((parseBenchArgs(["--peer-auth"]) as BenchOptions).peerAuth).toBe(true)
    expect((parseBenchArgs([]) as BenchOptions).peerAuth).toBe(false)
    expect(parseBenchArgs(["--config", "c", "--unsafe-no-fsync"])).toContain("--unsafe-no-fsync is for nodes started by the bench")
    expect((parseBenchArgs(["--unsafe-no-fsync"]) as BenchOptions).unsafeNoFsync).toBe(true)
    expect((parseBenchArgs([]) as BenchOptions).unsafeNoFsync).toBe(false)
  })
})

describe("statistics", () => {
  test("nearest-rank percentiles and medians", () => {
    const s = Float64Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(s, 50)).toBe(50)
    expect(percentile(s, 99)).toBe(99)
    expect(percentile(s, 100)).toBe(100)
    expect(summarize(s).meanMs).toBe(50.5)
    expect(median([3, null, 1, 2])).toBe(2)
    expect(median([4, 1])).toBe(2.5)
    expect(median([null])).toBeNull()
  })

  test("Prometheus sums over label sets", () => {
    const text = '# TYPE x counter\nx_total{To="a"} 10\nx_total{To="b"} 5\nx_total_other 99\ny 1\n'
    expect(promSum(text, "x_total")).toBe(15)
    expect(promSum(text, "z")).toBeNull()
  })
})

describe("load generator", () => {
  test("raw HTTP/1.1 client: Content-Length, chunked and error answers", async () => {
    let n = 0
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = (await req.json()) as { value: number }
        n++
        if (body.value % 10 === 0) return new Response('{"error":"Unavailable","message":"no"}', { status: 503 })
        if (body.value % 2 === 0) {
          // a streamed body: chunked transfer encoding
          const parts = [`{"value":${body.value},`, '"index":1', "}"]
          return new Response(
            new ReadableStream({
              pull(c) {
                const p = parts.shift()
                if (p === undefined) c.close()
                else c.enqueue(new TextEncoder().encode(p))
              }
            })
          )
        }
        return new Response(`{"value":${body.value},"index":1}`)
      }
    })
    try {
      let v = 1
      const workload: Workload = { method: "POST", path: "/append", contentType: "application/json", body: () => `{"value":${v++}}` }
      for (const client of ["raw", "fetch"] as const) {
        const r = await runLoad({ endpoints: [{ host: "127.0.0.1", port: server.port as number }], concurrency: 4, workload, client, warmupMs: 50, durationMs: 300, timeoutMs: 2_000 })
        expect(r.ops).toBeGreaterThan(10)
        expect(r.errors).toBeGreaterThan(0)
        expect(r.errorKinds["HTTP503:Unavailable"]).toBe(r.errors)
        // about one in ten requests is refused
        expect(r.errors / (r.ops + r.errors)).toBeGreaterThan(0.05)
        expect(r.errors / (r.ops + r.errors)).toBeLessThan(0.15)
        expect(r.latencies.length).toBe(r.ops)
      }
      expect(n).toBeGreaterThan(0)
    } finally {
      void server.stop(true)
    }
  })

  test("a request past the timeout is an error and the connection is replaced", async () => {
    let slow = true
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch() {
        if (slow) {
          slow = false
          await Bun.sleep(400)
        }
        return new Response("{}")
      }
    })
    try {
      const workload: Workload = { method: "GET", path: "/", contentType: "application/json", body: () => "" }
      const r = await runLoad({ endpoints: [{ host: "127.0.0.1", port: server.port as number }], concurrency: 1, workload, client: "raw", warmupMs: 0, durationMs: 600, timeoutMs: 100 })
      expect(r.errorKinds.timeout).toBe(1)
      expect(r.ops).toBeGreaterThan(0)
    } finally {
      void server.stop(true)
    }
  })
})

test("profile summary: areas and own code", () => {
  const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0, columnNumber: 0, scriptId: "0" }, children })
  const p: CpuProfile = {
    nodes: [
      frame(1, "(root)", "", [2, 5]),
      frame(2, "persist", "file:///x/src/server/storage.ts", [3]),
      frame(3, "run", "bun:sqlite"),
      frame(5, "(idle)", "")
    ],
    startTime: 0,
    endTime: 4_000,
    samples: [3, 3, 3, 5],
    timeDeltas: [1_000, 1_000, 1_000, 1_000]
  }
  const s = summarizeProfile(p, "n0", "f")
  expect(s.busyMs).toBe(3)
  expect(s.idleMs).toBe(1)
  expect(s.byArea[0]?.name).toContain("SQLite")
  expect(s.byOwnCode[0]?.name).toContain("persist src/server/storage.ts")
  expect(s.text).toContain("by area")
})

test("paxos bench against a 3-node cluster: the report's shape, and appends were made", async () => {
  const binary = ensureBinary()
  const out = join(tempDir("paxos-bench-"), "run")
  const code = await benchCommand(["--binary", binary, "--concurrency", "4", "--prewarm", "0.5", "--warmup", "0.5", "--duration", "2", "--runs", "1", "--out", out])
  expect(code).toBe(0)
  expect(existsSync(join(out, "summary.txt"))).toBe(true)
  const summary = readFileSync(join(out, "summary.txt"), "utf8")
  expect(summary).toContain("ops/s")
  expect(summary).not.toContain("UNSAFE")
  const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { command: string; knobs: BenchOptions; points: Point[]; machine: { cpus: number }; unsafeNoFsync: boolean }
  expect(r.unsafeNoFsync).toBe(false)
  expect(r.command).toContain("--concurrency 4")
  expect(r.knobs.concurrency).toEqual([4])
  expect(r.machine.cpus).toBeGreaterThan(0)
  expect(r.points.length).toBe(1)
  const p = r.points[0] as Point
  expect(p.system).toBe("paxos")
  expect(p.concurrency).toBe(4)
  expect(p.runs.length).toBe(1)
  const run = p.runs[0]
  expect(run?.ops).toBeGreaterThan(0)
  const m = p.median
  expect(m.opsPerSec).toBeGreaterThan(0)
  for (const k of ["meanMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"] as const) expect(m[k]).toBeGreaterThan(0)
  expect(m.p50Ms).toBeLessThanOrEqual(m.p99Ms)
  expect(m.p99Ms).toBeLessThanOrEqual(m.maxMs)
  expect(m.peerBytesPerOp).toBeGreaterThan(0)
  expect(m.peerMessagesPerOp).toBeGreaterThan(0)
  expect(m.fsyncsPerOp).toBeGreaterThan(0)
  expect(m.rssBytes.length).toBe(3)
  for (const b of m.rssBytes) expect(b).toBeGreaterThan(1024 * 1024)
  expect(run?.phases?.length).toBe(3)
}, 90_000)

/** A short run of the bench on nodes it starts (no prewarm, one window of `durationS`) into `out`: it must exit 0; its results.json. */
async function shortBench<R>(out: string, flags: string[], durationS = 1): Promise<R> {
  const code = await benchCommand(["--binary", ensureBinary(), ...flags, "--prewarm", "0", "--warmup", "0.3", "--duration", String(durationS), "--runs", "1", "--out", out])
  expect(code).toBe(0)
  return JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as R
}

/** The logs of the nodes of the bench's last run into `out`. */
function nodeLogs(out: string): string[] {
  return readdirSync(join(out, "paxos"))
    .filter((f) => f.endsWith(".log"))
    .map((f) => readFileSync(join(out, "paxos", f), "utf8"))
}

test("--peer-auth: the nodes run with a cluster secret, and every peer frame is signed", async () => {
  const out = join(tempDir("paxos-bench-auth-"), "run")
  const r = await shortBench<{ knobs: BenchOptions; points: Point[] }>(out, ["--peer-auth", "--concurrency", "4"], 1.5)
  const logs = nodeLogs(out)
  expect(logs.length).toBe(3)
  for (const l of logs) {
    expect(l).toContain("peer-auth-enabled")
    expect(l).not.toContain("peer-auth-failed")
  }
  expect(r.knobs.peerAuth).toBe(true)
  expect(r.points[0]?.median.opsPerSec).toBeGreaterThan(0)
}, 60_000)

test("--unsafe-no-fsync: the nodes run without fsync, the report says so and checks no target", async () => {
  const out = join(tempDir("paxos-bench-nofsync-"), "run")
  const r = await shortBench<{ unsafeNoFsync: boolean; targets: unknown[]; points: Point[] }>(out, ["--unsafe-no-fsync", "--concurrency", "1,32"])
  for (const l of nodeLogs(out)) expect(l).toContain("WARNING-unsafe-no-fsync")
  expect(r.unsafeNoFsync).toBe(true)
  expect(r.targets).toEqual([])
  expect(r.points[0]?.median.opsPerSec).toBeGreaterThan(0)
  const summary = readFileSync(join(out, "summary.txt"), "utf8")
  expect(summary).toContain("UNSAFE: our nodes run without fsync")
  expect(summary).toContain("targets: not checked")
  // The same --out again, with fsync: fresh nodes (the old data is another cluster's), fsync on.
  const again = await shortBench<{ unsafeNoFsync: boolean; points: Point[] }>(out, ["--concurrency", "4"])
  expect(again.unsafeNoFsync).toBe(false)
  expect(again.points[0]?.median.opsPerSec).toBeGreaterThan(0)
  for (const l of nodeLogs(out)) expect(l).not.toContain("unsafe-no-fsync")
}, 90_000)

// etcd is not in CI (Debian's package starts a system service where systemd runs); the bench
// machine has it. A reused --out must give etcd fresh members too: the old ones name other ports.
test.skipIf(findEtcd(undefined) === null)("--vs-etcd twice into one --out: both systems start fresh each time", async () => {
  const out = join(tempDir("paxos-bench-etcd-"), "run")
  for (let i = 0; i < 2; i++) {
    const r = await shortBench<{ points: Point[] }>(out, ["--vs-etcd", "--concurrency", "4"])
    expect(r.points.map((p) => p.system)).toEqual(["paxos", "etcd"])
    for (const p of r.points) expect(p.median.opsPerSec).toBeGreaterThan(0)
  }
}, 120_000)

/** This machine's first IPv4 address that is not loopback, or null. */
function ownAddress(): string | null {
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address
  return null
}

const own = ownAddress()

// A node the bench cannot find in /proc (it listens on an address other than loopback, as a node
// on another machine would): the bench must still measure it, with RSS and CPU from its /status,
// and send the client token that node needs.
test.skipIf(own === null)("--config: a running cluster off loopback, with a client token: RSS and CPU from /status", async () => {
  const dir = tempDir("paxos-bench-remote-")
  const tokenFile = join(dir, "token")
  writeFileSync(tokenFile, "bench-test-token-0123456789abcdef\n")
  const cluster = await makeCluster(3, ["--client-token-file", tokenFile], own as string)
  cluster.startAll()
  await cluster.waitAllHealthy()
  const run = async (extra: string[]) => {
    const out = join(dir, `run-${extra.length}`)
    const code = await benchCommand(["--config", cluster.configFile, ...extra, "--concurrency", "2", "--prewarm", "0", "--warmup", "0.3", "--duration", "1.5", "--runs", "1", "--out", out])
    expect(code).toBe(0)
    const r = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { points: Point[] }
    return r.points[0] as Point
  }
  const p = await run(["--token-file", tokenFile])
  expect(p.median.opsPerSec).toBeGreaterThan(0)
  expect(p.runs[0]?.errors).toBe(0)
  expect(p.median.rssBytes.length).toBe(3)
  for (const b of p.median.rssBytes) expect(b).toBeGreaterThan(1024 * 1024)
  expect(p.median.serverCpuMsPerOp).toBeGreaterThan(0)
  expect(p.median.peerBytesPerOp).toBeGreaterThan(0)
  // The cluster holds values now: without --yes the bench refuses to add its own, and says how many it holds.
  const errors: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => (errors.push(String(chunk)), true)) as typeof process.stderr.write
  let code: number
  try {
    code = await benchCommand(["--config", cluster.configFile, "--token-file", tokenFile, "--concurrency", "2", "--prewarm", "0", "--warmup", "0.3", "--duration", "1.5", "--runs", "1", "--out", join(dir, "refused")])
  } finally {
    process.stderr.write = write
  }
  expect(code).toBe(2)
  expect(errors.join("")).toMatch(/holds \d+ values already, and the bench would append as many values as it can in 1\.8 s of load .*add --yes/)
  // Without the token every append is refused, and the bench says so in its error count.
  const refused = await run(["--yes"])
  expect(refused.runs[0]?.ops).toBe(0)
  expect(refused.runs[0]?.errors).toBeGreaterThan(0)
}, 90_000)

test("what a run appends, in words: a soak's count, a sweep's seconds of load, nothing for --http-only", () => {
  const o = parseBenchArgs(["--config", "c", "--concurrency", "1,32", "--runs", "3", "--warmup", "2", "--duration", "10", "--prewarm", "5"])
  if (typeof o === "string" || "serveEcho" in o) throw new Error(String(o))
  expect(plannedAppends(o)).toBe("as many values as it can in 77 s of load (3 runs of 12 s at each of concurrency 1, 32, after 5 s of prewarm)")
  const s = parseBenchArgs(["--config", "c", "--soak", "5000"])
  if (typeof s === "string" || "serveEcho" in s) throw new Error(String(s))
  expect(plannedAppends(s)).toBe("5000 values")
  const h = parseBenchArgs(["--config", "c", "--http-only"])
  if (typeof h === "string" || "serveEcho" in h) throw new Error(String(h))
  expect(plannedAppends(h)).toBeNull()
})

test("--soak shows a progress line on stderr as it goes (plain lines off a terminal), and none with --quiet", async () => {
  const dir = tempDir("paxos-bench-soak-")
  const capture = async (extra: string[]): Promise<{ code: number; err: string }> => {
    const chunks: string[] = []
    const write = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => (chunks.push(String(chunk)), true)) as typeof process.stderr.write
    try {
      const code = await benchCommand(["--binary", ensureBinary(), "--soak", "6000", "--concurrency", "8", "--warmup", "0.3", "--out", join(dir, `soak-${extra.length}`), ...extra])
      return { code, err: chunks.join("") }
    } finally {
      process.stderr.write = write
    }
  }
  const shown = await capture([])
  expect(shown.code).toBe(0)
  expect(shown.err).toMatch(/^bench soak: \d+\/6000 appends \d+%, [\d.]+ appends\/s, elapsed \d+s, left \S+, errors \d+$/m)
  const quiet = await capture(["--quiet"])
  expect(quiet.code).toBe(0)
  expect(quiet.err).not.toContain("bench soak:")
}, 120_000)
