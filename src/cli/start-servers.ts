/**
 * `paxos start-servers [CONFIG]`: starts every node of CONFIG (default `example-config`) on this
 * machine, each with its data dir `data/<host>_<port>/`, all logging to this terminal. Ctrl-C
 * (or SIGTERM) stops them all; if a node exits by itself the others keep running.
 */
import type { Subprocess } from "bun"
import { ConfigError, defaultDataDir, readConfig } from "../server/cluster-config.ts"
import { parseFlags } from "./args.ts"
import { selfCommand } from "./self.ts"

export const START_USAGE = "usage: paxos start-servers [CONFIG]"
const STOP_GRACE_MS = 5_000

export async function startServersCommand(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { help: "bool", h: "bool" })
  if (typeof p === "string" || p.positionals.length > 1) {
    process.stderr.write(`paxos start-servers: ${typeof p === "string" ? p : "expected at most one CONFIG"}\n${START_USAGE}\n`)
    return 2
  }
  if (p.flags.help === true || p.flags.h === true) {
    process.stdout.write(`${START_USAGE}\n`)
    return 0
  }
  const file = p.positionals[0] ?? "example-config"
  let nodes
  try {
    nodes = readConfig(file).nodes
  } catch (e) {
    process.stderr.write(`paxos start-servers: ${e instanceof ConfigError ? e.message : String(e)}\n`)
    return 2
  }
  const children: Array<{ name: string; proc: Subprocess }> = nodes.map((n) => ({
    name: n.name,
    proc: Bun.spawn([...selfCommand(), "server", "--config", file, "--node", n.name, "--data-dir", defaultDataDir(n)], {
      stdout: "inherit",
      stderr: "inherit",
      stdin: "ignore"
    })
  }))
  process.stderr.write(`paxos start-servers: started ${children.map((c) => `${c.name} (pid ${c.proc.pid})`).join(", ")}; Ctrl-C stops them all\n`)
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`paxos start-servers: ${signal}: stopping all nodes\n`)
    for (const c of children) c.proc.kill("SIGTERM")
    setTimeout(() => children.forEach((c) => c.proc.kill("SIGKILL")), STOP_GRACE_MS).unref()
  }
  process.on("SIGINT", () => stop("SIGINT"))
  process.on("SIGTERM", () => stop("SIGTERM"))
  const codes = await Promise.all(
    children.map(async (c) => {
      const code = await c.proc.exited
      if (!stopping) process.stderr.write(`paxos start-servers: node ${c.name} exited with code ${code}\n`)
      return code
    })
  )
  return stopping ? 0 : codes.some((c) => c !== 0) ? 1 : 0
}
