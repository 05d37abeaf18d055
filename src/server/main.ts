/**
 * `paxos server`: one node. Reads the config, opens (or refuses) its data file, restores the core
 * from it, starts the HTTP server (client API and peer endpoint on one port), the tick schedule,
 * the peer senders and the node loop, and runs until a signal or a fatal error.
 *
 * An initial member on an empty data dir first binds every initial member's incarnation
 * (bootstrap.ts, docs/MEMBERSHIP.md), serving only who it is meanwhile; a data dir that holds an
 * identity restarts as that node, the config file then being only whom to contact.
 *
 * Exit codes: 0 after SIGINT/SIGTERM; 1 storage refused or failed, the port is taken, or this
 * identity must not vote (it voted before under another data dir); 2 bad flags or config; 70 an
 * invariant violation (PAXOS-INVARIANT-VIOLATION in the log).
 */
import { Cause, Data, Duration, Effect, Exit, Fiber, Option, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { lookup } from "node:dns/promises"
import { readFileSync, statSync } from "node:fs"
import { isIP } from "node:net"
import { parseToken } from "../auth/client-token.ts"
import { importSecret, newBootId, SECRET_MIN_BYTES, Signer, Verifier, type PeerKey } from "../auth/peer-auth.ts"
import { defaultConfig, type NodeConfig } from "../core/config.ts"
import * as B from "../core/ballot.ts"
import { memberIds, type Config } from "../core/membership.ts"
import { restore, type DurableState } from "../core/state.ts"
import { PEER_BODY_MAX_BYTES } from "./body.ts"
import { bootstrap, startingRouter, type Starting } from "./bootstrap.ts"
import { ConfigError, defaultDataDir, isLocalhost, parseAddress, parseListen, readConfig, type ClusterConfig, type NodeAddress } from "./cluster-config.ts"
import { CLIENT_BODY_TIMEOUT_MS } from "./body.ts"
import { serveFront, type Front } from "./front.ts"
import { CLIENT_REQUESTS_MAX, HttpState, type ApiDeps, type PeerAuth, type PeerSide } from "./http.ts"
import { makeLog, type Log } from "./log.ts"
import { newCounters, newPeerAuthCounters } from "./metrics.ts"
import { Fatal, Node, SYNC_LANES, SYNC_LANES_MAX } from "./node.ts"
import { Outboxes } from "./peer.ts"
import { makeRouter, type Router } from "./routes.ts"
import { holdsData, oneLine, SqliteStore, StorageRefused } from "./storage.ts"
import { JOIN_TIMEOUT_MS, joinCluster } from "./join.ts"
import type { Watch } from "./watch.ts"

export const TICK_MS = 10
/** Bun closes a connection idle this long (seconds): above the longest request (requestTicks). */
export const IDLE_TIMEOUT_S = 60
/** A stuck shutdown is cut short after this long. */
const SHUTDOWN_GRACE_MS = 5_000

export interface ServerOptions {
  readonly configFile: string
  readonly node: string
  readonly dataDir?: string | undefined
  readonly secretFile?: string | undefined
  /** A file holding the client API's bearer token (none: the client API is open). */
  readonly clientTokenFile?: string | undefined
  /** Client requests in flight at once, at most (default CLIENT_REQUESTS_MAX). */
  readonly maxClientRequests?: number | undefined
  /** Milliseconds a client body may take to arrive (default CLIENT_BODY_TIMEOUT_MS). */
  readonly clientBodyTimeoutMs?: number | undefined
  /** fdatasyncs that may run at once (default SYNC_LANES, at most SYNC_LANES_MAX). */
  readonly syncLanes?: number | undefined
  /** No fsync at all (the bench's measure of the disk's share): acknowledged writes die with the machine. */
  readonly unsafeNoFsync?: boolean | undefined
  /** Core tuning (tests): slots between snapshots. */
  readonly snapshotEverySlots?: number | undefined
  /**
   * `ADDR[:PORT]` to listen on instead of the config line's host (e.g. 0.0.0.0 behind a
   * firewall); the port defaults to the config line's.
   */
  readonly listen?: string | undefined
  /** Join a running cluster as the learner at --node (once added with `paxos member add`), through the members F lists. */
  readonly join?: boolean | undefined
  /** How long --join tries, in milliseconds (default JOIN_TIMEOUT_MS). */
  readonly joinTimeoutMs?: number | undefined
}

/** The server cannot start: one line on stderr, exit `code`. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly code: number; readonly message: string }> {}

interface Setup {
  readonly cluster: ClusterConfig
  /** This node's line in the config file, from 0; -1 when it has none (a node that joined). */
  readonly index: number
  readonly address: NodeAddress
  readonly dataDir: string
  /** Core tuning given on the command line. */
  readonly overrides: Partial<NodeConfig>
  readonly log: Log
  readonly syncLanes: number
  /** Where to listen: --listen's address, else the --node's (`given` says which). */
  readonly listen: { readonly host: string; readonly port: number; readonly given: boolean }
}

