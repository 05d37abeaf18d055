/**
 * `paxos client [--config F] [--server N] [--timeout MS] [--token-file T] VALUE`: appends VALUE and
 * prints the list right after it as JSON (`[1,2,5]`). T (or PAXOS_CLIENT_TOKEN_FILE) holds the
 * nodes' client token, sent as `Authorization: Bearer <token>`; a node that refuses it (401) ends
 * the run with exit 2.
 *
 * Without --server it tries the config's nodes in turn, round after round, within one deadline
 * (--timeout MS, default DEFAULT_TIMEOUT_MS); N is a node index (from 0, as in /status) or
 * HOST:PORT. src/client/deadline.ts splits the time so that every node gets a try, and every
 * attempt carries the same client id and seq, so retries on other nodes are applied at most once.
 *
 * Exit codes: 0 appended; 1 definitely not appended (every node tried said no, or none could be
 * connected to); 2 usage or bad input; 3 unknown (an attempt may have appended it, whatever the
 * others said). Errors are one line on stderr, saying what happened at each node tried.
 */
import { randomBytes } from "node:crypto"
import { appendWithin, describe, describeTried } from "../client/deadline.ts"
import { ConfigError, parseAddress, readConfig } from "../server/cluster-config.ts"
import { parseFlags, positiveInt, readTokenFile, shortUsage, str } from "./args.ts"

export const CLIENT_USAGE = `usage: paxos client [--config F] [--server N|HOST:PORT] [--timeout MS] [--token-file T] VALUE
       paxos client CONFIG VALUE        (the same as --config CONFIG VALUE)

Appends the integer VALUE and prints the list right after it, as JSON: [1,2,5].

options:
  --config F           the cluster's config file, one node a line (default: example-config)
  --server N|HOST:PORT try only this node: its index in F, from 0, or its address (default: every node of F in turn)
  --timeout MS         one deadline for the whole append, shared so that every node gets a try (default: 10000)
  --token-file T       the nodes' client token (default: $PAXOS_CLIENT_TOKEN_FILE, else none)

exit codes:
  0  appended
  1  definitely not appended (every node tried said no, or none could be reached)
  2  usage or bad input
  3  unknown: an attempt may have appended it`
const DEFAULT_CONFIG = "example-config"
const DEFAULT_TIMEOUT_MS = 10_000

/** The flags of `paxos client`. */
export const CLIENT_FLAGS = { config: "value", server: "value", timeout: "value", "token-file": "value", help: "bool", h: "bool" } as const

class Usage extends Error {}

/** Runs the client; returns the exit code. */
export async function clientCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv)
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`paxos client: ${e.message}\n${shortUsage(CLIENT_USAGE)}\n`)
      return 2
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`paxos client: ${e.message}\n`)
      return 2
    }
    process.stderr.write(`paxos client: unexpected error: ${e instanceof Error ? e.message : String(e)}; the append may or may not have happened\n`)
    return 3
  }
}

async function run(argv: string[]): Promise<number> {
  const p = parseFlags(argv, CLIENT_FLAGS)
  if (typeof p === "string") throw new Usage(p)
  if (p.flags.help === true || p.flags.h === true) {
    process.stdout.write(`${CLIENT_USAGE}\n`)
    return 0
  }
  // `client CONFIG VALUE`, the Python original's form, is `client --config CONFIG VALUE`.
  let config = str(p, "config")
  let positionals = p.positionals
  if (positionals.length === 2 && config === undefined) {
    config = positionals[0] as string
    positionals = positionals.slice(1)
  }
  if (positionals.length !== 1) throw new Usage(positionals.length === 0 ? "missing VALUE" : "expected exactly one VALUE (or CONFIG VALUE)")
  const value = parseValue(positionals[0] as string)
  const timeout = positiveInt(p, "timeout")
  if (typeof timeout === "string") throw new Usage(timeout)
  const token = readToken(str(p, "token-file") ?? (process.env.PAXOS_CLIENT_TOKEN_FILE || undefined))
  const nodes = targets(config, str(p, "server"))
  return appendWithRetries(nodes, value, timeout ?? DEFAULT_TIMEOUT_MS, token)
}

/** The client token in `file` (trimmed), or undefined without a file. */
function readToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined
  try {
    return readTokenFile(file)
  } catch (e) {
    throw new Usage((e as Error).message)
  }
}

/** VALUE must be a safe integer written in decimal. */
function parseValue(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new Usage(`VALUE must be an integer, got '${text}'`)
  const v = Number(text)
  if (!Number.isSafeInteger(v)) throw new Usage(`VALUE must be a safe integer (|v| <= 2^53-1), got ${text}`)
  return v
}

/** The nodes to try, in order. */
function targets(config: string | undefined, server: string | undefined): string[] {
  if (server !== undefined && /^\d+$/.test(server)) {
    const nodes = readConfig(config ?? DEFAULT_CONFIG).nodes
    const node = nodes[Number(server)]
    if (node === undefined) throw new Usage(`--server ${server}: the config has nodes 0..${nodes.length - 1}`)
    return [node.name]
  }
  if (server !== undefined) {
    const a = parseAddress(server)
    if (typeof a === "string") throw new Usage(`--server: ${a}`)
    return [a.name]
  }
  return readConfig(config ?? DEFAULT_CONFIG).nodes.map((n) => n.name)
}

/** Appends `value` through `nodes` within `timeoutMs`; prints the list, or one line of what each node said. */
async function appendWithRetries(nodes: readonly string[], value: number, timeoutMs: number, token: string | undefined): Promise<number> {
  const body = { value, client: `cli-${randomBytes(8).toString("hex")}`, seq: 1 }
  const r = await appendWithin(nodes, body, { timeoutMs, ...(token === undefined ? {} : { token }) })
  if (r.type === "ok") {
    process.stdout.write(`${JSON.stringify(r.value.list ?? [])}\n`)
    return 0
  }
  if (r.type === "fail" && r.badInput) {
    process.stderr.write(`paxos client: ${r.node} refused the request: ${describe(r.last)}\n`)
    return 2
  }
  if (r.type === "info") {
    process.stderr.write(`paxos client: outcome unknown: ${value} may or may not have been appended: ${describeTried(r.tried)}\n`)
    return 3
  }
  process.stderr.write(`paxos client: not appended: ${describeTried(r.tried)}\n`)
  return 1
}
