/**
 * What an etcdctl user reaches for:
 *   - `paxos status`: one table of every node of a cluster (address, role, leader, ballot,
 *     committed, applied, snapshot, lag behind the highest commit point, membership epoch, ready),
 *     or JSON with -o json;
 *   - `paxos list`: a linearizable read (GET /list) through whichever node answers, printed as JSON.
 */
import { readList, status, type NodeStatus } from "../client/http.ts"
import { MEMBERS_MAX } from "../core/membership.ts"
import { ConfigError, readConfig } from "../server/cluster-config.ts"
import { parseFlags, positiveInt, shortUsage, str, tokenOf } from "./args.ts"

const DEFAULT_CONFIG = "example-config"
const STATUS_TIMEOUT_MS = 2_000
const LIST_TIMEOUT_MS = 10_000

export const STATUS_USAGE = `usage: paxos status [--config F] [-o table|json]

Asks every node of the cluster (the config file's, and the members they know of) for its /status
and prints one line each: its address, role, the leader it follows, its ballot, the slots it knows
committed, has applied and has in its snapshot, its lag (the highest commit point any node
reports, minus what it applied), the membership epoch it has in force (the changes of members
applied) and whether it is ready.

options:
  --config F       the cluster's config file (default: example-config)
  -o, --output FMT table or json (default: table)

exit codes: 0 every node answered, 1 some did not (they are listed as unreachable), 2 usage`

export const LIST_USAGE = `usage: paxos list [--config F] [--tail N] [--timeout MS] [--token-file T]

Reads the list through the log (a linearizable read, GET /list) at the first node that answers,
and prints it as JSON.

options:
  --config F       the cluster's config file (default: example-config)
  --tail N         print only the last N values (default: all)
  --timeout MS     one deadline for the read, shared by the nodes tried (default: 10000)
  --token-file T   the nodes' client token (default: $PAXOS_CLIENT_TOKEN_FILE, else none)

exit codes: 0 read, 1 no node answered, 2 usage`

export const STATUS_FLAGS = { config: "value", output: "value" } as const
export const LIST_FLAGS = { config: "value", tail: "value", timeout: "value", "token-file": "value" } as const

class Usage extends Error {}

/** Runs `body`, turning a usage or config error into its one line and exit 2. */
async function guarded(cmd: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body()
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`paxos ${cmd}: ${e.message}\n${shortUsage(usage)}\n`)
      return 2
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`paxos ${cmd}: ${e.message}\n`)
      return 2
    }
    throw e
  }
}

/** One row of `paxos status`. */
export interface StatusRow {
  readonly node: string
  readonly reachable: boolean
  readonly role?: string
  readonly leader?: string | null
  readonly ballot?: string
  readonly committed?: number
  readonly applied?: number
  readonly snapshot?: number
  readonly lag?: number
  /** The membership epoch in force at the node (changes of members applied). */
  readonly epoch?: number
  readonly ready?: boolean
  readonly notReady?: string
}

/**
 * The rows of every node of `nodes`, asked at once, and of the members those nodes know of that
 * `nodes` lacks (added since the config file was written), asked next.
 */
export async function statusRows(nodes: readonly string[]): Promise<StatusRow[]> {
  const asked = [...nodes]
  const all = await Promise.all(asked.map((n) => status(n, STATUS_TIMEOUT_MS)))
  const known = new Set(all.flatMap((s) => {
    const m = s?.membership as { voters?: unknown; learners?: unknown } | undefined
    return [m?.voters, m?.learners].flatMap((a) => (Array.isArray(a) ? a.filter((x): x is string => typeof x === "string") : []))
  }))
  const more = [...known].filter((n) => !asked.includes(n)).slice(0, MEMBERS_MAX)
  asked.push(...more)
  all.push(...(await Promise.all(more.map((n) => status(n, STATUS_TIMEOUT_MS)))))
  const top = Math.max(0, ...all.map((s) => s?.committed ?? 0))
  return asked.map((node, i) => {
    const s = all[i] as NodeStatus | null
    if (s === null) return { node, reachable: false }
    const ballot = (s.ballot as { text?: string } | undefined)?.text ?? "?"
    const ready = s.ready as { ok?: boolean; reason?: string } | undefined
    return {
      node,
      reachable: true,
      role: s.role,
      leader: s.leader,
      ballot,
      committed: s.committed,
      applied: s.applied,
      snapshot: s.snapshot,
      lag: Math.max(0, top - s.applied),
      ...(typeof (s.membership as { epoch?: unknown } | undefined)?.epoch === "number" ? { epoch: (s.membership as { epoch: number }).epoch } : {}),
      ready: ready?.ok === true,
      ...(ready?.ok === true || ready?.reason === undefined ? {} : { notReady: ready.reason })
    }
  })
}

