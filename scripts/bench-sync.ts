/**
 * What a stat of a file between its writes and their fdatasync costs the fdatasync. Each loop
 * overwrites 8 KiB of a preallocated file and syncs it: with nothing in between, with a stat of
 * the path (what the store did before each sync until FileAtPath), or with a readlink of
 * /proc/self/fd (what FileAtPath does). On Linux 6.13 and later a stat that reads the timestamps
 * makes the next write stamp them at full resolution, so the inode is dirty at every sync, and
 * ext4 without a journal writes the inode block inside fdatasync. Rounds alternate the variants;
 * reports the median microseconds per fdatasync of each. The file's filesystem decides the
 * answer: run it where the data dir lives.
 *
 *   bun scripts/bench-sync.ts [--dir DIR] [--runs 5] [--syncs 1000]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readlinkSync, rmSync, statSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { median } from "../src/bench/stats.ts"

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? (process.argv[i + 1] as string) : dflt
}
const runs = Number(arg("--runs", "5"))
const syncs = Number(arg("--syncs", "1000"))
const dir = mkdtempSync(join(arg("--dir", tmpdir()), "bench-sync-"))
const path = join(dir, "file")
const fd = openSync(path, "w+")
const block = Buffer.alloc(8192, 7)
const BLOCKS = 512
for (let i = 0; i < BLOCKS; i++) writeSync(fd, block, 0, block.length, i * block.length)
fdatasyncSync(fd)

const between: Record<string, () => void> = {
  nothing: () => undefined,
  stat: () => void statSync(path),
  readlink: () => void readlinkSync(`/proc/self/fd/${fd}`)
}

/** Mean microseconds of one fdatasync over `n` write-then-sync loops. */
function measure(variant: () => void, n: number): number {
  let total = 0
  for (let i = 0; i < n; i++) {
    writeSync(fd, block, 0, block.length, (i % BLOCKS) * block.length)
    variant()
    const t0 = performance.now()
    fdatasyncSync(fd)
    total += performance.now() - t0
  }
  return (total / n) * 1000
}

try {
  const names = Object.keys(between)
  for (const name of names) measure(between[name] as () => void, syncs / 5) // warm-up
  const results: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < runs; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) results[name]?.push(measure(between[name] as () => void, syncs))
  }
  console.log(`fdatasync after an 8 KiB overwrite, ${dir}: median of ${runs} runs of ${syncs}`)
  const base = median(results.nothing as number[]) ?? Number.NaN
  for (const name of names) {
    const m = median(results[name] as number[]) ?? Number.NaN
    console.log(`  ${name.padEnd(8)} in between: ${m.toFixed(0).padStart(5)} µs per fdatasync (${(m / base).toFixed(2)}x)  runs: ${(results[name] as number[]).map((x) => x.toFixed(0)).join(" ")}`)
  }
} finally {
  closeSync(fd)
  rmSync(dir, { recursive: true, force: true })
}
