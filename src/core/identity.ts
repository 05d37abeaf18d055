/**
 * The bootstrap of an initial member, as a pure decision (docs/MEMBERSHIP.md, "Bootstrap"): given
 * what the other initial members answered about themselves, bind the first configuration, wait for
 * more answers, or refuse to run at all.
 *
 * An initial member that starts on an empty data directory mints an incarnation, stores it, and
 * asks every initial member who it is. It binds the first configuration (every initial member's
 * incarnation) durably before its first promise or vote. Each member's incarnation is durable
 * before anyone is told of it, so every initial member binds the same incarnations, with one
 * exception that is safe: a member whose disk was wiped has a new incarnation, and it must never
 * vote as the member it was. If any answer binds this node's id to another incarnation (or no
 * longer counts it as a member), its identity voted before under another data directory, and it
 * refuses to run.
 *
 * The order of the rules matters: a refusal wins over everything, then a configuration some member
 * bound already (adopted as it is, when it binds this node to its own incarnation), and only then
 * a configuration made from every member's answer.
 *
 * A configuration made from answers needs two complete rounds of them, each asked anew, that
 * agree: every member unbound, under the same incarnation both times. One round is not enough,
 * because its answers are not taken at one instant: a member may answer unbound, then bind and
 * vote with another member that is wiped and restarted (a new incarnation) before it answers the
 * same round. Binding the new incarnation would let it vote as the member whose votes it forgot.
 * With a second round, begun after the first ended, a member that bound in between answers bound,
 * and its configuration is adopted instead; a vote of the old incarnation can count only together
 * with a member bound before the wipe, which the second round hears (test/core/identity.test.ts).
 */
import { configProblem, initialConfig, INCARNATION_PATTERN, memberById, type Config, type Membership } from "./membership.ts"

/** What an initial member says of itself (GET /peer/identity). */
export interface IdentityAnswer {
  /** Its cluster id. */
  readonly cluster: string
  /** Its member id. */
  readonly id: number
  readonly incarnation: string
  /** The configuration it was bound in; null while it waits to bind. */
  readonly initial: Config | null
  /** The membership it runs with now; null before it runs. */
  readonly membership: Membership | null
}

export interface BootstrapInput {
  /** The cluster id of the config file. */
  readonly cluster: string
  /** This node's member id: its index in `addresses`. */
  readonly self: number
  /** This node's incarnation. */
  readonly incarnation: string
  /** The config file's addresses: the initial members 0 to n-1, in order. */
  readonly addresses: readonly string[]
  /** What the members answered in this round, by the member id asked (this node's own is not needed). */
  readonly answers: ReadonlyMap<number, IdentityAnswer>
  /** What they answered in the round before, begun after it ended (null: none yet). */
  readonly previous: ReadonlyMap<number, IdentityAnswer> | null
}

export type BootstrapDecision =
  /** Bind `initial` durably, then run. `adoptedFrom`: the member whose bound configuration it is (null: made from every answer). */
  | { readonly _tag: "Bind"; readonly initial: Config; readonly adoptedFrom: number | null }
  /**
   * Ask again: `missing` are the members not heard from in this round (or whose answer is
   * unusable: `problems` says why); none missing, the answers await a second round that agrees.
   */
  | { readonly _tag: "Wait"; readonly missing: readonly number[]; readonly problems: readonly string[] }
  /** Never run under this identity: `reason` says why and what to do. */
  | { readonly _tag: "Refuse"; readonly reason: string }

