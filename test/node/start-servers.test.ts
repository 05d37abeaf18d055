/**
 * `start-servers` operated by hand: each node logs to node.log in its data dir, start-servers
 * prints those lines prefixed with the node's name and says when every node is ready; a node
 * stopped by hand is announced with the command that runs it again, and that command, run from
 * the same directory, brings it back into the cluster with its lines in the same log.
 */
import { afterAll, expect, test } from "bun:test"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePorts } from "../../src/cli/local-cluster.ts"
import { probeReady, waitReady } from "../../src/cli/ready.ts"
import { cleanup, ensureBinary, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

/** Collects a stream's text as it comes. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string } {
  let text = ""
  const decoder = new TextDecoder()
  void (async () => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true })
  })()
  return { text: () => text }
}

test("start-servers: per-node node.log, stdout prefixed with the node's name, ready; a node stopped and restarted by hand", async () => {
  const dir = tempDir()
  const ports = await freePorts(3)
  const names = ports.map((p) => `127.0.0.1:${p}`)
  writeFileSync(join(dir, "cfg"), `${names.join("\n")}\n`)
  const proc = Bun.spawn([ensureBinary(), "start-servers", "cfg"], { cwd: dir, stdout: "pipe", stderr: "pipe" })
  const out = collect(proc.stdout)
  const err = collect(proc.stderr)
  let restarted: ReturnType<typeof Bun.spawn> | null = null
  try {
    await waitFor("start-servers to say every node is ready", () => err.text().includes("nodes are ready"), 30_000)
    expect(err.text()).toMatch(/all 3 nodes are ready \(GET \/ready\), leader 127\.0\.0\.1:\d+/)
    expect("leader" in (await waitReady(names, 5_000))).toBe(true)
    for (const name of names) {
      const log = join(dir, "data", name.replace(":", "_"), "node.log")
      expect(existsSync(log)).toBe(true)
      expect(readFileSync(log, "utf8")).toContain(`${name} serving listen=${name}`)
      await waitFor(`${name}'s serving line on stdout`, () => out.text().includes(`${name} | `) && out.text().includes(`${name} serving`), 5_000)
    }
    const lines = out.text().split("\n").filter((l) => l.length > 0)
    for (const l of lines) expect(names.some((n) => l.startsWith(`${n} | `))).toBe(true)
    // Each prefixed line is a line of that node's log.
    expect(lines.some((l) => l.startsWith(`${names[1]} | `) && l.includes(`${names[1]} serving`))).toBe(true)

    // Stop node 1 by hand, as the README says (its pid is in /status too).
    const st = (await (await fetch(`http://${names[1]}/status`)).json()) as { pid: number }
    process.kill(st.pid, "SIGTERM")
    await waitFor("start-servers to say node 1 exited", () => err.text().includes(`node ${names[1]} exited`), 10_000)
    const m = /node 127\.0\.0\.1:\d+ exited with code 0; to run it again, from this directory: (.*) &\n/.exec(err.text())
    if (m === null) throw new Error(`no restart command in: ${err.text()}`)
    const command = m[1] as string
    expect(command).toContain(`--secret-file data/secret`)
    expect(command).toContain(`>> data/127.0.0.1_${ports[1]}/node.log 2>&1`)
    expect(await probeReady(names[1] as string, 500)).toBeNull()

    // The exact command brings it back, authenticated with the same secret, into the same log,
    // whose new lines start-servers still prints.
    restarted = Bun.spawn(["sh", "-c", `exec ${command}`], { cwd: dir, stdout: "ignore", stderr: "ignore" })
    expect("leader" in (await waitReady(names, 20_000))).toBe(true)
    const log = readFileSync(join(dir, "data", `127.0.0.1_${ports[1]}`, "node.log"), "utf8")
    expect(log.split(`${names[1]} serving`).length).toBe(3)
    await waitFor("the restarted node's serving line on start-servers' stdout", () => out.text().split(`${names[1]} serving`).length === 3, 5_000)
  } finally {
    restarted?.kill("SIGTERM")
    proc.kill("SIGINT")
    await proc.exited
    await restarted?.exited
  }
}, 90_000)