/** Validates the options and reads the config; StartupError with exit 2 when they are wrong. */
function setup(o: ServerOptions): Effect.Effect<Setup, StartupError> {
  return Effect.try({
    try: () => {
      const cluster = readConfig(o.configFile)
      const address = parseAddress(o.node)
      if (typeof address === "string") throw new ConfigError(`--node ${o.node}: ${address}`)
      const index = cluster.nodes.findIndex((n) => n.name === address.name)
      const dataDir = o.dataDir ?? defaultDataDir(address)
      // A node with an identity in its data dir needs no line: the config file only says whom to contact.
      if (index === -1 && o.join !== true && !holdsData(dataDir)) {
        throw new ConfigError(
          `--node ${o.node}: ${address.name} is not a node of the config (nodes: ${cluster.nodes.map((n) => n.name).join(", ")}), and ${dataDir} holds no data; ` +
            `to add it to a running cluster: paxos member add ${address.name} --config ${o.configFile}, then paxos server ... --join`
        )
      }
      const overrides = o.snapshotEverySlots === undefined ? {} : { snapshotEverySlots: o.snapshotEverySlots }
      const syncLanes = o.syncLanes ?? SYNC_LANES
      if (syncLanes > SYNC_LANES_MAX) throw new ConfigError(`--sync-lanes ${syncLanes}: at most ${SYNC_LANES_MAX}`)
      const listen = o.listen === undefined ? address : parseListen(o.listen, address.port)
      if (typeof listen === "string") throw new ConfigError(`--listen ${o.listen}: ${listen}`)
      return {
        cluster,
        index,
        address,
        dataDir,
        overrides,
        log: makeLog(address.name),
        syncLanes,
        listen: { host: listen.host, port: listen.port, given: o.listen !== undefined }
      }
    },
    catch: (e) => new StartupError({ code: 2, message: e instanceof ConfigError ? e.message : oneLine(e) })
  })
}

/**
 * The shared secret for peer authentication (docs/SECURITY.md): null without one (the node runs, and says
 * loudly that peers are not authenticated). A file that cannot be read or holds fewer than
 * SECRET_MIN_BYTES bytes is a startup error (exit 2).
 */
function loadSecret(file: string | undefined, log: Log): Effect.Effect<PeerKey | null, StartupError> {
  if (file === undefined) {
    return Effect.sync(() => {
      log("WARNING-peers-not-authenticated", {
        reason: "no --secret-file or PAXOS_SECRET_FILE given; any host that reaches this port can send peer messages (see docs/SECURITY.md)"
      })
      return null
    })
  }
  const fail = (e: unknown) => new StartupError({ code: 2, message: `--secret-file ${file}: ${oneLine(e)}` })
  return Effect.gen(function* () {
    const text = yield* Effect.try({ try: () => readFileSync(file, "utf8"), catch: fail })
    const bytes = new TextEncoder().encode(text.trim()).length
    if (bytes < SECRET_MIN_BYTES) return yield* fail(`the secret has ${bytes} bytes; at least ${SECRET_MIN_BYTES} are needed (e.g. head -c 32 /dev/urandom | base64 > ${file})`)
    const key = yield* Effect.try({ try: () => importSecret(text), catch: fail })
    yield* Effect.sync(() => {
      try {
        if ((statSync(file).mode & 0o077) !== 0) log("WARNING-secret-file-readable-by-others", { file, fix: `chmod 600 ${file}` })
      } catch {
        // read a moment ago; a stat failure changes nothing
      }
    })
    return key
  })
}

/** The signer and verifier of member `self` of `clusterId` (logged once: peer-auth-enabled). */
function peerKeys(key: PeerKey | null, clusterId: string, self: number, log: Log): PeerAuth | null {
  if (key === null) return null
  const boot = newBootId()
  log("peer-auth-enabled", { boot })
  return { signer: new Signer(key, clusterId, self, boot), verifier: new Verifier(key, clusterId, self) }
}

