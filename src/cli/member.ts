/**
 * `paxos member`: the members of a running cluster (docs/MEMBERSHIP.md, "Interface").
 *
 *   paxos member list    [--config F] [-o table|json]
 *   paxos member add     ADDR [--config F] [-o table|json]
 *   paxos member remove  ADDR [--config F] [-o table|json]
 *   paxos member promote ADDR [--config F] [--force] [-o table|json]
 *
 * Through any member the config file lists, in turn and round after round within one deadline
 * (src/client/deadline.ts); a change goes through the log and is answered once applied. A retry
 * at another node is safe: the log refuses a change made twice (an address added twice, a member
 * removed twice), so a change is never applied twice.
 *
 * Exit codes, as the client's: 0 done; 1 definitely not done (refused, 409, or every node said no);
 * 2 usage or bad input (also a 400 or 401 from a node); 3 unknown: an attempt may have done it
 * (no answer in time, a 504, whatever the other nodes said after it).
 */
import { describe, describeTried, tryWithin } from "../client/deadline.ts"
import { getJson, postJson, type Outcome } from "../client/http.ts"
import { ConfigError, parseAddress, readConfig } from "../server/cluster-config.ts"
import type { MembersView, MemberView } from "../server/members-api.ts"
import { parseFlags, positiveInt, shortUsage, str, tokenOf } from "./args.ts"

export const MEMBER_USAGE = `usage: paxos member list [--config F] [-o table|json]
       paxos member add ADDR [--config F] [-o table|json]
       paxos member remove ADDR [--config F] [-o table|json]
       paxos member promote ADDR [--config F] [--force] [-o table|json]

Lists or changes the members of a running cluster, through any member that F lists.
  list      one line per member: its address, voter or learner, and which leads
  add       adds ADDR as a learner; then start it with paxos server --config F --node ADDR --join:
            it catches up, and the leader makes it a voter
  remove    removes ADDR (a voter or a learner; the leader too: it hands over first)
  promote   makes the learner ADDR a voter now, once it has caught up (within 64 slots of the
            commit point), or at once with --force

options:
  --config F       the cluster's config file: whom to ask (default: example-config)
  --force          promote: do not check that the learner caught up
  --timeout MS     one deadline for the whole command, shared by the nodes tried (default: 10000)
  --token-file T   the nodes' client token (default: $PAXOS_CLIENT_TOKEN_FILE, else none)
  -o, --output FMT table or json (default: table)

exit codes:
  0  done
  1  definitely not done: refused (the message says why), or every node said no
  2  usage or bad input
  3  unknown: an attempt may have done it`

export const MEMBER_FLAGS = { config: "value", force: "bool", timeout: "value", "token-file": "value", output: "value" } as const

const DEFAULT_CONFIG = "example-config"
const DEFAULT_TIMEOUT_MS = 10_000
const ACTIONS = ["list", "add", "remove", "promote"] as const
type Action = (typeof ACTIONS)[number]

class Usage extends Error {}

/** `paxos member ...`; returns the exit code. */
export async function memberCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv)
  } catch (e) {
    if (e instanceof Usage || e instanceof ConfigError) {
      process.stderr.write(`paxos member: ${e.message}\n${e instanceof Usage ? `${shortUsage(MEMBER_USAGE)}\n` : ""}`)
      return 2
    }
    process.stderr.write(`paxos member: unexpected error: ${e instanceof Error ? e.message : String(e)}; the change may or may not have been made\n`)
    return 3
  }
}

async function run(argv: string[]): Promise<number> {
  const p = parseFlags(argv.map((a) => (a === "-o" ? "--output" : a)), MEMBER_FLAGS)
  if (typeof p === "string") throw new Usage(p)
  const [action, target, ...extra] = p.positionals
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new Usage(action === undefined ? "missing what to do: list, add, remove or promote" : `unknown action '${action}' (list, add, remove or promote)`)
  }
  if (extra.length > 0) throw new Usage(`unexpected argument '${extra[0]}'`)
  const output = str(p, "output") ?? "table"
  if (output !== "table" && output !== "json") throw new Usage(`-o must be table or json, got '${output}'`)
  const timeout = positiveInt(p, "timeout")
  if (typeof timeout === "string") throw new Usage(timeout)
  if (p.flags.force === true && action !== "promote") throw new Usage("--force is for promote only")
  const token = tokenOf(p)
  if (token instanceof Error) throw new Usage(token.message)
  const config = str(p, "config") ?? DEFAULT_CONFIG
  const nodes = readConfig(config).nodes.map((n) => n.name)
  const o = { nodes, timeoutMs: timeout ?? DEFAULT_TIMEOUT_MS, token, json: output === "json", config }
  if (action === "list") {
    if (target !== undefined) throw new Usage(`list takes no address, got '${target}'`)
    return list(o)
  }
  if (target === undefined) throw new Usage(`${action} needs the node's address, HOST:PORT`)
  const address = parseAddress(target)
  if (typeof address === "string") throw new Usage(`${target}: ${address}`)
  return change(action as Exclude<Action, "list">, address.name, p.flags.force === true, o)
}

