/**
 * The member nemesis of a chaos run: it grows and shrinks the cluster among the pool of hosts
 * (cluster.ts), as jepsen-io/etcd's member nemesis does and as the Jepsen test's does
 * (jepsen/src/jepsen/paxos/db.clj, `grow!` and `shrink!`), on its own schedule, so that changes
 * overlap the partitions, kills and pauses of the other nemesis (nemesis.ts).
 *
 * Every op first asks the hosts that run for GET /members and takes the newest configuration any
 * of them knows (the highest epoch; a pending change counts as made). Then, at random among the
 * ops that have a candidate:
 *
 *   grow    POST /members/add {"address"} at a member, for a host that is no member and does not
 *           run (its data dir is empty); once that answers 200, the host starts with an empty data
 *           dir and --join, catches up, and the leader makes it a voter on its own;
 *   shrink  POST /members/remove {"address"} at another member, for a member, never leaving fewer
 *           than 3 members or 3 voters; once that answers 200, its process is stopped and its data
 *           dir wiped (a removed identity never comes back; the host may be added again later, as a
 *           new member).
 *
 * An answer of 200 is `added`/`removed`; a definite error (409 from the log: another change in
 * flight, an address already a member...; 503; no connection) is `refused` and changes nothing; no
 * answer in time, or a 504, is `unknown`: the host's membership is then unknown to the harness
 * until a view newer than the one before the change settles it (`reconcile`). Until then an
 * unknown add leaves the host down with an empty data dir, and an unknown removal leaves its
 * process running as it was. Nothing is ever wiped unless the log said the identity is gone: a
 * 200 to a removal, or a newer view without the host.
 *
 * Each op is two nemesis events of the history, Jepsen-style (`:process :nemesis`, `:type :info`):
 * `{:f :grow, :value nil}` when it begins, and `{:f :grow, :value {:node "10.77.0.14:5000", :via
 * "10.77.0.11:5000", :result :added, :start :started}}` when it ends (`:result` one of `:added`,
 * `:removed`, `:refused`, `:unknown`, or why nothing was tried: `:no-node-to-add`,
 * `:too-few-members-to-shrink`, `:membership-unknown`); a refused or unknown change carries
 * `:error {:status 409, :error :Conflict, :message "..."}`.
 */
import { EdnMap, type EdnValue } from "../check/edn.ts"
import { getJson, postJson, type Failed } from "../client/http.ts"
import type { Random } from "../core/prng.ts"
import type { Cluster } from "./cluster.ts"
import { short, sleepUnless } from "./nemesis.ts"
import { keywordSafe, kw, type Recorder } from "./recorder.ts"

/** A shrink never leaves fewer members, nor fewer voters. */
export const MIN_MEMBERS = 3
/** The most members a cluster may have. */
export const MAX_MEMBERS = 9
/** How long one host may take to answer GET /members. */
const VIEW_TIMEOUT_MS = 1_000
/** How long a change may take before its outcome is unknown (a node's own deadline is 5 s). */
export const CHANGE_TIMEOUT_MS = 5_000
/** How long `settle` waits for a view without a pending change. */
const SETTLE_MS = 15_000

export interface MemberInfo {
  readonly address: string
  readonly voter: boolean
  /** Bound to a data dir (a learner that has not joined yet is not). */
  readonly joined: boolean
}

/** The newest configuration one host knows: the pending one if a change is on its way in. */
export interface View {
  readonly from: string
  readonly epoch: number
  readonly leader: string | null
  readonly members: readonly MemberInfo[]
}

/** The view in the body of GET /members, or null when the body is not of that shape. */
export function parseView(from: string, body: unknown): View | null {
  if (typeof body !== "object" || body === null) return null
  const b = body as { epoch?: unknown; leader?: unknown; members?: unknown; pending?: unknown }
  const members = (xs: unknown): MemberInfo[] | null => {
    if (!Array.isArray(xs)) return null
    const out: MemberInfo[] = []
    for (const m of xs as unknown[]) {
      const x = m as { address?: unknown; voter?: unknown; joined?: unknown } | null
      if (x === null || typeof x !== "object" || typeof x.address !== "string" || typeof x.voter !== "boolean") return null
      out.push({ address: x.address, voter: x.voter, joined: x.joined === true })
    }
    return out
  }
  if (typeof b.epoch !== "number") return null
  const leader = typeof b.leader === "string" ? b.leader : null
  const p = b.pending as { epoch?: unknown; members?: unknown } | null | undefined
  if (p !== null && p !== undefined && typeof p === "object") {
    const pm = members(p.members)
    if (typeof p.epoch !== "number" || pm === null) return null
    return { from, epoch: p.epoch, leader, members: pm }
  }
  const cm = members(b.members)
  return cm === null ? null : { from, epoch: b.epoch, leader, members: cm }
}

