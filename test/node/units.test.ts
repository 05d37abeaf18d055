/**
 * Unit tests of the shell's pure parts: the config file, the SQLite store's writes and loads
 * (compared with the simulator's in-memory store, which defines what a write means), the list's
 * JSON cache, and the flag parser.
 */
import { Database } from "bun:sqlite"
import { afterAll, describe, expect, test } from "bun:test"
import { fstatSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Write } from "../../src/core/state.ts"
import { applyChange, derivedIncarnation, indexedConfig, initialConfig, startMembership } from "../../src/core/membership.ts"
import { PList } from "../../src/core/plist.ts"
import { Random } from "../../src/core/prng.ts"
import { MemStore } from "../../src/sim/store.ts"
import { closest, parseFlags, wantsHelp } from "../../src/cli/args.ts"
import { ConfigError, parseConfig } from "../../src/server/cluster-config.ts"
import { ListJson } from "../../src/server/list-json.ts"
import { makeLog } from "../../src/server/log.ts"
import { newCounters } from "../../src/server/metrics.ts"
import { Outboxes } from "../../src/server/peer.ts"
import { FileAtPath, SqliteStore } from "../../src/server/storage.ts"
import { cleanup, tempDir } from "./support.ts"

/** The membership snapshots carry (the store keeps it as it is given). */
const M = startMembership(indexedConfig(3))

afterAll(cleanup)

describe("config file", () => {
  test("host[:port] lines, default port 5000, comments and blank lines ignored", () => {
    const c = parseConfig("# cluster\nlocalhost:5000\n\nlocalhost:5001  # second\n10.0.0.3\n[::1]:7000\n")
    expect(c.nodes.map((n) => n.name)).toEqual(["localhost:5000", "localhost:5001", "10.0.0.3:5000", "[::1]:7000"])
    expect(c.clusterId).toMatch(/^[0-9a-f]{16}$/)
    expect(parseConfig("localhost:5000\nlocalhost:5001\n").clusterId).not.toBe(parseConfig("localhost:5001\nlocalhost:5000\n").clusterId)
  })
  test("bad lines are refused with the line number", () => {
    expect(() => parseConfig("a:1\nb:99999\n", "f")).toThrow(new ConfigError("f:2: 'b:99999' has a port outside 1..65535"))
    expect(() => parseConfig("a:1\na:1\n", "f")).toThrow("f:2: node a:1 is listed twice")
    expect(() => parseConfig("# nothing\n", "f")).toThrow("f: lists no nodes")
  })
})

