/** One sample of every peer message type, and their parts, shared by the wire-format tests. */
import type { Message } from "../../src/core/messages.ts"

export const ballot = { round: 3, leader: 1 }
export const append = { _tag: "Append" as const, id: "1.ab.7", value: -5, client: "c1", seq: 2 }
export const read = { _tag: "Read" as const, id: "1.ab.8" }
export const client = { client: "c1", seq: 2, value: -5, index: 2, slot: 8 }
export const reconfig = { _tag: "Reconfig" as const, id: "1.ab.9", change: { _tag: "Add" as const, address: "10.0.0.4:5000" } }
export const bind = { _tag: "Reconfig" as const, id: "1.ab.10", change: { _tag: "Bind" as const, id: 3, incarnation: "00c0ffee00c0ffee" } }
export const membership = {
  current: {
    epoch: 1,
    members: [
      { id: 0, address: "10.0.0.1:5000", incarnation: "0000000000000001", voter: true },
      { id: 3, address: "10.0.0.4:5000", incarnation: null, voter: false }
    ],
    nextId: 4
  },
  next: {
    config: { epoch: 2, members: [{ id: 0, address: "10.0.0.1:5000", incarnation: "0000000000000001", voter: true }], nextId: 4 },
    from: 70
  }
}

export const SAMPLE_MESSAGES: Message[] = [
  { _tag: "Prepare", ballot, from: 4 },
  { _tag: "Promise", ballot, snapshot: 3, accepted: [{ slot: 4, ballot, value: [append, read] }] },
  { _tag: "Accept", ballot, entries: [{ slot: 5, value: [append, reconfig] }, { slot: 6, value: [] }], commit: 4 },
  { _tag: "Accepted", ballot, slots: [5, 6] },
  { _tag: "Nack", ballot, promised: { round: 4, leader: 2 } },
  { _tag: "Commit", ballot, commit: 6, quorum: true },
  { _tag: "CommitAck", ballot, applied: 6 },
  { _tag: "Forward", commands: [append, read, bind] },
  { _tag: "ForwardReject", ids: ["1.ab.7"], reason: "NotLeader" },
  { _tag: "CatchupRequest", from: 2, listLength: 10, snapshot: true },
  { _tag: "CatchupReply", entries: [{ slot: 2, value: [append] }] },
  { _tag: "Snapshot", slot: 9, listFrom: 1, values: [2, 3], clients: [client], complete: true, membership },
  { _tag: "Campaign", ballot }
]
