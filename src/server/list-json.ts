/**
 * The JSON text of the replicated list, kept incrementally, so that a reply carrying the list up
 * to some index costs a substring rather than serializing the whole list again for every request.
 *
 * The applied list only grows, and a newer list always extends an older one (the core checks that
 * a snapshot agrees with what was applied), so the cache only ever appends.
 *
 * Memory is the text itself (a byte per character: about 7 per value of a million) plus 4 bytes
 * per value of offsets. Values come in per batch: each batch's values are joined into one string
 * piece, and pieces are folded into the text only when a reply needs it (or every PIECES_MAX
 * pieces), so the text is not a rope of one small string per value.
 */
import type { PList } from "../core/plist.ts"

/** Pieces kept apart before they are folded into the text. */
const PIECES_MAX = 256

export class ListJson {
  /** `v0,v1,...` without brackets: the values before the pieces. */
  private text = ""
  /** Values since `text`, one string per sync, each `vi,...,vj`. */
  private pieces: string[] = []
  /** Length the text will have once the pieces are folded in. */
  private textLength = 0
  /** ends[i]: the length of the full text once value i is in it. */
  private ends = new Uint32Array(1024)
  private count = 0

  get length(): number {
    return this.count
  }

  /** Appends the values of `list` that the cache does not hold yet. */
  sync(list: PList): void {
    const have = this.count
    if (list.length <= have) return
    const add = list.slice(have)
    this.reserve(have + add.length)
    let at = this.textLength
    for (let i = 0; i < add.length; i++) {
      at += (at === 0 ? 0 : 1) + String(add[i]).length
      this.ends[have + i] = at
    }
    this.pieces.push(add.join(","))
    this.textLength = at
    this.count = have + add.length
    if (this.pieces.length >= PIECES_MAX) this.fold()
  }

  /** The JSON array of the first `length` values. */
  json(length: number): string {
    if (length <= 0) return "[]"
    const n = Math.min(length, this.count)
    const end = this.ends[n - 1] as number
    if (end > this.text.length) this.fold()
    return `[${this.text.slice(0, end)}]`
  }

  private fold(): void {
    if (this.pieces.length === 0) return
    const tail = this.pieces.join(",")
    this.text = this.text.length === 0 ? tail : `${this.text},${tail}`
    this.pieces = []
  }

  private reserve(n: number): void {
    if (n <= this.ends.length) return
    let size = this.ends.length
    while (size < n) size *= 2
    const next = new Uint32Array(size)
    next.set(this.ends.subarray(0, this.count))
    this.ends = next
  }
}
