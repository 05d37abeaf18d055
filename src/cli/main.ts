/**
 * The single entry of `dist/paxos` (and of the package.json scripts): dispatches subcommands.
 * Unknown subcommands and flags print the usage on stderr and exit 2.
 */
import { benchCommand } from "../bench/main.ts"
import { chaosCommand } from "../chaos/run.ts"
import { checkCommand } from "../check/cli.ts"
import { simCommand } from "../sim/cli.ts"
import { runServer } from "../server/main.ts"
import { parseFlags, positiveInt, str } from "./args.ts"
import { clientCommand } from "./client.ts"
import { demoCommand } from "./demo.ts"
import { startServersCommand } from "./start-servers.ts"

export const USAGE = `usage: paxos <command> [options]

commands:
  server --config F --node HOST:PORT [--listen ADDR[:PORT]] [--data-dir D] [--secret-file S]
         [--client-token-file T] [--max-client-requests N] [--client-body-timeout MS]
         [--snapshot-every SLOTS] [--sync-lanes N] [--unsafe-no-fsync]
                       run one node (HOST:PORT is a line of F, and its host the address it listens on
                       unless --listen says another; S or $PAXOS_SECRET_FILE holds the cluster
                       secret; T or $PAXOS_CLIENT_TOKEN_FILE the client API's bearer token; docs/SECURITY.md;
                       --unsafe-no-fsync loses acknowledged appends in a machine crash: benchmarks only)
  client [--config F] [--server N|HOST:PORT] [--timeout MS] [--token-file T] VALUE
                       append VALUE and print the list right after it, e.g. [1,2,5]
                       (exit 0 appended, 1 not appended, 2 bad input, 3 unknown)
  start-servers [CONFIG]
                       run every node of CONFIG (default example-config) here; Ctrl-C stops them
  check FILE           check a Jepsen list-append history (exit 0 valid, 1 invalid, 2 unreadable)
  sim [...]            the deterministic simulator
  chaos [...]          the local fault-injection run
  bench [...]          the benchmark
  demo                 start a local 3-node cluster, append, kill and restart the leader, check the history
`

const SERVER_USAGE =
  "usage: paxos server --config F --node HOST:PORT [--listen ADDR[:PORT]] [--data-dir D] [--secret-file S] [--client-token-file T] [--max-client-requests N] [--client-body-timeout MS] [--snapshot-every SLOTS] [--sync-lanes N] [--unsafe-no-fsync]"

/** `paxos server ...`. */
async function serverCommand(argv: string[]): Promise<number> {
  const p = parseFlags(argv, {
    config: "value",
    node: "value",
    listen: "value",
    "data-dir": "value",
    "secret-file": "value",
    "client-token-file": "value",
    "max-client-requests": "value",
    "client-body-timeout": "value",
    "snapshot-every": "value",
    "sync-lanes": "value",
    "unsafe-no-fsync": "bool"
  })
  const fail = (why: string) => {
    process.stderr.write(`paxos server: ${why}\n${SERVER_USAGE}\n`)
    return 2
  }
  if (typeof p === "string") return fail(p)
  if (p.positionals.length > 0) return fail(`unexpected argument '${p.positionals[0]}'`)
  const config = str(p, "config")
  const node = str(p, "node")
  if (config === undefined) return fail("missing --config F")
  if (node === undefined) return fail("missing --node HOST:PORT")
  const snapshotEvery = positiveInt(p, "snapshot-every")
  if (typeof snapshotEvery === "string") return fail(snapshotEvery)
  const syncLanes = positiveInt(p, "sync-lanes")
  if (typeof syncLanes === "string") return fail(syncLanes)
  const maxClientRequests = positiveInt(p, "max-client-requests")
  if (typeof maxClientRequests === "string") return fail(maxClientRequests)
  const clientBodyTimeoutMs = positiveInt(p, "client-body-timeout")
  if (typeof clientBodyTimeoutMs === "string") return fail(clientBodyTimeoutMs)
  const secretFile = str(p, "secret-file") ?? (process.env.PAXOS_SECRET_FILE || undefined)
  const clientTokenFile = str(p, "client-token-file") ?? (process.env.PAXOS_CLIENT_TOKEN_FILE || undefined)
  return runServer({
    configFile: config,
    node,
    listen: str(p, "listen"),
    dataDir: str(p, "data-dir"),
    secretFile,
    clientTokenFile,
    maxClientRequests,
    clientBodyTimeoutMs,
    snapshotEverySlots: snapshotEvery,
    syncLanes,
    unsafeNoFsync: p.flags["unsafe-no-fsync"] === true
  })
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  server: serverCommand,
  client: clientCommand,
  "start-servers": startServersCommand,
  check: checkCommand,
  sim: simCommand,
  chaos: chaosCommand,
  bench: benchCommand,
  demo: demoCommand
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined) {
    process.stderr.write(USAGE)
    return 2
  }
  if (cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE)
    return 0
  }
  const run = COMMANDS[cmd]
  if (run === undefined) {
    process.stderr.write(`paxos: unknown command '${cmd}'\n${USAGE}`)
    return 2
  }
  return run(rest)
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`paxos: ${e instanceof Error ? e.message : String(e)}\n`)
      process.exit(1)
    }
  )
}
