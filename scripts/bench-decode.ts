/**
 * Envelope decoding micro benchmark: Effect Schema (`S.decodeUnknownEither(PeerEnvelope, ...)`, as
 * src/server/peer.ts used it alone) versus the hand-written validator of src/core/fast-decode.ts,
 * on the envelope a follower receives most: one Accept of one slot holding 16 Append commands.
 *
 *   bun scripts/bench-decode.ts [--runs 9] [--decodes 20000]
 *
 * Each decode gets its own object from JSON.parse (a pool of copies, as the server parses every
 * frame), so no decoder profits from seeing one object again. After a warm-up, the decoders take
 * turns for `--runs` runs of `--decodes` decodes each; printed: the median time per decode of
 * each (JSON.parse of the same text for scale) and the speed-up.
 */
import { Either, Schema as S } from "effect"
import { fastDecodeEnvelope } from "../src/core/fast-decode.ts"
import { PeerEnvelope, strict } from "../src/core/messages.ts"

interface Args {
  runs: number
  decodes: number
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { runs: 9, decodes: 20_000 }
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], Number(argv[i + 1])]
    if (k === "--runs") a.runs = v
    else if (k === "--decodes") a.decodes = v
    else throw new Error(`unknown option ${k}`)
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${k} needs a positive integer`)
  }
  return a
}

/** One Accept of one slot with 16 commands, as a leader sends it. */
const TEXT = JSON.stringify({
  cluster: "bench-cluster",
  from: 0,
  to: 1,
  messages: [
    {
      _tag: "Accept",
      ballot: { round: 7, leader: 0 },
      entries: [
        {
          slot: 123_456,
          value: Array.from({ length: 16 }, (_, i) => ({
            _tag: "Append",
            id: `0.abcdefgh.${123_456 + i}`,
            value: 424_242 + i,
            client: `c-${1000 + i}`,
            seq: 17 + i
          }))
        }
      ],
      commit: 123_455
    }
  ]
})

const POOL_SIZE = 1024
const schemaDecode = S.decodeUnknownEither(PeerEnvelope, { ...strict, errors: "first" })

/** A named decoder; returns whether it accepted (so the work cannot be optimized away). */
interface Contender {
  readonly name: string
  readonly run: (u: unknown) => boolean
}

const CONTENDERS: readonly Contender[] = [
  { name: "Schema decode", run: (u) => Either.isRight(schemaDecode(u)) },
  { name: "fast decode", run: (u) => fastDecodeEnvelope(u) !== undefined },
  { name: "JSON.parse (for scale)", run: () => JSON.parse(TEXT) !== null }
]

/** Microseconds per decode over `n` decodes of the pool's objects, in turn. */
function timeOne(c: Contender, pool: readonly unknown[], n: number): number {
  let accepted = 0
  const start = performance.now()
  for (let i = 0; i < n; i++) if (c.run(pool[i % pool.length])) accepted++
  const us = ((performance.now() - start) * 1000) / n
  if (accepted !== n) throw new Error(`${c.name} rejected the benchmark envelope`)
  return us
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

function main(): void {
  const args = parseArgs(process.argv.slice(2))
  const pool = Array.from({ length: POOL_SIZE }, () => JSON.parse(TEXT) as unknown)
  for (const c of CONTENDERS) timeOne(c, pool, Math.max(2_000, args.decodes / 4)) // warm-up
  const samples = CONTENDERS.map(() => [] as number[])
  for (let r = 0; r < args.runs; r++) CONTENDERS.forEach((c, i) => samples[i]?.push(timeOne(c, pool, args.decodes)))
  const medians = samples.map(median)
  const [schema = NaN, fast = NaN] = medians
  const lines = [
    `Envelope: one Accept, 16 commands, ${TEXT.length} bytes of JSON; median of ${args.runs} runs of ${args.decodes} decodes`,
    ...CONTENDERS.map((c, i) => `  ${c.name.padEnd(24)} ${(medians[i] ?? NaN).toFixed(3).padStart(8)} µs/decode`),
    `  speed-up                 ${(schema / fast).toFixed(1).padStart(8)} x`
  ]
  console.log(lines.join("\n"))
}

main()
