/**
 * `paxos server --join` on a data dir that has not joined yet (docs/MEMBERSHIP.md, "Joining"): asks
 * the members the config file lists, in turn and round after round, to bind this data dir's
 * incarnation to the learner at this node's address (POST /members/join), until one answers.
 *
 * It never starts a cluster of its own: it ends with the cluster's answer (its id, this node's
 * member id, the membership that binds it), or with a reason to stop. A definite "no" (the address
 * is no learner of the cluster, or is bound to another data dir) ends it when every member that
 * answered in two rounds in a row said so; anything else (no answer, 503, 504) is tried again
 * until the deadline. Retries are safe: a member bound to the same incarnation answers as joined.
 */
import { Either, Schema as S } from "effect"
import { latestConfig, memberById, type Config } from "../core/membership.ts"
import { MembershipSchema, NodeIndex } from "../core/messages.ts"
import { postJson } from "../client/http.ts"
import type { NodeAddress } from "./cluster-config.ts"
import type { Log } from "./log.ts"

/** How long --join tries by default before it gives up. */
export const JOIN_TIMEOUT_MS = 30_000
/** One request may take this long at most (the member answers once the Bind is applied). */
const JOIN_REQUEST_MS = 6_000
/** Between two rounds over the members. */
const JOIN_ROUND_MS = 500
/** What it tried is logged at most this often. */
const JOIN_LOG_MS = 5_000

const decodeAnswer = S.decodeUnknownEither(S.Struct({ cluster: S.String.pipe(S.minLength(1), S.maxLength(128)), id: NodeIndex, membership: MembershipSchema }))

export interface JoinOptions {
  /** The members to ask: the config file's addresses. */
  readonly members: readonly NodeAddress[]
  /** This node's address. */
  readonly address: string
  readonly incarnation: string
  /** The client token the members ask for, if any. */
  readonly token: string | undefined
  readonly timeoutMs: number
  readonly log: Log
  /** Told whom it asks (for /status). */
  readonly asking: (names: readonly string[]) => void
}

export type JoinResult =
  | { readonly _tag: "Joined"; readonly cluster: string; readonly id: number; readonly initial: Config; readonly via: string }
  /** Stop: `message` says why and what to do; `code` is the exit status. */
  | { readonly _tag: "Failed"; readonly code: number; readonly message: string }

/** Asks the members to bind this node (see the top of this file). */
export async function joinCluster(o: JoinOptions): Promise<JoinResult> {
  const deadline = Date.now() + o.timeoutMs
  const names = o.members.map((m) => m.name).filter((n) => n !== o.address)
  if (names.length === 0) return { _tag: "Failed", code: 2, message: `the config file lists no member other than ${o.address} to join through` }
  o.asking(names)
  const last = new Map<string, string>()
  let loggedAt = 0
  let refusedRounds = 0
  for (;;) {
    const refusals: string[] = []
    let answered = 0
    for (const node of names) {
      const left = deadline - Date.now()
      if (left <= 0) break
      const r = await postJson(node, "/members/join", { address: o.address, incarnation: o.incarnation }, { timeoutMs: Math.min(left, JOIN_REQUEST_MS), token: o.token })
      if (r.type === "ok") {
        const joined = accepted(r.value, o)
        if (typeof joined !== "string") return { ...joined, via: node }
        last.set(node, joined)
        continue
      }
      const said = r.status === null ? r.message : `${r.status} ${r.message}`
      last.set(node, said)
      if (r.status !== null) answered += 1
      if (r.status === 401) return { _tag: "Failed", code: 2, message: `${node} refused the client token: ${r.message} (give the cluster's --client-token-file)` }
      if (r.status === 409 || r.status === 400) refusals.push(`${node}: ${r.message}`)
    }
    // Every member that answered said no, two rounds in a row (one that lagged behind the Add may
    // say it alone): the cluster does not want this node (yet).
    refusedRounds = answered > 0 && refusals.length === answered ? refusedRounds + 1 : 0
    if (refusedRounds >= 2) return { _tag: "Failed", code: 1, message: `${o.address} did not join: ${refusals.join("; ")}` }
    if (Date.now() >= deadline) {
      const said = [...last].map(([n, m]) => `${n}: ${m}`).join("; ")
      return {
        _tag: "Failed",
        code: 1,
        message: `no member of the cluster let ${o.address} join within ${o.timeoutMs / 1000} s (${said}); it started nothing, and never starts a cluster of its own. Is the cluster running, and does the config file list its members?`
      }
    }
    if (Date.now() - loggedAt >= JOIN_LOG_MS) {
      loggedAt = Date.now()
      o.log("join-waiting", { through: names.join(","), said: [...last].map(([n, m]) => `${n}: ${m}`).join("; ").slice(0, 500) })
    }
    await Bun.sleep(Math.min(JOIN_ROUND_MS, Math.max(0, deadline - Date.now())))
  }
}

/** A member's 200: the cluster, this node's id, the configuration that binds it; or why it cannot be used. */
function accepted(value: unknown, o: JoinOptions): Extract<JoinResult, { _tag: "Joined" }> | string {
  const a = decodeAnswer(value)
  if (Either.isLeft(a)) return "a malformed answer"
  const initial = newestOf(a.right.membership)
  const me = memberById(initial, a.right.id)
  if (me === undefined || me.address !== o.address || me.incarnation !== o.incarnation) return `an answer that does not bind ${o.address} to this data dir`
  return { _tag: "Joined", cluster: a.right.cluster, id: a.right.id, initial, via: "" }
}

const newestOf = latestConfig
