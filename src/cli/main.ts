/**
 * The single entry of `dist/paxos` (and of the package.json scripts): dispatches subcommands.
 * Unknown subcommands and flags print the usage on stderr and exit 2.
 */
import { benchCommand } from "../bench/main.ts"
import { BENCH_FLAGS, BENCH_USAGE } from "../bench/options.ts"
import { CHAOS_FLAGS, CHAOS_USAGE, chaosCommand } from "../chaos/run.ts"
import { CHECK_FLAGS, CHECK_USAGE, checkCommand } from "../check/cli.ts"
import { SIM_FLAGS, SIM_USAGE, simCommand } from "../sim/cli.ts"
import { runServer } from "../server/main.ts"
import { closest, parseFlags, positiveInt, shortUsage, str, wantsHelp } from "./args.ts"
import { CLIENT_FLAGS, CLIENT_USAGE, clientCommand } from "./client.ts"
import { demoCommand } from "./demo.ts"
import { LIST_FLAGS, LIST_USAGE, listCommand, STATUS_FLAGS, STATUS_USAGE, statusCommand } from "./inspect.ts"
import { MEMBER_FLAGS, MEMBER_USAGE, memberCommand } from "./member.ts"
import { START_USAGE, startServersCommand } from "./start-servers.ts"
import { versionLine } from "./version.ts"

/** One subcommand: how to run it, its one-line summary, and its whole --help text. */
export interface Subcommand {
  readonly run: (argv: string[]) => Promise<number>
  readonly summary: string
  readonly help: string
  /** Its options, each of which its help describes. */
  readonly flags: readonly string[]
}

const SERVER_USAGE = `usage: paxos server --config F --node HOST:PORT [--join [--join-timeout MS]] [--listen ADDR[:PORT]]
                    [--data-dir D] [--secret-file S] [--client-token-file T] [--max-client-requests N]
                    [--client-body-timeout MS] [--snapshot-every SLOTS] [--sync-lanes N] [--unsafe-no-fsync]

Runs one node of the cluster in F: the client API and the peers on one port, its durable state in
its data directory. Stops on SIGINT or SIGTERM.

On an empty data directory, an initial member (a line of F) first learns every initial member's
identity and says whom it waits for: a new cluster serves once each of its nodes has started. A
node added to a running cluster (paxos member add HOST:PORT) starts with --join instead. A data
directory that holds an identity restarts as that node (--join or not); F is then only whom to
contact.

options:
  --config F               the cluster's config file, one node a line (required)
  --node HOST:PORT         this node's address: its line of F, or the address given to
                           paxos member add (required)
  --join                   on an empty data directory, join the running cluster whose members F
                           lists, as the learner paxos member add made at HOST:PORT; it never starts
                           a cluster of its own
  --join-timeout MS        how long --join tries the members before it gives up, exit 1 (default: 30000)
  --listen ADDR[:PORT]     the address to listen on (default: the host of --node, localhost meaning
                           127.0.0.1, and its port)
  --data-dir D             where its state is kept (default: data/HOST_PORT)
  --secret-file S          the cluster secret that authenticates the peers (default:
                           $PAXOS_SECRET_FILE, else none, and a warning: docs/SECURITY.md)
  --client-token-file T    the bearer token the client API asks for (default:
                           $PAXOS_CLIENT_TOKEN_FILE, else none: the client API is open)
  --max-client-requests N  client requests in flight at most, 503 past it (default: 10000)
  --client-body-timeout MS time a client body may take to arrive, 408 past it (default: 10000)
  --snapshot-every SLOTS   slots between snapshots (default: 1000)
  --sync-lanes N           fdatasyncs of the log that may run at once, 1 to 8 (default: 2)
  --unsafe-no-fsync        never sync to disk: acknowledged appends die with the machine; for
                           measuring what the disk costs, never for data

exit codes: 0 stopped by a signal, 1 storage refused or failed, the port is taken, this node's
identity must not vote (its data dir was wiped after it voted: the message says what to do), or
--join was refused or reached no member in time, 2 bad flags or config, 70 an invariant violation
(PAXOS-INVARIANT-VIOLATION in the log)`

