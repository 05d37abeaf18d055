/**
 * Test hosts made of Linux network namespaces, and the network faults Jepsen makes on them.
 *
 * Setting up and tearing down is `scripts/hosts.sh` (one implementation, also used by hand and
 * by the Jepsen test); this module runs it (the script's text is bundled in, so `dist/paxos`
 * carries it too) and adds what the chaos harness needs at run time: run commands and
 * long-running processes inside a host, partitions by grudge, random loss, and heal.
 *
 * Hosts: namespaces `paxos-h1..paxos-hN` with addresses 10.77.0.11..10.77.0.(10+N) on the bridge
 * `paxos-br0`, whose own address 10.77.0.1 is the control address (this process, outside any
 * namespace). Nothing here ever drops the control address. Hosts share the filesystem and the PID
 * space (see the header of scripts/hosts.sh): find processes by pid, never by name.
 *
 * Faults follow jepsen.net's iptables implementation: a grudge maps each host to the hosts it
 * must not hear; for host H and each such source S, `iptables -A INPUT -s S/32 -j DROP` runs
 * inside H's namespace. `heal()` is `iptables -F` in every host. Partitions add up until healed,
 * as in Jepsen (`partition!` does not heal first).
 */
import { existsSync, readFileSync } from "node:fs"
import type { SpawnOptions, Subprocess } from "bun"
// A text import: Bun inlines the file, and `bun build --compile` embeds it in the binary.
// A text import (declared in src/assets.d.ts): the compiled binary carries the script inside it.
import HOSTS_SH from "../../scripts/hosts.sh" with { type: "text" }

export const HOST_PREFIX = "paxos-h"
export const BRIDGE_NAME = "paxos-br0"
export const CONTROL_ADDRESS = "10.77.0.1"
export const SUBNET_PREFIX = "10.77.0"
export const STATE_DIR = "/run/paxos-hosts"
export const MAX_HOSTS = 100

/** A host is named by its namespace, `paxos-hN`. */
export type Host = string
/** Where a host is expected: its name (`paxos-h2`, `h2`), its 1-based index, or its address. */
export type HostRef = Host | number
/** Jepsen's grudge: each host maps to the hosts it must not hear from. */
export type Grudge<T = Host> = Map<T, T[]>

export interface UpOptions {
  /** run an sshd in every host (root login by `key` only) */
  sshd?: boolean
  /** public key file for `--sshd` */
  key?: string
}

export interface ExecResult {
  /** null when killed by a signal (see `signalCode`) */
  exitCode: number | null
  signalCode: string | null
  stdout: string
  stderr: string
  timedOut: boolean
}

export interface ExecOptions {
  /** kill the command (SIGKILL) after this many milliseconds; result has timedOut: true */
  timeoutMs?: number
  /** text for the command's standard input */
  stdin?: string
}

// ---------------------------------------------------------------------------------------------
// Names and addresses

/** `paxos-hI` for the 1-based index I. */
export function hostName(i: number): Host {
  checkIndex(i)
  return `${HOST_PREFIX}${i}`
}

/** The address of host I (1-based), or of a host given by name: 10.77.0.(10+I). */
export function hostAddress(host: HostRef): string {
  return `${SUBNET_PREFIX}.${10 + hostIndex(host)}`
}

/** `paxos-h1..paxos-hN`. */
export function hostNames(n: number): Host[] {
  return Array.from({ length: n }, (_, k) => hostName(k + 1))
}

/** The 1-based index of a host given by index, `paxos-hN`, `hN` or address 10.77.0.(10+N). */
export function hostIndex(host: HostRef): number {
  let i: number
  if (typeof host === "number") i = host
  else if (host.startsWith(HOST_PREFIX) && /^\d+$/.test(host.slice(HOST_PREFIX.length)))
    i = Number(host.slice(HOST_PREFIX.length))
  else if (/^h\d+$/.test(host)) i = Number(host.slice(1))
  else if (host.startsWith(`${SUBNET_PREFIX}.`) && /^\d+$/.test(host.slice(SUBNET_PREFIX.length + 1))) {
    const last = Number(host.slice(SUBNET_PREFIX.length + 1))
    if (host === CONTROL_ADDRESS || last <= 10) {
      throw new Error(`netns: ${host} is not a test host's address (the control address is never a host)`)
    }
    i = last - 10
  } else throw new Error(`netns: unknown host '${host}' (use paxos-hN, hN, N or 10.77.0.(10+N))`)
  checkIndex(i)
  return i
}

