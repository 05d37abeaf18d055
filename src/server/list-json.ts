/**
 * The JSON text of the replicated list, kept incrementally, so that a reply carrying the list up
 * to some index costs a substring rather than serializing the whole list again for every request.
 *
 * The applied list only grows, and a newer list always extends an older one (the core checks that
 * a snapshot agrees with what was applied), so the cache only ever appends.
 */
import type { PList } from "../core/plist.ts"

export class ListJson {
  /** `v0,v1,...` without brackets. */
  private text = ""
  /** ends[i]: the length of `text` once value i is in it. */
  private ends: number[] = []

  get length(): number {
    return this.ends.length
  }

  /** Appends the values of `list` that the cache does not hold yet. */
  sync(list: PList): void {
    const have = this.ends.length
    if (list.length <= have) return
    const add = list.slice(have)
    let text = this.text
    for (const v of add) {
      text = text.length === 0 ? String(v) : `${text},${v}`
      this.ends.push(text.length)
    }
    this.text = text
  }

  /** The JSON array of the first `length` values. */
  json(length: number): string {
    if (length <= 0) return "[]"
    const n = Math.min(length, this.ends.length)
    return `[${this.text.slice(0, this.ends[n - 1])}]`
  }
}