describe("SqliteStore", () => {
  const id = { clusterId: "c0ffee", node: "n:1" }
  const b = (round: number, leader = 0) => ({ round, leader })
  const cmd = (v: number) => [{ _tag: "Append" as const, id: `x.${v}`, value: v }]
  const batches: Write[][] = [
    [{ _tag: "Promise", promised: b(1) }],
    [{ _tag: "Accept", promised: b(1), entries: [1, 2, 3].map((slot) => ({ slot, ballot: b(1), value: cmd(slot) })) }],
    [
      { _tag: "Promise", promised: b(2, 1) },
      { _tag: "Accept", promised: b(2, 1), entries: [{ slot: 3, ballot: b(2, 1), value: cmd(30) }, { slot: 4, ballot: b(2, 1), value: [] }] }
    ],
    [{ _tag: "Snapshot", slot: 2, from: 0, values: [1, 2], clients: [{ client: "c", seq: 1, value: 2, index: 1, slot: 2 }], membership: M }],
    [{ _tag: "Accept", promised: b(1), entries: [{ slot: 1, ballot: b(1), value: cmd(99) }] }],
    [{ _tag: "Snapshot", slot: 4, from: 1, values: [2, 30], clients: [], membership: M }]
  ]

  test("every batch of writes loads back as the in-memory reference store holds it", () => {
    const dir = join(tempDir(), "d")
    const mem = new MemStore()
    let { store } = SqliteStore.open(dir, id)
    for (const ws of batches) {
      store.persist(ws)
      mem.apply(ws)
      store.close()
      const reopened = SqliteStore.open(dir, id)
      store = reopened.store
      const want = mem.load()
      expect(reopened.durable.promised).toEqual(want.promised)
      expect(reopened.durable.snapshot.slot).toBe(want.snapshot.slot)
      expect(reopened.durable.snapshot.list).toEqual([...want.snapshot.list])
      expect(reopened.durable.snapshot.clients).toEqual([...want.snapshot.clients])
      expect([...reopened.durable.accepted].sort((x, y) => x.slot - y.slot)).toEqual([...want.accepted].sort((x, y) => x.slot - y.slot))
      expect(reopened.durable.snapshot.membership).toEqual(want.snapshot.membership)
    }
    expect(store.stats.transactions).toBe(0)
    store.close()
  })

  test("random snapshots (list cuts, client changes) on one open store load back as the reference store holds them", () => {
    const random = new Random(11)
    const rnd = (n: number) => random.int(0, n)
    const dir = join(tempDir(), "d")
    const mem = new MemStore()
    let { store } = SqliteStore.open(dir, id)
    let list: number[] = []
    let clients = new Map<string, { client: string; seq: number; value: number; index: number; slot: number }>()
    for (let slot = 1; slot <= 300; slot++) {
      const from = rnd(4) === 0 ? rnd(list.length + 1) : list.length
      const values = Array.from({ length: rnd(30) }, () => (rnd(2) === 0 ? -rnd(2 ** 30) : rnd(2 ** 30)) * 8_388_608 + rnd(99))
      list = list.slice(0, from).concat(values)
      clients = new Map(clients)
      for (let k = rnd(4); k > 0; k--) {
        const name = `c${rnd(12)}`
        if (rnd(5) === 0) clients.delete(name)
        else clients.set(name, { client: name, seq: rnd(1000), value: rnd(1000), index: rnd(list.length + 1), slot })
      }
      const ws: Write[] = [{ _tag: "Snapshot", slot, from, values, clients: [...clients.values()], membership: M }]
      store.persist(ws)
      mem.apply(ws)
      if (rnd(10) === 0 || slot === 300) {
        store.close()
        const reopened = SqliteStore.open(dir, id)
        store = reopened.store
        const want = mem.load()
        expect(reopened.durable.snapshot.list).toEqual([...want.snapshot.list])
        expect(reopened.durable.snapshot.list).toEqual(list)
        const byName = (a: { client: string }, b: { client: string }) => a.client.localeCompare(b.client)
        expect([...reopened.durable.snapshot.clients].sort(byName)).toEqual([...want.snapshot.clients].sort(byName))
      }
    }
    store.close()
  })

  /** An empty data file of an older format, whose list table is `listTable`: for the caller to fill. */
  function olderFile(dir: string, listTable: string): Database {
    mkdirSync(dir, { recursive: true })
    const db = new Database(join(dir, "paxos.sqlite"), { create: true, strict: true })
    db.run("PRAGMA journal_mode = WAL")
    for (const sql of [
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
      "CREATE TABLE promise (id INTEGER PRIMARY KEY CHECK (id = 0), round INTEGER NOT NULL, leader INTEGER NOT NULL)",
      "CREATE TABLE accepted (slot INTEGER PRIMARY KEY, round INTEGER NOT NULL, leader INTEGER NOT NULL, value TEXT NOT NULL)",
      "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), slot INTEGER NOT NULL)",
      listTable,
      "CREATE TABLE clients (client TEXT PRIMARY KEY, seq INTEGER NOT NULL, value INTEGER NOT NULL, idx INTEGER NOT NULL, slot INTEGER NOT NULL) WITHOUT ROWID"
    ])
      db.run(sql)
    return db
  }

  test("a format 1 data file (one list row per value) is upgraded in place and loads the same", () => {
    const dir = join(tempDir(), "d")
    const db = olderFile(dir, "CREATE TABLE list (idx INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    for (const [k, v] of [["format_version", "1"], ["cluster_id", id.clusterId], ["node", id.node]]) db.run("INSERT INTO meta VALUES (?, ?)", [k as string, v as string])
    db.run("INSERT INTO promise VALUES (0, 3, 1)")
    db.run("INSERT INTO snapshot VALUES (0, 7)")
    db.run("INSERT INTO accepted VALUES (8, 3, 1, ?)", [JSON.stringify(cmd(8))])
    const list = [5, -3, 9007199254740991, 0]
    list.forEach((v, i) => db.run("INSERT INTO list VALUES (?, ?)", [i, v]))
    db.run("INSERT INTO clients VALUES ('c', 2, -3, 1, 7)")
    db.close()
    const { store, durable } = SqliteStore.open(dir, id)
    store.close()
    expect(durable.promised).toEqual(b(3, 1))
    expect(durable.snapshot).toEqual({ slot: 7, list, clients: [{ client: "c", seq: 2, value: -3, index: 1, slot: 7 }] })
    expect(durable.accepted).toEqual([{ slot: 8, ballot: b(3, 1), value: cmd(8) }])
    const after = new Database(join(dir, "paxos.sqlite"), { readonly: true })
    expect(after.query("SELECT value FROM meta WHERE key = 'format_version'").get()).toEqual({ value: "3" })
    expect(after.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'list'").get()).toEqual({ n: 0 })
    after.close()
    const again = SqliteStore.open(dir, id)
    expect(again.durable.snapshot.list).toEqual(list)
    again.store.close()
  })

  /** A file of format 2 as that format's binary left it: node `node` of the cluster of `nodes`, holding `list`. */
  function formatTwoFile(dir: string, nodes: readonly string[], node: string, list: readonly number[]): void {
    const db = olderFile(dir, "CREATE TABLE list_chunks (start INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    for (const [k, v] of [["format_version", "2"], ["cluster_id", parseConfig(nodes.join("\n")).clusterId], ["node", node]]) db.run("INSERT INTO meta VALUES (?, ?)", [k as string, v as string])
    db.run("INSERT INTO promise VALUES (0, 4, 2)")
    db.run("INSERT INTO snapshot VALUES (0, 9)")
    db.run("INSERT INTO accepted VALUES (10, 4, 2, ?)", [JSON.stringify(cmd(10))])
    db.run("INSERT INTO list_chunks VALUES (0, ?)", [new Uint8Array(new Float64Array(list).buffer)])
    db.close()
  }

  test("a format 2 data file is upgraded in place: derived incarnation, bound at once in the config's nodes, same state", () => {
    const dir = join(tempDir(), "d")
    const nodes = ["h:1", "h:2", "h:3"]
    const list = [4, -1, 2 ** 40]
    formatTwoFile(dir, nodes, "h:2", list)
    const given = { clusterId: parseConfig(nodes.join("\n")).clusterId, node: "h:2", nodes }
    const { store, durable, identity } = SqliteStore.open(dir, given)
    store.close()
    expect(durable.promised).toEqual(b(4, 2))
    expect(durable.snapshot).toEqual({ slot: 9, list, clients: [] })
    expect(durable.accepted).toEqual([{ slot: 10, ballot: b(4, 2), value: cmd(10) }])
    expect(identity).toEqual({
      address: "h:2",
      incarnation: derivedIncarnation(1),
      clusterId: given.clusterId,
      memberId: 1,
      initial: initialConfig(nodes, nodes.map((_, i) => derivedIncarnation(i))),
      joined: false
    })
    const after = new Database(join(dir, "paxos.sqlite"), { readonly: true })
    expect(after.query("SELECT value FROM meta WHERE key = 'format_version'").get()).toEqual({ value: "3" })
    after.close()
    // From now on the identity is in the file: another config file (say, one more line) changes nothing.
    const again = SqliteStore.open(dir, { clusterId: "another", node: "h:2", nodes: [...nodes, "h:4"] })
    expect(again.identity).toEqual(identity)
    expect(again.durable.snapshot.list).toEqual(list)
    again.store.close()
  })

  test("a format 2 file of another cluster, or of a node the config lacks, is refused and left as it was", () => {
    const dir = join(tempDir(), "d")
    const nodes = ["h:1", "h:2", "h:3"]
    formatTwoFile(dir, nodes, "h:2", [1])
    const bytes = Bun.hash(readFileSync(join(dir, "paxos.sqlite"))).toString(16)
    expect(() => SqliteStore.open(dir, { clusterId: parseConfig("h:1\nh:2\n").clusterId, node: "h:2", nodes: ["h:1", "h:2"] })).toThrow("belongs to another cluster")
    expect(() => SqliteStore.open(dir, { clusterId: parseConfig(nodes.join("\n")).clusterId, node: "h:9", nodes })).toThrow("belongs to node h:2, not h:9")
    expect(() => SqliteStore.open(dir, { clusterId: parseConfig(nodes.join("\n")).clusterId, node: "h:2", nodes: ["h:1"] })).toThrow("needs its node h:2 in the config file")
    expect(Bun.hash(readFileSync(join(dir, "paxos.sqlite"))).toString(16)).toBe(bytes)
  })

  test("a new file mints an incarnation, keeps it across opens, and binds once, durably", () => {
    const dir = join(tempDir(), "d")
    const nodes = ["h:1", "h:2", "h:3"]
    const given = { clusterId: "c0ffee", node: "h:3", nodes }
    const first = SqliteStore.open(dir, given)
    const me = first.identity
    expect(me.incarnation).toMatch(/^[0-9a-f]{16}$/)
    expect(me).toEqual({ address: "h:3", incarnation: me.incarnation, clusterId: "c0ffee", memberId: 2, initial: null, joined: false })
    first.store.close()
    const second = SqliteStore.open(dir, given)
    expect(second.identity).toEqual(me)
    const initial = initialConfig(nodes, ["00000000000000aa", "00000000000000bb", me.incarnation])
    // A configuration that binds this member to another incarnation is never written.
    expect(() => second.store.bind(initialConfig(nodes, ["00000000000000aa", "00000000000000bb", "00000000000000cc"]))).toThrow("another incarnation")
    second.store.bind(initial)
    expect(() => second.store.bind(initial)).toThrow("bound already")
    second.store.close()
    const third = SqliteStore.open(dir, given)
    expect(third.identity).toEqual({ ...me, initial })
    third.store.close()
    // Another data dir of the same node gets another incarnation.
    const other = SqliteStore.open(join(tempDir(), "d"), given)
    expect(other.identity.incarnation).not.toBe(me.incarnation)
    other.store.close()
  })

  test("a joining node's file has no cluster or member id until it joined", () => {
    const dir = join(tempDir(), "d")
    const given = { clusterId: "c0ffee", node: "h:9", nodes: ["h:1"], joining: true }
    const first = SqliteStore.open(dir, given)
    const me = first.identity
    expect(me).toEqual({ address: "h:9", incarnation: me.incarnation, clusterId: null, memberId: null, initial: null, joined: false })
    const base = initialConfig(["h:1"], ["00000000000000aa"])
    const added = applyChange(startMembership(base), 1, { _tag: "Add", address: "h:9" })
    if ("_tag" in added) throw new Error("refused")
    const next = added.membership.next?.config ?? base
    const bound = applyChange(added.membership, 2, { _tag: "Bind", id: 1, incarnation: me.incarnation })
    if ("_tag" in bound) throw new Error("refused")
    const initial = bound.membership.next?.config ?? next
    first.store.joinedAs("feedface", 1, initial)
    first.store.close()
    const again = SqliteStore.open(dir, given)
    expect(again.identity).toEqual({ address: "h:9", incarnation: me.incarnation, clusterId: "feedface", memberId: 1, initial, joined: true })
    expect(() => again.store.joinedAs("feedface", 1, initial)).toThrow("bound already")
    again.store.close()
  })

  test("a snapshot's membership loads back, and a malformed identity or membership is refused as corrupt", () => {
    const dir = join(tempDir(), "d")
    const given = { clusterId: "c0ffee", node: "n:1" }
    const { store } = SqliteStore.open(dir, given)
    const changed = applyChange(M, 5, { _tag: "Add", address: "n:9" })
    if ("_tag" in changed) throw new Error("refused")
    store.persist([{ _tag: "Snapshot", slot: 5, from: 0, values: [1], clients: [], membership: changed.membership }])
    store.close()
    const again = SqliteStore.open(dir, given)
    expect(again.durable.snapshot.membership).toEqual(changed.membership)
    again.store.close()
    for (const [key, value] of [["membership", '{"current":{"epoch":0,"members":[],"nextId":0},"next":null}'], ["incarnation", "XYZ"], ["initial", "{"]] as const) {
      const copy = join(tempDir(), "d")
      mkdirSync(copy, { recursive: true })
      const db = new Database(join(dir, "paxos.sqlite"), { readonly: true })
      db.run(`VACUUM INTO '${join(copy, "paxos.sqlite")}'`)
      db.close()
      const w = new Database(join(copy, "paxos.sqlite"))
      w.run("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])
      w.close()
      expect(() => SqliteStore.open(copy, given)).toThrow("corrupt")
    }
  })

  test("a second open of a data dir in use is refused", () => {
    const dir = join(tempDir(), "d")
    const { store } = SqliteStore.open(dir, id)
    expect(() => SqliteStore.open(dir, id)).toThrow("in use by another process")
    store.close()
  })
})

describe("Outboxes", () => {
  test("follow the membership: an outbox for every member of either configuration, opened when added, closed when gone", () => {
    const lines: string[] = []
    const log = makeLog("n0", (l) => lines.push(l))
    const first = initialConfig(["h:1", "h:2", "h:3"], ["00000000000000a1", "00000000000000a2", "00000000000000a3"])
    const o = new Outboxes({ self: 0, incarnation: "00000000000000a1", membership: startMembership(first), clusterId: "c", counters: newCounters(), log, signer: null })
    const ids = () => o.status().map((p) => `${p.id}=${p.node}`)
    expect(ids()).toEqual(["1=h:2", "2=h:3"])
    const added = applyChange(startMembership(first), 10, { _tag: "Add", address: "h:4" })
    if ("_tag" in added) throw new Error("refused")
    o.follow(added.membership)
    // The member added is in the pending configuration only: it gets an outbox at once.
    expect(ids()).toEqual(["1=h:2", "2=h:3", "3=h:4"])
    o.enqueue(1, '{"_tag":"Commit"}')
    const settled = { current: added.membership.next?.config ?? first, next: null }
    const removed = applyChange(settled, 100, { _tag: "Remove", id: 1 })
    if ("_tag" in removed) throw new Error("refused")
    o.follow(removed.membership)
    // Still a member of the configuration in force until the removal comes into force.
    expect(ids()).toEqual(["1=h:2", "2=h:3", "3=h:4"])
    o.follow({ current: removed.membership.next?.config ?? first, next: null })
    expect(ids()).toEqual(["2=h:3", "3=h:4"])
    // Messages for a member gone go nowhere.
    o.enqueue(1, '{"_tag":"Commit"}')
    expect(lines.some((l) => l.includes("peer-added peer=h:4 id=3"))).toBe(true)
    expect(lines.some((l) => l.includes("peer-removed peer=h:2 id=1"))).toBe(true)
  })
})

describe("FileAtPath", () => {
  test("keeps its descriptor while the file stays, and reopens once the path holds another file", () => {
    const dir = join(tempDir(), "f")
    mkdirSync(dir, { recursive: true })
    const path = join(dir, "wal")
    writeFileSync(path, "one")
    const f = new FileAtPath(path)
    const first = f.fd()
    expect(f.fd()).toBe(first)
    if (process.platform === "linux") expect(f.viaProc).toBe(true)
    const replaced = [first]
    for (const replace of [() => renameSync(path, `${path}.old`), () => unlinkSync(path)]) {
      replace()
      writeFileSync(path, "two")
      const next = f.fd()
      expect(fstatSync(next).ino).toBe(statSync(path).ino)
      expect(f.fd()).toBe(next)
      replaced.push(next)
    }
    // A sync may still be using a replaced descriptor: it stays open until closeRetired.
    const current = replaced.pop() as number
    for (const fd of replaced) expect(() => fstatSync(fd)).not.toThrow()
    f.closeRetired()
    for (const fd of replaced) expect(() => fstatSync(fd)).toThrow()
    expect(() => fstatSync(current)).not.toThrow()
    f.close()
    expect(() => fstatSync(current)).toThrow()
  })
})

describe("ListJson", () => {
  test("prefixes of a growing list as JSON", () => {
    const j = new ListJson()
    let l = PList.empty()
    expect(j.json(0)).toBe("[]")
    for (const v of [5, -3, 9007199254740991, 0]) {
      l = l.push(v)
      j.sync(l)
    }
    expect(j.json(1)).toBe("[5]")
    expect(j.json(4)).toBe("[5,-3,9007199254740991,0]")
    expect(JSON.parse(j.json(3))).toEqual([5, -3, 9007199254740991])
  })
  test("every prefix agrees with JSON.stringify across folds, growth and batches of any size", () => {
    const random = new Random(7)
    const rnd = (n: number) => random.int(0, n)
    const j = new ListJson()
    let l = PList.empty()
    const all: number[] = []
    for (let batch = 0; batch < 1_500; batch++) {
      const k = rnd(batch % 100 === 0 ? 400 : 12)
      for (let i = 0; i < k; i++) {
        const v = rnd(3) === 0 ? -rnd(1_000_000_000) : rnd(100)
        all.push(v)
        l = l.push(v)
      }
      j.sync(l)
      if (rnd(5) === 0) {
        const n = rnd(all.length + 2)
        expect(j.json(n)).toBe(JSON.stringify(all.slice(0, n)))
      }
    }
    expect(j.length).toBe(all.length)
    expect(j.json(all.length)).toBe(JSON.stringify(all))
  })
})

describe("flags", () => {
  test("values, booleans, negative numbers as positionals, unknown options", () => {
    expect(parseFlags(["--server", "1", "-5"], { server: "value" })).toEqual({ flags: { server: "1" }, positionals: ["-5"] })
    expect(parseFlags(["--timeout=30", "7"], { timeout: "value" })).toEqual({ flags: { timeout: "30" }, positionals: ["7"] })
    expect(parseFlags(["--nope"], {})).toBe("unknown option --nope")
    expect(parseFlags(["--server"], { server: "value" })).toBe("option --server needs a value")
  })

  test("an unknown option names the closest known one, when one is close", () => {
    expect(parseFlags(["--tmeout", "5"], { timeout: "value", config: "value" })).toBe("unknown option --tmeout (did you mean --timeout?)")
    expect(parseFlags(["--conf=x"], { timeout: "value", config: "value" })).toBe("unknown option --conf (did you mean --config?)")
    expect(parseFlags(["--zzz"], { timeout: "value", config: "value" })).toBe("unknown option --zzz")
    expect(closest("time-limt", ["time-limit", "rate"])).toBe("time-limit")
    expect(closest("sed", ["seed", "seeds", "nodes"])).toBe("seed")
    expect(closest("x", ["seed"])).toBeNull()
  })

  test("help is asked for by --help or -h before any --", () => {
    expect(wantsHelp(["--config", "c", "--help"])).toBe(true)
    expect(wantsHelp(["-h"])).toBe(true)
    expect(wantsHelp(["--", "--help"])).toBe(false)
    expect(wantsHelp(["5"])).toBe(false)
  })
})
