/**
 * Durable storage of one node in `bun:sqlite`, WAL journal. All writes of a batch are applied in
 * one transaction: one fsync for every client request of the batch (group commit).
 *
 * The fsync: SQLite runs with `synchronous=NORMAL`, so a commit writes its frames to the WAL file
 * without syncing it, and the store then runs fdatasync(2) on the WAL file itself. `persist` does
 * it before it returns; `commit` only commits, and `syncAsync` runs the fdatasync on a worker thread
 * (node:fs), calling back when every commit made before it is durable, so the event loop serves
 * sockets meanwhile. Either way nothing that depends on a batch's writes leaves before an
 * fdatasync that started after its commit returned (src/server/node.ts holds it until then).
 * This is what `synchronous=FULL` does at every commit (a sync of the WAL), moved off the event
 * loop. fsync is per file, not per descriptor, so a descriptor of our own on the WAL file syncs
 * what SQLite wrote through its own. SQLite never deletes the WAL while its connection is open (it
 * rewinds it after a checkpoint, and NORMAL still syncs the WAL before each checkpoint and the
 * database after it); the store still checks before every sync that its descriptor is the file
 * at the WAL's path, and reopens it if not (`FileAtPath`: without a stat, which would slow the
 * sync).
 *
 * Tables: meta (format version, the node's identity, the snapshot's membership), promise,
 * accepted (slot PK), snapshot (slot), list_chunks (the snapshot's list: one row per snapshot,
 * holding the values it added as a blob of little-endian float64s, keyed by the index of its first
 * value), clients (the client table at the snapshot, rewritten row by row only where it changed).
 * A snapshot thus costs one insert for its values, not one per value (7,500 inserts took ~5 ms, a
 * stall of every node at once, since all snapshot at the same slots).
 *
 * The identity (docs/MEMBERSHIP.md, "Identities"), in meta: the node's address; its incarnation,
 * 16 random hex digits minted when the file is created and durable before anyone is told of it;
 * the cluster id and member id (an initial member's come from the config file at creation, a
 * joining node's from the member that bound it); and, once bound, the configuration it was bound
 * in (`initial`, JSON). The snapshot's membership is the meta row `membership` (JSON), written
 * only when it changed. From then on the config file is only a list of addresses to contact: a
 * data file with an identity is checked against the node's address alone.
 *
 * Upgrades run in place at start, in one transaction each: format 1 kept one list row per value;
 * format 2 had no incarnations, so a format 2 file gets the one derived from its index
 * (`derivedIncarnation`) and is bound at once in the configuration of the config file's nodes
 * with derived incarnations, which is what every node of that cluster does: such a cluster keeps
 * working as it was. At start the file is checked read-only first (integrity, format version,
 * address; for older formats the cluster id too): a file that fails is refused and never modified.
 *
 * `--unsafe-no-fsync` (the bench's measure of what the disk costs, as etcd's flag of that name):
 * SQLite runs with `synchronous=OFF` and every fdatasync of the WAL becomes an fstat of the same
 * descriptor, on the same worker thread, so a sync keeps its handovers and loses only the disk. A
 * crash of the machine (not of the process: the kernel still holds what was written) may then lose
 * writes the node has acknowledged. Never for a cluster that holds anything.
 */
import { Database } from "bun:sqlite"
import { randomBytes } from "node:crypto"
import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, fstat, fstatSync, mkdirSync, openSync, readlinkSync, statSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import { Schema as S } from "effect"
import * as B from "../core/ballot.ts"
import type { Ballot } from "../core/ballot.ts"
import { configProblem, derivedIncarnation, initialConfig, INCARNATION_PATTERN, type Config, type Membership } from "../core/membership.ts"
import { Batch, ConfigSchema, MembershipSchema, type AcceptedEntry, type ClientEntry } from "../core/messages.ts"
import type { DurableState, Write } from "../core/state.ts"

/** Bumped on any incompatible change of the tables; a newer file is refused, never downgraded. */
export const FORMAT_VERSION = 3
export const DATA_FILE = "paxos.sqlite"

