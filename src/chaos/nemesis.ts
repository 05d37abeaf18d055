/**
 * The nemesis of a chaos run: every `interval` a fault chosen with the run's seed, undone after a
 * random part of the interval, before the next one begins.
 *
 *   partition  random-halves | isolate-leader | majorities-ring | bridge
 *              (iptables INPUT DROP inside the namespaces, netns.ts; healed with `iptables -F`),
 *              among the hosts whose node runs
 *   kill       one | leader | majority | all       (SIGKILL, restarted when the fault ends);
 *              a majority is of the members, all is every node that runs
 *   pause      one | leader                        (SIGSTOP, SIGCONT when the fault ends)
 *
 * Changes of membership (`member`) run on their own schedule, members.ts. A host that is no
 * member is never restarted: the `:start` op names it `:not-a-member`.
 *
 * The leader is what the nodes' /status say (cluster.ts). A fault counts as applied only when it
 * took effect: a partition once `partition()` has confirmed every rule, a kill or pause once some
 * running node got the signal. Each fault writes Jepsen-style nemesis ops to the history
 * (`:process :nemesis`, `:type :info`, `:f :start-partition`/`:stop-partition`, `:kill`/`:start`,
 * `:pause`/`:resume`).
 */
import type { Random } from "../core/prng.ts"
import { NODE_PORT, type Cluster } from "./cluster.ts"
import { bridge, heal, hostAddress, isolateOne, majoritiesRing, partition, randomHalves, shuffle, type Grudge, type Host } from "./netns.ts"
import { kw, type Recorder } from "./recorder.ts"
import { EdnMap, type EdnValue } from "../check/edn.ts"

export const FAULT_KINDS = ["partition", "kill", "pause"] as const
export type FaultKind = (typeof FAULT_KINDS)[number]
/** What --nemesis may name: the faults, and changes of membership (members.ts). */
export const NEMESIS_KINDS = [...FAULT_KINDS, "member"] as const
export type NemesisKind = (typeof NEMESIS_KINDS)[number]

export const VARIANTS: Record<FaultKind, readonly string[]> = {
  partition: ["random-halves", "isolate-leader", "majorities-ring", "bridge"],
  kill: ["one", "leader", "majority", "all"],
  pause: ["one", "leader"],
}

/** One fault the nemesis tried. Times are nanoseconds since the run began. */
export interface FaultRecord {
  readonly kind: FaultKind
  readonly variant: string
  /** The nodes it acted on (for a partition: every node that drops some other). */
  targets: string[]
  readonly start: number
  /** When it took effect (set once applied). */
  appliedAt?: number
  /** When it was undone (null while active). */
  end: number | null
  applied: boolean
  /** Why it did not apply, or what went wrong undoing it. */
  note?: string
  /** A partition's grudge: node -> nodes it does not hear. */
  grudge?: Record<string, string[]>
}

export interface NemesisOptions {
  readonly kinds: readonly FaultKind[]
  readonly intervalMs: number
  readonly rng: Random
  readonly cluster: Cluster
  readonly recorder: Recorder
  /** Namespace of each node, in config order (netns mode); empty in loopback mode. */
  readonly hosts: readonly Host[]
  /** The nemesis stops starting faults once this returns true. */
  readonly stopped: () => boolean
  /** A line of progress for the operator. */
  readonly say: (line: string) => void
}

interface Active {
  readonly rec: FaultRecord
  readonly undo: () => Promise<void>
}

export class Nemesis {
  readonly faults: FaultRecord[] = []
  private active: Active | null = null
  private undoing: Promise<void> | null = null

  constructor(private readonly o: NemesisOptions) {}

  /** Runs faults until stopped; the last one is undone before it returns. */
  async run(): Promise<void> {
    const o = this.o
    if (o.kinds.length === 0) return
    // A first quiet stretch, so the history starts with a healthy cluster.
    await this.sleep(o.intervalMs * (0.5 + 0.5 * o.rng.float()))
    while (!o.stopped()) {
      const began = Date.now()
      const kind = o.rng.pick(o.kinds)
      const variant = o.rng.pick(VARIANTS[kind])
      await this.apply(kind, variant)
      await this.sleep(o.intervalMs * (0.3 + 0.5 * o.rng.float()))
      await this.undo()
      await this.sleep(o.intervalMs - (Date.now() - began))
    }
    await this.undo()
  }

