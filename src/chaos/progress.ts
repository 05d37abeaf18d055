/**
 * The chaos run's progress line (src/progress.ts) while its clients run: seconds of the time limit
 * done, ops completed a second, elapsed and remaining time, :fail and :info ops so far, and faults
 * started. The clients report each op's outcome (`onOp`); a timer calls `tick`.
 */
import type { Progress } from "../progress.ts"
import type { Outcome3 } from "./clients.ts"

export class ChaosProgress {
  private readonly outcomes: Record<Outcome3, number> = { ok: 0, fail: 0, info: 0 }

  constructor(
    private readonly progress: Progress,
    private readonly timeLimitS: number,
    /** Seconds since the clients started. */
    private readonly elapsedS: () => number,
    /** Faults the nemesis started so far. */
    private readonly faults: () => number
  ) {}

  readonly onOp = (type: Outcome3): void => {
    this.outcomes[type]++
  }

  tick(): void {
    const { ok, fail, info } = this.outcomes
    this.progress.update({
      done: Math.min(this.timeLimitS, Math.max(0, Math.floor(this.elapsedS()))),
      rated: ok + fail + info,
      counts: [["fail", fail], ["info", info], ["faults", this.faults()]]
    })
  }
}
