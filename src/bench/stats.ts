/**
 * Latency samples and their summary (mean, p50, p95, p99, max), medians over runs, and the small
 * number formatting the report uses. Percentiles are nearest-rank on the sorted samples.
 */

/** A growable buffer of latency samples in milliseconds. */
export class Samples {
  private buf: Float64Array
  private n = 0

  constructor(capacity = 16_384) {
    this.buf = new Float64Array(Math.max(16, capacity))
  }

  get length(): number {
    return this.n
  }

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.n++] = ms
  }

  /** The samples so far, as a sorted copy. */
  sorted(): Float64Array {
    return this.buf.slice(0, this.n).sort()
  }

  /** Samples [from, to) (in the order added), as a sorted copy. */
  sortedRange(from: number, to: number): Float64Array {
    return this.buf.slice(Math.max(0, from), Math.min(to, this.n)).sort()
  }

  /** Forgets every sample (keeps the buffer). */
  clear(): void {
    this.n = 0
  }
}

export interface LatencySummary {
  readonly meanMs: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** The nearest-rank percentile `p` (0..100) of sorted samples; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number
}

export function summarize(sorted: Float64Array): LatencySummary {
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i] as number
  return {
    meanMs: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number)
  }
}

/** The median of the finite numbers among `xs` (mean of the two middle ones); null when none. */
export function median(xs: ReadonlyArray<number | null>): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2
}

/** `a / b`, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return null
  return a / b
}

/** A number for a table cell: a few significant digits, thousands separated, "-" when missing. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-"
  const abs = Math.abs(x)
  if (abs >= 1000) return Math.round(x).toLocaleString("en-US")
  if (abs >= 100) return x.toFixed(0)
  if (abs >= 10) return x.toFixed(Math.max(0, digits - 2))
  if (abs >= 1) return x.toFixed(Math.max(0, digits - 1))
  if (abs === 0) return "0"
  return x.toPrecision(digits)
}

/** Bytes as MiB with one decimal. */
export const mib = (bytes: number | null | undefined): string => (bytes === null || bytes === undefined ? "-" : (bytes / 1048576).toFixed(1))

/** Left-aligned first column, right-aligned others. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}
