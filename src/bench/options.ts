/**
 * The command line of `paxos bench`: its usage text, its flags and their defaults, and the checks
 * that turn argv into {@link BenchOptions} or a one-line reason why not.
 */
import { join, resolve } from "node:path"
import { parseToken } from "../auth/client-token.ts"
import { parseFlags, readTokenFile, str, type Parsed } from "../cli/args.ts"
import { isCompiled } from "../cli/self.ts"
import type { ClientKind } from "./loadgen.ts"
import type { Target } from "./system.ts"

export const BENCH_USAGE = `usage: paxos bench [options]   (bun run bench -- [options])

  --concurrency LIST   closed-loop clients per point, comma-separated (default 1,5,32,128)
  --target leader|spread
                       send every request to the leader (default), or spread connections over all nodes
  --list               ask for the whole list in each reply (default: ?list=false)
  --http-only          send GET /health instead of appends: the HTTP stack alone, no consensus, no disk
  --warmup S           seconds of warm-up before each measured window (default 2; 10 with --soak)
  --prewarm S          seconds of unrecorded load on each system before the sweep's first point, at the
                       sweep's highest concurrency, so the runs measure warm code (default 20; 0: none)
  --duration S         seconds of each measured window (default 10)
  --runs N             runs per point and system; medians are reported (default 3)
  --out DIR            where results.json and summary.txt go (default runs/bench-<timestamp>/)
  --config F           measure a running cluster instead of starting one; its nodes may be on other
                       machines (their RSS and CPU then come from each node's /status)
  --yes                with --config: append even though the cluster holds values already (without it the
                       bench refuses a cluster that is not empty, and says how much it would append)
  --token-file T       the client token of a --config cluster that needs one (or $PAXOS_CLIENT_TOKEN_FILE)
  --binary PATH|source the node binary to start (default: this binary when compiled, else dist/paxos);
                       "source" runs bun src/cli/main.ts (readable CPU profiles)
  --nodes N            nodes to start (default 3)
  --client raw|fetch   the load generator's HTTP client (default raw: HTTP/1.1 on Bun.connect)
  --timeout MS         a request unanswered this long counts as an error (default 10000)
  --vs-etcd            the same load against a local 3-member etcd, interleaved run by run, with ratios
  --etcd-binary PATH   the etcd to start (default: etcd on PATH)
  --echo               also measure a bare Bun.serve echo server (the HTTP ceiling of this machine)
  --serve-echo PORT    be that echo server, on PORT (what --echo starts; not for use by hand)
  --soak [N]           instead of the sweep: N appends (default 1000000) at one concurrency
                       (--concurrency C, default 32), reported every 10%
  --soak-timeout S     the soak stops after this many seconds even if N is not reached (default 3600)
  --quiet              no progress line during --soak (default: one on stderr, updating on a terminal)
  --profile            run the nodes under Bun's CPU profiler; summaries in OUT/profile/
  --peer-auth          start the nodes with a cluster secret (--secret-file), as start-servers and
                       Jepsen do: every peer frame is signed and verified (default: no secret, like etcd
                       without TLS)
  --unsafe-no-fsync    start the nodes with --unsafe-no-fsync: every fdatasync becomes an fstat on the
                       same thread, so the run shows what the disk costs (targets are then not checked;
                       etcd, if measured, keeps its fsync)
`

const DEFAULT_SOAK = 1_000_000
const SOAK_WARMUP_S = 10
/**
 * A node's JavaScript is compiled while it runs: Bun's JIT threads were still busy 30 s into a
 * 32-client load, and appends/s rose 20% from the first 10 s run to the sixth (docs/PERFORMANCE.md,
 * "Warm code"). A server runs for days, so the sweep measures warm code: every system gets this
 * much load before the first point (etcd, compiled ahead of time, needs none but gets the same).
 */
const PREWARM_S = 20