/** What the server knows before it opens its data file: to create one, or to check and upgrade an older one. */
export interface StoreIdentity {
  /** `host:port` of the node (its --node): a file of another node is refused. */
  readonly node: string
  /** The config file's cluster id: written into a new file of an initial member; a file of format 1 or 2 must hold this one. */
  readonly clusterId: string
  /** The config file's nodes in order (default: this node alone): an initial member's id is its index. */
  readonly nodes?: readonly string[]
  /** A new file is for a node that joins (--join): no cluster or member id until it has joined. */
  readonly joining?: boolean
}

/** Who this data file speaks for (docs/MEMBERSHIP.md, "Identities"). */
export interface NodeIdentity {
  /** `host:port`. */
  readonly address: string
  /** 16 lowercase hex digits, minted when the file was created. */
  readonly incarnation: string
  /** null while a node started with --join has not joined yet. */
  readonly clusterId: string | null
  /** null while a node started with --join has not joined yet. */
  readonly memberId: number | null
  /**
   * The configuration this node was bound in: an initial member's first configuration (every
   * initial member bound, before its first vote), or the one a joined node was bound in; null
   * until then.
   */
  readonly initial: Config | null
  /** The node joined a running cluster (--join): it applies nothing before its first snapshot. */
  readonly joined: boolean
}

/** Whether `dir` holds a data file (one with something in it). */
export const holdsData = (dir: string): boolean => {
  const file = join(dir, DATA_FILE)
  return existsSync(file) && statSync(file).size > 0
}

/** A new incarnation: 64 random bits as 16 lowercase hex digits. */
export const mintIncarnation = (): string => randomBytes(8).toString("hex")

/** The data file cannot be used; `message` is one line saying why and what to do. */
export class StorageRefused extends Error {
  override readonly name = "StorageRefused"
}

const LIST_CHUNKS_TABLE = "CREATE TABLE list_chunks (start INTEGER PRIMARY KEY, data BLOB NOT NULL)"

const SCHEMA = [
  "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
  "CREATE TABLE promise (id INTEGER PRIMARY KEY CHECK (id = 0), round INTEGER NOT NULL, leader INTEGER NOT NULL)",
  "CREATE TABLE accepted (slot INTEGER PRIMARY KEY, round INTEGER NOT NULL, leader INTEGER NOT NULL, value TEXT NOT NULL)",
  "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), slot INTEGER NOT NULL)",
  LIST_CHUNKS_TABLE,
  "CREATE TABLE clients (client TEXT PRIMARY KEY, seq INTEGER NOT NULL, value INTEGER NOT NULL, idx INTEGER NOT NULL, slot INTEGER NOT NULL) WITHOUT ROWID"
]

const decodeBatch = S.decodeUnknownSync(S.parseJson(Batch))
const decodeConfig = S.decodeUnknownSync(S.parseJson(ConfigSchema))
const decodeMembership = S.decodeUnknownSync(S.parseJson(MembershipSchema))

export interface StoreOptions {
  /** No fsync at all (see the top of this file): acknowledged writes die with the machine. */
  readonly unsafeNoFsync?: boolean
}

/** The fdatasync of the WAL, or with --unsafe-no-fsync an fstat in its place (same thread, same descriptor). */
const syncOf = (unsafe: boolean) => ({
  now: unsafe ? (fd: number) => void fstatSync(fd) : fdatasyncSync,
  async: unsafe ? (fd: number, cb: (e: Error | null) => void) => fstat(fd, (e) => cb(e)) : fdatasync
})

/** Counters of the store, for /status and /metrics. */
export interface StoreStats {
  /** Committed write transactions (one fdatasync may cover several: see `syncAsync`). */
  transactions: number
  writes: number
  /** Rows of the snapshot's list. */
  listRows: number
}

export class SqliteStore {
  readonly stats: StoreStats
  private promised: Ballot
  private snapSlot: number
  private readonly stmt: ReturnType<SqliteStore["prepare"]>
  private readonly applyAll: (writes: readonly Write[]) => void
  private wal: FileAtPath | null = null
  /** fdatasyncs started by `syncAsync` that have not ended. */
  private syncing = 0
  /** What the clients table holds. */
  private clients: Map<string, ClientEntry>
  /** The membership the meta row holds (the last snapshot's), and its JSON. */
  private membership: Membership | undefined
  private membershipJson: string | undefined
  private who: NodeIdentity

