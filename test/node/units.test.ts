/**
 * Unit tests of the shell's pure parts: the config file, the SQLite store's writes and loads
 * (compared with the simulator's in-memory store, which defines what a write means), the list's
 * JSON cache, and the flag parser.
 */
import { afterAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import type { Write } from "../../src/core/state.ts"
import { PList } from "../../src/core/plist.ts"
import { MemStore } from "../../src/sim/store.ts"
import { parseFlags } from "../../src/cli/args.ts"
import { ConfigError, parseConfig } from "../../src/server/cluster-config.ts"
import { ListJson } from "../../src/server/list-json.ts"
import { SqliteStore } from "../../src/server/storage.ts"
import { cleanup, tempDir } from "./support.ts"

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
    [{ _tag: "Snapshot", slot: 2, from: 0, values: [1, 2], clients: [{ client: "c", seq: 1, value: 2, index: 1, slot: 2 }] }],
    [{ _tag: "Accept", promised: b(1), entries: [{ slot: 1, ballot: b(1), value: cmd(99) }] }],
    [{ _tag: "Snapshot", slot: 4, from: 1, values: [2, 30], clients: [] }]
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
    }
    expect(store.stats.transactions).toBe(0)
    store.close()
  })

  test("a second open of a data dir in use is refused", () => {
    const dir = join(tempDir(), "d")
    const { store } = SqliteStore.open(dir, id)
    expect(() => SqliteStore.open(dir, id)).toThrow("in use by another process")
    store.close()
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
    let seed = 7
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
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
})
