/**
 * `paxos chaos` / `bun run chaos`: fault injection on one machine.
 *
 * Makes a pool of test hosts (network namespaces paxos-h1..N, netns.ts; or, when this machine
 * cannot make hosts, distinct ports on 127.0.0.1 with process faults only: kill, pause) and starts
 * the compiled node binary, on port 5000, in the first M of them: the initial members. The
 * others are spares for the member nemesis. Concurrent clients append unique values and read
 * through the HTTP API of random hosts (clients.ts) while the nemesis partitions, kills and pauses
 * nodes (nemesis.ts) and, on its own schedule, the member nemesis grows and shrinks the cluster
 * (members.ts). At the time limit: heal everything, resume and restart every member, wait for the
 * ops in flight, read the final list from every member, stop the nodes and remove the hosts. The
 * history is then checked (src/check) and written with the results and the plot (report.ts).
 *
 * Output directory (`--out`, default runs/chaos-<timestamp>/): history.edn, results.json,
 * latency.svg, chaos.log (what was printed), config (the initial members), contacts (every host,
 * for --join), and n<i>/node.log, n<i>/data/ per host.
 *
 * Exit codes: 0 the history is linearizable, no node logged PAXOS-INVARIANT-VIOLATION or crashed
 * on its own, and every node answered a final read; 1 otherwise; 2 bad usage (or no binary);
 * 3 the run could not be carried out (hosts or nodes did not start); 130 interrupted (Ctrl-C:
 * the nodes are stopped, the network healed and the hosts removed first).
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { checkOps, type CheckResult } from "../check/checker.ts"
import { EdnMap } from "../check/edn.ts"
import { parseFlags, str } from "../cli/args.ts"
import { describeNotReady } from "../cli/ready.ts"
import { isCompiled } from "../cli/self.ts"
import { floatSource, Random } from "../core/prng.ts"
import { stderrProgress, type Progress } from "../progress.ts"
import { runClients, readOp, type Sample } from "./clients.ts"
import { Cluster, freePorts, withTimeout, type Mode } from "./cluster.ts"
import { MemberNemesis, type View } from "./members.ts"
import { Nemesis, NEMESIS_KINDS, type FaultKind, type NemesisKind } from "./nemesis.ts"
import { down, heal, hostsAvailable, up } from "./netns.ts"
import { ChaosProgress } from "./progress.ts"
import { kw, Recorder } from "./recorder.ts"
import { latencySvg, problems, resultsJson, summaryText, type FinalRead, type RunReport } from "./report.ts"

export const CHAOS_USAGE = `usage: paxos chaos [--time-limit S] [--concurrency N] [--rate OPS] [--nodes N] [--members M]
                   [--nemesis partition,kill,pause,member|none] [--interval S] [--seed N]
                   [--binary PATH] [--out DIR] [--timeout MS] [--read-ratio P] [--loopback] [--quiet]

  --time-limit S     seconds during which clients run (default 60)
  --concurrency N    client processes (default 10)
  --rate OPS         ops per second over all clients (default: closed loop, as fast as answered)
  --nodes N          hosts in the pool, 1 to 9 (default 5)
  --members M        initial members, the first M hosts (default: N; with the member nemesis
                     N - 2, at least 3: 5 hosts start 3 members and keep 2 spares)
  --nemesis LIST     faults: any of partition, kill, pause, member, comma-separated, or none
                     (default all four); member grows and shrinks the cluster among the hosts
                     (needs 4 hosts or more)
  --interval S       seconds between the starts of two faults, and on average between two
                     changes of membership (default 5)
  --seed N           drives the nemesis and the clients' choices (default: random, printed)
  --binary PATH      the node binary (default: this binary when compiled, else dist/paxos)
  --out DIR          output directory (default runs/chaos-<timestamp>/)
  --timeout MS       per-request timeout of the clients (default 2000)
  --read-ratio P     share of reads among the ops (default 0.25)
  --loopback         run the nodes on 127.0.0.1 even where network namespaces are available
  --quiet            no progress line (on stderr while the clients run)

Exit: 0 valid, 1 invalid (or a node crashed, or logged PAXOS-INVARIANT-VIOLATION), 2 usage,
3 the run could not be set up, 130 interrupted.`

export interface ChaosOptions {
  readonly timeLimitS: number
  readonly concurrency: number
  readonly rate: number | null
  readonly nodes: number
  /** Initial members; null: the default (see CHAOS_USAGE). */
  readonly members: number | null
  readonly nemesis: readonly NemesisKind[]
  readonly intervalS: number
  readonly seed: number
  readonly binary: string
  readonly out: string | null
  readonly timeoutMs: number
  readonly readRatio: number
  readonly loopback: boolean
  readonly quiet: boolean
}

