/**
 * Membership rules, as a pure module (docs/MEMBERSHIP.md): configurations, the alpha window that
 * says which configuration governs a slot, the check every replica applies to a change, and
 * quorums. It changes no live state: each function takes what it is given and returns a new value
 * or the reason it refuses, and `checkConfig` holds on everything it accepts and returns.
 *
 * A change decided in slot s governs the slots from s + ALPHA on. A leader proposes slot t only
 * once it applied every slot up to t - ALPHA, so the configuration of any slot it proposes depends
 * on decided values only, and every leader computes the same one.
 */
import { invariant } from "./invariant.ts"

/** Slots between the decision of a change and the first slot it governs. */
export const ALPHA = 64
/** Members of one configuration, voters and learners together, at most. */
export const MEMBERS_MAX = 9
/** Length of a member's address (`host:port`), at most. */
export const ADDRESS_LENGTH_MAX = 255
/** An incarnation: 16 lowercase hex digits (64 random bits). */
export const INCARNATION_PATTERN = /^[0-9a-f]{16}$/

export interface Member {
  /** The member's number in ballots and messages; never reused within a cluster. */
  readonly id: number
  readonly address: string
  /** The data directory that may speak for this id; null for a learner that has not joined yet. */
  readonly incarnation: string | null
  readonly voter: boolean
}

export interface Config {
  /** Changes of members applied so far (0 for the initial configuration; a Bind is not one). */
  readonly epoch: number
  /** Sorted by id. */
  readonly members: readonly Member[]
  /** The id the next added member gets. */
  readonly nextId: number
}

export type Change =
  | { readonly _tag: "Add"; readonly address: string }
  | { readonly _tag: "Promote"; readonly id: number }
  | { readonly _tag: "Remove"; readonly id: number }
  /** The voter `remove` leaves and the learner `promote` becomes a voter, in one change: the voters stay as many. */
  | { readonly _tag: "Replace"; readonly remove: number; readonly promote: number }
  | { readonly _tag: "Bind"; readonly id: number; readonly incarnation: string }

/**
 * What a replica knows of membership after applying some slot: the configuration in force, and
 * a change decided but not yet in force (it governs the slots from `next.from` on).
 */
export interface Membership {
  readonly current: Config
  readonly next: { readonly config: Config; readonly from: number } | null
}

/** Why a change is refused; every replica refuses it alike, and nothing changes. */
export type Refusal =
  | { readonly _tag: "InFlight"; readonly until: number }
  | { readonly _tag: "Invalid"; readonly message: string }

// ---------------------------------------------------------------------------------------------
// Configurations

/** The voters' ids, ascending. */
export const voters = (c: Config): number[] => c.members.filter((m) => m.voter).map((m) => m.id)

export const memberById = (c: Config, id: number): Member | undefined => c.members.find((m) => m.id === id)
export const memberByAddress = (c: Config, address: string): Member | undefined => c.members.find((m) => m.address === address)

/** Votes needed among the voters of `c`. */
export const quorumSize = (c: Config): number => Math.floor(voters(c).length / 2) + 1

/** Whether `ids` (any, repeated or not) include a quorum of `c`'s voters; non-voters do not count. */
export function isQuorum(c: Config, ids: Iterable<number>): boolean {
  const v = voterSet(c)
  const seen = new Set<number>()
  for (const id of ids) if (v.has(id)) seen.add(id)
  return seen.size >= Math.floor(v.size / 2) + 1
}

/** Whether `ids`, which hold no id twice, include a quorum of `c`'s voters (no allocation: the leader counts every vote). */
export function isQuorumOfDistinct(c: Config, ids: readonly number[]): boolean {
  const v = voterSet(c)
  let n = 0
  for (const id of ids) if (v.has(id)) n++
  return n >= Math.floor(v.size / 2) + 1
}

/**
 * The configuration a cluster starts with: the config file's addresses, in order, as voters 0 to
 * n-1 bound to the incarnations given (every initial member binds them all before it votes).
 */
export function initialConfig(addresses: readonly string[], incarnations: readonly string[]): Config {
  invariant(addresses.length === incarnations.length, () => `initial config: ${addresses.length} addresses but ${incarnations.length} incarnations`)
  const c: Config = {
    epoch: 0,
    members: addresses.map((address, id) => ({ id, address, incarnation: incarnations[id] as string, voter: true })),
    nextId: addresses.length
  }
  checkConfig(c)
  return c
}

