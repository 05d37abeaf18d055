/**
 * Waiting for a whole cluster to serve: every node answers GET /ready with 200, all naming the
 * same leader. Used once a cluster has started (start-servers, the demo, LocalCluster, the chaos
 * harness). A node restarted while faults last waits for /health only: it may stay without a
 * quorum for as long as a partition does.
 */

/** What GET /ready said: ready or not, why not, and the leader it follows. */
export interface ReadyAnswer {
  readonly ok: boolean
  /** NoLeader, LeaderWithoutQuorum, Behind (null when ready). */
  readonly reason: string | null
  /** The node's one-line explanation (null when ready). */
  readonly message: string | null
  readonly leader: string | null
}

/** GET /ready of `node` (`host:port`); null when it does not answer in time or answers something else. */
export async function probeReady(node: string, timeoutMs: number): Promise<ReadyAnswer | null> {
  try {
    const res = await fetch(`http://${node}/ready`, { signal: AbortSignal.timeout(timeoutMs) })
    if (res.status !== 200 && res.status !== 503) {
      await res.body?.cancel()
      return null
    }
    const body = (await res.json()) as { reason?: unknown; message?: unknown; leader?: unknown }
    const str = (u: unknown): string | null => (typeof u === "string" ? u : null)
    return { ok: res.status === 200, reason: res.status === 200 ? null : str(body.reason), message: res.status === 200 ? null : str(body.message), leader: str(body.leader) }
  } catch {
    return null
  }
}

/** A node that is not ready (yet): its name and why, as one phrase. */
export interface NotReadyNode {
  readonly node: string
  readonly why: string
}

/**
 * Polls GET /ready of every node until all answer 200 and name the same leader, or `timeoutMs`
 * passes, or `stop()` says so. Returns the leader, or the nodes that were not ready at the last
 * look (all of them ready but under different leaders is said as such).
 */
export async function waitReady(
  nodes: readonly string[],
  timeoutMs: number,
  stop: () => boolean = () => false
): Promise<{ readonly leader: string } | { readonly notReady: readonly NotReadyNode[] }> {
  const deadline = Date.now() + timeoutMs
  let notReady: NotReadyNode[] = nodes.map((node) => ({ node, why: "not asked yet" }))
  while (!stop()) {
    const answers = await Promise.all(nodes.map((n) => probeReady(n, 1_000)))
    notReady = []
    answers.forEach((a, i) => {
      const node = nodes[i] as string
      if (a === null) notReady.push({ node, why: "no answer to GET /ready" })
      else if (!a.ok) notReady.push({ node, why: `${a.reason ?? "not ready"}: ${a.message ?? ""}` })
    })
    const leaders = new Set(answers.map((a) => a?.leader ?? null))
    const leader = answers[0]?.leader ?? null
    if (notReady.length === 0 && leaders.size === 1 && leader !== null) return { leader }
    if (notReady.length === 0) notReady = nodes.map((node, i) => ({ node, why: `ready, under leader ${answers[i]?.leader ?? "?"} (the nodes do not agree yet)` }))
    if (Date.now() >= deadline) break
    await Bun.sleep(50)
  }
  return { notReady }
}

/** The nodes that are not ready, on one line. */
export const describeNotReady = (notReady: readonly NotReadyNode[]): string => notReady.map((n) => `${n.node} (${n.why})`).join("; ")
