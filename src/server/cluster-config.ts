/**
 * The cluster's config file (README, "Config file"): one node a line, `host[:port]` with port 5000 when left out;
 * blank lines and `#` comments ignored. A node's index is its position in the file, and the
 * cluster id is a hash of the ordered node list, so two clusters with different files never
 * exchange messages and a data dir never moves to another cluster unnoticed.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { LIMITS } from "../core/config.ts"

export const DEFAULT_PORT = 5000

export interface NodeAddress {
  readonly host: string
  readonly port: number
  /** `host:port`, the name the node is known by (logs, /status, --node). */
  readonly name: string
}

export interface ClusterConfig {
  readonly nodes: readonly NodeAddress[]
  /** A hash of the ordered node list (16 hex digits). */
  readonly clusterId: string
}

/** A config file that cannot be used; `message` is one line naming the file and the problem. */
export class ConfigError extends Error {
  override readonly name = "ConfigError"
}

/** Parses one `host[:port]`; returns a reason when it is not one. */
export function parseAddress(text: string): NodeAddress | string {
  return parseHostPort(text, DEFAULT_PORT)
}

/**
 * `--listen ADDR[:PORT]`: the address a node binds, the port defaulting to `port` (its config
 * line's); a reason when it is not one.
 */
export function parseListen(text: string, port: number): NodeAddress | string {
  return parseHostPort(text, port)
}

/** `localhost` (any case, with or without the final dot): this machine's loopback, 127.0.0.1 here. */
export const isLocalhost = (host: string): boolean => /^localhost\.?$/i.test(host)

/**
 * What peers dial to reach node `a`: its config name, except that `localhost` is 127.0.0.1, the
 * address such a node binds (a resolver that answers ::1 first would otherwise miss it).
 */
export const dialName = (a: NodeAddress): string => (isLocalhost(a.host) ? `127.0.0.1:${a.port}` : a.name)

function parseHostPort(text: string, defaultPort: number): NodeAddress | string {
  const s = text.trim()
  if (s.length === 0) return "empty address"
  let host = s
  let portText: string | undefined
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(s)
  if (bracket !== null) {
    host = bracket[1] as string
    portText = bracket[2]
  } else {
    const colon = s.lastIndexOf(":")
    if (colon !== -1) {
      if (s.indexOf(":") !== colon) return `'${s}' is ambiguous: write an IPv6 address as [addr]:port`
      host = s.slice(0, colon)
      portText = s.slice(colon + 1)
    }
  }
  if (host.length === 0 || /\s/.test(host)) return `'${s}' has no valid host`
  let port = defaultPort
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return `'${s}' has an invalid port '${portText}'`
    port = Number(portText)
    if (port < 1 || port > 65535) return `'${s}' has a port outside 1..65535`
  }
  const shown = host.includes(":") ? `[${host}]` : host
  return { host, port, name: `${shown}:${port}` }
}

/** Parses the text of a config file; throws ConfigError with the line that is wrong. */
export function parseConfig(text: string, file = "config"): ClusterConfig {
  const nodes: NodeAddress[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/#.*$/, "").trim()
    if (line.length === 0) continue
    const a = parseAddress(line)
    if (typeof a === "string") throw new ConfigError(`${file}:${i + 1}: ${a}`)
    if (nodes.some((n) => n.name === a.name)) throw new ConfigError(`${file}:${i + 1}: node ${a.name} is listed twice`)
    nodes.push(a)
  }
  if (nodes.length === 0) throw new ConfigError(`${file}: lists no nodes`)
  if (nodes.length > LIMITS.nodesMax) throw new ConfigError(`${file}: lists ${nodes.length} nodes; at most ${LIMITS.nodesMax} are supported`)
  return { nodes, clusterId: clusterIdOf(nodes) }
}

/** Reads and parses a config file; throws ConfigError with a one-line reason. */
export function readConfig(file: string): ClusterConfig {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (e) {
    const code = (e as { code?: string }).code
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : String((e as Error).message)
    throw new ConfigError(`cannot read config file ${file}: ${why}`)
  }
  return parseConfig(text, file)
}

/** The cluster id: the first 16 hex digits of SHA-256 over the ordered node names. */
export function clusterIdOf(nodes: readonly NodeAddress[]): string {
  return createHash("sha256").update(nodes.map((n) => n.name).join("\n")).digest("hex").slice(0, 16)
}

/** The index of `address` (as given to --node) in the config, or a reason why it is not there. */
export function indexOfNode(cfg: ClusterConfig, address: string): number | string {
  const a = parseAddress(address)
  if (typeof a === "string") return a
  const i = cfg.nodes.findIndex((n) => n.name === a.name)
  if (i === -1) return `${a.name} is not a node of the config (nodes: ${cfg.nodes.map((n) => n.name).join(", ")})`
  return i
}

/** The data dir `start-servers` gives a node: `data/<host>_<port>`. */
export const defaultDataDir = (n: NodeAddress): string => `data/${n.host.replace(/[^A-Za-z0-9.-]/g, "_")}_${n.port}`
