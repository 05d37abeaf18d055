/**
 * `buildFaulty()`: compiles the faulty test build of the node (faulty-main.ts) into its own
 * binary, by default `dist/paxos-faulty`, with the fault fixed at build time:
 *
 *   bun build --compile --minify --define PAXOS_FAULT='"local-reads"' src/chaos/faulty-main.ts \
 *     --outfile dist/paxos-faulty
 *
 * Only tests call this (it needs the source tree and Bun). Nothing in the normal build imports
 * faulty-main.ts: this module refers to it by path only.
 */
import { existsSync, mkdirSync } from "node:fs"
import { dirname, join, resolve } from "node:path"

/** The faults the faulty build knows (see faulty-main.ts). */
export const FAULT_NAMES = ["local-reads"] as const
export type FaultName = (typeof FAULT_NAMES)[number]

export interface BuildFaultyOptions {
  readonly fault?: FaultName
  /** Where the binary goes (default dist/paxos-faulty in the repository). */
  readonly outfile?: string
  /** The repository root (default: two levels above this file). */
  readonly repo?: string
  /** The bun executable (default: the one running this code). */
  readonly bun?: string
}

/** Builds the faulty binary and returns its absolute path; throws with Bun's output on failure. */
export async function buildFaulty(opts: BuildFaultyOptions = {}): Promise<string> {
  const repo = resolve(opts.repo ?? join(import.meta.dir, "..", ".."))
  const entry = join(repo, "src", "chaos", "faulty-main.ts")
  if (!existsSync(entry)) throw new Error(`buildFaulty: ${entry} not found (it needs the source tree)`)
  const fault = opts.fault ?? "local-reads"
  if (!(FAULT_NAMES as readonly string[]).includes(fault)) throw new Error(`buildFaulty: unknown fault '${fault}'`)
  const outfile = resolve(repo, opts.outfile ?? join("dist", "paxos-faulty"))
  mkdirSync(dirname(outfile), { recursive: true })
  const argv = [opts.bun ?? process.execPath, "build", "--compile", "--minify", "--define", `PAXOS_FAULT=${JSON.stringify(fault)}`, entry, "--outfile", outfile]
  const proc = Bun.spawn(argv, { cwd: repo, stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  if (code !== 0 || !existsSync(outfile)) throw new Error(`buildFaulty: bun build exited with ${code}: ${(err || out).trim().split("\n").slice(-5).join(" | ")}`)
  return outfile
}