/** Of several views, the newest (highest epoch); null when there is none. */
export function newestView(views: ReadonlyArray<View | null>): View | null {
  let best: View | null = null
  for (const v of views) if (v !== null && (best === null || v.epoch > best.epoch)) best = v
  return best
}

/** The hosts of `pool` that may be added to the cluster of `view`: no members, while it has fewer than MAX_MEMBERS. */
export function addable(pool: readonly string[], view: View): string[] {
  if (view.members.length >= MAX_MEMBERS) return []
  const members = new Set(view.members.map((m) => m.address))
  return pool.filter((h) => !members.has(h))
}

/** The members of `view` that may be removed: any, while that leaves MIN_MEMBERS members and MIN_MEMBERS voters. */
export function removable(view: View): string[] {
  if (view.members.length <= MIN_MEMBERS) return []
  const voters = view.members.filter((m) => m.voter).length
  return view.members.filter((m) => !m.voter || voters > MIN_MEMBERS).map((m) => m.address)
}

export type ChangeOp = "grow" | "shrink"
export type ChangeResult = "added" | "removed" | "refused" | "unknown" | "no-node-to-add" | "too-few-members-to-shrink" | "membership-unknown"

/** Results of an op that asked the cluster for a change. */
export const ATTEMPTED: readonly ChangeResult[] = ["added", "removed", "refused", "unknown"]

/** One op of the member nemesis. Times are nanoseconds since the run began. */
export interface ChangeRecord {
  readonly op: ChangeOp
  readonly node: string | null
  readonly via: string | null
  readonly result: ChangeResult
  /** When the change was asked for, and when its answer came. */
  readonly start: number
  readonly end: number
  /** Why it was refused, or why its outcome is unknown. */
  readonly error?: { readonly status: number | null; readonly error: string; readonly message: string }
  /** A grow: whether the host's node was started (with --join). */
  readonly started?: boolean
  /** A grow: when a view first showed the added node as a voter (null: never seen). */
  voterAt?: number | null
}

export interface MemberNemesisOptions {
  readonly cluster: Cluster
  readonly recorder: Recorder
  readonly rng: Random
  /** The mean time between two ops. */
  readonly intervalMs: number
  /** No op begins once this returns true. */
  readonly stopped: () => boolean
  readonly say: (line: string) => void
}

export class MemberNemesis {
  readonly changes: ChangeRecord[] = []
  /** Hosts whose membership is unknown: the epoch of the view before the change. */
  private readonly unknownSince = new Map<number, number>()

  constructor(private readonly o: MemberNemesisOptions) {}

  /** Runs ops until stopped; an op under way is finished first. */
  async run(): Promise<void> {
    const o = this.o
    await this.sleep(o.intervalMs * (0.5 + 0.5 * o.rng.float()))
    while (!o.stopped()) {
      await this.step()
      await this.sleep(o.intervalMs * (0.5 + o.rng.float()))
    }
  }

  /**
   * After healing: the newest view once every member it lists that runs reports it and no change
   * is pending (or whatever it is after SETTLE_MS: a node that just restarted reports what its
   * own log says until it has caught up), with every host it shows a member started (a member
   * whose add had no answer has not run yet). null when no host answers.
   */
  async settle(): Promise<View | null> {
    const deadline = Date.now() + SETTLE_MS
    let asked: Awaited<ReturnType<MemberNemesis["ask"]>>
    for (;;) {
      asked = await this.ask()
      if (asked.view !== null) await this.reconcile(asked.view)
      if (asked.settled || Date.now() >= deadline) break
      await Bun.sleep(300)
    }
    // A removal whose outcome stayed unknown: an exit of its node meanwhile counts as a crash.
    for (const i of this.unknownSince.keys()) this.o.cluster.leaving(i, false, false)
    return asked.view
  }