/** What an initial member does with the answers it has (see the top of this file). */
export function decideBootstrap(input: BootstrapInput): BootstrapDecision {
  const { self, incarnation, addresses } = input
  const me = addresses[self]
  if (me === undefined) return { _tag: "Refuse", reason: `member id ${self} is not in the config file's ${addresses.length} nodes` }
  if (!INCARNATION_PATTERN.test(incarnation)) return { _tag: "Refuse", reason: "this node's incarnation is malformed" }
  const problems: string[] = []
  const usable = new Map<number, IdentityAnswer>()
  for (const [id, a] of input.answers) {
    if (id === self || id < 0 || id >= addresses.length) continue
    const why = answerProblem(input, id, a)
    if (why === null) usable.set(id, a)
    else problems.push(`${addresses[id]}: ${why}`)
  }
  for (const [id, a] of usable) {
    const why = refusal(self, incarnation, a)
    if (why !== null) return { _tag: "Refuse", reason: refuseMessage(me, self, `${addresses[id]} ${why.evidence}`, why.removed) }
  }
  for (const [id, a] of usable) {
    if (a.initial !== null && memberById(a.initial, self)?.incarnation === incarnation) return { _tag: "Bind", initial: a.initial, adoptedFrom: id }
  }
  const missing = addresses.map((_, id) => id).filter((id) => id !== self && !usable.has(id))
  if (missing.length > 0) return { _tag: "Wait", missing, problems }
  // Every member answered, none bound: binding them needs the round before to agree (see the top).
  const agreed = [...usable].every(([id, a]) => {
    const before = input.previous?.get(id)
    return a.initial === null && before !== undefined && before.initial === null && before.incarnation === a.incarnation && before.cluster === a.cluster && before.id === a.id
  })
  if (!agreed) return { _tag: "Wait", missing: [], problems }
  const incarnations = addresses.map((_, id) => (id === self ? incarnation : (usable.get(id) as IdentityAnswer).incarnation))
  return { _tag: "Bind", initial: initialConfig(addresses, incarnations), adoptedFrom: null }
}

/** The message of a refusal: what happened and what to do. */
export function refuseMessage(address: string, id: number, evidence: string, removed: boolean): string {
  const rejoin = `add it again (paxos member add ${address}) and start it with --join`
  return removed
    ? `member ${id} (${address}) was removed from the cluster (${evidence}); it must not vote again: ${rejoin}`
    : `this node's identity, member ${id} (${address}), voted before under another data directory (${evidence}); ` +
        `it must never vote again, or the votes it forgot could let the cluster choose two values for one slot. ` +
        `Remove it (paxos member remove ${address}), ${rejoin}`
}

/** Why an answer cannot be used (null: it can). */
function answerProblem(input: BootstrapInput, id: number, a: IdentityAnswer): string | null {
  if (a.cluster !== input.cluster) return `it belongs to cluster ${a.cluster}, this node to ${input.cluster} (their config files differ)`
  if (a.id !== id) return `it answers as member ${a.id}, not ${id} (another node took its address)`
  if (!INCARNATION_PATTERN.test(a.incarnation)) return "its incarnation is malformed"
  for (const c of configsOf(a)) {
    const why = configProblem(c)
    if (why !== null) return `its configuration is malformed: ${why}`
  }
  if (a.initial !== null) {
    const addresses = a.initial.members.filter((m) => m.id < input.addresses.length).map((m) => m.address)
    if (a.initial.epoch !== 0 || addresses.join("\n") !== input.addresses.join("\n")) return "it was bound in a first configuration of other addresses"
    if (memberById(a.initial, id)?.incarnation !== a.incarnation) return "it is bound under another incarnation than it says"
  }
  return null
}

/** Why an answer shows that `self` must not run under `incarnation` (null: it does not). */
function refusal(self: number, incarnation: string, a: IdentityAnswer): { readonly evidence: string; readonly removed: boolean } | null {
  for (const c of configsOf(a)) {
    const bound = memberById(c, self)?.incarnation
    if (bound !== undefined && bound !== null && bound !== incarnation) {
      return { evidence: `binds member ${self} to incarnation ${bound}, this data directory's is ${incarnation}`, removed: false }
    }
  }
  // A running member whose configurations lack this id: it was removed (and maybe replaced).
  const m = a.membership
  if (m !== null && [m.current, ...(m.next === null ? [] : [m.next.config])].every((c) => memberById(c, self) === undefined)) {
    return { evidence: `no longer counts member ${self} among its members`, removed: true }
  }
  return null
}

/** Every configuration an answer holds: the first one and those it runs with. */
function configsOf(a: IdentityAnswer): Config[] {
  const out: Config[] = []
  if (a.initial !== null) out.push(a.initial)
  if (a.membership !== null) out.push(a.membership.current, ...(a.membership.next === null ? [] : [a.membership.next.config]))
  return out
}