const DEMO_USAGE = `usage: paxos demo

Starts a local 3-node cluster in a temporary directory, appends from concurrent clients, kills and
restarts the leader on the way, prints every node's list and checks the history.

exit codes: 0 the history is linearizable and the lists agree, 1 otherwise, 2 usage`

/** The flags of `paxos server`. */
export const SERVER_FLAGS = {
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
  "unsafe-no-fsync": "bool",
  join: "bool",
  "join-timeout": "value"
} as const

/** Every subcommand of dist/paxos. */
export const COMMANDS: Record<string, Subcommand> = {
  server: { run: serverCommand, summary: "run one node of a cluster", help: SERVER_USAGE, flags: Object.keys(SERVER_FLAGS) },
  client: { run: clientCommand, summary: "append VALUE and print the list right after it", help: CLIENT_USAGE, flags: Object.keys(CLIENT_FLAGS) },
  list: { run: listCommand, summary: "read the whole list (a linearizable read) and print it", help: LIST_USAGE, flags: Object.keys(LIST_FLAGS) },
  status: { run: statusCommand, summary: "one line per node: role, leader, ballot, slots, lag, epoch, ready", help: STATUS_USAGE, flags: Object.keys(STATUS_FLAGS) },
  member: { run: memberCommand, summary: "list, add, remove or promote the members of a running cluster", help: MEMBER_USAGE, flags: Object.keys(MEMBER_FLAGS) },
  "start-servers": { run: startServersCommand, summary: "run every node of CONFIG on this machine; Ctrl-C stops them", help: START_USAGE, flags: [] },
  check: { run: checkCommand, summary: "check a Jepsen list-append history for linearizability", help: CHECK_USAGE, flags: CHECK_FLAGS },
  sim: { run: simCommand, summary: "the deterministic simulator: the real core under seeded faults", help: SIM_USAGE, flags: SIM_FLAGS },
  chaos: { run: chaosCommand, summary: "the local fault-injection run on real processes, with a checked history", help: CHAOS_USAGE, flags: Object.keys(CHAOS_FLAGS) },
  bench: { run: benchCommand, summary: "the benchmark, side by side with etcd", help: BENCH_USAGE, flags: Object.keys(BENCH_FLAGS) },
  demo: { run: demoCommand, summary: "a local 3-node cluster: append, kill the leader, check", help: DEMO_USAGE, flags: [] }
}

export const USAGE = `usage: paxos <command> [options]
       paxos <command> --help     every option of a command, its default, its exit codes
       paxos --version

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join("\n")}
`


/** `paxos server ...`. */
async function serverCommand(argv: string[]): Promise<number> {
  const p = parseFlags(argv, SERVER_FLAGS)

  const fail = (why: string) => {
    process.stderr.write(`paxos server: ${why}\n${shortUsage(SERVER_USAGE)}\n`)
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
  const joinTimeoutMs = positiveInt(p, "join-timeout")
  if (typeof joinTimeoutMs === "string") return fail(joinTimeoutMs)
  if (joinTimeoutMs !== undefined && p.flags.join !== true) return fail("--join-timeout needs --join")
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
    unsafeNoFsync: p.flags["unsafe-no-fsync"] === true,
    join: p.flags.join === true,
    joinTimeoutMs
  })
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined) {
    process.stderr.write(USAGE)
    return 2
  }
  if (cmd === "help" || cmd === "--help" || cmd === "-h") {
    const sub = rest[0] === undefined ? undefined : COMMANDS[rest[0]]
    process.stdout.write(sub === undefined ? USAGE : `${sub.help}\n`)
    return 0
  }
  if (cmd === "--version" || cmd === "-V" || cmd === "version") {
    process.stdout.write(`${versionLine()}\n`)
    return 0
  }
  const sub = COMMANDS[cmd]
  if (sub === undefined) {
    const close = closest(cmd, Object.keys(COMMANDS))
    process.stderr.write(`paxos: unknown command '${cmd}'${close === null ? "" : ` (did you mean '${close}'?)`}\n${USAGE}`)
    return 2
  }
  if (wantsHelp(rest)) {
    process.stdout.write(`${sub.help}\n`)
    return 0
  }
  if (rest.includes("--version") && !rest.includes("--")) {
    process.stdout.write(`${versionLine()}\n`)
    return 0
  }
  return sub.run(rest)
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