/** Appends retried with the same (client, seq), in all. */
const APPEND_ATTEMPTS = 3
/** Hard bound on ops per run (the network rule: request loops bounded in count and time). */
const MAX_OPS = 1_000_000
/** Final reads of one node are retried for this long after the cluster was healed. */
const FINAL_READ_MS = 30_000
const STARTUP_MS = 20_000
/** Marker the faulty test build logs at start (faulty-main.ts). */
export const FAULTY_BUILD_MARKER = "PAXOS-FAULTY-BUILD"
const INVARIANT_MARKER = "PAXOS-INVARIANT-VIOLATION"

/** The flags of `paxos chaos`. */
export const CHAOS_FLAGS = {
    "time-limit": "value",
    concurrency: "value",
    rate: "value",
    nodes: "value",
    members: "value",
    nemesis: "value",
    interval: "value",
    seed: "value",
    binary: "value",
    out: "value",
    timeout: "value",
    "read-ratio": "value",
    loopback: "bool",
    quiet: "bool",
} as const

/** Parses the flags; a one-line reason when they are wrong. */
export function parseChaosArgs(argv: readonly string[]): ChaosOptions | string {
  const p = parseFlags(argv, CHAOS_FLAGS)
  if (typeof p === "string") return p
  if (p.positionals.length > 0) return `unexpected argument '${p.positionals[0]}'`
  const num = (name: string, dflt: number, lo: number, hi: number, integer: boolean): number | string => {
    const v = str(p, name)
    if (v === undefined) return dflt
    const x = Number(v)
    if (v.trim() === "" || !Number.isFinite(x) || (integer && !Number.isInteger(x)) || x < lo || x > hi) {
      return `--${name} needs ${integer ? "an integer" : "a number"} from ${lo} to ${hi}, got '${v}'`
    }
    return x
  }
  const timeLimitS = num("time-limit", 60, 0.1, 86_400, false)
  const concurrency = num("concurrency", 10, 1, 1000, true)
  const rate = str(p, "rate") === undefined ? null : num("rate", 0, 0.01, 100_000, false)
  const nodes = num("nodes", 5, 1, 9, true)
  const members = str(p, "members") === undefined ? null : num("members", 0, 1, 9, true)
  const intervalS = num("interval", 5, 0.2, 3600, false)
  const seed = num("seed", Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1, true)
  const timeoutMs = num("timeout", 2000, 10, 600_000, true)
  const readRatio = num("read-ratio", 0.25, 0, 1, false)
  for (const v of [timeLimitS, concurrency, rate, nodes, members, intervalS, seed, timeoutMs, readRatio]) if (typeof v === "string") return v
  if (members !== null && (members as number) > (nodes as number)) return `--members ${members} is more than the ${nodes} hosts of --nodes`
  const nemesisText = str(p, "nemesis") ?? NEMESIS_KINDS.join(",")
  let nemesis: NemesisKind[]
  if (nemesisText.trim() === "none") nemesis = []
  else {
    nemesis = []
    for (const part of nemesisText.split(",").map((s) => s.trim())) {
      if (!(NEMESIS_KINDS as readonly string[]).includes(part)) return `--nemesis takes partition, kill, pause, member (comma-separated) or none, got '${part}'`
      if (!nemesis.includes(part as NemesisKind)) nemesis.push(part as NemesisKind)
    }
  }
  return {
    timeLimitS: timeLimitS as number,
    concurrency: concurrency as number,
    rate: rate as number | null,
    nodes: nodes as number,
    members: members as number | null,
    nemesis,
    intervalS: intervalS as number,
    seed: seed as number,
    binary: str(p, "binary") ?? defaultBinary(),
    out: str(p, "out") ?? null,
    timeoutMs: timeoutMs as number,
    readRatio: readRatio as number,
    loopback: p.flags.loopback === true,
    quiet: p.flags.quiet === true,
  }
}

