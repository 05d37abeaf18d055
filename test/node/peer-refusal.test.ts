/**
 * A peer refused for authentication or for belonging to another cluster: both sides log one line
 * naming the cause (read from the log files LocalCluster writes), rate-limited. The refusing side
 * names the node it refused and why; the refused side, whose WebSocket client sees only a 401 or
 * 400, asks the other node why and says "node 2 was refused by node 0 (...): <cause>".
 */
import { afterAll, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { writeNewSecret } from "../../src/cli/start-servers.ts"
import type { LocalCluster } from "../../src/cli/local-cluster.ts"
import { clusterIdOf, parseConfig } from "../../src/server/cluster-config.ts"
import { cleanup, makeCluster, tempDir, waitFor } from "./support.ts"

afterAll(cleanup)

/** How long each side keeps refusing: the connections retry every 20 to 500 ms meanwhile. */
const REFUSING_MS = 3_000

const lines = (c: LocalCluster, i: number, event: string): string[] =>
  readFileSync(c.nodes[i]?.logFile as string, "utf8")
    .split("\n")
    .filter((l) => l.includes(` ${event} `))

/** Waits until node i's log has a line of `event` that matches `re`; returns it. */
async function logged(c: LocalCluster, i: number, event: string, re: RegExp): Promise<string> {
  await waitFor(`node ${i} to log ${event} matching ${re}`, () => lines(c, i, event).some((l) => re.test(l)), 15_000)
  return lines(c, i, event).find((l) => re.test(l)) as string
}

/** Counter `name` of node i's /status. */
async function counter(c: LocalCluster, i: number, name: string): Promise<number> {
  const st = (await (await fetch(`http://${c.names[i]}/status`)).json()) as { counters: Record<string, number> }
  return st.counters[name] ?? 0
}

/**
 * A 3-node cluster whose nodes share a secret, started whole (an initial member binds every
 * member's incarnation before it votes); node 2 is then stopped and started again by `start2`.
 */
async function twoAndOne(start2: (c: LocalCluster, secret: string, dir: string) => void): Promise<LocalCluster> {
  const dir = tempDir()
  const secret = join(dir, "secret")
  writeNewSecret(secret)
  const c = await makeCluster(3)
  for (let i = 0; i < 3; i++) c.start(i, { flags: ["--secret-file", secret] })
  await c.waitAllReady()
  await c.kill(2)
  start2(c, secret, dir)
  await c.waitLeader(15_000, [2])
  return c
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Over REFUSING_MS the refusals repeat, but each side logs about one line per 5 s per peer. */
async function expectRateLimited(c: LocalCluster, refused: number, refuser: number, refuserEvent: string): Promise<void> {
  await Bun.sleep(REFUSING_MS)
  expect(await counter(c, refused, "peerConnectionsRefusedByPeer")).toBeGreaterThanOrEqual(3)
  const byRefused = lines(c, refused, "peer-refused-this-node").filter((l) => l.includes(`peer=${c.names[refuser]} `))
  expect(byRefused.length).toBeGreaterThanOrEqual(1)
  expect(byRefused.length).toBeLessThanOrEqual(2)
  const byRefuser = lines(c, refuser, refuserEvent).filter((l) => l.includes(` from=${refused} `))
  expect(byRefuser.length).toBeGreaterThanOrEqual(1)
  expect(byRefuser.length).toBeLessThanOrEqual(2)
}

test("a node with another cluster secret: both sides log that the secret does not match, naming the node", async () => {
  const c = await twoAndOne((c, _secret, dir) => {
    const other = join(dir, "other-secret")
    writeNewSecret(other)
    c.start(2, { flags: ["--secret-file", other] })
  })
  const [n0, n2] = [c.names[0] as string, c.names[2] as string]
  // Refused side: node 2's connection to node 0 got a 401; it asked why.
  const refused = await logged(c, 2, "peer-refused-this-node", new RegExp(`peer=${esc(n0)} `))
  expect(refused).toContain("reason=BadMac")
  expect(refused).toContain(`cause="node 2 was refused by node 0 (${n0}): its cluster secret does not match node 0's`)
  // Refusing side: node 0 names node 2 and the cause.
  const refusing = await logged(c, 0, "peer-auth-failed", / from=2 /)
  expect(refusing).toContain("via=upgrade reason=BadMac")
  expect(refusing).toContain(`cause="node 2 (${n2}, at 127.0.0.1) was refused: its cluster secret does not match this node's`)
  // And the other way round: node 0's connection to node 2.
  expect(await logged(c, 0, "peer-refused-this-node", new RegExp(`peer=${esc(n2)} `))).toContain(`node 0 was refused by node 2 (${n2}): its cluster secret does not match node 2's`)
  await expectRateLimited(c, 2, 0, "peer-auth-failed")
}, 60_000)

test("a node with another config file (another cluster id): both sides log the two clusters", async () => {
  let otherConfig = ""
  const c = await twoAndOne((c, secret, dir) => {
    // The same three nodes and a fourth: another node list, so another cluster id. Node 2 starts
    // empty (its data dir holds its identity, and with it the cluster it was made in).
    otherConfig = join(dir, "config-4")
    writeFileSync(otherConfig, `${c.names.join("\n")}\n127.0.0.1:1\n`)
    c.wipe(2)
    c.start(2, { flags: ["--secret-file", secret], config: otherConfig })
  })
  const ours = clusterIdOf(parseConfig(readFileSync(c.configFile, "utf8")).nodes)
  const theirs = clusterIdOf(parseConfig(readFileSync(otherConfig, "utf8")).nodes)
  expect(theirs).not.toBe(ours)
  const n0 = c.names[0] as string
  const refused = await logged(c, 2, "peer-refused-this-node", new RegExp(`peer=${esc(n0)} `))
  expect(refused).toContain("reason=OtherCluster")
  expect(refused).toContain(`cause="node 2 was refused by node 0 (${n0}): it belongs to cluster ${theirs}, node 0 to cluster ${ours}: their config files differ`)
  const refusing = await logged(c, 0, "peer-connection-rejected", / from=2 /)
  expect(refusing).toContain(`cause="node 2 of cluster ${theirs} (at 127.0.0.1) was refused: it belongs to cluster ${theirs}, this node to cluster ${ours}: their config files differ`)
  await expectRateLimited(c, 2, 0, "peer-connection-rejected")
}, 60_000)

test("a node without a cluster secret among nodes with one: both sides say which has none", async () => {
  const c = await twoAndOne((c) => c.start(2))
  const [n0, n2] = [c.names[0] as string, c.names[2] as string]
  // Only the leader sends node 2 anything (heartbeats): its frames are the ones node 2 refuses.
  const leader = await c.waitLeader(15_000, [2])
  const nl = c.names[leader] as string
  // Node 2 to node 0: no authentication at all, refused with 401 Missing.
  expect(await logged(c, 2, "peer-refused-this-node", new RegExp(`peer=${esc(n0)} `))).toContain(
    `cause="node 2 was refused by node 0 (${n0}): it has no cluster secret (--secret-file), and node 0 requires one"`
  )
  expect(await logged(c, 0, "peer-auth-failed", / from=2 /)).toContain(`reason=Missing`)
  // The leader to node 2: node 2 cannot read signed frames (it used to log "body is not valid JSON").
  expect(await logged(c, 2, "peer-connection-rejected", new RegExp(` from=${leader} `))).toContain(
    `cause="node ${leader} (${nl}) was refused: it has a cluster secret (its frames are signed), and this node has none (--secret-file)"`
  )
  expect(await logged(c, leader, "peer-refused-this-node", new RegExp(`peer=${esc(n2)} `))).toContain(
    `cause="node ${leader} was refused by node 2 (${n2}): it has a cluster secret (its frames are signed), and node 2 has none (--secret-file)"`
  )
}, 60_000)