/** The rows as an aligned table. */
export function statusTable(rows: readonly StatusRow[]): string {
  const head = ["NODE", "ROLE", "LEADER", "BALLOT", "COMMITTED", "APPLIED", "SNAPSHOT", "LAG", "EPOCH", "READY"]
  const cells = rows.map((r) =>
    r.reachable
      ? [r.node, r.role ?? "?", r.leader ?? "-", r.ballot ?? "?", String(r.committed), String(r.applied), String(r.snapshot), String(r.lag), r.epoch === undefined ? "-" : String(r.epoch), r.ready === true ? "yes" : `no (${r.notReady ?? "?"})`]
      : [r.node, "unreachable", "-", "-", "-", "-", "-", "-", "-", "-"]
  )
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)))
  return [head, ...cells].map((c) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i] as number))).join("  ")).join("\n")
}

/** `paxos status`. */
export function statusCommand(argv: string[]): Promise<number> {
  return guarded("status", STATUS_USAGE, async () => {
    const p = parseFlags(argv.map((a) => (a === "-o" ? "--output" : a)), STATUS_FLAGS)
    if (typeof p === "string") throw new Usage(p)
    if (p.positionals.length > 0) throw new Usage(`unexpected argument '${p.positionals[0]}'`)
    const output = str(p, "output") ?? "table"
    if (output !== "table" && output !== "json") throw new Usage(`-o must be table or json, got '${output}'`)
    const rows = await statusRows(readConfig(str(p, "config") ?? DEFAULT_CONFIG).nodes.map((n) => n.name))
    process.stdout.write(output === "json" ? `${JSON.stringify(rows, null, 2)}\n` : `${statusTable(rows)}\n`)
    return rows.every((r) => r.reachable) ? 0 : 1
  })
}

/** `paxos list`. */
export function listCommand(argv: string[]): Promise<number> {
  return guarded("list", LIST_USAGE, async () => {
    const p = parseFlags(argv, LIST_FLAGS)
    if (typeof p === "string") throw new Usage(p)
    if (p.positionals.length > 0) throw new Usage(`unexpected argument '${p.positionals[0]}'`)
    const tail = positiveInt(p, "tail")
    const timeout = positiveInt(p, "timeout")
    if (typeof tail === "string") throw new Usage(tail)
    if (typeof timeout === "string") throw new Usage(timeout)
    const token = tokenOf(p)
    if (token instanceof Error) throw new Usage(token.message)
    const nodes = readConfig(str(p, "config") ?? DEFAULT_CONFIG).nodes.map((n) => n.name)
    const deadline = performance.now() + (timeout ?? LIST_TIMEOUT_MS)
    const why: string[] = []
    // A read changes nothing: each node in turn gets an equal share of the time left.
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as string
      const left = deadline - performance.now()
      if (left <= 0) break
      const r = await readList(node, Math.max(1, left / (nodes.length - i)), token)
      if (r.type === "ok") {
        process.stdout.write(`${JSON.stringify(tail === undefined ? r.value : r.value.slice(-tail))}\n`)
        return 0
      }
      if (r.status === 401) throw new Usage(`${node}: ${r.message}`)
      why.push(`${node}: ${r.message}`)
    }
    process.stderr.write(`paxos list: no node answered: ${why.join("; ") || "out of time"}\n`)
    return 1
  })
}