  /** false with --unsafe-no-fsync. */
  readonly fsync: boolean
  private readonly sync: ReturnType<typeof syncOf>

  private constructor(
    private readonly db: Database,
    readonly file: string,
    durable: DurableState,
    identity: NodeIdentity,
    unsafeNoFsync: boolean
  ) {
    this.fsync = !unsafeNoFsync
    this.sync = syncOf(unsafeNoFsync)
    this.who = identity
    this.promised = durable.promised
    this.snapSlot = durable.snapshot.slot
    this.membership = durable.snapshot.membership
    this.membershipJson = this.membership === undefined ? undefined : JSON.stringify(this.membership)
    this.clients = new Map(durable.snapshot.clients.map((c) => [c.client, c]))
    this.stats = { transactions: 0, writes: 0, listRows: durable.snapshot.list.length }
    this.stmt = this.prepare()
    this.applyAll = db.transaction((writes: readonly Write[]) => {
      for (const w of writes) this.apply(w)
    })
  }

  /**
   * Opens (creating if absent) the data file in `dir` for `identity` and loads what it holds; a
   * new file gets a new incarnation, durable before this returns. Throws StorageRefused for a file
   * of another node (or, of an older format, of another cluster), of a newer format, or corrupt.
   */
  static open(dir: string, identity: StoreIdentity, options: StoreOptions = {}): { store: SqliteStore; durable: DurableState; identity: NodeIdentity } {
    const unsafe = options.unsafeNoFsync === true
    const file = join(dir, DATA_FILE)
    try {
      mkdirSync(dir, { recursive: true })
    } catch (e) {
      throw new StorageRefused(`cannot create data dir ${dir}: ${oneLine(e)}`)
    }
    const existing = existsSync(file) && statSync(file).size > 0
    if (existing) checkReadOnly(file, identity)
    let db: Database
    try {
      db = new Database(file, { create: true, strict: true })
      // Held for the life of the process: a second server on the same data dir is refused.
      db.run("PRAGMA locking_mode = EXCLUSIVE")
      // With --unsafe-no-fsync not even the switch to WAL (which syncs) may reach the disk.
      if (unsafe) db.run("PRAGMA synchronous = OFF")
      db.run("PRAGMA journal_mode = WAL")
      // The store syncs the WAL itself after each commit (see the top of this file).
      if (!unsafe) db.run("PRAGMA synchronous = NORMAL")
      db.run("PRAGMA foreign_keys = OFF")
      // Takes the exclusive lock now rather than at the first write.
      db.run("BEGIN IMMEDIATE")
      db.run("COMMIT")
      const created = !hasTable(db, "meta")
      if (created) create(db, identity)
      if (readMeta(db).get("format_version") === "1") upgradeFrom1(db)
      if (readMeta(db).get("format_version") === "2") upgradeFrom2(db, identity)
      // The new incarnation is durable before anyone hears of it: the WAL, and the directory that
      // now holds the file.
      if (created) syncNew(dir, file, unsafe)
    } catch (e) {
      if (e instanceof StorageRefused) throw e
      throw isBusy(e) ? refusedBusy(file) : new StorageRefused(`data file ${file} cannot be opened: ${oneLine(e)}`)
    }
    const durable = load(db, file)
    const who = loadIdentity(db, file)
    return { store: new SqliteStore(db, file, durable, who, unsafe), durable, identity: who }
  }

  /** Who this file speaks for. */
  get identity(): NodeIdentity {
    return this.who
  }

  /**
   * Binds an initial member in its first configuration (docs/MEMBERSHIP.md, "Bootstrap"): durable
   * when it returns, before the node's first promise or vote. Throws if the file is bound already
   * or has no member id.
   */
  bind(initial: Config): void {
    const w = this.who
    if (w.initial !== null || w.memberId === null || w.clusterId === null) throw new Error(`bind: data file ${this.file} is bound already or has no member id`)
    this.writeIdentity({ ...w, initial })
  }