/** `paxos chaos ARGS`: runs one chaos run; resolves to the exit code. */
export async function chaosCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(CHAOS_USAGE + "\n")
    return 0
  }
  const o = parseChaosArgs(argv)
  if (typeof o === "string") {
    process.stderr.write(`paxos chaos: ${o}\n${CHAOS_USAGE}\n`)
    return 2
  }
  const binary = resolve(o.binary)
  try {
    accessSync(binary, constants.X_OK)
  } catch {
    process.stderr.write(`paxos chaos: node binary ${o.binary} not found or not executable (run \`bun run build\` first, or pass --binary PATH)\n`)
    return 2
  }
  return new ChaosRun(o, binary).execute()
}

class SetupError extends Error {}

class ChaosRun {
  private readonly rec = new Recorder()
  private readonly log: string[] = []
  private readonly notes: string[] = []
  private readonly out: string
  private mode: Mode = "loopback"
  private kinds: NemesisKind[]
  /** Initial members (chooseMode settles the default). */
  private members: number
  private cluster: Cluster | null = null
  private nemesis: Nemesis | null = null
  private memberNemesis: MemberNemesis | null = null
  private interrupted = false
  private hostsUp = false
  private cleaning: Promise<void> | null = null
  /** The progress line, while the clients run. */
  private progress: Progress | null = null
  /** Cleanup after a signal: the nodes stopped, the hosts removed, the partial history written. */
  private interruption: Promise<void> = Promise.resolve()
  private readonly startedAt = new Date()

  constructor(
    private readonly o: ChaosOptions,
    private readonly binary: string,
  ) {
    this.out = resolve(o.out ?? join("runs", `chaos-${stamp(this.startedAt)}`))
    this.kinds = [...o.nemesis]
    this.members = o.nodes
  }

  /** The fault kinds of the nemesis proper (nemesis.ts), without `member`. */
  private get faultKinds(): FaultKind[] {
    return this.kinds.filter((k): k is FaultKind => k !== "member")
  }

  private say(line: string): void {
    this.log.push(line)
    const write = () => void process.stdout.write(line + "\n")
    if (this.progress === null) write()
    else this.progress.above(write)
  }