/** The invariants of a configuration; a violation stops the node (a defect, never a typed error). */
export function checkConfig(c: Config): void {
  const why = configProblem(c)
  invariant(why === null, () => `config: ${why}`)
}

/** What is wrong with a configuration (null: nothing): for input from a peer, refused without stopping the node. */
export function configProblem(c: Config): string | null {
  const addresses = new Set<string>()
  let lastId = -1
  let voterCount = 0
  for (const m of c.members) {
    if (!Number.isSafeInteger(m.id) || m.id < 0 || m.id >= c.nextId) return `member id ${m.id} outside [0, ${c.nextId})`
    if (m.id <= lastId) return `members not sorted by id, or id ${m.id} twice`
    lastId = m.id
    if (addresses.has(m.address)) return `address ${m.address} twice`
    addresses.add(m.address)
    if (m.incarnation !== null && !INCARNATION_PATTERN.test(m.incarnation)) return `member ${m.id} has a malformed incarnation`
    if (m.voter && m.incarnation === null) return `voter ${m.id} is bound to no incarnation`
    if (m.voter) voterCount++
  }
  if (c.members.length > MEMBERS_MAX) return `${c.members.length} members, at most ${MEMBERS_MAX}`
  if (voterCount === 0) return "no voter"
  if (!Number.isSafeInteger(c.epoch) || c.epoch < 0) return `epoch ${c.epoch}`
  if (!Number.isSafeInteger(c.nextId)) return `next id ${c.nextId}`
  return null
}

/**
 * The configuration of a cluster whose members are `n` nodes known by index only (the simulator,
 * tests). Their incarnations are derived from their ids: these identities were never minted.
 */
export function indexedConfig(n: number): Config {
  return initialConfig(
    Array.from({ length: n }, (_, i) => `node${i}`),
    Array.from({ length: n }, (_, i) => derivedIncarnation(i))
  )
}

/** The incarnation of an initial member whose data directory minted none. */
export const derivedIncarnation = (id: number): string => (id + 1).toString(16).padStart(16, "0")

const VOTERS = new WeakMap<Config, ReadonlySet<number>>()

/** The voters of `c` as a set (kept per configuration: the leader asks for every vote). */
export function voterSet(c: Config): ReadonlySet<number> {
  let v = VOTERS.get(c)
  if (v === undefined) {
    v = new Set(voters(c))
    VOTERS.set(c, v)
  }
  return v
}

/** Every member of the configuration in force and of the one pending, ascending. */
export function memberIds(m: Membership): number[] {
  const ids = new Set(m.current.members.map((x) => x.id))
  if (m.next !== null) for (const x of m.next.config.members) ids.add(x.id)
  return [...ids].sort((a, b) => a - b)
}

/** The newest configuration known: the pending one if a change is on its way in, else the one in force. */
export const latestConfig = (m: Membership): Config => m.next?.config ?? m.current

/** Whether `id` votes in the configuration in force or in the one pending. */
export const votesIn = (m: Membership, id: number): boolean => voterSet(m.current).has(id) || (m.next !== null && voterSet(m.next.config).has(id))

// ---------------------------------------------------------------------------------------------
// The alpha window

/** Membership before any change: the initial configuration governs every slot. */
export const startMembership = (initial: Config): Membership => ({ current: initial, next: null })

/**
 * The configuration that governs `slot`, for a replica that applied every slot up to `applied`.
 * Defined only for slots up to applied + ALPHA: beyond, it depends on slots not yet applied.
 */
export function configAt(m: Membership, applied: number, slot: number): Config {
  invariant(slot <= applied + ALPHA, () => `configAt(${slot}) after applying ${applied}: beyond the alpha window`)
  return m.next !== null && slot >= m.next.from ? m.next.config : m.current
}

/** The configurations that govern the slots from `from` to `to`, oldest first (one or two). */
export function configsBetween(m: Membership, applied: number, from: number, to: number): Config[] {
  const first = configAt(m, applied, from)
  const last = configAt(m, applied, Math.max(from, to))
  return first === last ? [first] : [first, last]
}

/** Membership as it stands at `slot`: a change whose first slot is reached is in force. */
export function settle(m: Membership, slot: number): Membership {
  return m.next !== null && slot >= m.next.from ? { current: m.next.config, next: null } : m
}

