/**
 * The progress line of a long command (`sim`, `chaos`, a long `check`): done/total, rate, elapsed
 * and remaining time, and counts such as violations so far.
 *
 * On a terminal it is one line, redrawn in place (`\r` and erase-line) at most every `ttyEveryMs`.
 * Elsewhere (CI, a pipe) it is a plain line every `plainEveryMs` or every tenth of the total,
 * whichever comes first, and never two within `plainMinMs`. Other output goes through `above`,
 * which clears the line, writes, and draws the line again, so the two never mix. Quiet: nothing.
 *
 * The clock and the output are injected, and nothing here needs Bun: the tests drive it with a
 * fake clock. `stderrProgress` is the one place that looks at the real process.
 */

export interface ProgressOptions {
  /** The command, first on the line: `sim`. */
  readonly label: string
  /** How many units make the whole run (> 0). */
  readonly total: number
  /** What is counted: `seeds`, `MB`, `s`. */
  readonly unit: string
  /** The unit of the rate when it counts something else than `unit` (`Status.rated`), e.g. `ops`. */
  readonly rateUnit?: string
  /** One updating line (a terminal), or plain lines. */
  readonly tty: boolean
  /** No output at all. */
  readonly quiet?: boolean
  /** Writes text to the progress stream (stderr), as is. */
  readonly write: (text: string) => void
  /** Milliseconds, monotonic. */
  readonly now: () => number
  /** The terminal's width, when known: the line is cut to fit, so it never wraps. */
  readonly columns?: () => number | undefined
  /** Least time between two redraws on a terminal. */
  readonly ttyEveryMs?: number
  /** A plain line at least this often... */
  readonly plainEveryMs?: number
  /** ...but never two within this. */
  readonly plainMinMs?: number
  /** Nothing is shown before this much time has passed (a short run stays silent). */
  readonly showAfterMs?: number
}

export interface Status {
  /** Units done, 0 to total. */
  readonly done: number
  /** What the rate counts, when `rateUnit` is set (ops completed, say). */
  readonly rated?: number
  /** Counts shown after the times, in order: `[["violations", 0]]`. */
  readonly counts?: ReadonlyArray<readonly [string, number]>
}

export const TTY_EVERY_MS = 250
export const PLAIN_EVERY_MS = 5_000
export const PLAIN_MIN_MS = 1_000
/** A status line is cut to this many characters even where the terminal's width is not known. */
const MAX_LINE = 200
const CLEAR = "\r\x1b[K"

export class Progress {
  private readonly started: number
  private last: Status = { done: 0 }
  /** When the line was last drawn (terminal) or printed (plain). */
  private drawnAt: number
  /** On a terminal: whether the line is on screen now. */
  private shown = false
  /** Plain: the done count at which the next tenth is reached. */
  private nextMark: number
  private finished = false

  constructor(private readonly o: ProgressOptions) {
    if (!(o.total > 0) || !Number.isFinite(o.total)) throw new RangeError(`progress total must be a positive number, got ${o.total}`)
    this.started = o.now()
    this.drawnAt = o.tty ? -Infinity : this.started
    this.nextMark = o.total / 10
  }

  /** Records the status; draws or prints it when the rate limit allows. */
  update(s: Status): void {
    this.last = s
    if (this.o.quiet === true || this.finished) return
    const now = this.o.now()
    if (now - this.started < (this.o.showAfterMs ?? 0)) return
    const since = now - this.drawnAt
    if (this.o.tty) {
      if (since < (this.o.ttyEveryMs ?? TTY_EVERY_MS)) return
      this.draw(now)
      return
    }
    if (since < (this.o.plainMinMs ?? PLAIN_MIN_MS)) return
    if (since < (this.o.plainEveryMs ?? PLAIN_EVERY_MS) && s.done < this.nextMark) return
    this.drawnAt = now
    while (this.nextMark <= s.done) this.nextMark += this.o.total / 10
    this.o.write(`${this.text(now, ", ")}\n`)
  }

  /** Runs `write` (other output) with the line out of its way, then puts the line back. */
  above(write: () => void): void {
    if (!this.shown) {
      write()
      return
    }
    this.o.write(CLEAR)
    this.shown = false
    write()
    this.draw(this.o.now())
  }

  /** Takes the line off the screen; nothing is drawn after this. */
  finish(): void {
    if (this.shown) this.o.write(CLEAR)
    this.shown = false
    this.finished = true
  }

  private draw(now: number): void {
    if (this.finished) return
    this.drawnAt = now
    const cols = this.o.columns?.()
    const width = Math.min(MAX_LINE, cols !== undefined && cols > 1 ? cols - 1 : MAX_LINE)
    this.o.write(CLEAR + this.text(now, "  ").slice(0, width))
    this.shown = true
  }

  /** `sim 120/2000 seeds 6%  10.2 seeds/s  elapsed 11s  left 3m04s  violations 0`. */
  private text(now: number, sep: string): string {
    const o = this.o
    const s = this.last
    const elapsed = Math.max(0, (now - this.started) / 1000)
    const done = Math.min(s.done, o.total)
    const pct = Math.floor((100 * done) / o.total)
    const rateOf = o.rateUnit === undefined ? done : (s.rated ?? 0)
    const rate = elapsed > 0 ? rateOf / elapsed : 0
    const left = done > 0 && elapsed > 0 ? ((o.total - done) * elapsed) / done : null
    const parts = [
      `${o.label}${o.tty ? "" : ":"} ${num(done)}/${num(o.total)} ${o.unit} ${pct}%`,
      `${rate < 100 ? rate.toFixed(1) : Math.round(rate)} ${o.rateUnit ?? o.unit}/s`,
      `elapsed ${duration(elapsed)}`,
      `left ${left === null ? "?" : duration(left)}`,
      ...(s.counts ?? []).map(([name, n]) => `${name} ${n}`)
    ]
    return parts.join(sep)
  }
}

/** A count as shown: whole numbers as they are, fractions to one decimal. */
const num = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1))

/** `42s`, `3m05s`, `2h07m`. */
export function duration(seconds: number): string {
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

/** A progress line on this process's stderr: one updating line when stderr is a terminal. */
export function stderrProgress(o: Omit<ProgressOptions, "tty" | "write" | "now" | "columns">): Progress {
  const err = process.stderr
  return new Progress({
    ...o,
    tty: err.isTTY === true && process.env.TERM !== "dumb",
    write: (text) => void err.write(text),
    now: () => performance.now(),
    columns: () => err.columns
  })
}
