/**
 * Where a node listens: the host of its config line by default (`localhost` is 127.0.0.1 only,
 * so another address of this machine is refused), `--listen ADDR[:PORT]` elsewhere (0.0.0.0
 * accepts that address too); the `serving` line says where. Bad or unresolvable addresses stop
 * the node at start with one line and exit 2.
 */
import { afterAll, expect, test } from "bun:test"
import { connect } from "node:net"
import { networkInterfaces } from "node:os"
import { join } from "node:path"
import { readFileSync, writeFileSync } from "node:fs"
import { freePorts } from "../../src/cli/local-cluster.ts"
import { cleanup, ensureBinary, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

/** An IPv4 address of this machine other than loopback, or null when it has none. */
function otherLocalAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal && !a.address.startsWith("127.")) return a.address
  }
  return null
}

/** Whether a TCP connection to host:port is accepted ("open"), refused, or neither in time. */
function tcp(host: string, port: number): Promise<"open" | "refused" | string> {
  return new Promise((resolve) => {
    const s = connect({ host, port })
    const done = (r: string) => {
      s.destroy()
      resolve(r)
    }
    s.setTimeout(2_000, () => done("timeout"))
    s.once("connect", () => done("open"))
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code === "ECONNREFUSED" ? "refused" : (e.code ?? e.message)))
  })
}

/** Runs one node of a one-line config with `flags`, and once it logged `serving` and `probe` accepts connections, `body` with a reader of its log. */
async function withNode(line: string, flags: string[], probe: string, body: (log: () => string) => Promise<void>): Promise<void> {
  const dir = tempDir()
  writeFileSync(join(dir, "cfg"), `${line}\n`)
  const logFile = join(dir, "node.log")
  const proc = Bun.spawn([ensureBinary(), "server", "--config", "cfg", "--node", line, "--data-dir", "data", ...flags], {
    cwd: dir,
    stdout: Bun.file(logFile),
    stderr: Bun.file(logFile)
  })
  try {
    await waitFor(`${line} to answer /health at ${probe}`, async () => {
      if (proc.exitCode !== null) throw new Error(`the node exited with ${proc.exitCode}: ${readFileSync(logFile, "utf8")}`)
      // The port opens a moment before the node logs its `serving` line: wait for both.
      if (!readFileSync(logFile, "utf8").includes(" serving ")) return false
      return (await tcp(probe.slice(0, probe.lastIndexOf(":")), Number(probe.slice(probe.lastIndexOf(":") + 1)))) === "open"
    }, 15_000)
    await body(() => readFileSync(logFile, "utf8"))
  } finally {
    proc.kill("SIGTERM")
    await proc.exited
  }
}

const other = otherLocalAddress()

test.skipIf(other === null)(`a config line localhost:PORT listens on 127.0.0.1 only; --listen 0.0.0.0 also on ${other ?? "another address (none here: skipped)"}`, async () => {
  const address = other as string
  const [port, port2] = await freePorts(2, "0.0.0.0")
  const line = `localhost:${port}`
  await withNode(line, [], `127.0.0.1:${port}`, async (log) => {
    expect(log()).toContain(`${line} serving listen=127.0.0.1:${port} `)
    expect(await tcp("127.0.0.1", port as number)).toBe("open")
    expect(await tcp(address, port as number)).toBe("refused")
  })
  await withNode(line, ["--listen", "0.0.0.0"], `${address}:${port}`, async (log) => {
    expect(log()).toContain(`${line} serving listen=0.0.0.0:${port} `)
    const r = await fetch(`http://${address}:${port}/health`)
    expect(r.status).toBe(200)
    expect(await tcp("127.0.0.1", port as number)).toBe("open")
  })
  // A port of its own with --listen ADDR:PORT.
  await withNode(line, ["--listen", `${address}:${port2}`], `${address}:${port2}`, async (log) => {
    expect(log()).toContain(`${line} serving listen=${address}:${port2} `)
    expect(await tcp("127.0.0.1", port2 as number)).toBe("refused")
    expect(await tcp(address, port as number)).toBe("refused")
  })
}, 60_000)

if (other === null) console.log("listen.test.ts: skipped the other-address test: this machine has no IPv4 address besides loopback")

test("a bad --listen, or a config host that does not resolve, stops the node at start: one line, exit 2", async () => {
  const dir = tempDir()
  const [port] = await freePorts(1)
  const run = async (line: string, flags: string[]) => {
    writeFileSync(join(dir, "cfg"), `${line}\n`)
    const p = Bun.spawn([ensureBinary(), "server", "--config", "cfg", "--node", line, "--data-dir", "data", ...flags], { cwd: dir, stdout: "pipe", stderr: "pipe" })
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited])
    return { code, lines: err.trim().split("\n").filter((l) => l.startsWith("paxos server:")) }
  }
  const bad = await run(`127.0.0.1:${port}`, ["--listen", "a b"])
  expect(bad.code).toBe(2)
  expect(bad.lines).toEqual(["paxos server: --listen a b: 'a b' has no valid host"])
  const unresolved = await run(`no-such-host.invalid:${port}`, [])
  expect(unresolved.code).toBe(2)
  expect(unresolved.lines.length).toBe(1)
  expect(unresolved.lines[0]).toMatch(/^paxos server: cannot resolve no-such-host\.invalid \(the config line no-such-host\.invalid:\d+\) to an address to listen on: .*; give --listen ADDR$/)
}, 30_000)
