/**
 * Invariant violations are defects: they stop the node loudly. They are thrown (Effect turns a
 * throw inside a program into a defect, `Cause.die`), never returned as a typed error that a
 * caller could catch and ignore. Every such log line carries MARKER so that logs, the chaos
 * harness and Jepsen's log-file checker can find it.
 */
export const MARKER = "PAXOS-INVARIANT-VIOLATION"

export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation"
  constructor(readonly detail: string) {
    super(`${MARKER} ${detail}`)
  }
}

/** Stops the node when `cond` is false. */
export function invariant(cond: boolean, detail: () => string): asserts cond {
  if (!cond) throw new InvariantViolation(detail())
}