  /** Undoes the active fault, if any (safe to call at any time, and more than once). */
  async undo(): Promise<void> {
    if (this.undoing !== null) return this.undoing
    const a = this.active
    if (a === null) return
    this.undoing = (async () => {
      try {
        await a.undo()
      } catch (e) {
        a.rec.note = `${a.rec.note ?? ""}${a.rec.note !== undefined ? "; " : ""}undo failed: ${e instanceof Error ? e.message : String(e)}`
      }
      a.rec.end = this.o.recorder.now()
      this.active = null
      this.undoing = null
    })()
    return this.undoing
  }

  /** Counts of applied faults by kind and by kind/variant. */
  applied(): { byKind: Record<string, number>; byVariant: Record<string, number>; attempted: number; notApplied: number } {
    const byKind: Record<string, number> = {}
    const byVariant: Record<string, number> = {}
    for (const k of this.o.kinds) byKind[k] = 0
    let notApplied = 0
    for (const f of this.faults) {
      if (!f.applied) {
        notApplied++
        continue
      }
      byKind[f.kind] = (byKind[f.kind] ?? 0) + 1
      const key = `${f.kind}/${f.variant}`
      byVariant[key] = (byVariant[key] ?? 0) + 1
    }
    return { byKind, byVariant, attempted: this.faults.length, notApplied }
  }

  // -------------------------------------------------------------------------------------------

  private async apply(kind: FaultKind, variant: string): Promise<void> {
    const o = this.o
    const f = kind === "partition" ? "start-partition" : kind
    const start = o.recorder.nemesis(f, kw(variant))
    const rec: FaultRecord = { kind, variant, targets: [], start, end: null, applied: false }
    this.faults.push(rec)
    try {
      if (kind === "partition") await this.partition(rec)
      else if (kind === "kill") await this.kill(rec)
      else await this.pause(rec)
    } catch (e) {
      rec.note = `error: ${e instanceof Error ? e.message : String(e)}`
    }
    if (rec.applied) rec.appliedAt = o.recorder.now()
    if (!rec.applied) {
      o.recorder.nemesis(f, [kw("not-applied"), rec.note ?? "nothing to do"])
      rec.end = o.recorder.now()
      // A partition that was only partly installed must not linger.
      if (kind === "partition") await heal(o.hosts).catch(() => false)
      o.say(`nemesis: ${kind} ${variant} NOT applied (${rec.note ?? "nothing to do"})`)
      return
    }
    o.say(`nemesis: ${kind} ${variant} applied: ${describe(rec)}`)
  }

  private async leaderOrRandom(rec: FaultRecord, among: (i: number) => boolean): Promise<number | null> {
    const c = this.o.cluster
    const l = await c.leader()
    if (l !== null && among(l)) return l
    const candidates = range(c.size).filter(among)
    if (candidates.length === 0) return null
    rec.note = "leader unknown: picked a random node"
    return this.o.rng.pick(candidates)
  }

  private async partition(rec: FaultRecord): Promise<void> {
    const o = this.o
    const c = o.cluster
    // Among the hosts whose node runs (or all, when fewer than two do): a spare cut off changes nothing.
    const running = range(c.size).filter((i) => c.state(i) !== "down")
    const hosts = running.length >= 2 ? running.map((i) => o.hosts[i] as Host) : o.hosts
    const rnd = () => o.rng.float()
    let grudge: Grudge
    switch (rec.variant) {
      case "random-halves":
        grudge = randomHalves(hosts, rnd)
        break
      case "isolate-leader": {
        const l = await this.leaderOrRandom(rec, (i) => hosts.includes(o.hosts[i] as Host))
        grudge = isolateOne(hosts, l === null ? hosts[0] : o.hosts[l], rnd)
        break
      }
      case "majorities-ring":
        grudge = majoritiesRing(hosts, rnd)
        break
      default:
        grudge = bridge(shuffle(hosts, rnd))
        break
    }
    const byName: Record<string, string[]> = {}
    for (const [h, srcs] of grudge) if (srcs.length > 0) byName[nodeOfHost(h)] = srcs.map(nodeOfHost)
    rec.grudge = byName
    rec.targets = Object.keys(byName)
    const ok = await partition(grudge)
    if (!ok) {
      rec.note = "iptables rules not confirmed in every host"
      return
    }
    rec.applied = true
    o.recorder.nemesis("start-partition", grudgeEdn(byName))
    this.active = {
      rec,
      undo: async () => {
        o.recorder.nemesis("stop-partition", null)
        const healed = await heal(o.hosts)
        if (!healed) throw new Error("iptables -F not confirmed in every host")
        o.recorder.nemesis("stop-partition", kw("network-healed"))
      },
    }
  }

