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
 * Tables: meta (format version, cluster id, node identity), promise, accepted (slot PK),
 * snapshot (slot), list_chunks (the snapshot's list: one row per snapshot, holding the values it
 * added as a blob of little-endian float64s, keyed by the index of its first value), clients (the
 * client table at the snapshot, rewritten row by row only where it changed). A snapshot thus costs
 * one insert for its values, not one per value (7,500 inserts took ~5 ms, a stall of every node at
 * once, since all snapshot at the same slots). Format 1 kept one list row per value; such a file
 * is upgraded in place at start, in one transaction. At start the file is checked read-only first
 * (integrity, format version, cluster and node identity): a file that fails is refused and never
 * modified.
 *
 * `--unsafe-no-fsync` (the bench's measure of what the disk costs, as etcd's flag of that name):
 * SQLite runs with `synchronous=OFF` and every fdatasync of the WAL becomes an fstat of the same
 * descriptor, on the same worker thread, so a sync keeps its handovers and loses only the disk. A
 * crash of the machine (not of the process: the kernel still holds what was written) may then lose
 * writes the node has acknowledged. Never for a cluster that holds anything.
 */
import { Database } from "bun:sqlite"
import { closeSync, existsSync, fdatasync, fdatasyncSync, fstat, fstatSync, mkdirSync, openSync, readlinkSync, statSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import { Schema as S } from "effect"
import * as B from "../core/ballot.ts"
import type { Ballot } from "../core/ballot.ts"
import { Batch, type AcceptedEntry, type ClientEntry } from "../core/messages.ts"
import type { DurableState, Write } from "../core/state.ts"

/** Bumped on any incompatible change of the tables; a newer file is refused, never downgraded. */
export const FORMAT_VERSION = 2
export const DATA_FILE = "paxos.sqlite"

/** Who owns a data file: written at creation, checked at every start. */
export interface StoreIdentity {
  readonly clusterId: string
  /** `host:port` of the node. */
  readonly node: string
}

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

  /** false with --unsafe-no-fsync. */
  readonly fsync: boolean
  private readonly sync: ReturnType<typeof syncOf>

  private constructor(
    private readonly db: Database,
    readonly file: string,
    durable: DurableState,
    unsafeNoFsync: boolean
  ) {
    this.fsync = !unsafeNoFsync
    this.sync = syncOf(unsafeNoFsync)
    this.promised = durable.promised
    this.snapSlot = durable.snapshot.slot
    this.clients = new Map(durable.snapshot.clients.map((c) => [c.client, c]))
    this.stats = { transactions: 0, writes: 0, listRows: durable.snapshot.list.length }
    this.stmt = this.prepare()
    this.applyAll = db.transaction((writes: readonly Write[]) => {
      for (const w of writes) this.apply(w)
    })
  }

  /**
   * Opens (creating if absent) the data file in `dir` for `identity` and loads what it holds.
   * Throws StorageRefused for a file of another cluster or node, of a newer format, or corrupt.
   */
  static open(dir: string, identity: StoreIdentity, options: StoreOptions = {}): { store: SqliteStore; durable: DurableState } {
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
      if (!hasTable(db, "meta")) create(db, identity)
      else if (readMeta(db).get("format_version") === "1") upgradeFrom1(db)
    } catch (e) {
      throw isBusy(e) ? refusedBusy(file) : new StorageRefused(`data file ${file} cannot be opened: ${oneLine(e)}`)
    }
    const durable = load(db, file)
    return { store: new SqliteStore(db, file, durable, unsafe), durable }
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
      putClient: db.prepare("INSERT OR REPLACE INTO clients (client, seq, value, idx, slot) VALUES (?, ?, ?, ?, ?)")
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
  const cluster = meta.get("cluster_id")
  if (cluster !== id.clusterId) {
    throw new StorageRefused(
      `data file ${file} belongs to another cluster (cluster id ${cluster}, this config's is ${id.clusterId}); refusing to start. Use another --data-dir, or remove it to start this node empty`
    )
  }
  const node = meta.get("node")
  if (node !== id.node) {
    throw new StorageRefused(`data file ${file} belongs to node ${node}, not ${id.node}; refusing to start. Use that node's own --data-dir`)
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

function create(db: Database, id: StoreIdentity): void {
  db.transaction(() => {
    for (const sql of SCHEMA) db.run(sql)
    const meta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)")
    meta.run("format_version", String(FORMAT_VERSION))
    meta.run("cluster_id", id.clusterId)
    meta.run("node", id.node)
    meta.run("created_at", new Date().toISOString())
    db.run("INSERT INTO promise (id, round, leader) VALUES (0, 0, 0)")
    db.run("INSERT INTO snapshot (id, slot) VALUES (0, 0)")
  })()
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
    return { promised: { round: p.round, leader: p.leader }, accepted, snapshot: { slot: snap.slot, list, clients } }
  } catch (e) {
    throw refusedCorrupt(file, e)
  }
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
  isBusy(e) ? refusedBusy(file) : new StorageRefused(`data file ${file} is unreadable or corrupt (${oneLine(e)}); refusing to start. Move it away to start this node empty (it then catches up from its peers)`)

/** An error's message on one line. */
export function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e)
  return m.replace(/\s+/g, " ").trim().slice(0, 300)
}
