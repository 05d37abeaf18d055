/**
 * A summary of a `.cpuprofile` (Chrome's format, as `bun --cpu-prof` or BUN_OPTIONS="--cpu-prof"
 * writes it): where the samples fell, in three views.
 *  - by area: each sample's leaf frame classified by its source (idle, GC, SQLite, JSON, Effect's
 *    runtime, Effect Schema, HTTP, the core, each server file, other native code);
 *  - by own code: each busy sample charged to the innermost frame of this project's src/ on its
 *    stack (so library and native time beneath a function of ours counts as that function's);
 *  - by entry: the outermost frame under the root, i.e. what the event loop was running (Effect's
 *    scheduler draining fibers, Bun's HTTP handler, a WebSocket message, a timer...);
 *  - top leaf functions (self time).
 * Usable alone: `bun src/bench/profile.ts FILE.cpuprofile`.
 */

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface Share {
  readonly name: string
  readonly ms: number
  /** Share of the busy (non-idle) time, 0..1. */
  readonly busyShare: number
}

export interface ProfileSummary {
  readonly label: string
  readonly file: string
  readonly wallMs: number
  readonly busyMs: number
  readonly idleMs: number
  readonly byArea: readonly Share[]
  readonly byOwnCode: readonly Share[]
  readonly byEntry: readonly Share[]
  readonly topSelf: readonly Share[]
  /** The summary as text. */
  readonly text: string
}

const SPECIAL: Record<string, string> = {
  "(idle)": "idle",
  "(program)": "native: program (event loop, I/O)",
  "(garbage collector)": "GC",
  "(root)": "native: program (event loop, I/O)"
}

/** The area of a frame, by what it is and where its code lives. */
export function areaOf(f: CallFrame): string {
  const special = SPECIAL[f.functionName]
  if (special !== undefined) return special
  const u = f.url
  if (u === "bun:sqlite") return "SQLite (bun:sqlite, incl. fsync)"
  if (u === "" || u.startsWith("native")) {
    const n = f.functionName
    if (/JSON|stringify|parse/i.test(n)) return "JSON (native)"
    if (/^(run|all|get|values|finalize|prepare|transaction)$/.test(n)) return "SQLite (bun:sqlite, incl. fsync)"
    return `native: ${n || "(anonymous)"}`
  }
  if (u.includes("node_modules/effect/")) {
    if (/\/(Schema|ParseResult|SchemaAST)\.js$/.test(u)) return "Effect Schema (decode/validate)"
    return "Effect runtime (fibers, pipes)"
  }
  if (u.includes("node_modules/")) return `lib: ${u.slice(u.lastIndexOf("node_modules/") + 13).split("/")[0]}`
  const src = /(?:^|\/)src\/(.+)$/.exec(u)
  if (src !== null) {
    const file = src[1] as string
    if (file.startsWith("core/")) return "core (pure step)"
    if (file.startsWith("bench/")) return "bench (load generator)"
    return `server: src/${file}`
  }
  if (u.startsWith("node:") || u.startsWith("bun:") || u.includes("internal")) return `runtime: ${u}`
  return `other: ${u}`
}

const ownFile = (u: string): string | null => {
  const m = /(?:^|\/)src\/(.+)$/.exec(u)
  return m === null ? null : `src/${m[1]}`
}

const frameName = (f: CallFrame): string => {
  const where = f.url === "" ? "" : ` ${f.url.replace(/^.*\/(node_modules|src)\//, "$1/")}:${f.lineNumber + 1}`
  return `${f.functionName || "(anonymous)"}${where}`
}

function medianOf(xs: readonly number[]): number | null {
  if (xs.length === 0) return null
  const v = [...xs].sort((a, b) => a - b)
  return v[v.length >> 1] as number
}

function top(m: Map<string, number>, busyMs: number, n: number): Share[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, ms, busyShare: busyMs > 0 ? ms / busyMs : 0 }))
}

