/**
 * The chaos hosts (scripts/hosts.sh through src/chaos/netns.ts) on this machine: real network
 * namespaces, a real bridge, real iptables rules. Needs root, `ip` and `iptables` (Debian:
 * iproute2, iptables); skipped with the reason otherwise. The sshd test also needs
 * openssh-server, sudo and netcat-openbsd, and is skipped without them.
 *
 * These tests own the names paxos-h*, paxos-br0 and /run/paxos-hosts: they start with
 * `hosts.sh down`, so hosts left up by hand are removed. Traffic goes only between the test
 * hosts (10.77.0.11..) and the control address 10.77.0.1 on the bridge.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Subprocess } from "bun"
import {
  BRIDGE_NAME,
  CONTROL_ADDRESS,
  STATE_DIR,
  activeHosts,
  completeGrudge,
  down,
  execIn,
  heal,
  hostAddress,
  hostName,
  hostsAvailable,
  inputRules,
  isolateOne,
  loss,
  partition,
  spawnIn,
  up,
  type HostRef,
} from "../../src/chaos/netns.ts"

const avail = hostsAvailable()
if (!avail.ok) console.warn(`test/chaos/netns.test.ts: skipped: ${avail.reason}`)
const skipReason = avail.ok ? "" : ` [skipped: ${avail.reason}]`

const REPO = join(import.meta.dir, "..", "..")
const HOSTS_SH = join(REPO, "scripts", "hosts.sh")
const BUN = process.execPath
const PORT = 7000
const h1 = hostName(1)
const h2 = hostName(2)
const h3 = hostName(3)

// ---------------------------------------------------------------------------------------------
// helpers

function sh(argv: string[]): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() }
}

function netnsNames(): string[] {
  return sh(["ip", "netns", "list"])
    .out.split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n !== "")
}

function linkNames(): string[] {
  return sh(["ip", "-o", "link", "show"])
    .out.split("\n")
    .map((l) => (l.split(": ")[1] ?? "").split("@")[0] ?? "")
    .filter((n) => n !== "")
}

const iptablesAll = (): string => sh(["iptables", "-w", "-S"]).out
const iptablesNat = (): string => sh(["iptables", "-w", "-t", "nat", "-S"]).out
const forwardRules = (): string[] => sh(["iptables", "-w", "-S", "FORWARD"]).out.split("\n").filter((l) => l.startsWith("-A"))

const OWN_NETNS = readlinkSync("/proc/self/ns/net")

/** Live (not zombie) processes in a network namespace other than ours. */
function foreignNetnsPids(): Set<number> {
  const pids = new Set<number>()
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue
    try {
      const state = readFileSync(`/proc/${d}/stat`, "utf8").replace(/^.*\) /, "")[0]
      if (state === "Z" || state === "X") continue
      if (readlinkSync(`/proc/${d}/ns/net`) !== OWN_NETNS) pids.add(Number(d))
    } catch {
      // gone meanwhile, or a kernel thread without ns links
    }
  }
  return pids
}

function processAlive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0]
    return state !== "Z" && state !== "X"
  } catch {
    return false
  }
}

/** Live sshd processes started by hosts.sh (their command line names the state dir). */
function ourSshds(): number[] {
  const found: number[] = []
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8")
      if (cmd.includes("sshd") && cmd.includes(STATE_DIR) && processAlive(Number(d))) found.push(Number(d))
    } catch {
      // gone
    }
  }
  return found
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(25)
  }
  return cond()
}

/** A TCP server in a host: says "hello" to whoever connects. Resolves once it listens. */
async function startServer(host: HostRef, port = PORT): Promise<Subprocess<"ignore", "pipe", "inherit">> {
  const code = `
    Bun.listen({ hostname: ${JSON.stringify(hostAddress(host))}, port: ${port},
      socket: { open(s) { s.write("hello\\n"); s.end() }, data() {} } })
    console.log("listening")`
  const proc = spawnIn(host, [BUN, "-e", code], { stdout: "pipe" })
  const reader = proc.stdout.getReader()
  const { value } = await reader.read()
  reader.releaseLock()
  expect(new TextDecoder().decode(value)).toContain("listening")
  return proc
}

/** Client code: connect, read the greeting; exit 0 "hello", 2 timeout, 3 connection error. */
function clientCode(addr: string, port: number, timeoutMs: number): string {
  return `
    let got = ""
    setTimeout(() => { console.log("timeout"); process.exit(2) }, ${timeoutMs})
    Bun.connect({ hostname: ${JSON.stringify(addr)}, port: ${port}, socket: {
      data(_s, d) { got += new TextDecoder().decode(d) },
      close() { console.log(got.trim()); process.exit(got.includes("hello") ? 0 : 1) },
      error(_s, e) { console.log("error " + e.code); process.exit(3) },
    } }).catch((e) => { console.log("error " + e.code); process.exit(3) })`
}

