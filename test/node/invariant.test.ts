/**
 * An invariant violation stops the node loudly: a peer message that contradicts what the node has
 * applied (a snapshot whose list disagrees with its own) makes it log a PAXOS-INVARIANT-VIOLATION
 * line and exit non-zero, rather than carry on with a divergent list.
 */
import { afterAll, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { append, status } from "../../src/client/http.ts"
import { cleanup, startCluster } from "./support.ts"

afterAll(cleanup)

test("a contradicting snapshot from a peer stops the node with PAXOS-INVARIANT-VIOLATION", async () => {
  const { cluster, leader } = await startCluster()
  for (let v = 1; v <= 5; v++) expect((await append(cluster.names[leader] as string, { value: v }, { timeoutMs: 5_000 })).type).toBe("ok")
  const victim = (leader + 1) % 3
  const from = (leader + 2) % 3
  // A follower applies the last append when the leader's next message (a heartbeat) tells it the commit.
  let st = await status(cluster.names[victim] as string, 2_000)
  for (let i = 0; i < 100 && st?.listLength !== 5; i++) {
    await Bun.sleep(20)
    st = await status(cluster.names[victim] as string, 2_000)
  }
  expect(st?.listLength).toBe(5)
  const snapshot = { _tag: "Snapshot", slot: 1_000, listFrom: 0, values: [9, 9, 9, 9, 9, 9], clients: [], complete: true }
  // Sent as node `from`, naming its incarnation: a message from any other would be dropped.
  const incarnation = ((await status(cluster.names[from] as string, 2_000)) as unknown as { incarnation: string }).incarnation
  const res = await fetch(`http://${cluster.names[victim]}/peer/envelope`, {
    method: "POST",
    headers: { "x-paxos-incarnation": incarnation },
    body: JSON.stringify({ cluster: st?.cluster, from, to: victim, messages: [snapshot] })
  })
  expect(res.status).toBe(204)
  const proc = cluster.nodes[victim]?.proc
  const code = proc === null || proc === undefined ? cluster.nodes[victim]?.exits.at(-1) : await proc.exited
  expect(code).toBe(70)
  const log = readFileSync(cluster.nodes[victim]?.logFile as string, "utf8")
  const line = log.split("\n").find((l) => l.includes("PAXOS-INVARIANT-VIOLATION"))
  expect(line).toContain("disagrees with")
  console.log(`stopped with exit ${code}: ${line}`)
}, 30_000)
