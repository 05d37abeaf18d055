/**
 * The node's disk pipeline (src/server/node.ts) with a store whose fdatasyncs the test completes
 * by hand: votes leave only once a sync that started after their commit has ended, one sync at a
 * time covers every commit made before it, the loop steps new batches while a sync runs, and a
 * failed sync stops the node with nothing held sent. With two lanes, a second sync starts while
 * the first runs, and whichever ends releases exactly the commits made before it started.
 */
import { expect, test } from "bun:test"
import { Cause, Effect, Exit, Fiber, Option } from "effect"
import { defaultConfig } from "../../src/core/config.ts"
import { MARKER } from "../../src/core/invariant.ts"
import type { Message } from "../../src/core/messages.ts"
import { emptyDurable, restore, type Write } from "../../src/core/state.ts"
import { makeLog } from "../../src/server/log.ts"
import { newCounters } from "../../src/server/metrics.ts"
import { Node, type NodeDeps } from "../../src/server/node.ts"

class FakeStore {
  readonly commits: Write[][] = []
  readonly syncs: Array<(e: Error | null) => void> = []
  commit(writes: readonly Write[]): void {
    this.commits.push(writes.slice())
  }
  syncAsync(done: (e: Error | null) => void): void {
    this.syncs.push(done)
  }
}

class FakeOutboxes {
  readonly sent: Array<{ to: number; msg: Message }> = []
  enqueue(to: number, json: string): void {
    this.sent.push({ to, msg: JSON.parse(json) as Message })
  }
  flush(): void {}
}

const ballot = { round: 1, leader: 0 }
const accept = (slot: number): Message => ({ _tag: "Accept", ballot, entries: [{ slot, value: [{ _tag: "Append", id: `c${slot}`, value: slot }] }], commit: 0 })
const turns = () => new Promise<void>((resolve) => setTimeout(resolve, 5))

function follower(syncLanes = 1) {
  const cfg = defaultConfig(1, 3)
  const store = new FakeStore()
  const outboxes = new FakeOutboxes()
  const counters = newCounters()
  const nodes = [5000, 5001, 5002].map((port) => ({ host: "127.0.0.1", port, name: `127.0.0.1:${port}` }))
  const deps = { cfg, nodes, store, outboxes, counters, log: makeLog("test", () => {}), tickMs: 10, syncLanes, backstop: () => {} } as unknown as NodeDeps
  const node = new Node(restore(cfg, emptyDurable, 7), deps)
  const fiber = Effect.runFork(node.run())
  const votes = () => outboxes.sent.filter((s) => s.msg._tag === "Accepted").flatMap((s) => (s.msg._tag === "Accepted" ? [...s.msg.slots] : []))
  return { node, store, counters, fiber, votes }
}

test("votes wait for a sync that started after their commit; one sync at a time covers every commit before it", async () => {
  const f = follower()
  f.node.receive(0, [accept(1)])
  await turns()
  expect(f.store.commits.length).toBe(1)
  expect(f.store.syncs.length).toBe(1)
  expect(f.votes()).toEqual([])

  // The loop does not wait for the disk: a second batch is stepped and committed meanwhile, and
  // waits for a sync of its own, which starts only when the first ends.
  f.node.receive(0, [accept(2)])
  await turns()
  expect(f.store.commits.length).toBe(2)
  expect(f.store.syncs.length).toBe(1)
  expect(f.votes()).toEqual([])

  f.store.syncs[0]?.(null)
  await turns()
  expect(f.votes()).toEqual([1])
  expect(f.store.syncs.length).toBe(2)

  // Two Accepts that arrive before the next turn are one batch: one commit.
  f.node.receive(0, [accept(3)])
  f.node.receive(0, [accept(4)])
  await turns()
  expect(f.store.commits.length).toBe(3)
  f.store.syncs[1]?.(null)
  await turns()
  expect(f.votes()).toEqual([1, 2])
  // Commit 3 came while the second sync ran: it waited for the third.
  expect(f.store.syncs.length).toBe(3)
  f.store.syncs[2]?.(null)
  await turns()
  expect(f.votes()).toEqual([1, 2, 3, 4])
  expect(f.counters.fsyncs).toBe(3)
  expect(f.counters.commits).toBe(3)
  await Effect.runPromise(Fiber.interrupt(f.fiber))
})

test("two lanes: a commit made during a sync gets its own at once; each sync releases only what it covers", async () => {
  const f = follower(2)
  f.node.receive(0, [accept(1)])
  await turns()
  f.node.receive(0, [accept(2)])
  await turns()
  // Both lanes busy: sync 0 covers commit 1, sync 1 covers commits 1 and 2.
  expect(f.store.commits.length).toBe(2)
  expect(f.store.syncs.length).toBe(2)
  f.node.receive(0, [accept(3)])
  await turns()
  // A third commit waits for a lane.
  expect(f.store.commits.length).toBe(3)
  expect(f.store.syncs.length).toBe(2)

  // The later sync ends first: it releases the votes of commits 1 and 2, not 3, and a lane
  // frees for commit 3.
  f.store.syncs[1]?.(null)
  await turns()
  expect(f.votes()).toEqual([1, 2])
  expect(f.store.syncs.length).toBe(3)
  // The earlier sync ends late: it covers nothing new, and vote 3 still waits for its own.
  f.store.syncs[0]?.(null)
  await turns()
  expect(f.votes()).toEqual([1, 2])
  expect(f.store.syncs.length).toBe(3)
  f.store.syncs[2]?.(null)
  await turns()
  expect(f.votes()).toEqual([1, 2, 3])
  expect(f.counters.fsyncs).toBe(3)
  await Effect.runPromise(Fiber.interrupt(f.fiber))
})

test("a sync that ends twice is an invariant violation: status 70 with the marker, nothing more sent", async () => {
  const f = follower()
  const write = process.stderr.write
  const said: string[] = []
  process.stderr.write = (chunk: string | Uint8Array) => {
    said.push(String(chunk))
    return true
  }
  try {
    f.node.receive(0, [accept(1)])
    await turns()
    f.store.syncs[0]?.(null)
    await turns()
    expect(f.votes()).toEqual([1])
    f.node.receive(0, [accept(2)])
    await turns()
    f.store.syncs[0]?.(null)
    const exit = await Effect.runPromise(Fiber.await(f.fiber))
    const fatal = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(fatal?.code).toBe(70)
    expect(fatal?.line).toContain(MARKER)
    expect(said.join("")).toContain(MARKER)
    await turns()
    expect(f.votes()).toEqual([1])
  } finally {
    process.stderr.write = write
  }
})

test("a failed sync stops the node with status 1, and the votes it held never leave", async () => {
  const f = follower()
  const write = process.stderr.write
  process.stderr.write = () => true
  try {
    f.node.receive(0, [accept(1)])
    await turns()
    f.store.syncs[0]?.(new Error("EIO: i/o error, fdatasync"))
    const exit = await Effect.runPromise(Fiber.await(f.fiber))
    expect(Exit.isFailure(exit)).toBe(true)
    const fatal = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    expect(fatal?.code).toBe(1)
    expect(fatal?.line).toContain("storage failed")
    await turns()
    expect(f.votes()).toEqual([])
    f.node.receive(0, [accept(2)])
    await turns()
    expect(f.store.commits.length).toBe(1)
  } finally {
    process.stderr.write = write
  }
})
