/**
 * `paxos client [--config F] [--server N] [--timeout MS] [--token-file T] VALUE`: appends VALUE and
 * prints the list right after it as JSON (`[1,2,5]`). T (or PAXOS_CLIENT_TOKEN_FILE) holds the
 * nodes' client token, sent as `Authorization: Bearer <token>`; a node that refuses it (401) ends
 * the run with exit 2.
 *
 * Without --server it tries the config's nodes in turn until one answers or the time is up; N is
 * a node index (from 0, as in /status) or HOST:PORT. Every attempt carries the same client id
 * and seq, so retries on other nodes are applied at most once.
 *
 * Exit codes: 0 appended; 1 definitely not appended; 2 usage or bad input; 3 unknown (it may or
 * may not have been appended). Errors are one line on stderr.
 */
import { Duration, Effect, Either, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { append } from "../client/http.ts"
import { ConfigError, parseAddress, readConfig } from "../server/cluster-config.ts"
import { parseFlags, positiveInt, readTokenFile, str } from "./args.ts"

export const CLIENT_USAGE = "usage: paxos client [--config F] [--server N|HOST:PORT] [--timeout MS] [--token-file T] VALUE"
const DEFAULT_CONFIG = "example-config"
const DEFAULT_TIMEOUT_MS = 10_000
/** One attempt waits at most this long (the node answers within its request timeout, 5 s). */
const ATTEMPT_TIMEOUT_MS = 7_000
/** No attempt starts with less time than this left (it could only time out, an unknown outcome). */
const ATTEMPT_MIN_MS = 200

class Usage extends Error {}

/** Runs the client; returns the exit code. */
export async function clientCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv)
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`paxos client: ${e.message}\n${CLIENT_USAGE}\n`)
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
  const p = parseFlags(argv, { config: "value", server: "value", timeout: "value", "token-file": "value", help: "bool", h: "bool" })
  if (typeof p === "string") throw new Usage(p)
  if (p.flags.help === true || p.flags.h === true) {
    process.stdout.write(`${CLIENT_USAGE}\n`)
    return 0
  }
  if (p.positionals.length !== 1) throw new Usage(p.positionals.length === 0 ? "missing VALUE" : "expected exactly one VALUE")
  const value = parseValue(p.positionals[0] as string)
  const timeout = positiveInt(p, "timeout")
  if (typeof timeout === "string") throw new Usage(timeout)
  const token = readToken(str(p, "token-file") ?? (process.env.PAXOS_CLIENT_TOKEN_FILE || undefined))
  const nodes = targets(str(p, "config"), str(p, "server"))
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

/** Why one attempt did not append; retried unless the node said the input itself is bad. */
interface AttemptFailed {
  readonly node: string
  readonly message: string
  readonly badInput: boolean
}

/** Pause after a round of attempts at every node: 100 ms doubling, jittered, at most 1 s. */
const ROUND_PAUSE = Schedule.exponential(Duration.millis(100), 2).pipe(Schedule.jittered, Schedule.union(Schedule.spaced(Duration.seconds(1))))

/**
 * Tries the nodes in turn until one appends, or a node says the input is bad, or time is up
 * (a round tries every node once; rounds are retried on the ROUND_PAUSE schedule). A node
 * that may have applied the request (timeout, 504) makes the final failure "unknown".
 */
async function appendWithRetries(nodes: readonly string[], value: number, timeoutMs: number, token: string | undefined): Promise<number> {
  const body = { value, client: `cli-${randomBytes(8).toString("hex")}`, seq: 1 }
  const deadline = Date.now() + timeoutMs
  let uncertain = false
  let last = "no node was tried"
  const retryable = (e: AttemptFailed) => !e.badInput && deadline - Date.now() >= ATTEMPT_MIN_MS
  const attemptAt = (node: string): Effect.Effect<number[], AttemptFailed> =>
    Effect.suspend(() => {
      const left = deadline - Date.now()
      if (left < ATTEMPT_MIN_MS) return Effect.fail({ node, message: "time is up", badInput: false })
      const opts = { timeoutMs: Math.min(left, ATTEMPT_TIMEOUT_MS), ...(token === undefined ? {} : { token }) }
      return Effect.promise(() => append(node, body, opts)).pipe(
        Effect.flatMap((r) => {
          if (r.type === "ok") return Effect.succeed(r.value.list ?? [])
          if (r.type === "info") uncertain = true
          last = `${node}: ${r.message}`
          // 400/413: the input is bad; 401: the token is missing or wrong. No other node will differ.
          return Effect.fail<AttemptFailed>({ node, message: r.message, badInput: r.status === 400 || r.status === 401 || r.status === 413 })
        })
      )
    })
  /** One round: each node in turn until one appends. */
  const round = nodes
    .slice(1)
    .reduce((acc, node) => acc.pipe(Effect.catchIf(retryable, () => attemptAt(node))), attemptAt(nodes[0] as string))
  const program = round.pipe(Effect.retry({ schedule: ROUND_PAUSE, while: retryable }), Effect.either)
  const result = await Effect.runPromise(program)
  if (Either.isRight(result)) {
    process.stdout.write(`${JSON.stringify(result.right)}\n`)
    return 0
  }
  if (result.left.badInput) {
    process.stderr.write(`paxos client: ${result.left.node} refused the request: ${result.left.message}\n`)
    return 2
  }
  if (uncertain) {
    process.stderr.write(`paxos client: outcome unknown: ${value} may or may not have been appended (last error: ${last})\n`)
    return 3
  }
  process.stderr.write(`paxos client: not appended: no node appended ${value} within ${timeoutMs} ms (last error: ${last})\n`)
  return 1
}