/**
 * Applies a change decided in `slot` (slots are applied in order). A change while another is in
 * flight, or an invalid one, is refused and changes nothing: every replica decides alike, from the
 * log. A Bind changes no quorum (it binds a learner), so it takes effect at once and is never in
 * flight; every other change governs the slots from slot + ALPHA on.
 */
export function applyChange(m: Membership, slot: number, change: Change): { readonly membership: Membership } | Refusal {
  const now = settle(m, slot)
  const base = latestConfig(now)
  const changed = changeConfig(base, change)
  if ("_tag" in changed) return changed
  checkConfig(changed)
  if (change._tag === "Bind") {
    // Binding a learner's incarnation: the learner in `next` is bound too, if a change is pending.
    if (now.next === null) return { membership: { current: changed, next: null } }
    const current = changeConfig(now.current, change)
    return { membership: { current: "_tag" in current ? now.current : current, next: { config: changed, from: now.next.from } } }
  }
  if (now.next !== null) return { _tag: "InFlight", until: now.next.from }
  return { membership: { current: now.current, next: { config: changed, from: slot + ALPHA } } }
}

/** The configuration after `change`, or why it is invalid. */
export function changeConfig(c: Config, change: Change): Config | Refusal {
  const invalid = (message: string): Refusal => ({ _tag: "Invalid", message })
  const epoch = c.epoch + 1
  switch (change._tag) {
    case "Add": {
      if (change.address.length === 0 || change.address.length > ADDRESS_LENGTH_MAX) return invalid(`address must have 1 to ${ADDRESS_LENGTH_MAX} characters`)
      const dup = memberByAddress(c, change.address)
      if (dup !== undefined) return invalid(`${change.address} is a member already (id ${dup.id}, ${dup.voter ? "voter" : "learner"})`)
      if (c.members.length >= MEMBERS_MAX) return invalid(`the cluster has ${c.members.length} members, at most ${MEMBERS_MAX}`)
      const added: Member = { id: c.nextId, address: change.address, incarnation: null, voter: false }
      return { epoch, members: [...c.members, added], nextId: c.nextId + 1 }
    }
    case "Promote": {
      const m = memberById(c, change.id)
      if (m === undefined) return invalid(`no member with id ${change.id}`)
      if (m.voter) return invalid(`${m.address} is a voter already`)
      if (m.incarnation === null) return invalid(`${m.address} has not joined yet: start it with --join first`)
      return { epoch, members: c.members.map((x) => (x.id === m.id ? { ...x, voter: true } : x)), nextId: c.nextId }
    }
    case "Remove": {
      const m = memberById(c, change.id)
      if (m === undefined) return invalid(`no member with id ${change.id}`)
      if (m.voter && voters(c).length === 1) return invalid(`${m.address} is the last voter: add and promote another first`)
      return { epoch, members: c.members.filter((x) => x.id !== m.id), nextId: c.nextId }
    }
    case "Replace": {
      const out = memberById(c, change.remove)
      const inn = memberById(c, change.promote)
      if (out === undefined) return invalid(`no member with id ${change.remove}`)
      if (!out.voter) return invalid(`${out.address} is not a voter: remove it instead`)
      if (inn === undefined) return invalid(`no member with id ${change.promote}`)
      if (inn.voter) return invalid(`${inn.address} is a voter already`)
      if (inn.incarnation === null) return invalid(`${inn.address} has not joined yet: start it with --join first`)
      return { epoch, members: c.members.filter((x) => x.id !== out.id).map((x) => (x.id === inn.id ? { ...x, voter: true } : x)), nextId: c.nextId }
    }
    case "Bind": {
      const m = memberById(c, change.id)
      if (m === undefined) return invalid(`no member with id ${change.id}`)
      if (!INCARNATION_PATTERN.test(change.incarnation)) return invalid("malformed incarnation")
      if (m.incarnation !== null) {
        return invalid(
          m.incarnation === change.incarnation
            ? `${m.address} has joined already`
            : `${m.address} is bound to another data directory (it lost its data, or another node took its address): remove it and add it again`
        )
      }
      // A binding is not a change of members: the epoch stays.
      return { epoch: c.epoch, members: c.members.map((x) => (x.id === m.id ? { ...x, incarnation: change.incarnation } : x)), nextId: c.nextId }
    }
  }
}
