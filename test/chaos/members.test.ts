/**
 * The member nemesis's pure parts (src/chaos/members.ts) and what the report makes of its changes
 * (src/chaos/report.ts): which hosts may be added or removed, the view of GET /members, and the
 * counts of changes attempted, completed, refused, unknown and completed under faults. No nodes.
 */
import { describe, expect, test } from "bun:test"
import { addable, newestView, parseView, removable, type ChangeRecord, type View } from "../../src/chaos/members.ts"
import type { FaultRecord } from "../../src/chaos/nemesis.ts"
import { latencySvg, membershipCounts, resultsJson, summaryText, warnings, type RunReport } from "../../src/chaos/report.ts"

const H = ["h1:5000", "h2:5000", "h3:5000", "h4:5000", "h5:5000"]
const view = (members: Array<[string, boolean]>, epoch = 1): View => ({ from: "h1:5000", epoch, leader: null, members: members.map(([address, voter]) => ({ address, voter, joined: true })) })

describe("member nemesis: candidates", () => {
  test("grow adds a host that is no member, below 9 members", () => {
    expect(addable(H, view([["h1:5000", true], ["h2:5000", true], ["h3:5000", true]]))).toEqual(["h4:5000", "h5:5000"])
    const nine = view(Array.from({ length: 9 }, (_, i) => [`x${i}:5000`, true] as [string, boolean]))
    expect(addable(H, nine)).toEqual([])
  })

  test("shrink never leaves fewer than 3 members or 3 voters", () => {
    expect(removable(view([["h1:5000", true], ["h2:5000", true], ["h3:5000", true]]))).toEqual([])
    expect(removable(view([["h1:5000", true], ["h2:5000", true], ["h3:5000", true], ["h4:5000", true]]))).toEqual(["h1:5000", "h2:5000", "h3:5000", "h4:5000"])
    // Three voters and a learner: only the learner may go.
    expect(removable(view([["h1:5000", true], ["h2:5000", true], ["h3:5000", true], ["h4:5000", false]]))).toEqual(["h4:5000"])
  })

  test("the view of GET /members is the newest configuration: the pending one when a change is on its way in", () => {
    const members = [{ id: 0, address: "h1:5000", voter: true, leader: true, joined: true }]
    const body = { node: "h1:5000", epoch: 3, leader: "h1:5000", members, pending: null }
    expect(parseView("h1:5000", body)).toEqual({ from: "h1:5000", epoch: 3, leader: "h1:5000", members: [{ address: "h1:5000", voter: true, joined: true }] })
    const pending = { ...body, pending: { from: 70, epoch: 4, members: [...members, { id: 1, address: "h2:5000", voter: false, leader: false, joined: false }] } }
    const v = parseView("h1:5000", pending) as View
    expect(v.epoch).toBe(4)
    expect(v.members.map((m) => [m.address, m.voter, m.joined])).toEqual([["h1:5000", true, true], ["h2:5000", false, false]])
    expect(parseView("h1:5000", { epoch: "3", members })).toBeNull()
    expect(parseView("h1:5000", { epoch: 3, members: [{ address: 5 }] })).toBeNull()
    expect(parseView("h1:5000", null)).toBeNull()
  })

  test("of several views the highest epoch wins (a node that lags reports an older one)", () => {
    const a = view([["h1:5000", true]], 2)
    const b = view([["h2:5000", true]], 5)
    expect(newestView([null, a, b, null])).toBe(b)
    expect(newestView([null])).toBeNull()
  })
})