export function summarizeProfile(p: CpuProfile, label: string, file: string): ProfileSummary {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // Bun's sampler takes a sample about every `interval` while the thread runs JavaScript or a call
  // from it (a blocking fsync inside SQLite counts as its caller's), and none while the event loop
  // waits for I/O: a gap much longer than the interval is idle time, not the next sample's.
  const interval = medianOf(p.timeDeltas) ?? 1000
  const self = new Map<number, number>()
  let gapMs = 0
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number
    const delta = (p.timeDeltas[i] ?? 0) as number
    const charged = Math.min(delta, 2 * interval)
    gapMs += (delta - charged) / 1000
    self.set(id, (self.get(id) ?? 0) + charged / 1000)
  }
  const area = new Map<string, number>()
  const own = new Map<string, number>()
  const leaf = new Map<string, number>()
  const entry = new Map<string, number>()
  let idleMs = gapMs
  let totalMs = gapMs
  for (const [id, ms] of self) {
    const node = byId.get(id)
    if (node === undefined) continue
    totalMs += ms
    const a = areaOf(node.callFrame)
    if (a === "idle") {
      idleMs += ms
      continue
    }
    area.set(a, (area.get(a) ?? 0) + ms)
    leaf.set(frameName(node.callFrame), (leaf.get(frameName(node.callFrame)) ?? 0) + ms)
    let cur: number | undefined = id
    let owner = "(no frame of src/ on the stack: runtime, I/O, GC)"
    while (cur !== undefined) {
      const f = byId.get(cur)?.callFrame
      if (f !== undefined) {
        const file = ownFile(f.url)
        if (file !== null) {
          owner = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`
          break
        }
      }
      cur = parent.get(cur)
    }
    own.set(owner, (own.get(owner) ?? 0) + ms)
    // the outermost frame below (root): what the event loop called into
    let outer = id
    for (let up = parent.get(outer); up !== undefined && byId.get(up)?.callFrame.functionName !== "(root)"; up = parent.get(up)) outer = up
    const of = byId.get(outer)?.callFrame
    const e = of === undefined ? "(unknown)" : `${of.functionName || "(anonymous)"}${of.url === "" ? "" : ` ${of.url.slice(of.url.lastIndexOf("/") + 1)}:${of.lineNumber + 1}`}`
    entry.set(e, (entry.get(e) ?? 0) + ms)
  }
  const busyMs = totalMs - idleMs
  const wallMs = (p.endTime - p.startTime) / 1000
  const byArea = top(area, busyMs, 20)
  const byOwnCode = top(own, busyMs, 15)
  const topSelf = top(leaf, busyMs, 15)
  const byEntry = top(entry, busyMs, 8)
  const pct = (s: Share) => `${(100 * s.busyShare).toFixed(1).padStart(5)}%  ${s.ms.toFixed(0).padStart(7)} ms  ${s.name}`
  const text = [
    `CPU profile of ${label}: ${(wallMs / 1000).toFixed(1)} s of wall time, ${(busyMs / 1000).toFixed(1)} s in JavaScript or calls from it (${wallMs > 0 ? ((100 * busyMs) / wallMs).toFixed(0) : "-"}%; blocking syscalls such as fsync included), ${(idleMs / 1000).toFixed(1)} s waiting in the event loop`,
    `  (${file})`,
    "by area (leaf frame), share of busy time:",
    ...byArea.map((s) => `  ${pct(s)}`),
    "by own code (innermost frame of src/ on the stack):",
    ...byOwnCode.map((s) => `  ${pct(s)}`),
    "by entry (outermost frame: what the event loop was running):",
    ...byEntry.map((s) => `  ${pct(s)}`),
    "top leaf functions (self time):",
    ...topSelf.map((s) => `  ${pct(s)}`)
  ].join("\n")
  return { label, file, wallMs, busyMs, idleMs, byArea, byOwnCode, byEntry, topSelf, text }
}

/** `bun src/bench/profile.ts FILE...`: prints each profile's summary. */
async function cli(files: readonly string[]): Promise<number> {
  if (files.length === 0) {
    process.stderr.write("usage: bun src/bench/profile.ts FILE.cpuprofile...\n")
    return 2
  }
  for (const file of files) {
    const s = summarizeProfile((await Bun.file(file).json()) as CpuProfile, file, file)
    process.stdout.write(`${s.text}\n\n`)
  }
  return 0
}

if (import.meta.main) void cli(process.argv.slice(2)).then((code) => process.exit(code))
