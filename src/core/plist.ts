/**
 * A persistent append-only list of integers: the replicated state machine's state.
 *
 * Several PList values share one buffer; each sees the prefix of its own length. `push` appends in
 * place when this list is the longest view of its buffer and copies otherwise, so every PList value
 * stays immutable while the common case (one node appending) is O(1).
 */
export class PList {
  private constructor(
    private readonly buf: number[],
    readonly length: number
  ) {}

  static readonly empty: PList = new PList([], 0)

  static from(values: readonly number[]): PList {
    return new PList(values.slice(), values.length)
  }

  at(i: number): number | undefined {
    return i >= 0 && i < this.length ? this.buf[i] : undefined
  }

  push(value: number): PList {
    if (this.buf.length === this.length) {
      this.buf.push(value)
      return new PList(this.buf, this.length + 1)
    }
    const copy = this.buf.slice(0, this.length)
    copy.push(value)
    return new PList(copy, this.length + 1)
  }

  /** A copy of [from, to) of this list. */
  slice(from = 0, to = this.length): number[] {
    return this.buf.slice(Math.max(0, from), Math.min(to, this.length))
  }

  /** This list cut to `length` elements (O(1): shares the buffer). */
  take(length: number): PList {
    return length >= this.length ? this : new PList(this.buf, Math.max(0, length))
  }
}
