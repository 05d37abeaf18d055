/**
 * Readiness: whether this node can serve clients now, as far as it can tell (the server's
 * GET /ready). A node is ready while it knows a leader that holds a quorum and has applied what
 * that leader committed:
 *
 * - on the leader: it heard from a quorum, itself included, within the last election timeout, and
 *   applied every slot up to its commit watermark;
 * - on a follower: it heard from its leader within the last election timeout, the leader's latest
 *   heartbeat said it heard from a quorum (Commit's `quorum`), and it applied every slot up to the
 *   leader's commit watermark as it last heard it.
 *
 * So a leader cut off in a minority stops being ready one election timeout after it last heard
 * from a quorum, and its followers there with its next heartbeat; a follower whose leader fell
 * silent, one election timeout after it last heard from it. Pure: it reads the state only.
 */
import { heardFromQuorum } from "./leader.ts"
import type { NodeState } from "./state.ts"

export type NotReadyReason = "NoLeader" | "LeaderWithoutQuorum" | "Behind"

export interface Readiness {
  readonly ok: boolean
  /** null when ready. */
  readonly reason: NotReadyReason | null
  /** The leader this node follows (itself when it leads); null with NoLeader. */
  readonly leader: number | null
  readonly applied: number
  /** The leader's commit watermark as this node knows it (0 when it knows no leader). */
  readonly leaderCommit: number
  /** NoLeader because the leader it followed fell silent: which one, and for how many ticks. */
  readonly silent: { readonly leader: number; readonly ticks: number } | null
}

export function readiness(s: NodeState): Readiness {
  const r = s.role
  const applied = s.applied
  const answer = (reason: NotReadyReason | null, leader: number | null, leaderCommit: number, silent: Readiness["silent"] = null): Readiness => ({
    ok: reason === null,
    reason,
    leader,
    applied,
    leaderCommit,
    silent
  })
  if (r._tag === "Leader") {
    if (!heardFromQuorum(s, r)) return answer("LeaderWithoutQuorum", s.cfg.id, r.committed)
    return answer(applied < r.committed ? "Behind" : null, s.cfg.id, r.committed)
  }
  if (r._tag === "Candidate" || s.leader === null) return answer("NoLeader", null, 0)
  const ticks = s.now - s.leaderHeardAt
  if (ticks > s.cfg.electionTicks) return answer("NoLeader", null, 0, { leader: s.leader, ticks })
  if (!s.leaderQuorum) return answer("LeaderWithoutQuorum", s.leader, s.leaderCommit)
  return answer(applied < s.leaderCommit ? "Behind" : null, s.leader, s.leaderCommit)
}
