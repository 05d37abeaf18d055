/**
 * The grudge builders of src/chaos/netns.ts against the behaviour of jepsen.nemesis (0.3.x).
 * Pure functions: these run everywhere, root or not.
 */
import { describe, expect, test } from "bun:test"
import {
  bisect,
  bridge,
  completeGrudge,
  halves,
  hostAddress,
  hostIndex,
  hostName,
  invertGrudge,
  isolateOne,
  majoritiesRing,
  majority,
  mapGrudge,
  randomHalves,
  shuffle,
  splitOne,
  type Grudge,
} from "../../src/chaos/netns.ts"
import { floatSource } from "../../src/core/prng.ts"

/** A small seeded generator, so random grudges repeat. */
const rng = floatSource

const asObject = (g: Grudge<string>) => Object.fromEntries([...g].map(([k, v]) => [k, [...v].sort()]))
const N5 = ["n1", "n2", "n3", "n4", "n5"]

/** Who each node hears (itself included), given the grudge. */
function hears(nodes: string[], g: Grudge<string>): Map<string, string[]> {
  return new Map(nodes.map((a) => [a, nodes.filter((b) => !(g.get(a) ?? []).includes(b))]))
}

describe("grudges (jepsen.nemesis)", () => {
  test("bisect: smaller half first; split-one", () => {
    expect(bisect(N5)).toEqual([["n1", "n2"], ["n3", "n4", "n5"]])
    expect(bisect(["a", "b", "c", "d"])).toEqual([["a", "b"], ["c", "d"]])
    expect(splitOne(N5, "n3")).toEqual([["n3"], ["n1", "n2", "n4", "n5"]])
    const [loner, rest] = splitOne(N5, undefined, rng(1))
    expect(loner).toHaveLength(1)
    expect([...loner, ...rest].sort()).toEqual(N5)
  })

  test("complete-grudge: nobody hears anyone outside its component", () => {
    expect(asObject(completeGrudge([["n1", "n2"], ["n3", "n4", "n5"]]))).toEqual({
      n1: ["n3", "n4", "n5"],
      n2: ["n3", "n4", "n5"],
      n3: ["n1", "n2"],
      n4: ["n1", "n2"],
      n5: ["n1", "n2"],
    })
    expect(asObject(halves(N5))).toEqual(asObject(completeGrudge(bisect(N5))))
  })

  test("bridge: n3 talks to both halves, and nobody snubs it", () => {
    expect(asObject(bridge(N5))).toEqual({
      n1: ["n4", "n5"],
      n2: ["n4", "n5"],
      n4: ["n1", "n2"],
      n5: ["n1", "n2"],
    })
  })

  test("isolate one node; random halves are a minority and a majority", () => {
    expect(asObject(isolateOne(N5, "n4"))).toEqual({
      n1: ["n4"],
      n2: ["n4"],
      n3: ["n4"],
      n4: ["n1", "n2", "n3", "n5"],
      n5: ["n4"],
    })
    for (let seed = 1; seed <= 20; seed++) {
      const g = randomHalves(N5, rng(seed))
      const sizes = [...hears(N5, g).values()].map((h) => h.length).sort()
      expect(sizes).toEqual([2, 2, 3, 3, 3])
      expect(asObject(randomHalves(N5, rng(seed)))).toEqual(asObject(g)) // same seed, same grudge
    }
  })

  test("majorities-ring: everyone hears a majority, no two the same one (3, 5, 7, 9 nodes)", () => {
    for (const n of [3, 4, 5, 7, 9]) {
      const nodes = Array.from({ length: n }, (_, i) => `n${i + 1}`)
      for (let seed = 1; seed <= 10; seed++) {
        const g = majoritiesRing(nodes, rng(seed))
        const h = hears(nodes, g)
        for (const [a, heard] of h) {
          expect(heard).toContain(a)
          expect(heard.length).toBeGreaterThanOrEqual(majority(n))
        }
        if (n <= 5) {
          // the exact ring: exactly a majority each, all different
          const sets = [...h.values()].map((s) => [...s].sort().join(","))
          expect(new Set(sets).size).toBe(n)
          for (const s of h.values()) expect(s).toHaveLength(majority(n))
        }
      }
    }
  })

  test("invert-grudge, shuffle, mapGrudge", () => {
    const conns = new Map([
      ["a", new Set(["a", "b"])],
      ["b", new Set(["b", "a"])],
      ["c", new Set(["c"])],
    ])
    expect(asObject(invertGrudge(["a", "b", "c"], conns))).toEqual({ a: ["c"], b: ["c"], c: ["a", "b"] })
    expect(shuffle(N5, rng(3)).sort()).toEqual(N5)
    const g = mapGrudge(isolateOne([1, 2, 3], 1), (i) => hostName(i))
    expect(asObject(g)).toEqual({ "paxos-h1": ["paxos-h2", "paxos-h3"], "paxos-h2": ["paxos-h1"], "paxos-h3": ["paxos-h1"] })
  })

  test("host names and addresses; the control address is no host", () => {
    expect(hostName(1)).toBe("paxos-h1")
    expect(hostAddress(1)).toBe("10.77.0.11")
    expect(hostAddress("paxos-h5")).toBe("10.77.0.15")
    expect(hostIndex("h3")).toBe(3)
    expect(hostIndex("10.77.0.14")).toBe(4)
    expect(() => hostIndex("10.77.0.1")).toThrow(/control address/)
    expect(() => hostIndex("n1")).toThrow(/unknown host/)
    expect(() => hostName(0)).toThrow()
  })
})
