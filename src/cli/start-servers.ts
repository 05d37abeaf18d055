/**
 * `paxos start-servers [CONFIG]`: starts every node of CONFIG (default `example-config`) on this
 * machine, each with its data dir `data/<host>_<port>/`, all logging to this terminal. Ctrl-C
 * (or SIGTERM) stops them all; if a node exits by itself the others keep running.
 *
 * Peer authentication is on: the nodes share the secret of PAXOS_SECRET_FILE when it is set, or
 * else `data/secret`, made on first use (32 random bytes, base64, mode 0600) and kept for later
 * runs. PAXOS_CLIENT_TOKEN_FILE, when set, reaches the nodes through the environment.
 */
import type { Subprocess } from "bun"
import { randomBytes } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs"
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
  let secretFile: string
  try {
    secretFile = localSecret()
  } catch (e) {
    process.stderr.write(`paxos start-servers: cannot make the cluster secret ${LOCAL_SECRET}: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  const children: Array<{ name: string; proc: Subprocess }> = nodes.map((n) => ({
    name: n.name,
    proc: Bun.spawn([...selfCommand(), "server", "--config", file, "--node", n.name, "--data-dir", defaultDataDir(n), "--secret-file", secretFile], {
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

/** Makes `file` a new cluster secret: 32 random bytes, base64, mode 0600. Throws if it exists. */
export function writeNewSecret(file: string): void {
  writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" })
  chmodSync(file, 0o600)
}

/** The secret start-servers makes for a local cluster when PAXOS_SECRET_FILE is not set. */
export const LOCAL_SECRET = "data/secret"

/** PAXOS_SECRET_FILE, or data/secret (made with 32 random bytes, mode 0600, when missing). */
function localSecret(): string {
  const given = process.env.PAXOS_SECRET_FILE
  if (given !== undefined && given !== "") return given
  if (!existsSync(LOCAL_SECRET)) {
    mkdirSync("data", { recursive: true })
    writeNewSecret(LOCAL_SECRET)
    process.stderr.write(`paxos start-servers: made the cluster secret ${LOCAL_SECRET} (peer authentication; kept for later runs)\n`)
  }
  return LOCAL_SECRET
}
