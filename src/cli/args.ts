/**
 * A small flag parser for the subcommands: `--name value`, `--name=value`, boolean `--name`,
 * `--` ends the flags. A token that looks like a negative number is a positional (a VALUE).
 */
import { readFileSync } from "node:fs"

export type FlagKind = "value" | "bool"

export interface Parsed {
  readonly flags: Record<string, string | true>
  readonly positionals: string[]
}

/** Parses `argv` against `spec`; returns a one-line reason when it does not fit. */
export function parseFlags(argv: readonly string[], spec: Record<string, FlagKind>): Parsed | string {
  const flags: Record<string, string | true> = {}
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === "--") {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) {
      positionals.push(a)
      continue
    }
    const eq = a.indexOf("=")
    const name = (eq === -1 ? a : a.slice(0, eq)).replace(/^--?/, "")
    const kind = spec[name]
    if (kind === undefined) {
      const close = closest(name, Object.keys(spec))
      return `unknown option ${eq === -1 ? a : a.slice(0, eq)}${close === null ? "" : ` (did you mean --${close}?)`}`
    }
    if (kind === "bool") {
      if (eq !== -1) return `option --${name} takes no value`
      flags[name] = true
      continue
    }
    const value = eq !== -1 ? a.slice(eq + 1) : argv[++i]
    if (value === undefined) return `option --${name} needs a value`
    if (name in flags) return `option --${name} given twice`
    flags[name] = value
  }
  return { flags, positionals }
}

/** A flag's string value, or undefined. */
export const str = (p: Parsed, name: string): string | undefined => {
  const v = p.flags[name]
  return typeof v === "string" ? v : undefined
}

/** Parses a positive safe integer flag; returns a reason when it is not one. */
export function positiveInt(p: Parsed, name: string): number | undefined | string {
  const v = str(p, name)
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) <= 0) return `--${name} needs a positive integer, got '${v}'`
  return Number(v)
}

/** The trimmed text of a `--token-file`; throws an Error with one line when it cannot be read or is empty. */
export function readTokenFile(file: string): string {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (e) {
    throw new Error(`--token-file ${file}: ${(e as { code?: string }).code === "ENOENT" ? "no such file" : e instanceof Error ? e.message : String(e)}`)
  }
  const token = text.trim()
  if (token.length === 0) throw new Error(`--token-file ${file}: the file is empty`)
  return token
}

/**
 * The client token of a command's `--token-file` (else $PAXOS_CLIENT_TOKEN_FILE, else none): the
 * token, undefined without one, or an Error saying why the file cannot be used.
 */
export function tokenOf(p: Parsed): string | undefined | Error {
  const file = str(p, "token-file") ?? (process.env.PAXOS_CLIENT_TOKEN_FILE || undefined)
  try {
    return file === undefined ? undefined : readTokenFile(file)
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e))
  }
}

/** The name of `names` closest to `name` (a typo: at most a third of it edited, or a prefix), or null. */
export function closest(name: string, names: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  for (const n of names) {
    if (n.length <= 1) continue
    const d = n.startsWith(name) && name.length >= 2 ? 0.5 : editDistance(name, n)
    if (d < bestDistance) {
      best = n
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : null
}

/** Levenshtein distance (names are short: the quadratic table is fine). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] as number
}

/** Whether `argv` asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === "--") return false
    if (a === "--help" || a === "-h") return true
  }
  return false
}

/** The usage lines of a command's help (its first paragraph), and where the rest is: for usage errors. */
export function shortUsage(help: string): string {
  const first = help.split("\n\n")[0] ?? help
  const cmd = /usage: (paxos \S+)/.exec(first)?.[1] ?? "paxos"
  return first === help ? help : `${first}\n(${cmd} --help: every option, its default)`
}