export interface BenchOptions {
  readonly concurrency: readonly number[]
  readonly target: Target
  readonly list: boolean
  readonly httpOnly: boolean
  readonly warmupS: number
  readonly prewarmS: number
  readonly durationS: number
  readonly runs: number
  readonly out: string
  readonly config: string | undefined
  /** The client token file for --config (flag, else $PAXOS_CLIENT_TOKEN_FILE). */
  readonly tokenFile: string | undefined
  readonly binary: string
  readonly nodes: number
  readonly client: ClientKind
  readonly timeoutMs: number
  readonly vsEtcd: boolean
  readonly etcdBinary: string | undefined
  readonly echo: boolean
  readonly soak: number | undefined
  readonly soakTimeoutS: number
  readonly profile: boolean
  /** Start the nodes with a cluster secret (peer authentication on). */
  readonly peerAuth: boolean
  /** Append to a --config cluster that holds values already. */
  readonly yes: boolean
  /** No progress line during a soak. */
  readonly quiet: boolean
  /** Start the nodes with --unsafe-no-fsync (the disk's share; no targets checked). */
  readonly unsafeNoFsync: boolean
}

export const BENCH_FLAGS = {
  concurrency: "value",
  target: "value",
  list: "bool",
  "http-only": "bool",
  warmup: "value",
  prewarm: "value",
  duration: "value",
  runs: "value",
  out: "value",
  config: "value",
  "token-file": "value",
  binary: "value",
  nodes: "value",
  client: "value",
  timeout: "value",
  "vs-etcd": "bool",
  "etcd-binary": "value",
  echo: "bool",
  soak: "value",
  "soak-timeout": "value",
  profile: "bool",
  "peer-auth": "bool",
  yes: "bool",
  quiet: "bool",
  "unsafe-no-fsync": "bool",
  "serve-echo": "value"
} as const

const timestamp = (): string => new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

function num(p: Parsed, name: string, dflt: number, ok: (x: number) => boolean, what: string): number | string {
  const v = str(p, name)
  if (v === undefined) return dflt
  const x = Number(v)
  if (v.trim() === "" || !Number.isFinite(x) || !ok(x)) return `--${name} needs ${what}, got '${v}'`
  return x
}

/** The client token in `file` (checked as the server checks it), or undefined without one; throws with one line. */
export function readBenchToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined
  const text = readTokenFile(file)
  try {
    return parseToken(text)
  } catch (e) {
    throw new Error(`--token-file ${file}: ${(e as Error).message}`)
  }
}

/** The default node binary: this one when compiled, else dist/paxos of this checkout. */
function defaultBinary(): string {
  if (isCompiled()) return process.execPath
  return resolve(import.meta.dir, "..", "..", "dist", "paxos")
}

