/**
 * The order a pipelined disk keeps, for any shell (the server's SQLite store, the simulator's
 * in-memory disks): commits are counted in the order they were made, a sync makes durable every
 * commit made before it started, and what depends on writes is held until a sync covers the last
 * commit made before it. The shell does the I/O; this only keeps the count.
 *
 * Up to `lanes` syncs may run at once. fdatasync(2) returns once everything written to the file
 * before the call is on disk, whatever other syncs of the file do meanwhile, so a sync that
 * started later may end first: it makes durable every commit it covers, and one that started
 * earlier and ends after it releases nothing more.
 */
import { invariant } from "./invariant.ts"

export class DurableOrder<A> {
  private commits = 0
  private durable = 0
  /** The commit counts the syncs in progress cover, in the order they started. */
  private inFlight: number[] = []
  private held: Array<{ readonly seq: number; readonly item: A }> = []

  constructor(private readonly lanes: number = 1) {
    invariant(Number.isInteger(lanes) && lanes >= 1, () => `DurableOrder: lanes must be a positive integer, got ${lanes}`)
  }

  /** Commits made so far that are durable (a prefix of them). */
  get durableCommits(): number {
    return this.durable
  }

  /** The commit counts the syncs in progress cover, oldest first (empty when none runs). */
  get running(): readonly number[] {
    return this.inFlight.slice()
  }

  /** A commit was made. */
  committed(): void {
    this.commits += 1
  }

  /** Holds `item` until every commit made so far is durable; false when it already is (send it now). */
  hold(item: A): boolean {
    if (this.durable === this.commits) return false
    this.held.push({ seq: this.commits, item })
    return true
  }

  /**
   * A sync starts over every commit made so far: returns the count it covers, or null when every
   * lane is busy (the next starts when one ends) or no commit waits for a sync.
   */
  startSync(): number | null {
    if (this.inFlight.length >= this.lanes) return null
    const covered = this.inFlight.length === 0 ? this.durable : (this.inFlight[this.inFlight.length - 1] as number)
    if (this.commits === covered) return null
    this.inFlight.push(this.commits)
    return this.commits
  }

  /** The sync that covers `target` ended: returns what it releases, oldest first. */
  synced(target: number): A[] {
    const i = this.inFlight.indexOf(target)
    invariant(i >= 0, () => `a sync covering ${target} commits ended, but none such was in progress (${this.inFlight.join(", ")})`)
    this.inFlight.splice(i, 1)
    if (target <= this.durable) return []
    this.durable = target
    let n = 0
    while (n < this.held.length && (this.held[n] as { seq: number }).seq <= target) n++
    return n === 0 ? [] : this.held.splice(0, n).map((h) => h.item)
  }

  /** Forgets what is held (the node stops: none of it may leave). */
  drop(): void {
    this.held = []
  }
}