  /** One op: a view, then a grow or a shrink (see the top of this file). */
  async step(): Promise<void> {
    const o = this.o
    const c = o.cluster
    const { view, answered } = await this.ask()
    if (view === null) {
      this.record(o.rng.chance(0.5) ? "grow" : "shrink", null, null, "membership-unknown", o.recorder.now())
      return
    }
    await this.reconcile(view)
    const names = c.specs.map((s) => s.name)
    // Hosts that do not run and hold no data: spares, removed ones, and unknown adds.
    const grow = addable(names, view).filter((n) => {
      const i = c.indexOf(n)
      return c.membership(i) !== "yes" && c.state(i) === "down" && !c.hasData(i)
    })
    const shrink = removable(view).filter((n) => c.indexOf(n) >= 0 && c.membership(c.indexOf(n)) === "yes")
    const op: ChangeOp = grow.length > 0 && shrink.length > 0 ? (o.rng.chance(0.5) ? "grow" : "shrink") : grow.length > 0 ? "grow" : shrink.length > 0 ? "shrink" : o.rng.chance(0.5) ? "grow" : "shrink"
    const candidates = op === "grow" ? grow : shrink
    if (candidates.length === 0) {
      this.record(op, null, null, op === "grow" ? "no-node-to-add" : "too-few-members-to-shrink", o.recorder.now(), { members: view.members.map((m) => m.address) })
      return
    }
    const node = o.rng.pick(candidates)
    const via = this.via(view, node, answered)
    if (op === "grow") await this.grow(c.indexOf(node), via, view)
    else await this.shrink(c.indexOf(node), via, view)
  }

  /**
   * A member to ask, other than `node`: a voter that just answered GET /members, if any, else any
   * member that did, else any member.
   */
  private via(view: View, node: string, answered: ReadonlySet<string>): string {
    const others = view.members.filter((m) => m.address !== node)
    const up = others.filter((m) => answered.has(m.address))
    const voters = up.filter((m) => m.voter)
    const from = voters.length > 0 ? voters : up.length > 0 ? up : others
    return from.length > 0 ? this.o.rng.pick(from).address : view.from
  }

  private async grow(i: number, via: string, view: View): Promise<void> {
    const o = this.o
    const c = o.cluster
    const node = c.name(i)
    const start = o.recorder.nemesis("grow", null)
    const r = await postJson(via, "/members/add", { address: node }, { timeoutMs: CHANGE_TIMEOUT_MS })
    if (r.type === "ok") {
      // The log added the address, so no identity of it is a member any more: its data dir,
      // empty already, starts afresh.
      c.setMembership(i, "yes")
      this.unknownSince.delete(i)
      c.joins(i)
      c.wipe(i)
      const started = c.start(i)
      this.record("grow", node, via, "added", start, { started })
      return
    }
    if (r.type === "info") {
      c.setMembership(i, "unknown")
      if (!this.unknownSince.has(i)) this.unknownSince.set(i, view.epoch)
    }
    this.record("grow", node, via, r.type === "fail" ? "refused" : "unknown", start, { error: r })
  }

  private async shrink(i: number, via: string, view: View): Promise<void> {
    const o = this.o
    const c = o.cluster
    const node = c.name(i)
    const start = o.recorder.nemesis("shrink", null)
    c.leaving(i, true)
    const r = await postJson(via, "/members/remove", { address: node }, { timeoutMs: CHANGE_TIMEOUT_MS })
    if (r.type === "ok") {
      await this.retire(i)
      this.record("shrink", node, via, "removed", start)
      return
    }
    if (r.type === "info") {
      // Whether it left is settled by a newer view; until then its process runs as it did.
      c.setMembership(i, "unknown")
      this.unknownSince.set(i, view.epoch)
    } else c.leaving(i, false, false)
    this.record("shrink", node, via, r.type === "fail" ? "refused" : "unknown", start, { error: r })
  }

  /** Host i is no member any more: stop its process and wipe its data dir; it may be added again later. */
  private async retire(i: number): Promise<void> {
    const c = this.o.cluster
    c.setMembership(i, "no")
    this.unknownSince.delete(i)
    await c.kill(i)
    c.wipe(i)
    c.joins(i)
    c.leaving(i, false, true)
  }

