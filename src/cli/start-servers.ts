/**
 * `paxos start-servers [CONFIG]`: starts every node of CONFIG (default `example-config`) on this
 * machine, each with its data dir `data/<host>_<port>/`. Each node writes its output to
 * `node.log` in its data dir (appended across runs), and start-servers prints every new line of
 * those files on its stdout, prefixed with the node's name; its own lines go to stderr. Once all
 * nodes have started it waits for every one to answer GET /ready and says when they do. Ctrl-C
 * (or SIGTERM) stops them all; if a node exits by itself the others keep running, and the line
 * that says so gives the command that restarts it (its output then reaches the same node.log,
 * which start-servers keeps following).
 *
 * Peer authentication is on: the nodes share the secret of PAXOS_SECRET_FILE when it is set, or
 * else `data/secret`, made on first use (32 random bytes, base64, mode 0600) and kept for later
 * runs. PAXOS_CLIENT_TOKEN_FILE, when set, reaches the nodes through the environment.
 */
import type { Subprocess } from "bun"
import { randomBytes } from "node:crypto"
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { ConfigError, defaultDataDir, readConfig } from "../server/cluster-config.ts"
import { parseFlags, shortUsage } from "./args.ts"
import { describeNotReady, waitReady } from "./ready.ts"
import { selfCommand } from "./self.ts"

export const START_USAGE = `usage: paxos start-servers [CONFIG]

Starts every node of CONFIG on this machine (default: example-config), each with its data in
data/HOST_PORT/ and its log in data/HOST_PORT/node.log, prints their log lines prefixed with the
node, says when all are ready, and prints the command that restarts a node that stops. The peers
authenticate with the secret in $PAXOS_SECRET_FILE, else in data/secret (made on first use).
Ctrl-C stops them all.

exit codes: 0 stopped by Ctrl-C, 1 a node could not start, 2 usage`
const STOP_GRACE_MS = 5_000
/** How long start-servers waits for every node to answer GET /ready before it says they do not. */
const READY_WAIT_MS = 30_000
/** How often the nodes' log files are read for new lines. */
const FOLLOW_EVERY_MS = 100
/** The file in a node's data dir that its output goes to. */
export const NODE_LOG = "node.log"

interface Child {
  readonly name: string
  readonly proc: Subprocess
  /** The command that runs this node, as a shell line (with its output appended to its log). */
  readonly command: string
  readonly log: LogFollower
}

export async function startServersCommand(argv: string[]): Promise<number> {
  const p = parseFlags(argv, { help: "bool", h: "bool" })
  if (typeof p === "string" || p.positionals.length > 1) {
    process.stderr.write(`paxos start-servers: ${typeof p === "string" ? p : "expected at most one CONFIG"}\n${shortUsage(START_USAGE)}\n`)
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
  const width = Math.max(...nodes.map((n) => n.name.length))
  let children: Child[]
  try {
    children = nodes.map((n) => {
      const dataDir = defaultDataDir(n)
      mkdirSync(dataDir, { recursive: true })
      const logFile = join(dataDir, NODE_LOG)
      const argv = [...selfCommand(), "server", "--config", file, "--node", n.name, "--data-dir", dataDir, "--secret-file", secretFile]
      // Follows from the log's end before the node can write: lines of earlier runs stay out.
      const prefix = `${n.name.padEnd(width)} | `
      const log = new LogFollower(logFile, (line) => process.stdout.write(prefix + line + "\n"))
      const fd = openSync(logFile, "a")
      let proc: Subprocess
      try {
        proc = Bun.spawn(argv, { stdout: fd, stderr: fd, stdin: "ignore" })
      } finally {
        closeSync(fd)
      }
      return { name: n.name, proc, command: `${argv.map(shellQuote).join(" ")} >> ${shellQuote(logFile)} 2>&1`, log }
    })
  } catch (e) {
    process.stderr.write(`paxos start-servers: cannot start the nodes: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  process.stderr.write(`paxos start-servers: started ${children.map((c) => `${c.name} (pid ${c.proc.pid})`).join(", ")}; each logs to data/<host>_<port>/${NODE_LOG}; Ctrl-C stops them all\n`)
  const follow = setInterval(() => children.forEach((c) => c.log.poll()), FOLLOW_EVERY_MS)
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
  void waitReady(
    children.map((c) => c.name),
    READY_WAIT_MS,
    () => stopping
  ).then((r) => {
    if (stopping) return
    if ("leader" in r) process.stderr.write(`paxos start-servers: all ${children.length} nodes are ready (GET /ready), leader ${r.leader}\n`)
    else process.stderr.write(`paxos start-servers: not every node is ready after ${READY_WAIT_MS / 1000} s: ${describeNotReady(r.notReady)}\n`)
  })
  const codes = await Promise.all(
    children.map(async (c) => {
      const code = await c.proc.exited
      c.log.poll()
      if (!stopping) process.stderr.write(`paxos start-servers: node ${c.name} exited with code ${code}; to run it again, from this directory: ${c.command} &\n`)
      return code
    })
  )
  clearInterval(follow)
  children.forEach((c) => c.log.poll(true))
  return stopping ? 0 : codes.some((c) => c !== 0) ? 1 : 0
}

/**
 * Prints the lines a file gains, from its size when this was made on: what a node writes to its
 * log, whoever started it. A line is printed once complete (`flush` prints a last partial one).
 */
export class LogFollower {
  private offset: number
  private partial = ""
  private readonly decoder = new TextDecoder()
  private readonly buf = Buffer.alloc(64 * 1024)

  constructor(
    private readonly file: string,
    private readonly line: (text: string) => void
  ) {
    this.offset = sizeOf(file)
  }

  /** Prints the complete lines added since the last poll (and a partial last one when `flush`). */
  poll(flush = false): void {
    let fd: number
    try {
      fd = openSync(this.file, "r")
    } catch {
      return
    }
    try {
      // A file that shrank was replaced or truncated: follow it from its start.
      if (fstatSync(fd).size < this.offset) this.offset = 0
      for (;;) {
        const n = readSync(fd, this.buf, 0, this.buf.length, this.offset)
        if (n <= 0) break
        this.offset += n
        const text = this.partial + this.decoder.decode(this.buf.subarray(0, n), { stream: true })
        const lines = text.split("\n")
        this.partial = lines.pop() ?? ""
        for (const l of lines) this.line(l)
      }
    } finally {
      closeSync(fd)
    }
    if (flush && this.partial.length > 0) {
      this.line(this.partial)
      this.partial = ""
    }
  }
}

function sizeOf(file: string): number {
  try {
    const fd = openSync(file, "r")
    try {
      return fstatSync(fd).size
    } finally {
      closeSync(fd)
    }
  } catch {
    return 0
  }
}

/** `s` as one word of a POSIX shell line. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`)

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