  /**
   * Records what a member answered to this node's --join: its cluster, its member id and the
   * configuration that bound it; durable when it returns. Throws if the file is bound already.
   */
  joinedAs(clusterId: string, memberId: number, initial: Config): void {
    if (this.who.initial !== null) throw new Error(`join: data file ${this.file} is bound already`)
    this.writeIdentity({ ...this.who, clusterId, memberId, initial, joined: true })
  }

  private writeIdentity(next: NodeIdentity): void {
    const why = identityProblem(next)
    if (why !== null) throw new Error(`identity: ${why}`)
    this.db.transaction(() => writeIdentityRows(this.db, next))()
    this.sync.now(this.walFd())
    this.who = next
  }

  /** Applies every write of a batch in one transaction; durable when it returns. Throws on failure. */
  persist(writes: readonly Write[]): void {
    this.commit(writes)
    this.sync.now(this.walFd())
  }

  /** Applies every write of a batch in one transaction, not yet durable (see `syncAsync`). Throws on failure. */
  commit(writes: readonly Write[]): void {
    this.applyAll(writes)
    this.stats.transactions += 1
    this.stats.writes += writes.length
  }

  /**
   * Makes every commit made so far durable, off the event loop: `done` gets null once they are, or
   * the error. A commit made while it runs needs the next one.
   */
  syncAsync(done: (error: Error | null) => void): void {
    const fd = this.walFd()
    this.syncing += 1
    this.sync.async(fd, (e) => {
      // Several syncs may run at once (the node's sync lanes): a descriptor the WAL's path no
      // longer holds is closed only once none of them can still be using it.
      if (--this.syncing === 0) this.wal?.closeRetired()
      done(e ?? null)
    })
  }

  /** A descriptor of the WAL file as it is at its path now (opened at the first sync, reopened if the file was replaced). */
  private walFd(): number {
    this.wal ??= new FileAtPath(`${this.file}-wal`)
    return this.wal.fd()
  }

  /** Closes the file and releases its lock (close(true) finalizes every statement first, or SQLite keeps it open). */
  close(): void {
    this.wal?.close()
    this.wal = null
    this.db.close(true)
  }

  private prepare() {
    const db = this.db
    return {
      promise: db.prepare("UPDATE promise SET round = ?, leader = ? WHERE id = 0"),
      accept: db.prepare("INSERT OR REPLACE INTO accepted (slot, round, leader, value) VALUES (?, ?, ?, ?)"),
      dropAccepted: db.prepare("DELETE FROM accepted WHERE slot <= ?"),
      snapSlot: db.prepare("UPDATE snapshot SET slot = ? WHERE id = 0"),
      dropChunksFrom: db.prepare("DELETE FROM list_chunks WHERE start >= ?"),
      chunkBefore: db.prepare<{ start: number; data: Uint8Array }, [number]>("SELECT start, data FROM list_chunks WHERE start < ? ORDER BY start DESC LIMIT 1"),
      putChunk: db.prepare("INSERT OR REPLACE INTO list_chunks (start, data) VALUES (?, ?)"),
      dropClient: db.prepare("DELETE FROM clients WHERE client = ?"),
      putClient: db.prepare("INSERT OR REPLACE INTO clients (client, seq, value, idx, slot) VALUES (?, ?, ?, ?, ?)"),
      putMeta: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
    }
  }

  private apply(w: Write): void {
    switch (w._tag) {
      case "Promise":
        this.raisePromise(w.promised)
        return
      case "Accept":
        this.raisePromise(w.promised)
        for (const e of w.entries) {
          if (e.slot <= this.snapSlot) continue
          this.stmt.accept.run(e.slot, e.ballot.round, e.ballot.leader, JSON.stringify(e.value))
        }
        return
      case "Snapshot":
        this.writeSnapshot(w)
        return
    }
  }

  /** The promise only grows (as the acceptor's own state does). */
  private raisePromise(b: Ballot): void {
    if (!B.gt(b, this.promised)) return
    this.stmt.promise.run(b.round, b.leader)
    this.promised = b
  }