/** The client API's bearer token, or null without one; an unusable file is a startup error (exit 2). */
function loadClientToken(file: string | undefined, log: Log): Effect.Effect<string | null, StartupError> {
  if (file === undefined) return Effect.succeed(null)
  return Effect.try({
    try: () => {
      const token = parseToken(readFileSync(file, "utf8"))
      log("client-auth-enabled", { file, paths: "/append,/list" })
      return token
    },
    catch: (e) => new StartupError({ code: 2, message: `--client-token-file ${file}: ${oneLine(e)}` })
  })
}

/**
 * The address the node binds: --listen's host, else its config line's. An IP literal as given,
 * `localhost` as 127.0.0.1, another name as the address it resolves to on this machine (the first
 * one: Bun listens on one). A config name other than localhost that resolves to a loopback address
 * (Debian maps the machine's own name to 127.0.1.1) is bound there and said loudly: no other
 * machine reaches it. A name that does not resolve is a startup error (exit 2).
 */
function bindAddress(s: Setup): Effect.Effect<string, StartupError> {
  const { host, given } = s.listen
  if (isIP(host) !== 0) return Effect.succeed(host)
  if (isLocalhost(host)) return Effect.succeed("127.0.0.1")
  const from = given ? `--listen ${host}` : s.index >= 0 ? `the config line ${s.address.name}` : `--node ${s.address.name}`
  return Effect.tryPromise({
    try: () => lookup(host),
    catch: (e) => new StartupError({ code: 2, message: `cannot resolve ${host} (${from}) to an address to listen on: ${oneLine(e)}; give --listen ADDR` })
  }).pipe(
    Effect.map(({ address }) => address),
    Effect.tap((address) =>
      Effect.sync(() => {
        if (!given && (address.startsWith("127.") || address === "::1")) {
          s.log("WARNING-listening-on-loopback", {
            address,
            reason: `${host} resolves to ${address} here, so only this machine can reach this node; if other nodes run elsewhere, fix the name's address or give --listen ADDR (docs/SECURITY.md)`
          })
        }
      })
    )
  )
}