/** Parses the bench's flags; a one-line reason when they are wrong. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | { serveEcho: number } | string {
  // `--soak` may stand alone: then it means the default count.
  const args = argv.flatMap((a, i) => (a === "--soak" && (argv[i + 1] === undefined || argv[i + 1]?.startsWith("-")) ? [`--soak=${DEFAULT_SOAK}`] : [a]))
  const p = parseFlags(args, BENCH_FLAGS)
  if (typeof p === "string") return p
  if (p.positionals.length > 0) return `unexpected argument '${p.positionals[0]}'`
  const echoPort = str(p, "serve-echo")
  if (echoPort !== undefined) {
    const port = Number(echoPort)
    return Number.isInteger(port) && port > 0 && port < 65536 ? { serveEcho: port } : `--serve-echo needs a port, got '${echoPort}'`
  }
  const cText = str(p, "concurrency")
  const conc = (cText ?? "1,5,32,128").split(",").map((s) => Number(s.trim()))
  if (conc.length === 0 || conc.some((c) => !Number.isInteger(c) || c < 1 || c > 4096)) return `--concurrency needs a comma-separated list of integers 1..4096, got '${cText}'`
  const target = str(p, "target") ?? "leader"
  if (target !== "leader" && target !== "spread") return `--target must be leader or spread, got '${target}'`
  const client = str(p, "client") ?? "raw"
  if (client !== "raw" && client !== "fetch") return `--client must be raw or fetch, got '${client}'`
  // A soak compares its first tenth with its last: a longer warm-up keeps the JIT and the first
  // growth of the WAL file out of the first tenth, which would otherwise measure them, not the log.
  const warmupS = num(p, "warmup", str(p, "soak") !== undefined ? SOAK_WARMUP_S : 2, (x) => x >= 0 && x <= 3600, "seconds (0..3600)")
  const prewarmS = num(p, "prewarm", PREWARM_S, (x) => x >= 0 && x <= 3600, "seconds (0..3600)")
  const durationS = num(p, "duration", 10, (x) => x > 0 && x <= 3600, "seconds (more than 0, at most 3600)")
  const runs = num(p, "runs", 3, (x) => Number.isInteger(x) && x >= 1 && x <= 100, "an integer 1..100")
  const nodes = num(p, "nodes", 3, (x) => Number.isInteger(x) && x >= 1 && x <= 9, "an integer 1..9")
  const timeoutMs = num(p, "timeout", 10_000, (x) => x >= 10 && x <= 600_000, "milliseconds (10..600000)")
  const soakTimeoutS = num(p, "soak-timeout", 3600, (x) => x > 0 && x <= 86_400, "seconds")
  for (const v of [warmupS, prewarmS, durationS, runs, nodes, timeoutMs, soakTimeoutS]) if (typeof v === "string") return v
  let soak: number | undefined
  const soakText = str(p, "soak")
  if (soakText !== undefined) {
    soak = Number(soakText.replace(/[_,]/g, ""))
    if (!Number.isInteger(soak) || soak < 10 || soak > 1e9) return `--soak needs a count of appends (10..1e9), got '${soakText}'`
    if (conc.length > 1 && cText !== undefined) return "--soak runs at one concurrency: give --concurrency C with a single value"
    if (p.flags["http-only"] === true) return "--soak appends; it does not go with --http-only"
  }
  const binary = str(p, "binary") ?? defaultBinary()
  if (binary === "source" && isCompiled()) return "--binary source needs the bench to run under bun (bun run bench), not the compiled binary"
  if (str(p, "config") !== undefined && p.flags.profile === true) return "--profile needs nodes started by the bench (not --config)"
  if (str(p, "config") !== undefined && p.flags["peer-auth"] === true) return "--peer-auth is for nodes started by the bench (a --config cluster has its own secret, or none)"
  if (str(p, "config") !== undefined && p.flags["unsafe-no-fsync"] === true) return "--unsafe-no-fsync is for nodes started by the bench (a --config cluster runs as it was started)"
  if (str(p, "token-file") !== undefined && str(p, "config") === undefined) return "--token-file goes with --config (the nodes the bench starts need no token)"
  return {
    concurrency: soak !== undefined && cText === undefined ? [32] : conc,
    target,
    list: p.flags.list === true,
    httpOnly: p.flags["http-only"] === true,
    warmupS: warmupS as number,
    prewarmS: prewarmS as number,
    durationS: durationS as number,
    runs: runs as number,
    out: str(p, "out") ?? join("runs", `bench-${timestamp()}`),
    config: str(p, "config"),
    tokenFile: str(p, "token-file") ?? (str(p, "config") === undefined ? undefined : process.env.PAXOS_CLIENT_TOKEN_FILE || undefined),
    binary,
    nodes: nodes as number,
    client,
    timeoutMs: timeoutMs as number,
    vsEtcd: p.flags["vs-etcd"] === true,
    etcdBinary: str(p, "etcd-binary"),
    echo: p.flags.echo === true,
    soak,
    soakTimeoutS: soakTimeoutS as number,
    profile: p.flags.profile === true,
    peerAuth: p.flags["peer-auth"] === true,
    yes: p.flags.yes === true,
    quiet: p.flags.quiet === true,
    unsafeNoFsync: p.flags["unsafe-no-fsync"] === true
  }
}