  /** The durable list becomes its first `from` values followed by `values`; older accepts go. */
  private writeSnapshot(w: Extract<Write, { _tag: "Snapshot" }>): void {
    this.stmt.snapSlot.run(w.slot)
    this.snapSlot = w.slot
    this.stmt.dropAccepted.run(w.slot)
    if (w.from < this.stats.listRows) this.cutList(w.from)
    if (w.values.length > 0) this.stmt.putChunk.run(w.from, encodeValues(w.values))
    this.stats.listRows = w.from + w.values.length
    this.writeClients(w.clients)
    this.writeMembership(w.membership)
  }

  /** The snapshot's membership: written only when it changed (most snapshots keep the same one). */
  private writeMembership(m: Membership): void {
    if (m === this.membership) return
    const json = JSON.stringify(m)
    if (json !== this.membershipJson) this.stmt.putMeta.run("membership", json)
    this.membership = m
    this.membershipJson = json
  }

  /** Keeps the first `length` values of the durable list. */
  private cutList(length: number): void {
    this.stmt.dropChunksFrom.run(length)
    const last = this.stmt.chunkBefore.get(length)
    if (last === null) return
    const keep = (length - last.start) * 8
    if (last.data.byteLength > keep) this.stmt.putChunk.run(last.start, last.data.subarray(0, keep))
  }

  /** The clients table becomes `clients`: only rows that changed are written. */
  private writeClients(clients: readonly ClientEntry[]): void {
    const next = new Map<string, ClientEntry>()
    for (const c of clients) {
      next.set(c.client, c)
      const had = this.clients.get(c.client)
      if (had !== undefined && had.seq === c.seq && had.value === c.value && had.index === c.index && had.slot === c.slot) continue
      this.stmt.putClient.run(c.client, c.seq, c.value, c.index, c.slot)
    }
    for (const client of this.clients.keys()) if (!next.has(client)) this.stmt.dropClient.run(client)
    this.clients = next
  }
}

/**
 * A read-only descriptor of whatever file is at `path` now: `fd()` reopens when the file it holds
 * is no longer there (deleted, renamed, replaced). It checks by reading the descriptor's link in
 * /proc/self/fd, not by stat: a stat reads the file's timestamps, and on Linux 6.13 and later the
 * next write after such a read stamps them at full resolution, so every write dirties the inode.
 * ext4 without a journal then writes the inode block synchronously inside the fdatasync that
 * follows: with a stat in between, an fdatasync took 1.32x as long (scripts/bench-sync.ts;
 * docs/PERFORMANCE.md, "The sync lane paces the cluster"). Without /proc it falls back to stat.
 */
export class FileAtPath {
  private held: { readonly fd: number; readonly link: string | null; readonly ino: number } | null = null
  /** Descriptors of files the path no longer holds, kept open until `closeRetired` (a sync may still use one). */
  private retired: number[] = []

  constructor(readonly path: string) {}

  fd(): number {
    const h = this.held
    if (h !== null && (h.link !== null ? linkOf(h.fd) === h.link : statSync(this.path).ino === h.ino)) return h.fd
    if (h !== null) this.retired.push(h.fd)
    this.held = null
    const fd = openSync(this.path, "r")
    const link = linkOf(fd)
    // Gone between the open and the readlink: checked by stat, so the next call reopens.
    this.held = { fd, link: link?.endsWith(" (deleted)") === true ? null : link, ino: fstatSync(fd).ino }
    return fd
  }

  /** Whether it checks through /proc (else by stat). */
  get viaProc(): boolean {
    return this.held?.link != null
  }

  /**
   * Closes the descriptors of replaced files. Call it only when no fdatasync that got one from
   * `fd()` is still running: until the call is made, its number must stay this file's.
   */
  closeRetired(): void {
    for (const fd of this.retired.splice(0)) closeSync(fd)
  }

  close(): void {
    this.closeRetired()
    if (this.held !== null) closeSync(this.held.fd)
    this.held = null
  }
}

/** Where a descriptor's file is linked now (" (deleted)" appended once unlinked), or null without /proc. */
function linkOf(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return null
  }
}

/**
 * Checks an existing data file without writing to it; throws StorageRefused. A read-only
 * connection may create empty `-wal` and `-shm` files next to it: those it created are removed
 * again, so a refused data dir is left exactly as it was.
 */