/** `addr:port`, an IPv6 address in brackets. */
const hostPort = (addr: string, port: number): string => (addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`)

/** Opens the data file (closed when the scope ends); StartupError (exit 1) when it is refused. */
function openStore(s: Setup, unsafeNoFsync: boolean | undefined, joining: boolean): Effect.Effect<{ store: SqliteStore; durable: DurableState }, StartupError, Scope.Scope> {
  const given = { clusterId: s.cluster.clusterId, node: s.address.name, nodes: s.cluster.nodes.map((n) => n.name), joining }
  const open = Effect.try({
    try: () => SqliteStore.open(s.dataDir, given, { unsafeNoFsync: unsafeNoFsync === true }),
    catch: (e) => new StartupError({ code: 1, message: e instanceof StorageRefused ? e.message : `storage: ${oneLine(e)}` })
  })
  const close = ({ store }: { store: SqliteStore }) =>
    Effect.sync(() => {
      try {
        store.close()
      } catch (e) {
        s.log("storage-close-failed", { error: oneLine(e) })
      }
    })
  return Effect.acquireRelease(open, close).pipe(
    Effect.tap(({ store, durable }) => {
      if (!store.fsync) {
        s.log("WARNING-unsafe-no-fsync", {
          reason: "--unsafe-no-fsync: nothing is synced to disk; a crash of this machine may lose acknowledged appends. For measuring what the disk costs, never for data"
        })
      }
      const who = store.identity
      s.log("storage-opened", {
        file: store.file,
        member: who.memberId ?? undefined,
        incarnation: who.incarnation,
        bound: who.initial !== null,
        promised: B.show(durable.promised),
        accepted: durable.accepted.length,
        snapshot: durable.snapshot.slot,
        list: durable.snapshot.list.length,
        fsync: store.fsync
      })
    })
  )
}

/**
 * An initial member that is not bound yet (its data dir is new): serves who it is while it asks
 * the others, and binds the first configuration durably once it knows every incarnation; fails
 * (exit 1) when its identity voted before under another data directory.
 */
function bindFirst(s: Setup, store: SqliteStore, side: PeerSide, starting: Starting): Effect.Effect<void, StartupError> {
  return Effect.gen(function* () {
    const who = store.identity
    starting.side = { ...side, who: () => store.identity, membership: () => null }
    const d = yield* bootstrap({ side, incarnation: who.incarnation, members: s.cluster.nodes, waiting: (names) => (starting.waitingFor = names) })
    if (d._tag === "Refuse") return yield* new StartupError({ code: 1, message: d.reason })
    yield* Effect.try({ try: () => store.bind(d.initial), catch: (e) => new StartupError({ code: 1, message: `storage: cannot bind: ${oneLine(e)}` }) })
    s.log("bootstrap-bound", {
      members: d.initial.members.map((m) => `${m.id}=${m.address}`).join(","),
      from: d.adoptedFrom === null ? "every member's answer" : `the configuration ${s.cluster.nodes[d.adoptedFrom]?.name} bound`
    })
  })
}

/**
 * A node started with --join on a data dir that has not joined: asks the members of the config
 * file to bind its incarnation, and records what they answered, durably; fails (exit 1, or 2 for
 * a token they refuse) when no member lets it join within `timeoutMs`.
 */
function joinFirst(s: Setup, store: SqliteStore, token: string | null, timeoutMs: number, starting: Starting): Effect.Effect<void, StartupError> {
  return Effect.gen(function* () {
    const who = store.identity
    s.log("joining", { through: s.cluster.nodes.map((n) => n.name).join(","), incarnation: who.incarnation, timeoutMs })
    const r = yield* Effect.promise(() =>
      joinCluster({
        members: s.cluster.nodes,
        address: s.address.name,
        incarnation: who.incarnation,
        token: token ?? undefined,
        timeoutMs,
        log: s.log,
        asking: (names) => (starting.waitingFor = names)
      })
    )
    if (r._tag === "Failed") return yield* new StartupError({ code: r.code, message: r.message })
    yield* Effect.try({ try: () => store.joinedAs(r.cluster, r.id, r.initial), catch: (e) => new StartupError({ code: 1, message: `storage: cannot record the join: ${oneLine(e)}` }) })
    s.log("joined", { via: r.via, cluster: r.cluster, member: r.id, members: r.initial.members.map((m) => `${m.id}=${m.address}`).join(",") })
  })
}

/** Listens on `bind` and the node's port and serves with `first`'s router (until the scope ends); StartupError when the port is taken. */
function listen(s: Setup, bind: string, first: (watch: Watch) => Router): Effect.Effect<Front, StartupError, Scope.Scope> {
  const options = {
    port: s.listen.port,
    hostname: bind,
    idleTimeout: IDLE_TIMEOUT_S,
    maxRequestBodySize: PEER_BODY_MAX_BYTES + 1024 * 1024
  }
  return Effect.acquireRelease(
    Effect.try({
      try: () => serveFront(options, s.log, first),
      catch: (e) => new StartupError({ code: 1, message: `cannot listen on ${hostPort(bind, s.listen.port)}: ${oneLine(e)}` })
    }),
    (front) => Effect.sync(() => front.stop())
  )
}

/**
 * At shutdown, before the HTTP server closes (finalizers run in reverse order): answers every
 * waiting request (503 or 504, all 504 after a fatal error) and gives the answers time to leave.
 */
function answerWaitingAtExit(node: Node, log: Log): Effect.Effect<void, never, Scope.Scope> {
  return Effect.addFinalizer((exit) =>
    Effect.gen(function* () {
      const n = node.answerAll(Exit.isFailure(exit) && !Exit.isInterrupted(exit))
      if (n > 0) yield* Effect.sleep(Duration.millis(100))
      log("stopped", { answered: n })
    })
  )
}

/** The whole server as a scoped program. Fails with StartupError or Fatal; runs until interrupted. */
export function server(o: ServerOptions): Effect.Effect<never, StartupError | Fatal> {
  return Effect.scoped(
    Effect.gen(function* () {
      const s = yield* setup(o)
      const bind = yield* bindAddress(s)
      const key = yield* loadSecret(o.secretFile, s.log)
      const clientToken = yield* loadClientToken(o.clientTokenFile, s.log)
      const { store, durable } = yield* openStore(s, o.unsafeNoFsync, o.join === true)
      const counters = newCounters()
      const peerAuthFailures = newPeerAuthCounters()
      const startedAt = Date.now()
      const starting: Starting = { address: s.address.name, phase: "Bootstrapping", waitingFor: [], side: null, counters, peerAuthFailures, startedAt }
      const front = yield* listen(s, bind, () => startingRouter(starting))
      let who = store.identity
      if (who.initial !== null && o.join === true) s.log("join-ignored", { reason: `this data dir holds the identity of member ${who.memberId}: it restarts as that member` })
      // An initial member's data dir that never bound (so never voted) may join instead.
      if (who.initial === null && (o.join === true || who.memberId === null)) {
        if (o.join !== true) {
          return yield* new StartupError({ code: 1, message: `data dir ${s.dataDir} was made by --join and has not joined yet: start it with --join again` })
        }
        starting.phase = "Joining"
        yield* joinFirst(s, store, clientToken, o.joinTimeoutMs ?? JOIN_TIMEOUT_MS, starting)
        who = store.identity
      }
      if (who.clusterId === null || who.memberId === null) return yield* new StartupError({ code: 1, message: `data dir ${s.dataDir} holds no member id` })
      const self = who.memberId
      const clusterId = who.clusterId
      const peerAuth = peerKeys(key, clusterId, self, s.log)
      const side: PeerSide = { self, clusterId, counters, peerAuthFailures, log: s.log, peerAuth, nameOf: (id) => s.cluster.nodes[id]?.name ?? `node ${id}` }
      if (who.initial === null) yield* bindFirst(s, store, side, starting)
      who = store.identity
      const initial = who.initial as Config
      const cfg = defaultConfig(self, initial.members.length, { ...s.overrides, initial, joining: who.joined })
      const seed = randomBytes(4).readUInt32LE(0)
      const state = restore(cfg, durable, seed)
      const outboxes = new Outboxes({ self, incarnation: who.incarnation, membership: state.membership, clusterId, counters, log: s.log, signer: peerAuth?.signer ?? null })
      const node = new Node(state, { cfg, address: s.address.name, store, outboxes, counters, log: s.log, tickMs: TICK_MS, syncLanes: s.syncLanes })
      const http = new HttpState(o.maxClientRequests ?? CLIENT_REQUESTS_MAX, o.clientBodyTimeoutMs ?? CLIENT_BODY_TIMEOUT_MS)
      const deps: ApiDeps = {
        ...side,
        nameOf: (id) => node.nameOf(id),
        who: () => store.identity,
        membership: () => node.state.membership,
        node,
        outboxes,
        store,
        startedAt,
        clientToken,
        http
      }
      front.use((watch) => makeRouter(deps, watch))
      yield* answerWaitingAtExit(node, s.log)
      yield* Effect.forkScoped(outboxes.run())
      yield* Effect.forkScoped(node.clock())
      s.log("serving", {
        listen: hostPort(bind, s.listen.port),
        node: self,
        members: memberIds(state.membership).map((id) => node.nameOf(id)).join(","),
        cluster: clusterId,
        incarnation: who.incarnation,
        dataDir: s.dataDir,
        peerAuth: peerAuth !== null,
        clientAuth: clientToken !== null,
        fsync: store.fsync,
        maxClientRequests: http.clientRequestsMax
      })
      return yield* node.run()
    })
  )
}

/**
 * Runs the server until SIGINT/SIGTERM; returns the exit code. Errors are one line on stderr;
 * an invariant violation's line carries PAXOS-INVARIANT-VIOLATION.
 */
export async function runServer(o: ServerOptions): Promise<number> {
  const fiber = Effect.runFork(server(o))
  const stop = (signal: string) => {
    process.stderr.write(`${new Date().toISOString()} ${o.node} signal ${signal}: stopping\n`)
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref()
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGINT", () => stop("SIGINT"))
  process.once("SIGTERM", () => stop("SIGTERM"))
  const exit = await Effect.runPromise(Fiber.await(fiber))
  return exitCode(o.node, exit)
}

function exitCode(node: string, exit: Exit.Exit<never, StartupError | Fatal>): number {
  if (Exit.isSuccess(exit) || Exit.isInterrupted(exit)) return 0
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    // A Fatal's line was written when it happened (node.ts).
    if (e._tag === "StartupError") process.stderr.write(`paxos server: ${e.message}\n`)
    return e.code
  }
  process.stderr.write(`${new Date().toISOString()} ${node} crashed: ${oneLine(Cause.pretty(exit.cause))}\n`)
  return 1
}