  async execute(): Promise<number> {
    const o = this.o
    const t0 = Date.now()
    try {
      mkdirSync(this.out, { recursive: true })
      this.rec.open(join(this.out, "history.edn"))
    } catch (e) {
      process.stderr.write(`paxos chaos: cannot create ${this.out}: ${e instanceof Error ? e.message : String(e)}\n`)
      return 2
    }
    const onSignal = (sig: NodeJS.Signals) => this.onSignal(sig)
    const onExit = () => this.cluster?.killAllNow()
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    process.on("exit", onExit)
    try {
      this.chooseMode()
      this.say(`chaos: seed ${o.seed}, ${o.nodes} ${this.members < o.nodes ? `hosts (${this.members} initial members, ${o.nodes - this.members} spare)` : "nodes"}, ${o.concurrency} clients${o.rate !== null ? ` at ${o.rate} ops/s` : " (closed loop)"}, ${o.timeLimitS} s, nemesis ${this.kinds.length > 0 ? this.kinds.join(",") : "none"} every ${o.intervalS} s; output in ${this.out}`)
      return await this.runPhases(t0)
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e)
      if (this.interrupted) {
        await this.interruption
        return 130
      }
      this.say(`chaos: ${e instanceof SetupError ? "could not set up the run" : "run aborted"}: ${msg}`)
      await this.cleanup()
      this.writeLog()
      return 3
    } finally {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      process.off("exit", onExit)
    }
  }

  private chooseMode(): void {
    const o = this.o
    if (o.loopback) {
      this.mode = "loopback"
      this.notes.push("loopback mode asked for (--loopback)")
    } else {
      const avail = hostsAvailable()
      this.mode = avail.ok ? "netns" : "loopback"
      if (!avail.ok) {
        this.say(`chaos: NETWORK NAMESPACES NOT AVAILABLE (${avail.reason}).`)
        this.say("chaos: running the nodes on loopback (127.0.0.1, distinct ports) with process faults only (kill, pause); no partitions.")
        this.notes.push(`loopback mode: ${avail.reason}`)
      }
    }
    if (this.mode === "loopback" && this.kinds.includes("partition")) {
      this.kinds = this.kinds.filter((k) => k !== "partition")
      this.say("chaos: partitions need network namespaces: the partition nemesis is left out of this run.")
      this.notes.push("partition nemesis left out (loopback mode)")
    }
    if (this.o.nodes < 2 && this.kinds.includes("partition")) {
      this.kinds = this.kinds.filter((k) => k !== "partition")
      this.notes.push("partition nemesis left out (a single node)")
    }
    if (this.o.nodes < 4 && this.kinds.includes("member")) {
      this.kinds = this.kinds.filter((k) => k !== "member")
      this.say(`chaos: changes of membership need 4 hosts or more (never fewer than 3 members, and a host to add or remove): the member nemesis is left out of this run of ${this.o.nodes}.`)
      this.notes.push(`member nemesis left out (${this.o.nodes} hosts)`)
    }
    this.members = this.o.members ?? (this.kinds.includes("member") ? Math.min(this.o.nodes, Math.max(3, this.o.nodes - 2)) : this.o.nodes)
  }

  private async runPhases(t0: number): Promise<number> {
    const o = this.o
    const rec = this.rec
    // 1. Hosts and nodes.
    let hosts: string[] = []
    let ports: number[] | undefined
    if (this.mode === "netns") {
      this.say(`chaos: making ${o.nodes} test hosts (network namespaces paxos-h1..${o.nodes} on bridge paxos-br0)`)
      this.hostsUp = true
      try {
        hosts = await up(o.nodes)
      } catch (e) {
        throw new SetupError(e instanceof Error ? e.message : String(e))
      }
      if (!(await heal(hosts))) throw new SetupError("could not flush the hosts' iptables rules")
    } else {
      ports = freePorts(o.nodes, floatSource(o.seed ^ 0x5bd1e995))
    }
    this.throwIfInterrupted()
    const cluster = new Cluster({ mode: this.mode, binary: this.binary, out: this.out, nodes: o.nodes, members: this.members, now: () => rec.now(), ...(ports !== undefined ? { ports } : {}) })
    this.cluster = cluster
    if (cluster.cleared.length > 0) this.say(`chaos: removed the data and logs an earlier run left in ${this.out} (${cluster.cleared.join(", ")}): every run starts from empty nodes`)
    for (let i = 0; i < cluster.size; i++) cluster.start(i)
    const slow = await cluster.waitHealthy(STARTUP_MS, () => this.interrupted)
    this.throwIfInterrupted()
    if (slow.length > 0) throw new SetupError(`nodes did not answer /health within ${STARTUP_MS / 1000} s: ${slow.join(", ")} (see their node.log under ${this.out})`)
    const unready = await cluster.waitReady(STARTUP_MS, () => this.interrupted)
    this.throwIfInterrupted()
    if (unready.length > 0) throw new SetupError(`nodes not ready (GET /ready) within ${STARTUP_MS / 1000} s: ${describeNotReady(unready)} (see their node.log under ${this.out})`)
    const leaderBy = Date.now() + 10_000
    let leader: number | null = null
    while (leader === null && Date.now() < leaderBy && !this.interrupted) {
      leader = await cluster.leader()
      if (leader === null) await Bun.sleep(200)
    }
    const spares = cluster.specs.slice(this.members).map((s) => s.name)
    this.say(
      `chaos: ${this.members} nodes up (${this.mode}): ${cluster.specs.slice(0, this.members).map((s) => s.name).join(" ")}; leader ${leader === null ? "not known yet" : cluster.name(leader)}` +
        (spares.length > 0 ? `; spare hosts ${spares.join(" ")}` : ""),
    )
    this.throwIfInterrupted()

    // 2. Clients and nemesis until the time limit.
    const stopAt = rec.now() + o.timeLimitS * 1e9
    const phaseStart = rec.now()
    const stopped = () => this.interrupted || rec.now() >= stopAt
    const nodes = cluster.specs.map((s) => s.name)
    const nemesis = new Nemesis({
      kinds: this.faultKinds,
      intervalMs: o.intervalS * 1000,
      rng: new Random(o.seed >>> 0),
      cluster,
      recorder: rec,
      hosts,
      stopped,
      say: (l) => this.say(`  ${(rec.now() / 1e9).toFixed(1).padStart(6)} s ${l}`),
    })
    this.nemesis = nemesis
    const members = this.kinds.includes("member")
      ? new MemberNemesis({
          cluster,
          recorder: rec,
          rng: new Random((o.seed ^ 0x85ebca6b) >>> 0),
          intervalMs: o.intervalS * 1000,
          stopped,
          say: (l) => this.say(`  ${(rec.now() / 1e9).toFixed(1).padStart(6)} s ${l}`),
        })
      : null
    this.memberNemesis = members
    this.progress = stderrProgress({ label: "chaos", total: o.timeLimitS, unit: "s", rateUnit: "ops", quiet: o.quiet })
    const shown = new ChaosProgress(this.progress, o.timeLimitS, () => (rec.now() - phaseStart) / 1e9, () => nemesis.faults.length + (members?.changes.length ?? 0))
    const ticker = setInterval(() => shown.tick(), 250)
    const clients = runClients({
      nodes,
      concurrency: o.concurrency,
      rate: o.rate,
      timeoutMs: o.timeoutMs,
      readRatio: o.readRatio,
      appendAttempts: APPEND_ATTEMPTS,
      maxOps: MAX_OPS,
      rng: new Random((o.seed ^ 0x9e3779b9) >>> 0),
      recorder: rec,
      stopped,
      onOp: shown.onOp,
    })
    const memberOps = members?.run() ?? Promise.resolve()
    try {
      await nemesis.run()
      while (!stopped()) await Bun.sleep(50)
    } finally {
      clearInterval(ticker)
      this.progress.finish()
    }
    const phaseEnd = Math.min(rec.now(), stopAt)
    this.throwIfInterrupted()

    // 3. Heal everything, resume and restart every member, wait for the ops in flight.
    this.say(`chaos: time limit reached: healing the network, resuming and restarting every ${members !== null ? "member" : "node"}`)
    await nemesis.undo()
    rec.nemesis("heal-all", null)
    const healed = this.mode === "netns" ? await heal(hosts) : true
    const revived = cluster.reviveAll()
    rec.nemesis(
      "heal-all",
      new EdnMap([
        [kw("network"), kw(this.mode === "netns" ? (healed ? "healed" : "heal-unconfirmed") : "loopback")],
        [kw("resumed"), revived.resumed],
        [kw("started"), revived.started],
      ]),
    )
    if (!healed) this.notes.push("final heal: iptables -F not confirmed in every host")
    // The change under way ends; then the membership settles (a member whose add had no answer starts).
    await memberOps
    this.throwIfInterrupted()
    const finalView = members !== null ? await members.settle() : null
    this.throwIfInterrupted()
    const { samples, nextProcess } = await clients
    this.throwIfInterrupted()
    const lagging = await cluster.waitHealthy(STARTUP_MS, () => this.interrupted)
    if (lagging.length > 0) this.notes.push(`after healing, no /health answer from ${lagging.join(", ")}`)

    // 4. A final read at every member (retried until one succeeds, each try recorded).
    const readAt = this.finalMembers(finalView)
    this.say(`chaos: ${samples.length} ops done; final reads at every ${members !== null ? `member (${readAt.length})` : "node"}`)
    const finalReads = await this.finalReads(readAt, nextProcess, samples)
    this.throwIfInterrupted()

    // 5. Stop everything, then look at the logs and the history.
    await this.cleanup()
    return this.finish(samples, finalReads, phaseStart, phaseEnd, (Date.now() - t0) / 1000, finalView)
  }

  /**
   * Where the final reads go: every host, without the member nemesis; with it, the members of the
   * newest view after healing (else those the harness knows of), and a note on any member the
   * harness does not run or any host it runs that is no member.
   */
  private finalMembers(view: View | null): string[] {
    const cluster = this.cluster as Cluster
    const all = cluster.specs.map((s) => s.name)
    if (this.memberNemesis === null) return all
    if (view === null) {
      this.notes.push("after healing, no host answered GET /members: final reads at the members the harness knows of")
      return cluster.members().map((i) => cluster.name(i))
    }
    const members = view.members.map((m) => m.address)
    const strangers = members.filter((m) => !all.includes(m))
    if (strangers.length > 0) this.notes.push(`members that are no host of this run: ${strangers.join(", ")}`)
    const running = all.filter((n) => cluster.state(cluster.indexOf(n)) !== "down")
    const outside = running.filter((n) => !members.includes(n))
    if (outside.length > 0) this.notes.push(`running after healing but no member at epoch ${view.epoch}: ${outside.join(", ")} (a removal whose answer never came)`)
    const gone = members.filter((m) => all.includes(m) && cluster.membership(cluster.indexOf(m)) === "no")
    if (gone.length > 0) {
      this.notes.push(`members at epoch ${view.epoch}, as ${view.from} reports it, that the harness stopped and wiped when their removal was answered: ${gone.join(", ")} (a view older than those removals)`)
    }
    return members.filter((m) => all.includes(m))
  }

  private async finalReads(nodes: readonly string[], firstProcess: number, samples: Sample[]): Promise<FinalRead[]> {
    const deadline = Date.now() + FINAL_READ_MS
    return Promise.all(
      nodes.map(async (node, i) => {
        let attempts = 0
        while (!this.interrupted) {
          attempts++
          const r = await readOp({ recorder: this.rec, timeoutMs: this.o.timeoutMs }, firstProcess + i, node, "final-read", samples)
          if (r.type === "ok") return { node, ok: true, attempts, length: r.list?.length ?? 0 }
          if (Date.now() >= deadline) break
          await Bun.sleep(300)
        }
        return { node, ok: false, attempts, length: null }
      }),
    )
  }

  private finish(samples: Sample[], finalReads: FinalRead[], clientStart: number, clientEnd: number, wallSeconds: number, finalView: View | null): number {
    const o = this.o
    const cluster = this.cluster as Cluster
    this.rec.close()
    let check: CheckResult | null = null
    let checkError: string | null = null
    try {
      // The ops in memory, not the file: reading the text back would double the memory again.
      check = checkOps(this.rec.ops)
    } catch (e) {
      checkError = e instanceof Error ? e.message : String(e)
    }
    const invariantViolations: Array<{ node: string; line: string }> = []
    let faultyBuild: string | null = null
    for (const spec of cluster.specs) {
      const text = existsSync(spec.logFile) ? readFileSync(spec.logFile, "utf8") : ""
      for (const line of text.split("\n")) {
        if (line.includes(INVARIANT_MARKER)) invariantViolations.push({ node: spec.name, line: line.slice(0, 2000) })
        const m = line.match(new RegExp(`${FAULTY_BUILD_MARKER} fault=(\\S+)`))
        if (m !== null && faultyBuild === null) faultyBuild = m[1] ?? null
      }
    }
    const report: RunReport = {
      options: { ...o, nemesis: this.kinds, members: this.members, binary: this.binary, out: this.out },
      mode: this.mode,
      nodes: cluster.specs.map((s) => s.name),
      out: this.out,
      startedAt: this.startedAt.toISOString(),
      wallSeconds,
      clientSeconds: (clientEnd - clientStart) / 1e9,
      clientStart,
      clientEnd,
      check,
      checkError,
      samples,
      faults: this.nemesis?.faults ?? [],
      kinds: this.faultKinds,
      membership:
        this.memberNemesis === null
          ? null
          : {
              initial: cluster.specs.slice(0, this.members).map((s) => s.name),
              spares: cluster.specs.slice(this.members).map((s) => s.name),
              changes: this.memberNemesis.changes,
              final: finalView,
            },
      crashes: cluster.crashes,
      invariantViolations,
      finalReads,
      faultyBuild,
      notes: this.notes,
      interrupted: this.interrupted,
    }
    writeFileSync(join(this.out, "results.json"), JSON.stringify(resultsJson(report), null, 2) + "\n")
    writeFileSync(join(this.out, "latency.svg"), latencySvg(report))
    for (const line of summaryText(report).trimEnd().split("\n")) this.say(line)
    this.writeLog()
    return problems(report).length === 0 ? 0 : 1
  }

  private writeLog(): void {
    try {
      writeFileSync(join(this.out, "chaos.log"), this.log.join("\n") + "\n")
    } catch {
      // the directory is gone: nothing to keep
    }
  }

  /** Stops every node, heals the network and removes the hosts. Idempotent; bounded in time. */
  private cleanup(): Promise<void> {
    if (this.cleaning !== null) return this.cleaning
    this.cleaning = (async () => {
      const problems: string[] = []
      if (this.cluster !== null) await this.cluster.stopAll()
      if (this.hostsUp) {
        try {
          await withTimeout(heal(), 20_000)
        } catch {
          // removing the hosts below drops their rules anyway
        }
        try {
          await down()
        } catch (e) {
          problems.push(e instanceof Error ? e.message : String(e))
        }
        this.hostsUp = false
      }
      for (const p of problems) this.say(`chaos: cleanup: ${p} (run \`bash scripts/hosts.sh down\` as root)`)
    })()
    return this.cleaning
  }

  private onSignal(sig: NodeJS.Signals): void {
    if (this.interrupted) {
      process.stderr.write(`chaos: ${sig} again: still cleaning up (bounded; the hosts are removed next)\n`)
      return
    }
    this.interrupted = true
    this.progress?.finish()
    this.say(`\nchaos: ${sig}: stopping the nodes, healing the network${this.hostsUp ? ", removing the test hosts" : ""}`)
    this.interruption = this.cleanup().then(() => {
      try {
        this.rec.close()
        this.say(`chaos: interrupted; nodes stopped${this.mode === "netns" ? ", hosts removed" : ""}; partial history in ${join(this.out, "history.edn")}`)
      } catch {
        // nothing to keep
      }
      this.writeLog()
    })
    // The main flow notices the interruption and returns 130 after this; exit here too in case
    // it is blocked somewhere.
    void this.interruption.finally(() => process.exit(130))
  }

  private throwIfInterrupted(): void {
    if (this.interrupted) throw new Error("interrupted")
  }
}

/** The compiled binary runs itself as the nodes; under Bun (`bun run chaos`) dist/paxos. */
function defaultBinary(): string {
  return isCompiled() ? process.execPath : "dist/paxos"
}

/** `20250101T120000Z`. */
function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")
}

if (import.meta.main) {
  chaosCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`paxos chaos: ${e instanceof Error ? e.message : String(e)}\n`)
      process.exit(1)
    },
  )
}