/** The namespace name of a host reference. */
export function resolveHost(host: HostRef): Host {
  return hostName(hostIndex(host))
}

function checkIndex(i: number): void {
  if (!Number.isInteger(i) || i < 1 || i > MAX_HOSTS) {
    throw new Error(`netns: host index must be an integer from 1 to ${MAX_HOSTS}, got ${i}`)
  }
}

/** The hosts that are up, from the state `scripts/hosts.sh up` leaves; [] when none. */
export function activeHosts(): Host[] {
  const file = `${STATE_DIR}/hosts`
  if (!existsSync(file)) return []
  return readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name.startsWith(HOST_PREFIX))
}

// ---------------------------------------------------------------------------------------------
// Set-up and tear-down: scripts/hosts.sh

/** Runs scripts/hosts.sh with the given arguments (its embedded text, via bash -c). */
export async function hostsScript(args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(["bash", "-c", HOSTS_SH, "hosts.sh", ...args], opts)
}

/**
 * Can this machine make test hosts? Root, `ip` and `iptables` present, and a throw-away namespace
 * with a bridge, a veth pair and iptables rules can be made (`scripts/hosts.sh check`).
 */
export function hostsAvailable(): { ok: boolean; reason?: string } {
  if (process.platform !== "linux") return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` }
  if (Bun.which("bash") === null) return { ok: false, reason: "bash not found" }
  const r = Bun.spawnSync(["bash", "-c", HOSTS_SH, "hosts.sh", "check"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 30_000,
  })
  if (r.exitCode === 0) return { ok: true }
  const lines = r.stderr.toString().trim().split("\n")
  const last = (lines[lines.length - 1] ?? "").replace(/^hosts\.sh: /, "")
  return { ok: false, reason: last || `scripts/hosts.sh check exited with ${r.exitCode}` }
}

/**
 * Makes hosts paxos-h1..paxos-hN (idempotent; a different N starts over). Returns their names.
 * Throws with the script's message when it fails (a failed `up` leaves nothing behind).
 */
export async function up(n = 5, opts: UpOptions = {}): Promise<Host[]> {
  const args = ["up", "-n", String(n)]
  if (opts.sshd === true) {
    if (opts.key === undefined) throw new Error("netns: up with sshd needs opts.key (a public key file)")
    args.push("--sshd", "--key", opts.key)
  }
  const r = await hostsScript(args, { timeoutMs: 120_000 })
  if (r.exitCode !== 0) throw new Error(`netns: hosts.sh up failed: ${lastLine(r.stderr) || lastLine(r.stdout)}`)
  return hostNames(n)
}

/** Removes every host, the bridge, the FORWARD rule, and kills every process in the hosts. */
export async function down(): Promise<void> {
  const r = await hostsScript(["down"], { timeoutMs: 120_000 })
  if (r.exitCode !== 0) throw new Error(`netns: hosts.sh down failed: ${lastLine(r.stderr) || lastLine(r.stdout)}`)
}

// ---------------------------------------------------------------------------------------------
// Running things inside a host

function nsArgv(host: HostRef, argv: readonly string[]): string[] {
  const name = resolveHost(host)
  if (!existsSync(`/run/netns/${name}`)) throw new Error(`netns: host ${name} is not up`)
  if (argv.length === 0) throw new Error("netns: empty command")
  return ["ip", "netns", "exec", name, ...argv]
}

/** Runs argv inside the host's namespace to completion and collects its output. */
export async function execIn(host: HostRef, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(nsArgv(host, argv), opts)
}

/**
 * Starts a long-running process inside the host's namespace. `ip netns exec` execs the command
 * in place, so `proc.pid` is the command's own pid: `proc.kill("SIGKILL")`,
 * `process.kill(proc.pid, "SIGSTOP")` and `"SIGCONT"` act on exactly that process.
 * Defaults: stdin ignored, stdout and stderr inherited (pass "pipe" or a file to capture).
 */
export function spawnIn<
  const In extends SpawnOptions.Writable = "ignore",
  const Out extends SpawnOptions.Readable = "inherit",
  const Err extends SpawnOptions.Readable = "inherit",
>(host: HostRef, argv: readonly string[], opts?: SpawnOptions.SpawnOptions<In, Out, Err>): Subprocess<In, Out, Err> {
  const options = { stdin: "ignore", stdout: "inherit", stderr: "inherit", ...opts } as SpawnOptions.SpawnOptions<In, Out, Err>
  return Bun.spawn<In, Out, Err>(nsArgv(host, argv), options)
}

// ---------------------------------------------------------------------------------------------
// Faults

const IPTABLES_TIMEOUT_MS = 15_000

/** The filter-table rules of the host's INPUT chain, as `iptables -S INPUT` prints them. */
export async function inputRules(host: HostRef): Promise<string[]> {
  const r = await execIn(host, ["iptables", "-w", "-S", "INPUT"], { timeoutMs: IPTABLES_TIMEOUT_MS })
  if (r.exitCode !== 0) throw new Error(`netns: iptables -S in ${resolveHost(host)} failed: ${lastLine(r.stderr)}`)
  return r.stdout.split("\n").filter((l) => l.startsWith("-A "))
}

/**
 * Applies a grudge as Jepsen's iptables net does: in each host H, for each host S in grudge[H],
 * `iptables -A INPUT -s ADDR(S)/32 -j DROP`. Does not heal first. Then lists every touched host's
 * rules and returns true only if every rule is in place. A host never snubs itself, and the
 * control address cannot appear (it is no host).
 */
export async function partition(grudge: ReadonlyMap<HostRef, readonly HostRef[]>): Promise<boolean> {
  const plan: Array<{ dst: Host; srcs: string[] }> = []
  for (const [dstRef, srcRefs] of grudge) {
    const dst = resolveHost(dstRef)
    const srcs = [...new Set(srcRefs.map((s) => hostAddress(s)))].filter((a) => a !== hostAddress(dst))
    if (srcs.length > 0) plan.push({ dst, srcs })
  }
  const applied = await Promise.all(
    plan.map(async ({ dst, srcs }) => {
      const r = await execIn(dst, ["iptables", "-w", "-A", "INPUT", "-s", srcs.join(","), "-j", "DROP"], {
        timeoutMs: IPTABLES_TIMEOUT_MS,
      })
      if (r.exitCode !== 0) return false
      const rules = new Set(await inputRules(dst))
      return srcs.every((a) => rules.has(`-A INPUT -s ${a}/32 -j DROP`))
    }),
  )
  return applied.every(Boolean)
}

/**
 * Random packet loss with iptables (this kernel has no netem): each listed host drops incoming
 * packets with probability p, from the given sources only, or else from every other test host.
 * Loopback and the control address are never dropped. Healed by `heal()`.
 */
export async function loss(
  p: number,
  opts: { hosts?: readonly HostRef[]; from?: readonly HostRef[] } = {},
): Promise<boolean> {
  if (!(p >= 0 && p <= 1)) throw new Error(`netns: loss probability must be in [0, 1], got ${p}`)
  const prob = p.toFixed(6)
  const hosts = (opts.hosts ?? activeHosts()).map(resolveHost)
  const results = await Promise.all(
    hosts.map(async (h) => {
      const rules: string[][] =
        opts.from === undefined
          ? [["!", "-i", "lo", "!", "-s", `${CONTROL_ADDRESS}/32`]]
          : opts.from.map(hostAddress).filter((a) => a !== hostAddress(h)).map((a) => ["-s", `${a}/32`])
      for (const match of rules) {
        const argv = ["iptables", "-w", "-A", "INPUT", ...match]
        argv.push("-m", "statistic", "--mode", "random", "--probability", prob, "-j", "DROP")
        const r = await execIn(h, argv, { timeoutMs: IPTABLES_TIMEOUT_MS })
        if (r.exitCode !== 0) return false
      }
      const listed = await inputRules(h)
      return listed.filter((l) => l.includes("--mode random")).length >= rules.length
    }),
  )
  return results.every(Boolean)
}

/**
 * Heals the network: `iptables -F` in every host (the given ones, or every host that is up), as
 * Jepsen's heal! does. Returns true if every host's filter table is empty afterwards.
 */
export async function heal(hosts?: readonly HostRef[]): Promise<boolean> {
  const names = (hosts ?? activeHosts()).map(resolveHost)
  const results = await Promise.all(
    names.map(async (h) => {
      const r = await execIn(h, ["iptables", "-w", "-F"], { timeoutMs: IPTABLES_TIMEOUT_MS })
      if (r.exitCode !== 0) return false
      const all = await execIn(h, ["iptables", "-w", "-S"], { timeoutMs: IPTABLES_TIMEOUT_MS })
      return all.exitCode === 0 && !all.stdout.split("\n").some((l) => l.startsWith("-A "))
    }),
  )
  return results.every(Boolean)
}

// ---------------------------------------------------------------------------------------------
// Grudges: pure functions after jepsen.nemesis (0.3.x). Random choices take `rng` (a function
// returning [0, 1), Math.random by default) so a seeded run picks the same partitions again.

export type Rng = () => number

/** Fisher-Yates shuffle into a new array. */
export function shuffle<T>(xs: readonly T[], rng: Rng = Math.random): T[] {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    const t = a[i] as T
    a[i] = a[j] as T
    a[j] = t
  }
  return a
}

/** jepsen.nemesis/bisect: cuts a sequence in half, smaller half first. */
export function bisect<T>(xs: readonly T[]): [T[], T[]] {
  const k = Math.floor(xs.length / 2)
  return [xs.slice(0, k), xs.slice(k)]
}

/** jepsen.nemesis/split-one: one node (random, or the given one) against the rest. */
export function splitOne<T>(xs: readonly T[], loner?: T, rng: Rng = Math.random): [T[], T[]] {
  if (xs.length === 0) return [[], []]
  const l = loner !== undefined ? loner : (xs[Math.floor(rng() * xs.length)] as T)
  return [[l], xs.filter((x) => x !== l)]
}

/** jepsen.nemesis/complete-grudge: no node hears any node outside its own component. */
export function completeGrudge<T>(components: readonly (readonly T[])[]): Grudge<T> {
  const universe: T[] = []
  for (const c of components) for (const x of c) if (!universe.includes(x)) universe.push(x)
  const grudge: Grudge<T> = new Map()
  for (const c of components) {
    for (const x of c) grudge.set(x, universe.filter((y) => !c.includes(y)))
  }
  return grudge
}

/** jepsen.nemesis/invert-grudge: from "who each node is connected to" to "who it drops". */
export function invertGrudge<T>(nodes: readonly T[], conns: ReadonlyMap<T, ReadonlySet<T>>): Grudge<T> {
  const grudge: Grudge<T> = new Map()
  for (const a of nodes) {
    const c = conns.get(a) ?? new Set<T>()
    grudge.set(a, nodes.filter((b) => !c.has(b)))
  }
  return grudge
}

/**
 * jepsen.nemesis/bridge: cuts the nodes in half (bisect) but the first node of the second half
 * keeps talking to both sides: it snubs no one and no one snubs it.
 */
export function bridge<T>(nodes: readonly T[]): Grudge<T> {
  const [a, b] = bisect(nodes)
  const grudge = completeGrudge([a, b])
  if (b.length === 0) return grudge
  const br = b[0] as T
  grudge.delete(br)
  for (const [k, v] of grudge) grudge.set(k, v.filter((x) => x !== br))
  return grudge
}

/** partition-halves: the first floor(n/2) nodes against the rest. */
export function halves<T>(nodes: readonly T[]): Grudge<T> {
  return completeGrudge(bisect(nodes))
}

/** partition-random-halves: randomly chosen halves, the smaller half being a minority. */
export function randomHalves<T>(nodes: readonly T[], rng: Rng = Math.random): Grudge<T> {
  return completeGrudge(bisect(shuffle(nodes, rng)))
}

/** partition-random-node: isolates one node (random, or the given one) from all the others. */
export function isolateOne<T>(nodes: readonly T[], loner?: T, rng: Rng = Math.random): Grudge<T> {
  return completeGrudge(splitOne(nodes, loner, rng))
}

/** jepsen.util/majority: the smallest integer strictly greater than half. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1
}

/**
 * jepsen.nemesis/majorities-ring: every node sees a majority (itself included), but no two nodes
 * see the same majority. The exact ring for up to 5 nodes, the stochastic construction above.
 * The grudge is asymmetric: a may drop b while b still hears a.
 */
export function majoritiesRing<T>(nodes: readonly T[], rng: Rng = Math.random): Grudge<T> {
  return nodes.length <= 5 ? majoritiesRingPerfect(nodes, rng) : majoritiesRingStochastic(nodes, rng)
}

/** jepsen.nemesis/majorities-ring-perfect. */
export function majoritiesRingPerfect<T>(nodes: readonly T[], rng: Rng = Math.random): Grudge<T> {
  const n = nodes.length
  const m = majority(n)
  const ring = shuffle(nodes, rng)
  const grudge: Grudge<T> = new Map()
  for (let k = 0; k < n; k++) {
    const window = Array.from({ length: m }, (_, j) => ring[(k + j) % n] as T)
    const middle = window[Math.floor(window.length / 2)] as T
    grudge.set(middle, nodes.filter((x) => !window.includes(x)))
  }
  return grudge
}

/** jepsen.nemesis/majorities-ring-stochastic: link least-connected nodes until all see a majority. */
export function majoritiesRingStochastic<T>(nodes: readonly T[], rng: Rng = Math.random): Grudge<T> {
  const m = majority(nodes.length)
  const conns = new Map<T, Set<T>>(nodes.map((x) => [x, new Set([x])]))
  for (;;) {
    // Nodes by degree (self included), least connected first, shuffled within a degree.
    const byDegree = new Map<number, T[]>()
    for (const x of nodes) {
      const d = (conns.get(x) as Set<T>).size
      byDegree.set(d, [...(byDegree.get(d) ?? []), x])
    }
    const dns: Array<[number, T]> = []
    for (const d of [...byDegree.keys()].sort((p, q) => p - q)) {
      for (const x of shuffle(byDegree.get(d) ?? [], rng)) dns.push([d, x])
    }
    const first = dns[0]
    if (first === undefined || first[0] >= m) return invertGrudge(nodes, conns)
    const a = first[1]
    const ca = conns.get(a) as Set<T>
    const pick = dns.find(([, b]) => !ca.has(b))
    if (pick === undefined) return invertGrudge(nodes, conns)
    const b = pick[1]
    ca.add(b)
    ;(conns.get(b) as Set<T>).add(a)
  }
}

/** Maps a grudge's nodes through f, e.g. from Jepsen-style node names to hosts. */
export function mapGrudge<A, B>(grudge: ReadonlyMap<A, readonly A[]>, f: (a: A) => B): Grudge<B> {
  return new Map([...grudge].map(([k, v]) => [f(k), v.map(f)] as [B, B[]]))
}

// ---------------------------------------------------------------------------------------------

async function run(argv: string[], opts: ExecOptions): Promise<ExecResult> {
  const proc = Bun.spawn(argv, {
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  })
  let timedOut = false
  const timer =
    opts.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true
          proc.kill("SIGKILL")
        }, opts.timeoutMs)
      : undefined
  const out = collect(proc.stdout)
  const err = collect(proc.stderr)
  try {
    await proc.exited
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
  // A child the command left running in the background may hold the pipes open: read what is
  // there, waiting a little for the rest, but never for that child.
  const grace = new Promise<void>((resolve) => setTimeout(resolve, timedOut ? 200 : 2000).unref())
  await Promise.race([Promise.all([out.done, err.done]), grace])
  return { exitCode: proc.exitCode, signalCode: proc.signalCode === null ? null : String(proc.signalCode), stdout: out.stop(), stderr: err.stop(), timedOut }
}

function collect(stream: ReadableStream<Uint8Array>): { done: Promise<void>; stop: () => string } {
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  let text = ""
  const done = (async () => {
    try {
      for (;;) {
        const { done: end, value } = await reader.read()
        if (end) break
        text += decoder.decode(value, { stream: true })
      }
    } catch {
      // cancelled, or the process went away: keep what was read
    }
  })()
  return {
    done,
    stop: () => {
      reader.cancel().catch(() => {})
      return text
    },
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split("\n")
  return (lines[lines.length - 1] ?? "").trim()
}
