/**
 * A persistent append-only sequence: the replicated state machine's list of integers, and the
 * queue of commands waiting to be proposed or forwarded.
 *
 * Several PList values share one buffer; each sees the window [start, start + length) of it. `push`
 * appends in place when this view ends where the buffer ends and copies otherwise, and `drop`
 * only moves the window's start, so every PList value stays immutable while the common cases (one
 * node appending, a queue drained from the front) are O(1) per element instead of a copy each time.
 */
export class PList<T = number> {
  private constructor(
    private readonly buf: T[],
    private readonly start: number,
    readonly length: number
  ) {}

  /** A new empty sequence (each has its own buffer). */
  static empty<T = number>(): PList<T> {
    return new PList<T>([], 0, 0)
  }

  static from<T>(values: readonly T[]): PList<T> {
    return new PList(values.slice(), 0, values.length)
  }

  at(i: number): T | undefined {
    return i >= 0 && i < this.length ? this.buf[this.start + i] : undefined
  }

  push(...values: readonly T[]): PList<T> {
    if (values.length === 0) return this
    if (this.buf.length === this.start + this.length) {
      for (const v of values) this.buf.push(v)
      return new PList(this.buf, this.start, this.length + values.length)
    }
    const copy = this.slice()
    for (const v of values) copy.push(v)
    return new PList(copy, 0, copy.length)
  }

  /** A copy of [from, to) of this sequence. */
  slice(from = 0, to = this.length): T[] {
    return this.buf.slice(this.start + Math.max(0, from), this.start + Math.min(to, this.length))
  }

  /** The first `length` elements (O(1): shares the buffer). */
  take(length: number): PList<T> {
    return length >= this.length ? this : new PList(this.buf, this.start, Math.max(0, length))
  }

  /** All but the first `n` elements. Shares the buffer until most of it is behind the window. */
  drop(n: number): PList<T> {
    if (n <= 0) return this
    if (n >= this.length) return PList.empty<T>()
    const start = this.start + n
    if (start > 1024 && start > this.buf.length / 2) return PList.from(this.slice(n))
    return new PList(this.buf, start, this.length - n)
  }

  filter(keep: (value: T) => boolean): PList<T> {
    return PList.from(this.slice().filter(keep))
  }
}