function checkReadOnly(file: string, id: StoreIdentity): void {
  const created = [`${file}-wal`, `${file}-shm`].filter((f) => !existsSync(f))
  try {
    checkReadOnlyWith(file, id)
  } finally {
    for (const f of created) {
      try {
        if (f.endsWith("-shm") || statSync(f).size === 0) unlinkSync(f)
      } catch {
        // not created after all
      }
    }
  }
}

function checkReadOnlyWith(file: string, id: StoreIdentity): void {
  let db: Database
  try {
    db = new Database(file, { readonly: true, strict: true })
  } catch (e) {
    throw refusedCorrupt(file, e)
  }
  try {
    const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all()
    const problems = check.map((r) => r.quick_check).filter((r) => r !== "ok")
    if (problems.length > 0) throw refusedCorrupt(file, new Error(problems.slice(0, 3).join("; ")))
    if (!hasTable(db, "meta")) {
      const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all()
      if (tables.length === 0) return // an empty database: treated as fresh
      throw new StorageRefused(`data file ${file} is not a paxos data file (no meta table); refusing to use it`)
    }
    checkMeta(file, readMeta(db), id)
  } catch (e) {
    if (e instanceof StorageRefused) throw e
    throw refusedCorrupt(file, e)
  } finally {
    db.close(true)
  }
}

function checkMeta(file: string, meta: Map<string, string>, id: StoreIdentity): void {
  const version = Number(meta.get("format_version"))
  if (!Number.isSafeInteger(version)) throw new StorageRefused(`data file ${file} has no valid format version; refusing to use it`)
  if (version > FORMAT_VERSION) {
    throw new StorageRefused(`data file ${file} has format version ${version}, newer than this binary's ${FORMAT_VERSION}; use a newer paxos binary`)
  }
  if (version < 1) {
    throw new StorageRefused(`data file ${file} has old format version ${version} (this binary writes ${FORMAT_VERSION}) and no upgrade exists`)
  }
  // Before format 3 the config file was the cluster: its hash had to match. From format 3 on, the
  // identity lives in the file and the config file is only addresses to contact.
  const cluster = meta.get("cluster_id")
  if (version < 3 && cluster !== id.clusterId) {
    throw new StorageRefused(
      `data file ${file} belongs to another cluster (cluster id ${cluster}, this config's is ${id.clusterId}); refusing to start. Use another --data-dir, or remove it to start this node empty`
    )
  }
  const node = meta.get("node")
  if (node !== id.node) {
    throw new StorageRefused(`data file ${file} belongs to node ${node}, not ${id.node}; refusing to start. Use that node's own --data-dir`)
  }
  if (version < 3 && !(id.nodes ?? [id.node]).includes(id.node)) {
    throw new StorageRefused(`data file ${file} has format version ${version}, and upgrading it needs its node ${id.node} in the config file`)
  }
}

/** Format 1 to 2: the list's rows become one chunk, in one transaction (all or nothing). */
function upgradeFrom1(db: Database): void {
  db.transaction(() => {
    const rows = db.query<{ idx: number; value: number }, []>("SELECT idx, value FROM list ORDER BY idx").all()
    const values = new Float64Array(rows.length)
    rows.forEach((r, i) => {
      if (r.idx !== i) throw new Error(`the list has a gap at index ${i}`)
      values[i] = r.value
    })
    db.run(LIST_CHUNKS_TABLE)
    if (values.length > 0) db.prepare("INSERT INTO list_chunks (start, data) VALUES (0, ?)").run(encodeValues(values))
    db.run("DROP TABLE list")
    db.run("UPDATE meta SET value = '2' WHERE key = 'format_version'")
  })()
}

/**
 * Format 2 to 3: the identity. A format 2 cluster had no incarnations: the node gets the one derived
 * from its index, and is bound at once in the config file's nodes with derived incarnations (every
 * node of the cluster does the same, so they agree without a message).
 */
function upgradeFrom2(db: Database, id: StoreIdentity): void {
  const nodes = id.nodes ?? [id.node]
  const index = nodes.indexOf(id.node)
  const initial = initialConfig(nodes, nodes.map((_, i) => derivedIncarnation(i)))
  db.transaction(() => {
    writeIdentityRows(db, { address: id.node, clusterId: id.clusterId, memberId: index, incarnation: derivedIncarnation(index), initial, joined: false })
    db.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('upgraded_from_2', ?)", [new Date().toISOString()])
    db.run("UPDATE meta SET value = '3' WHERE key = 'format_version'")
  })()
}

