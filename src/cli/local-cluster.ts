/**
 * A cluster of real node processes on this machine's loopback: free ports, one data dir and one
 * log file per node under a directory, start, SIGKILL, restart, wipe, find the leader, nodes to
 * add beyond the config file. Used by `paxos demo` and the node tests; everything it starts it
 * stops (`stop`).
 */
import type { Subprocess } from "bun"
import { createServer } from "node:net"
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { healthy, status } from "../client/http.ts"
import { describeNotReady, waitReady } from "./ready.ts"

export interface LocalNode {
  readonly index: number
  readonly name: string
  readonly port: number
  readonly dataDir: string
  readonly logFile: string
  proc: Subprocess | null
  /** Exit codes of earlier runs, in order. */
  readonly exits: number[]
}

export interface LocalClusterOptions {
  /** How to run the binary: e.g. ["dist/paxos"] or [bun, "src/cli/main.ts"]. */
  readonly command: readonly string[]
  readonly n: number
  readonly dir: string
  /** Extra flags for every `server` (e.g. ["--snapshot-every", "100"]). */
  readonly serverFlags?: readonly string[]
  /** The address every node listens on and the config names (default 127.0.0.1; IPv4). */
  readonly host?: string
}

/** `n` ports that were free a moment ago (bound to port 0 and released). */
export async function freePorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer()
          s.once("error", reject)
          s.listen(0, host, () => resolve(s))
        })
    )
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

export class LocalCluster {
  readonly nodes: LocalNode[]
  readonly configFile: string

  private constructor(
    private readonly o: LocalClusterOptions,
    ports: number[]
  ) {
    mkdirSync(o.dir, { recursive: true })
    this.configFile = join(o.dir, "config")
    this.nodes = ports.map((port, index) => ({
      index,
      name: `${o.host ?? "127.0.0.1"}:${port}`,
      port,
      dataDir: join(o.dir, `data-${index}`),
      logFile: join(o.dir, `node-${index}.log`),
      proc: null,
      exits: []
    }))
    writeFileSync(this.configFile, this.nodes.map((n) => n.name).join("\n") + "\n")
  }

  /** Picks ports and writes the config; starts nothing yet. */
  static async create(o: LocalClusterOptions): Promise<LocalCluster> {
    return new LocalCluster(o, await freePorts(o.n, o.host))
  }

  get names(): string[] {
    return this.nodes.map((n) => n.name)
  }

  /**
   * A node on a free port that is no line of the config file (a node to add to the running cluster
   * with `paxos member add`, started with --join); returns its index. Starts nothing.
   */
  async extend(): Promise<number> {
    const [port] = await freePorts(1, this.o.host)
    const index = this.nodes.length
    this.nodes.push({
      index,
      name: `${this.o.host ?? "127.0.0.1"}:${port}`,
      port: port as number,
      dataDir: join(this.o.dir, `data-${index}`),
      logFile: join(this.o.dir, `node-${index}.log`),
      proc: null,
      exits: []
    })
    return index
  }

  /**
   * Starts node i (its log is appended to its log file), with the cluster's server flags and
   * `o.flags`; `o.config` runs it with another config file than the cluster's (tests of a node
   * that belongs to another cluster).
   */
  start(i: number, o: { readonly flags?: readonly string[]; readonly config?: string } = {}): LocalNode {
    const node = this.node(i)
    if (node.proc !== null) return node
    const config = o.config ?? this.configFile
    const argv = [...this.o.command, "server", "--config", config, "--node", node.name, "--data-dir", node.dataDir, ...(this.o.serverFlags ?? []), ...(o.flags ?? [])]
    const fd = openSync(node.logFile, "a")
    try {
      node.proc = Bun.spawn(argv, { stdout: fd, stderr: fd, stdin: "ignore" })
    } finally {
      closeSync(fd)
    }
    const proc = node.proc
    void proc.exited.then((code) => {
      node.exits.push(code)
      if (node.proc === proc) node.proc = null
    })
    return node
  }

  startAll(): void {
    for (let i = 0; i < this.nodes.length; i++) this.start(i)
  }

  /** Waits until node i answers /health (or throws after timeoutMs). */
  async waitHealthy(i: number, timeoutMs = 15_000): Promise<void> {
    const node = this.node(i)
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (await healthy(node.name, 500)) return
      if (node.proc === null && node.exits.length > 0) throw new Error(`node ${node.name} exited with ${node.exits.at(-1)}; see ${node.logFile}`)
      await Bun.sleep(20)
    }
    throw new Error(`node ${node.name} did not answer /health within ${timeoutMs} ms; see ${node.logFile}`)
  }

  async waitAllHealthy(timeoutMs = 15_000): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.waitHealthy(i, timeoutMs)))
  }

  /**
   * Waits until every node answers GET /ready with 200 under one leader (a whole cluster that
   * started); returns the leader's index, or throws naming the nodes that are not ready and why.
   * A node restarted while others are down or cut off waits for /health only (`waitHealthy`).
   */
  async waitAllReady(timeoutMs = 15_000): Promise<number> {
    const r = await waitReady(this.names, timeoutMs)
    if ("leader" in r) return this.names.indexOf(r.leader)
    throw new Error(`not ready within ${timeoutMs} ms: ${describeNotReady(r.notReady)}; see the logs in ${this.o.dir}`)
  }

  /** The index of the node that says it leads and that the others follow, within timeoutMs. */
  async waitLeader(timeoutMs = 15_000, exclude: readonly number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const sts = await Promise.all(this.nodes.map((n) => (n.proc === null ? null : status(n.name, 500))))
      const leader = sts.findIndex((s, i) => s !== null && s.role === "leader" && !exclude.includes(i))
      if (leader !== -1) return leader
      await Bun.sleep(20)
    }
    throw new Error(`no leader within ${timeoutMs} ms`)
  }

  /** Sends `signal` to node i and waits for it to exit; returns the exit code. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    const proc = this.node(i).proc
    if (proc === null) return null
    proc.kill(signal)
    const code = await proc.exited
    this.node(i).proc = null
    return code
  }

  /** Removes node i's data dir (the node must be stopped). */
  wipe(i: number): void {
    const node = this.node(i)
    if (node.proc !== null) throw new Error(`wipe: node ${node.name} is running`)
    rmSync(node.dataDir, { recursive: true, force: true })
  }

  /** Stops every node still running (SIGTERM, then SIGKILL after graceMs). */
  async stop(graceMs = 3_000): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const proc = n.proc
        if (proc === null) return
        proc.kill("SIGTERM")
        const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs)
        await proc.exited
        clearTimeout(timer)
        n.proc = null
      })
    )
  }

  private node(i: number): LocalNode {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    return n
  }
}
