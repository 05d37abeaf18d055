/**
 * The entry point of the FAULTY TEST BUILD of the node (`dist/paxos-faulty`), made only by
 * `buildFaulty()` (faulty.ts) to prove that a chaos run catches a broken node.
 *
 * How the fault is kept out of every normal build:
 *  - this file is its own entry point: `bun run build` compiles src/cli/main.ts, which never
 *    imports it (nor does anything it imports: faulty.ts only names this file's path as text),
 *    so a normal binary holds no code of it at all;
 *  - the fault is chosen at build time only: `bun build --compile --define
 *    PAXOS_FAULT='"local-reads"' src/chaos/faulty-main.ts`. There is no flag, config line or
 *    environment variable for it; without the define (`bun src/chaos/faulty-main.ts ...`) this
 *    entry refuses to run;
 *  - a faulty node says so on its first log line (`PAXOS-FAULTY-BUILD fault=...`), and the chaos
 *    run reports it (results.json `faultyBuild`), so a faulty binary cannot pass unnoticed.
 *
 * Faults:
 *  - `local-reads`: GET /list answers at once from the node's own applied list instead of
 *    putting a read marker through the log: a stale read on a follower that lags, on a deposed
 *    leader, or on a node cut off from the majority. A chaos run catches it as stale-read,
 *    lost-append or real-time errors.
 *
 * Everything else is the normal CLI (`server`, `client`, ...), unchanged.
 */
import { main } from "../cli/main.ts"
import { Node } from "../server/node.ts"

declare const PAXOS_FAULT: string | undefined

export const FAULTS = ["local-reads"] as const
export type Fault = (typeof FAULTS)[number]

const fault: string | undefined = typeof PAXOS_FAULT === "string" ? PAXOS_FAULT : undefined

function install(f: string): void {
  switch (f) {
    case "local-reads":
      // The node's read path, replaced: no read marker through the log, no leader, no quorum.
      // Both ways in (readWith, used by the HTTP front, and the Effect `read` on top of it) go here.
      Node.prototype.readWith = function (this: Node, done) {
        this.listJson.sync(this.state.list)
        done(`{"list":${this.listJson.json(this.state.list.length)}}`, null)
        return 0
      }
      return
    default:
      process.stderr.write(`paxos-faulty: unknown fault '${f}' (known: ${FAULTS.join(", ")})\n`)
      process.exit(2)
  }
}

if (fault === undefined) {
  process.stderr.write("paxos-faulty: this entry is only for the faulty test build (bun build --define PAXOS_FAULT=...); use src/cli/main.ts\n")
  process.exit(2)
}
install(fault)
const argv = process.argv.slice(2)
if (argv[0] === "server") {
  process.stderr.write(`${new Date().toISOString()} PAXOS-FAULTY-BUILD fault=${fault} (a test build that must fail chaos runs; never deploy it)\n`)
}
main(argv).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`paxos: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  },
)