/** Values as the bytes of little-endian float64s (every safe integer is exact in one). */
function encodeValues(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 8)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i] as number, true)
  return bytes
}

/** The values of a chunk's bytes; throws when they are not whole float64s. */
function decodeValues(data: Uint8Array): Float64Array {
  if (!(data instanceof Uint8Array) || data.byteLength % 8 !== 0) throw new Error("a list chunk is not a whole number of 8-byte values")
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const out = new Float64Array(data.byteLength / 8)
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true)
  return out
}

/** A new file: the tables, and an identity with a fresh incarnation (a joining node's has no cluster or member id yet). */
function create(db: Database, id: StoreIdentity): void {
  const nodes = id.nodes ?? [id.node]
  const memberId = id.joining === true ? null : nodes.indexOf(id.node)
  if (memberId === -1) throw new Error(`create: ${id.node} is not one of the config's nodes`)
  db.transaction(() => {
    for (const sql of SCHEMA) db.run(sql)
    const meta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)")
    meta.run("format_version", String(FORMAT_VERSION))
    meta.run("created_at", new Date().toISOString())
    writeIdentityRows(db, { address: id.node, clusterId: memberId === null ? null : id.clusterId, memberId, incarnation: mintIncarnation(), initial: null, joined: false })
    db.run("INSERT INTO promise (id, round, leader) VALUES (0, 0, 0)")
    db.run("INSERT INTO snapshot (id, slot) VALUES (0, 0)")
  })()
}

/** The meta rows of an identity (inside the caller's transaction). */
function writeIdentityRows(db: Database, w: NodeIdentity): void {
  const put = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
  const drop = db.prepare("DELETE FROM meta WHERE key = ?")
  const row = (key: string, value: string | null) => (value === null ? drop.run(key) : put.run(key, value))
  row("node", w.address)
  row("incarnation", w.incarnation)
  row("cluster_id", w.clusterId)
  row("member_id", w.memberId === null ? null : String(w.memberId))
  row("initial", w.initial === null ? null : JSON.stringify(w.initial))
  row("joined", w.joined ? "1" : null)
}

/** What is wrong with an identity (null: nothing). */
function identityProblem(w: NodeIdentity): string | null {
  if (!INCARNATION_PATTERN.test(w.incarnation)) return "a malformed incarnation"
  if ((w.clusterId === null) !== (w.memberId === null)) return "a cluster id without a member id, or the other way round"
  if (w.memberId !== null && (!Number.isSafeInteger(w.memberId) || w.memberId < 0)) return `member id ${w.memberId}`
  if (w.initial !== null) {
    if (w.memberId === null) return "bound, but no member id"
    const why = configProblem(w.initial)
    if (why !== null) return `the configuration it was bound in: ${why}`
    const me = w.initial.members.find((m) => m.id === w.memberId)
    if (me === undefined) return `the configuration it was bound in has no member ${w.memberId}`
    if (me.address !== w.address) return `the configuration it was bound in gives member ${w.memberId} the address ${me.address}, not ${w.address}`
    if (me.incarnation !== w.incarnation) return `the configuration it was bound in binds member ${w.memberId} to another incarnation`
  }
  return null
}

/** Reads the identity; throws StorageRefused when it is missing or malformed. */
function loadIdentity(db: Database, file: string): NodeIdentity {
  try {
    const meta = readMeta(db)
    const address = meta.get("node")
    const incarnation = meta.get("incarnation")
    if (address === undefined || incarnation === undefined) throw new Error("no node address or incarnation")
    const member = meta.get("member_id")
    const memberId = member === undefined ? null : /^\d{1,9}$/.test(member) ? Number(member) : NaN
    const initialJson = meta.get("initial")
    const w: NodeIdentity = {
      address,
      incarnation,
      clusterId: meta.get("cluster_id") ?? null,
      memberId,
      initial: initialJson === undefined ? null : decodeConfig(initialJson),
      joined: meta.get("joined") === "1"
    }
    const why = identityProblem(w)
    if (why !== null) throw new Error(`its identity has ${why}`)
    return w
  } catch (e) {
    throw refusedCorrupt(file, e)
  }
}