  /**
   * Settles what a view newer than the one before an unknown change says: an unknown add that
   * it shows a member is started (with --join); an unknown removal that it no longer shows is
   * retired. A view no newer than that says nothing (a lagging host's). Also notes when an added
   * node is first seen a voter.
   */
  async reconcile(view: View): Promise<void> {
    const o = this.o
    const c = o.cluster
    const listed = new Set(view.members.map((m) => m.address))
    for (const [i, since] of [...this.unknownSince]) {
      if (view.epoch <= since || c.membership(i) !== "unknown") continue
      const name = c.name(i)
      if (c.hasData(i)) {
        if (!listed.has(name)) {
          o.say(`members: ${name} is no member at epoch ${view.epoch}: its removal happened; stopping it and wiping its data`)
          await this.retire(i)
        }
      } else if (listed.has(name)) {
        o.say(`members: ${name} is a member at epoch ${view.epoch}: its add happened; starting it with --join`)
        c.setMembership(i, "yes")
        this.unknownSince.delete(i)
        c.joins(i)
        c.start(i)
      }
    }
    const voters = new Set(view.members.filter((m) => m.voter).map((m) => m.address))
    for (const ch of this.changes) {
      if (ch.result === "added" && ch.voterAt === null && ch.node !== null && voters.has(ch.node)) ch.voterAt = o.recorder.now()
    }
  }

  /**
   * GET /members at every host whose process runs (and is not paused): the newest view (null when
   * none answers), the hosts that answered, and whether it is settled: no change on its way in,
   * and every member it lists whose process runs reports that same view.
   */
  async ask(): Promise<{ view: View | null; answered: ReadonlySet<string>; settled: boolean }> {
    const c = this.o.cluster
    const up = c.specs.filter((s) => c.state(s.id) === "up").map((s) => s.name)
    const answers = await Promise.all(
      up.map(async (n) => {
        const r = await getJson(n, "/members", { timeoutMs: VIEW_TIMEOUT_MS })
        if (r.type !== "ok") return { node: n, view: null, pending: false }
        return { node: n, view: parseView(n, r.value), pending: (r.value as { pending?: unknown } | null)?.pending != null }
      })
    )
    const view = newestView(answers.map((a) => a.view))
    const answered = new Set(answers.filter((a) => a.view !== null).map((a) => a.node))
    if (view === null) return { view, answered, settled: false }
    const listed = new Set(view.members.map((m) => m.address))
    const settled = answers.every((a) => !listed.has(a.node) || (a.view?.epoch === view.epoch && !a.pending))
    return { view, answered, settled }
  }

  private record(
    op: ChangeOp,
    node: string | null,
    via: string | null,
    result: ChangeResult,
    start: number,
    more: { started?: boolean; error?: Failed; members?: string[] } = {}
  ): void {
    const o = this.o
    if (node === null) o.recorder.nemesis(op, null)
    const error = more.error === undefined ? undefined : { status: more.error.status, error: more.error.error, message: more.error.message.slice(0, 500) }
    const value: Array<readonly [EdnValue, EdnValue]> = []
    if (node !== null) value.push([kw("node"), node])
    if (via !== null) value.push([kw("via"), via])
    value.push([kw("result"), kw(result)])
    if (more.started !== undefined) value.push([kw("start"), kw(more.started ? "started" : "not-started")])
    if (more.members !== undefined) value.push([kw("members"), more.members])
    const extra: Array<readonly [string, EdnValue]> =
      error === undefined ? [] : [["error", new EdnMap([[kw("status"), error.status], [kw("error"), kw(keywordSafe(error.error))], [kw("message"), error.message]])]]
    const end = o.recorder.nemesis(op, new EdnMap(value), extra)
    const rec: ChangeRecord = {
      op,
      node,
      via,
      result,
      start,
      end,
      ...(error !== undefined ? { error } : {}),
      ...(more.started !== undefined ? { started: more.started } : {}),
      ...(result === "added" ? { voterAt: null } : {}),
    }
    this.changes.push(rec)
    const what = node === null ? "" : ` ${short(node)}${via !== null ? ` via ${short(via)}` : ""}`
    o.say(`members: ${op}${what}: ${result}${error !== undefined ? ` (${error.status ?? error.error}: ${error.message.slice(0, 160)})` : ""}`)
  }

  private sleep(ms: number): Promise<void> {
    return sleepUnless(ms, this.o.stopped)
  }
}
