/**
 * Building `dist/paxos` from a source checkout when it is missing or older than the sources (for
 * `bun run demo` and the node tests). The compiled binary never builds itself.
 */
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"

/** The newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

/** Whether `root`/dist/paxos is missing or older than src/ or package.json. */
export function binaryIsStale(root: string): boolean {
  try {
    const built = statSync(join(root, "dist", "paxos")).mtimeMs
    return built < Math.max(newest(join(root, "src")), statSync(join(root, "package.json")).mtimeMs)
  } catch {
    return true
  }
}

/** Runs `bun run build` in `root` when the binary is stale; returns its path. Throws when the build fails. */
export function ensureBuilt(root: string, onBuild: (line: string) => void = () => {}): string {
  const bin = join(root, "dist", "paxos")
  if (!binaryIsStale(root)) return bin
  onBuild(`building ${bin} (bun run build) ...`)
  const r = Bun.spawnSync([process.execPath, "run", "build"], { cwd: root, stdout: "pipe", stderr: "pipe" })
  if (r.exitCode !== 0) throw new Error(`bun run build failed (exit ${r.exitCode}): ${r.stderr.toString().trim().split("\n").slice(-3).join(" | ")}`)
  return bin
}
