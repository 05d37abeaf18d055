/**
 * A bare Bun HTTP server that answers `POST /append` like a node would (`{"value":v,"index":i}`)
 * without consensus, storage or Effect: the ceiling of Bun's HTTP on this machine with this load
 * generator, and a check of how much of the machine the load generator itself takes.
 *
 * Run as its own process: `paxos bench --serve-echo PORT` (compiled) or `bun src/bench/echo.ts PORT`.
 */
import { join } from "node:path"
import type { Subprocess } from "bun"
import { freePorts } from "../cli/local-cluster.ts"
import { isCompiled } from "../cli/self.ts"
import type { Workload } from "./loadgen.ts"
import { stopProcess, type Member, type SystemUnderTest, type Totals } from "./system.ts"

/** Serves until SIGTERM/SIGINT; resolves with the exit code then. */
export function serveEcho(port: number): Promise<number> {
  let index = 0
  const server = Bun.serve({
    port,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url)
      if (url.pathname === "/health") return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } })
      if (req.method !== "POST" || url.pathname !== "/append") return new Response('{"error":"NotFound"}', { status: 404 })
      const body = (await req.json()) as { value?: unknown }
      return new Response(`{"value":${Number(body.value)},"index":${index++}}`, { headers: { "content-type": "application/json" } })
    }
  })
  return new Promise((resolve) => {
    const stop = () => {
      void server.stop(true)
      resolve(0)
    }
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
  })
}

let nextValue = 1

/** Starts the echo server as a child process on a free loopback port. */
export async function startEcho(): Promise<SystemUnderTest> {
  const [port] = (await freePorts(1)) as [number]
  const argv = isCompiled() ? [process.execPath, "bench", "--serve-echo", String(port)] : [process.execPath, join(import.meta.dir, "echo.ts"), String(port)]
  const proc: Subprocess = Bun.spawn(argv, { stdout: "ignore", stderr: "inherit", stdin: "ignore" })
  const name = `127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      if ((await fetch(`http://${name}/health`, { signal: AbortSignal.timeout(500) })).status === 200) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill("SIGKILL")
      throw new Error(`the echo server (${argv.join(" ")}) did not start`)
    }
    await Bun.sleep(20)
  }
  const members: Member[] = [{ name, host: "127.0.0.1", port, pid: () => (proc.exitCode === null ? proc.pid : null) }]
  const none: Totals = { peerBytes: null, peerMessages: null, fsyncs: null, fsyncSeconds: null, ops: null, members: [null], listLength: [null] }
  return {
    kind: "echo",
    label: "bare Bun.serve echo (1 process, no consensus, no disk)",
    members,
    logDir: null,
    leader: async () => 0,
    workload: (): Workload => ({ method: "POST", path: "/append", contentType: "application/json", body: () => `{"value":${nextValue++}}` }),
    totals: async () => none,
    stop: () => stopProcess(proc, 2_000)
  }
}

if (import.meta.main) {
  const port = Number(process.argv[2])
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write("usage: bun src/bench/echo.ts PORT\n")
    process.exit(2)
  }
  serveEcho(port).then((code) => process.exit(code))
}