/**
 * Makes a new file durable: its WAL (the identity's commit), its database file, and the directory
 * entries of both (fsync of the directory). With --unsafe-no-fsync, fstats in their place.
 */
function syncNew(dir: string, file: string, unsafe: boolean): void {
  for (const path of [`${file}-wal`, file, dir]) {
    const fd = openSync(path, "r")
    try {
      if (unsafe) fstatSync(fd)
      else if (path === dir) fsyncSync(fd)
      else fdatasyncSync(fd)
    } finally {
      closeSync(fd)
    }
  }
}

/** Reads the durable state; throws StorageRefused when rows are missing or malformed. */
function load(db: Database, file: string): DurableState {
  try {
    const p = db.query<{ round: number; leader: number }, []>("SELECT round, leader FROM promise WHERE id = 0").get()
    const snap = db.query<{ slot: number }, []>("SELECT slot FROM snapshot WHERE id = 0").get()
    if (p === null || snap === null) throw new Error("the promise or snapshot row is missing")
    const accepted: AcceptedEntry[] = db
      .query<{ slot: number; round: number; leader: number; value: string }, []>("SELECT slot, round, leader, value FROM accepted ORDER BY slot")
      .all()
      .map((r) => ({ slot: r.slot, ballot: { round: r.round, leader: r.leader }, value: decodeBatch(r.value) }))
    const list: number[] = []
    for (const chunk of db.query<{ start: number; data: Uint8Array }, []>("SELECT start, data FROM list_chunks ORDER BY start").all()) {
      if (chunk.start !== list.length) throw new Error(`the list has a gap at index ${list.length} (next chunk starts at ${chunk.start})`)
      for (const v of decodeValues(chunk.data)) {
        if (!Number.isSafeInteger(v)) throw new Error(`the list holds a value that is not a safe integer at index ${list.length}`)
        list.push(v)
      }
    }
    const clients: ClientEntry[] = db
      .query<{ client: string; seq: number; value: number; idx: number; slot: number }, []>("SELECT client, seq, value, idx, slot FROM clients")
      .all()
      .map((r) => ({ client: r.client, seq: r.seq, value: r.value, index: r.idx, slot: r.slot }))
    const membershipJson = readMeta(db).get("membership")
    const membership = membershipJson === undefined ? undefined : checkedMembership(decodeMembership(membershipJson))
    return { promised: { round: p.round, leader: p.leader }, accepted, snapshot: { slot: snap.slot, list, clients, ...(membership === undefined ? {} : { membership }) } }
  } catch (e) {
    throw refusedCorrupt(file, e)
  }
}

/** A membership as loaded: each configuration must hold together. */
function checkedMembership(m: Membership): Membership {
  for (const c of m.next === null ? [m.current] : [m.current, m.next.config]) {
    const why = configProblem(c)
    if (why !== null) throw new Error(`the snapshot's membership: ${why}`)
  }
  return m
}

function readMeta(db: Database): Map<string, string> {
  const rows = db.query<{ key: string; value: string }, []>("SELECT key, value FROM meta").all()
  return new Map(rows.map((r) => [r.key, r.value]))
}

function hasTable(db: Database, name: string): boolean {
  return db.query<{ n: number }, [string]>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?").get(name)?.n === 1
}

const isBusy = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || /database is locked/.test(oneLine(e))
}

const refusedBusy = (file: string): StorageRefused =>
  new StorageRefused(`data file ${file} is in use by another process (is another paxos server running on this data dir?); refusing to start`)

const refusedCorrupt = (file: string, e: unknown): StorageRefused =>
  isBusy(e)
    ? refusedBusy(file)
    : new StorageRefused(
        `data file ${file} is unreadable or corrupt (${oneLine(e)}); refusing to start. Keep it for inspection; to replace the node, ` +
          "remove it from the cluster (paxos member remove ADDR), add it again (paxos member add ADDR) and start it on an empty data dir with --join"
      )

/** An error's message on one line. */
export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e)
  return m.replace(/\s+/g, " ").trim().slice(0, 300)
}