type Outcome = "ok" | "timeout" | "error" | "other"
const outcome = (code: number | null): Outcome => (code === 0 ? "ok" : code === 2 ? "timeout" : code === 3 ? "error" : "other")

/** Connects from a host (or from the control address, outside any namespace) to host:port. */
async function probe(from: HostRef | "control", to: HostRef, timeoutMs = 1500, port = PORT): Promise<Outcome> {
  const argv = [BUN, "-e", clientCode(hostAddress(to), port, timeoutMs)]
  if (from === "control") {
    const p = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" })
    return outcome(await p.exited)
  }
  const r = await execIn(from, argv, { timeoutMs: timeoutMs + 10_000 })
  return outcome(r.exitCode)
}

async function reap(proc: Subprocess<"ignore", "pipe" | "inherit" | "ignore", "pipe" | "inherit" | "ignore">): Promise<void> {
  await Promise.race([proc.exited, sleep(5000)])
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!avail.ok)(`network-namespace hosts${skipReason}`, () => {
  let iptablesBefore = ""
  let natBefore = ""
  let forwardBefore: string[] = []
  let foreignBefore = new Set<number>()
  const started: Array<Subprocess<"ignore", "pipe" | "inherit" | "ignore", "pipe" | "inherit" | "ignore">> = []

  /** Nothing of ours is left: no namespace, bridge, veth, rule, state, process. */
  async function expectClean(): Promise<void> {
    expect(netnsNames().filter((n) => n.startsWith("paxos-"))).toEqual([])
    expect(linkNames().filter((n) => n.startsWith("paxos-"))).toEqual([])
    expect(forwardRules()).toEqual(forwardBefore)
    expect(forwardRules().some((l) => l.includes(BRIDGE_NAME))).toBe(false)
    expect(iptablesAll()).toBe(iptablesBefore)
    expect(iptablesNat()).toBe(natBefore)
    expect(existsSync(STATE_DIR)).toBe(false)
    expect(activeHosts()).toEqual([])
    expect(await waitFor(() => ourSshds().length === 0, 3000)).toBe(true)
    const stray = [...foreignNetnsPids()].filter((p) => !foreignBefore.has(p))
    expect(stray).toEqual([])
  }

  beforeAll(async () => {
    await down()
    iptablesBefore = iptablesAll()
    natBefore = iptablesNat()
    forwardBefore = forwardRules()
    foreignBefore = foreignNetnsPids()
  })

  afterAll(async () => {
    for (const p of started) p.kill("SIGKILL")
    await down()
  })

  test("up 3: hosts on the bridge, node-to-node and control-to-node traffic, no way out", async () => {
    const hosts = await up(3)
    expect(hosts).toEqual([h1, h2, h3])
    expect(activeHosts()).toEqual([h1, h2, h3])
    expect(netnsNames().filter((n) => n.startsWith("paxos-")).sort()).toEqual([h1, h2, h3])
    expect(linkNames()).toContain(BRIDGE_NAME)
    expect(sh(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE_NAME]).out).toContain(`inet ${CONTROL_ADDRESS}/24`)
    expect(forwardRules().filter((l) => l.includes(BRIDGE_NAME))).toHaveLength(1)

    for (const [i, h] of [h1, h2, h3].entries()) {
      const addr = await execIn(h, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
      expect(addr.stdout).toContain(`inet 10.77.0.${11 + i}/24`)
      const routes = await execIn(h, ["ip", "route", "show"])
      expect(routes.stdout).not.toContain("default")
      expect(routes.stdout.trim().split("\n")).toHaveLength(1)
      const lo = await execIn(h, ["ip", "-o", "link", "show", "dev", "lo"])
      expect(lo.stdout).toContain("UP")
    }

    const server = await startServer(h1)
    started.push(server)
    // ip netns exec execs in place: the pid is the server's own, inside paxos-h1's namespace.
    expect(readFileSync(`/proc/${server.pid}/comm`, "utf8").trim()).toMatch(/^bun/)
    expect(statSync(`/proc/${server.pid}/ns/net`).ino).toBe(statSync(`/run/netns/${h1}`).ino)

    expect(await probe(h2, h1)).toBe("ok")
    expect(await probe(h3, h1)).toBe("ok")
    expect(await probe("control", h1)).toBe("ok")
    // No way out of the bridge: the machine's own addresses outside it are unreachable.
    const out = await execIn(h2, ["ip", "route", "get", "1.1.1.1"])
    expect(out.exitCode).not.toBe(0)
  })

  test("partition h1 from h2: 2->1 times out, 3->1 and control->1 work; heal restores", async () => {
    const ok = await partition(
      new Map([
        [h1, [h2]],
        [h2, [h1]],
      ]),
    )
    expect(ok).toBe(true)
    expect(await inputRules(h1)).toEqual([`-A INPUT -s ${hostAddress(2)}/32 -j DROP`])
    expect(await inputRules(h2)).toEqual([`-A INPUT -s ${hostAddress(1)}/32 -j DROP`])
    expect(await inputRules(h3)).toEqual([])
    expect(await probe(h2, h1)).toBe("timeout")
    expect(await probe(h3, h1)).toBe("ok")
    expect(await probe("control", h1)).toBe("ok")

    expect(await heal()).toBe(true)
    for (const h of [h1, h2, h3]) expect(await inputRules(h)).toEqual([])
    expect(await probe(h2, h1)).toBe("ok")
  })

  test("grudge builders applied: isolate h1, then halves via complete-grudge", async () => {
    expect(await partition(isolateOne([h1, h2, h3], h1))).toBe(true)
    expect(await probe(h2, h1)).toBe("timeout")
    expect(await probe(h3, h1)).toBe("timeout")
    expect(await probe("control", h1)).toBe("ok")
    expect(await heal()).toBe(true)

    // Hosts given by address work too; h1 and h3 together, h2 alone.
    const g = completeGrudge([[hostAddress(1), hostAddress(3)], [hostAddress(2)]])
    expect(await partition(g)).toBe(true)
    expect(await probe(h2, h1)).toBe("timeout")
    expect(await probe(h3, h1)).toBe("ok")
    expect(await heal()).toBe(true)
    expect(await probe(h2, h1)).toBe("ok")
  })

  test("random loss with iptables statistic: p=1 drops node traffic, never the control address", async () => {
    expect(await loss(1, { hosts: [h1] })).toBe(true)
    expect((await inputRules(h1)).join("\n")).toContain("--mode random --probability 1")
    expect(await probe(h2, h1)).toBe("timeout")
    expect(await probe("control", h1)).toBe("ok")
    expect(await heal()).toBe(true)

    expect(await loss(1, { hosts: [h1], from: [h3] })).toBe(true)
    expect(await probe(h2, h1)).toBe("ok")
    expect(await probe(h3, h1)).toBe("timeout")
    expect(await heal()).toBe(true)
    expect(await probe(h3, h1)).toBe("ok")
  })

  test("a DROP policy on the machine's FORWARD chain does not cut node-to-node traffic", async () => {
    const policy = /-P FORWARD (\w+)/.exec(sh(["iptables", "-w", "-S", "FORWARD"]).out)?.[1] ?? "ACCEPT"
    expect(sh(["iptables", "-w", "-P", "FORWARD", "DROP"]).code).toBe(0)
    try {
      expect(await probe(h2, h1)).toBe("ok")
    } finally {
      sh(["iptables", "-w", "-P", "FORWARD", policy])
    }
    expect(sh(["iptables", "-w", "-S", "FORWARD"]).out).toContain(`-P FORWARD ${policy}`)
  })

  test("the server's pid pauses and kills exactly it: SIGSTOP, SIGCONT, SIGKILL", async () => {
    const server = started[0]
    expect(server).toBeDefined()
    if (server === undefined) return
    process.kill(server.pid, "SIGSTOP")
    expect(await probe(h2, h1)).toBe("timeout") // the kernel accepts, the paused server never writes
    process.kill(server.pid, "SIGCONT")
    expect(await probe(h2, h1)).toBe("ok")
    server.kill("SIGKILL")
    await reap(server)
    expect(await probe(h2, h1)).toBe("error") // connection refused
    started.push(await startServer(h1)) // for the down test: a live process in a host
  })

  test("down leaves no namespace, bridge, veth, iptables rule or process", async () => {
    const sleeper = spawnIn(h3, ["sleep", "300"])
    started.push(sleeper)
    expect(await waitFor(() => processAlive(sleeper.pid), 2000)).toBe(true)
    await down()
    for (const p of started) await reap(p)
    for (const p of started) expect(processAlive(p.pid)).toBe(false)
    expect(sleeper.signalCode).not.toBeNull()
    await expectClean()
    await down() // nothing up: still fine
    await expectClean()
  })

  test("up is idempotent; a different N starts over", async () => {
    await up(3)
    const keeper = spawnIn(h2, ["sleep", "300"])
    started.push(keeper)
    await up(3)
    expect(netnsNames().filter((n) => n.startsWith("paxos-")).sort()).toEqual([h1, h2, h3])
    expect(forwardRules().filter((l) => l.includes(BRIDGE_NAME))).toHaveLength(1)
    expect(processAlive(keeper.pid)).toBe(true) // a second up changes nothing
    const server = await startServer(h1)
    started.push(server)
    expect(await probe(h3, h1)).toBe("ok")
    server.kill("SIGKILL")
    await reap(server)

    await up(2)
    expect(netnsNames().filter((n) => n.startsWith("paxos-")).sort()).toEqual([h1, h2])
    expect(activeHosts()).toEqual([h1, h2])
    await down()
    await reap(keeper)
    await expectClean()
  })

  test("down after a crash: up killed half-way, and state lost with namespaces left", async () => {
    // up -n 5 killed with SIGKILL (no trap runs) once the second namespace exists
    const proc = Bun.spawn(["bash", HOSTS_SH, "up", "-n", "5"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" })
    const seen = await waitFor(() => existsSync(`/run/netns/${h2}`), 10_000)
    proc.kill("SIGKILL")
    await proc.exited
    expect(seen).toBe(true)
    expect(netnsNames().some((n) => n.startsWith("paxos-h"))).toBe(true)
    await down()
    await expectClean()

    // the state dir lost (rm -rf), namespaces and a process in one left behind
    await up(3)
    const orphan = spawnIn(h2, ["sleep", "300"])
    started.push(orphan)
    expect(await waitFor(() => processAlive(orphan.pid), 2000)).toBe(true)
    rmSync(STATE_DIR, { recursive: true, force: true })
    await down()
    await reap(orphan)
    expect(processAlive(orphan.pid)).toBe(false)
    await expectClean()
  })

  test("hosts.sh refuses clearly: bad arguments, unknown host", async () => {
    const bad = sh(["bash", HOSTS_SH, "up", "-n", "0"])
    expect(bad.code).not.toBe(0)
    expect(bad.out.trim().split("\n")).toHaveLength(1)
    expect(bad.out).toContain("-n must be")
    const noKey = sh(["bash", HOSTS_SH, "up", "--sshd"])
    expect(noKey.code).not.toBe(0)
    expect(noKey.out).toContain("--key")
    const notUp = sh(["bash", HOSTS_SH, "exec", "h1", "true"])
    expect(notUp.code).not.toBe(0)
    expect(notUp.out).toContain("not up")
    await expectClean()
  })

  const sshTools = ["sshd", "ssh", "ssh-keygen", "sudo", "nc"].filter(
    (t) => Bun.which(t) === null && !(t === "sshd" && existsSync("/usr/sbin/sshd")),
  )
  const sshSkip = sshTools.length > 0 ? ` [skipped: missing ${sshTools.join(", ")}; apt-get install openssh-server sudo netcat-openbsd]` : ""
  if (sshTools.length > 0) console.warn(`test/chaos/netns.test.ts: sshd test${sshSkip}`)

  test.skipIf(sshTools.length > 0)(`--sshd: root login by ed25519 key on each host's address only${sshSkip}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "paxos-ssh-"))
    try {
      const key = join(dir, "id_ed25519")
      expect(sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key]).code).toBe(0)
      const other = join(dir, "other")
      expect(sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other]).code).toBe(0)
      await up(3, { sshd: true, key: `${key}.pub` })

      const ssh = (k: string, addr: string, cmd: string) =>
        sh([
          "ssh", "-F", "/dev/null", "-i", k, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
          "-o", "ConnectTimeout=5", `root@${addr}`, cmd,
        ])
      expect(ssh(key, "10.77.0.11", "true").code).toBe(0)
      // What Jepsen runs on a node: sudo even as root, nc -z to wait for a port; and the node's
      // own address is the one it was reached on.
      const r = ssh(key, "10.77.0.12", "sudo -k -S -u root bash -c 'id -u' </dev/null && nc -z -w 2 10.77.0.13 22 && echo NC_OK && ip -o -4 addr show dev eth0")
      expect(r.code).toBe(0)
      expect(r.out).toContain("NC_OK")
      expect(r.out).toContain("10.77.0.12/24")
      // key only: another key is refused
      expect(ssh(other, "10.77.0.11", "true").code).not.toBe(0)
      // sshd listens on that host's address only
      const listen = await execIn(h1, ["ss", "-Hltn"])
      const ports22 = listen.stdout.split("\n").filter((l) => /:22\s/.test(l))
      expect(ports22).toHaveLength(1)
      expect(ports22[0]).toContain("10.77.0.11:22")
      expect(existsSync("/run/sshd")).toBe(true)
      expect(ourSshds()).toHaveLength(3)

      // up without --sshd on the same hosts stops them; up --sshd again starts them
      await up(3)
      expect(await waitFor(() => ourSshds().length === 0, 3000)).toBe(true)
      await up(3, { sshd: true, key: `${key}.pub` })
      expect(ourSshds()).toHaveLength(3)
      expect(ssh(key, hostAddress(3), "true").code).toBe(0)

      await down()
      await expectClean()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