  private async kill(rec: FaultRecord): Promise<void> {
    const o = this.o
    const c = o.cluster
    const running = (i: number) => c.state(i) !== "down"
    let targets: number[]
    switch (rec.variant) {
      case "one": {
        const up = range(c.size).filter(running)
        targets = up.length === 0 ? [] : [o.rng.pick(up)]
        break
      }
      case "leader": {
        const l = await this.leaderOrRandom(rec, running)
        targets = l === null ? [] : [l]
        break
      }
      case "majority": {
        const members = c.members()
        targets = o.rng.shuffle(members).slice(0, Math.floor(members.length / 2) + 1)
        break
      }
      default:
        targets = range(c.size)
        break
    }
    const killed: number[] = []
    await Promise.all(
      targets.map(async (i) => {
        if (await c.kill(i)) killed.push(i)
      }),
    )
    killed.sort((a, b) => a - b)
    rec.targets = killed.map((i) => c.name(i))
    if (killed.length === 0) {
      rec.note = "no running node to kill"
      return
    }
    rec.applied = true
    o.recorder.nemesis("kill", nodeMap(rec.targets, "killed"))
    this.active = {
      rec,
      undo: async () => {
        o.recorder.nemesis("start", kw("all"))
        const started: Array<readonly [string, EdnValue]> = []
        for (const i of killed) {
          if (c.state(i) !== "down") continue
          started.push([c.name(i), kw(c.start(i) ? "started" : "not-a-member")])
        }
        o.recorder.nemesis("start", new EdnMap(started))
      },
    }
  }

  private async pause(rec: FaultRecord): Promise<void> {
    const o = this.o
    const c = o.cluster
    const up = (i: number) => c.state(i) === "up"
    let target: number | null
    if (rec.variant === "leader") target = await this.leaderOrRandom(rec, up)
    else {
      const ups = range(c.size).filter(up)
      target = ups.length === 0 ? null : o.rng.pick(ups)
    }
    if (target === null || !c.pause(target)) {
      rec.note = "no running node to pause"
      return
    }
    const t = target
    rec.targets = [c.name(t)]
    rec.applied = true
    o.recorder.nemesis("pause", nodeMap(rec.targets, "paused"))
    this.active = {
      rec,
      undo: async () => {
        o.recorder.nemesis("resume", kw("all"))
        const resumed = c.resume(t)
        o.recorder.nemesis("resume", nodeMap(resumed ? [c.name(t)] : [], "resumed"))
      },
    }
  }

  private sleep(ms: number): Promise<void> {
    return sleepUnless(ms, this.o.stopped)
  }
}

/** Sleeps up to ms, waking early once `stopped` returns true (checked every 100 ms). */
export async function sleepUnless(ms: number, stopped: () => boolean): Promise<void> {
  const until = Date.now() + Math.max(0, ms)
  while (!stopped()) {
    const left = until - Date.now()
    if (left <= 0) return
    await Bun.sleep(Math.min(left, 100))
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}

/** The node name (`10.77.0.11:5000`) of a host. */
function nodeOfHost(h: Host): string {
  return `${hostAddress(h)}:${NODE_PORT}`
}

function nodeMap(nodes: readonly string[], what: string): EdnValue {
  return new EdnMap(nodes.map((n) => [n, kw(what)] as const))
}

function grudgeEdn(g: Record<string, string[]>): EdnValue {
  return [kw("isolated"), new EdnMap(Object.entries(g).map(([k, v]) => [k, v] as const))]
}

export function describe(f: FaultRecord): string {
  if (f.kind === "partition" && f.grudge !== undefined) {
    return Object.entries(f.grudge)
      .map(([k, v]) => `${short(k)} drops ${v.map(short).join(",")}`)
      .join("; ")
  }
  return f.targets.map(short).join(", ") + (f.note !== undefined ? ` (${f.note})` : "")
}

/** `10.77.0.12:5000` -> `10.77.0.12`, `127.0.0.1:20001` kept. */
export function short(name: string): string {
  return name.endsWith(`:${NODE_PORT}`) ? name.slice(0, -`:${NODE_PORT}`.length) : name
}
