/**
 * The order a pipelined disk keeps, for any shell (the server's SQLite store, the simulator's
 * in-memory disks): commits are counted in the order they were made, one sync at a time makes
 * durable every commit made before it started, and what depends on writes is held until a sync
 * covers the last commit made before it. The shell does the I/O; this only keeps the count.
 */
export class DurableOrder<A> {
  private commits = 0
  private durable = 0
  /** The commit count the sync in progress covers; no sync runs while it is <= durable. */
  private target = 0
  private held: Array<{ readonly seq: number; readonly item: A }> = []

  /** Commits made so far that are durable (a prefix of them). */
  get durableCommits(): number {
    return this.durable
  }

  /** The commit count the sync in progress covers, or null when none runs. */
  get running(): number | null {
    return this.target > this.durable ? this.target : null
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
   * A sync starts over every commit made so far: returns the count it covers, or null when one
   * runs already (the next starts when it ends) or nothing waits.
   */
  startSync(): number | null {
    if (this.running !== null || this.commits === this.durable) return null
    this.target = this.commits
    return this.target
  }

  /** The sync that covers `target` ended: returns what it releases, oldest first. */
  synced(target: number): A[] {
    this.durable = target
    let i = 0
    while (i < this.held.length && (this.held[i] as { seq: number }).seq <= target) i++
    return i === 0 ? [] : this.held.splice(0, i).map((h) => h.item)
  }

  /** Forgets what is held (the node stops: none of it may leave). */
  drop(): void {
    this.held = []
  }
}