describe("member nemesis: the report", () => {
  const s = (x: number) => x * 1e9
  const change = (op: "grow" | "shrink", result: ChangeRecord["result"], startS: number, endS: number, more: Partial<ChangeRecord> = {}): ChangeRecord => ({
    op, node: op === "grow" ? "h4:5000" : "h1:5000", via: "h2:5000", result, start: s(startS), end: s(endS), ...more,
  })
  const fault = (kind: FaultRecord["kind"], startS: number, endS: number | null, applied = true): FaultRecord => ({
    kind, variant: "one", targets: ["h1:5000"], start: s(startS), appliedAt: s(startS), end: endS === null ? null : s(endS), applied,
  })
  const faults = [fault("kill", 10, 12), fault("partition", 20, 25), fault("pause", 30, 31, false)]
  const changes: ChangeRecord[] = [
    change("grow", "added", 1, 2, { started: true, voterAt: s(3) }), // before any fault
    change("shrink", "removed", 11, 11.5), // inside the kill
    change("grow", "added", 19, 20.5, { started: true, voterAt: null }), // overlaps the partition's start
    change("shrink", "removed", 30, 30.5), // the pause was not applied
    change("grow", "refused", 40, 40.1, { error: { status: 409, error: "Conflict", message: "another change in flight" } }),
    change("shrink", "unknown", 50, 60, { error: { status: 504, error: "OutcomeUnknown", message: "no decision seen in time" } }),
    change("grow", "no-node-to-add", 70, 70),
  ]

  test("counts attempted, completed, refused, unknown, and completed while a fault was in force", () => {
    const m = membershipCounts(changes, faults)
    expect([m.attempted, m.completed, m.refused, m.unknown, m.notTried]).toEqual([6, 4, 1, 1, 1])
    expect(m.byOp.grow).toEqual({ attempted: 3, completed: 2, refused: 1, unknown: 0 })
    expect(m.byOp.shrink).toEqual({ attempted: 3, completed: 2, refused: 0, unknown: 1 })
    expect(m.completedUnderFaults).toBe(2)
    expect(m.underFaultsByKind).toEqual({ partition: 1, kill: 1, pause: 0 })
    expect(m.addedBecameVoters).toBe(1)
    expect(m.errors).toEqual({ "409 Conflict": 1, "504 OutcomeUnknown": 1 })
  })

  const report = (cs: readonly ChangeRecord[], kinds: RunReport["kinds"] = ["partition", "kill", "pause"]): RunReport => ({
    options: {}, mode: "netns", nodes: H, out: "/tmp/x", startedAt: "2025-01-01T00:00:00.000Z", wallSeconds: 80, clientSeconds: 75,
    clientStart: 0, clientEnd: s(75), check: null, checkError: "not checked", samples: [], faults, kinds,
    membership: { initial: H.slice(0, 3), spares: H.slice(3), changes: cs, final: view([["h2:5000", true], ["h3:5000", true], ["h4:5000", false]], 9) },
    crashes: [], invariantViolations: [], finalReads: [], faultyBuild: null, notes: [], interrupted: false,
  })

  test("results.json and the summary carry the counts; no warning when changes completed under faults", () => {
    const r = report(changes)
    const j = resultsJson(r) as { membership: { completed: number; completedUnderFaults: number; provesNothing: boolean; changes: Array<{ underFaults: string[] }> }; warnings: string[] }
    expect(j.membership.completed).toBe(4)
    expect(j.membership.completedUnderFaults).toBe(2)
    expect(j.membership.provesNothing).toBe(false)
    expect(j.membership.changes[1]?.underFaults).toEqual(["kill/one"])
    expect(j.warnings).toEqual([])
    const text = summaryText(r)
    expect(text).toContain("membership changes: 6 attempted, 4 completed (grow 2/3, shrink 2/3), 1 refused, 1 unknown, 1 not tried; 2 completed under faults")
    expect(text).toContain("final members (epoch 9): h2 h3 h4 (learner)")
    expect(text).not.toContain("WARNING")
    const svg = latencySvg(r)
    expect(svg).toContain("shrink h1:5000: removed")
    expect(svg).toContain("grow h4:5000: refused (another change in flight)")
  })

  test("a run where every change was refused proves nothing, and says so loudly", () => {
    const refused = changes.filter((c) => c.result === "refused" || c.result === "unknown" || c.result === "no-node-to-add")
    const r = report(refused)
    expect(warnings(r)).toHaveLength(1)
    expect(warnings(r)[0]).toContain("NO CHANGE OF MEMBERSHIP COMPLETED (2 attempted: 1 refused, 1 unknown; 1 not tried)")
    expect(summaryText(r)).toContain("WARNING: NO CHANGE OF MEMBERSHIP COMPLETED")
    expect((resultsJson(r) as { membership: { provesNothing: boolean } }).membership.provesNothing).toBe(true)
    expect(warnings(report([]))[0]).toContain("proves nothing")
  })

  test("changes that completed only between faults are called out too", () => {
    const r = report([changes[0] as ChangeRecord, changes[3] as ChangeRecord])
    expect(warnings(r)[0]).toContain("no change of membership completed while a partition, kill, pause was in force")
    // Without other faults (--nemesis member) there is nothing to overlap.
    expect(warnings(report([changes[0] as ChangeRecord], []))).toEqual([])
  })
})