interface Run {
  readonly nodes: readonly string[]
  readonly timeoutMs: number
  readonly token: string | undefined
  readonly json: boolean
  readonly config: string
}

/** One line per member: address, voter or learner, which leads; a change pending is said on stderr. */
async function list(o: Run): Promise<number> {
  const deadline = performance.now() + o.timeoutMs
  const get = (node: string, timeoutMs: number) => getJson(node, "/members", { timeoutMs, token: o.token }) as Promise<Outcome<MembersView>>
  const r = await tryWithin(o.nodes, get, { timeoutMs: o.timeoutMs })
  if (r.type !== "ok") return failed("list", r, "read")
  let view = r.value
  // The leader's view is the newest: asked once more when another node answered.
  const leader = view.leader
  const left = deadline - performance.now()
  if (leader !== null && leader !== r.node && left > 100) {
    const again = await get(leader, Math.min(left, 2_000))
    if (again.type === "ok") view = again.value
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`)
    return 0
  }
  process.stdout.write(`${table(view.members)}\n`)
  if (view.pending !== null) {
    process.stderr.write(`paxos member: a change is decided and comes into force at slot ${view.pending.from}; the members will then be: ${view.pending.members.map(describeMember).join(", ")}\n`)
  }
  return 0
}

/** The members as aligned lines: address, voter or learner (and whether it joined), leader. */
function table(members: readonly MemberView[]): string {
  const width = Math.max(...members.map((m) => m.address.length))
  return members
    .map((m) => [m.address.padEnd(width), (m.voter ? "voter" : "learner").padEnd(7), m.leader ? "leader" : m.joined ? "" : "(not joined yet)"].join("  ").trimEnd())
    .join("\n")
}

const describeMember = (m: MemberView): string => `${m.address} (${m.voter ? "voter" : m.joined ? "learner" : "learner, not joined yet"})`

/** add, remove, promote ADDR: through the first node that can, within the deadline. */
async function change(action: Exclude<Action, "list">, address: string, force: boolean, o: Run): Promise<number> {
  const body = action === "promote" && force ? { address, force: true } : { address }
  const post = (node: string, timeoutMs: number) => postJson(node, `/members/${action}`, body, { timeoutMs, token: o.token }) as Promise<Outcome<MembersView>>
  // A 409 is the log's (or the node's) definite refusal: no other node answers otherwise.
  const r = await tryWithin(o.nodes, post, { timeoutMs: o.timeoutMs, final: [409] })
  if (r.type !== "ok") return failed(action, r, action === "add" ? "added" : action === "remove" ? "removed" : "promoted")
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r.value, null, 2)}\n`)
    return 0
  }
  const newest = r.value.pending?.members ?? r.value.members
  const m = newest.find((x) => x.address === address)
  const from = r.value.pending === null ? "" : `, in force from slot ${r.value.pending.from}`
  const line =
    action === "add"
      ? `added ${address} as member ${m?.id ?? "?"}, a learner${from}; start it with: paxos server --config ${o.config} --node ${address} --join (it catches up, then the leader makes it a voter)`
      : action === "remove"
        ? `removed ${address}${from}; the members: ${newest.map(describeMember).join(", ")}`
        : `promoted ${address} (member ${m?.id ?? "?"}) to voter${from}`
  process.stdout.write(`${line}\n`)
  return 0
}

/** The error line and exit code of a command that did not succeed. */
function failed(action: string, r: Exclude<Awaited<ReturnType<typeof tryWithin>>, { type: "ok" }>, done: string): number {
  if (r.type === "fail" && r.badInput) {
    process.stderr.write(`paxos member ${action}: ${r.node} refused the request: ${describe(r.last)}\n`)
    return 2
  }
  if (r.type === "info") {
    process.stderr.write(`paxos member ${action}: outcome unknown: it may or may not have been ${done}: ${describeTried(r.tried)}\n`)
    return 3
  }
  if (r.stopped === 409) {
    process.stderr.write(`paxos member ${action}: refused: ${r.last.message}\n`)
    return 1
  }
  process.stderr.write(`paxos member ${action}: not ${done}: ${describeTried(r.tried)}\n`)
  return 1
}
