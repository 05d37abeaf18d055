/**
 * Peer transport benchmark: HTTP/1.1 keep-alive POST versus WebSocket, between two Bun processes
 * on loopback, with peer-sized payloads (a JSON envelope holding Accept-like messages).
 *
 *   bun scripts/bench-transport.ts [--runs 5] [--rtt 2000] [--msgs 20000] [--json FILE]
 *
 * Three measurements per transport, each with a warm-up and `--runs` measured runs (medians):
 *  - rtt: one message, wait for the answer, repeat; mean per round trip (HTTP: the 204; WebSocket: an ack frame);
 *  - burst-1: `--msgs` messages, one per envelope, as fast as the transport takes them
 *    (HTTP: one request in flight at a time, as the node's sender does; WebSocket: fire and forget);
 *  - burst-coalesced: the same messages, coalesced: whatever queued while the previous envelope
 *    was in flight goes into the next one (the node's outbox behaviour);
 *  - cpu/envelope: CPU time of sender and receiver together per one-message envelope (burst-1).
 * Prints a table and, with --json, writes the numbers as JSON.
 */
import { spawn } from "bun"

interface Args {
  runs: number
  rtt: number
  msgs: number
  json: string | undefined
}

const MESSAGE = JSON.stringify({
  _tag: "Accept",
  ballot: { round: 7, leader: 1 },
  entries: [{ slot: 123456, value: [{ _tag: "Append", id: "1.abcdefgh.123456", value: 424242, client: "c-1234", seq: 17 }] }],
  commit: 123455
})

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { runs: 5, rtt: 2000, msgs: 20_000, json: undefined }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = argv[i + 1]
    if (k === "--runs") a.runs = Number(v)
    else if (k === "--rtt") a.rtt = Number(v)
    else if (k === "--msgs") a.msgs = Number(v)
    else if (k === "--json") a.json = v
    else continue
    i++
  }
  return a
}

/** The receiving side: counts messages; answers HTTP with 204, WebSocket acks on request. */
function serve(): void {
  let received = 0
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req, srv) {
      const url = new URL(req.url)
      if (url.pathname === "/ws") {
        return srv.upgrade(req) ? undefined : new Response("no upgrade", { status: 400 })
      }
      if (url.pathname === "/count") {
        const u = process.cpuUsage()
        return Response.json({ received, cpuUs: u.user + u.system })
      }
      const body = (await req.json()) as { messages: unknown[] }
      received += body.messages.length
      return new Response(null, { status: 204 })
    },
    websocket: {
      message(ws, data) {
        const body = JSON.parse(String(data)) as { ack?: number; messages: unknown[] }
        received += body.messages.length
        if (body.ack !== undefined) ws.send(String(body.ack))
      }
    }
  })
  console.log(server.port)
}

const envelope = (n: number, ack?: number): string =>
  `{"cluster":"bench","from":0,"to":1${ack === undefined ? "" : `,"ack":${ack}`},"messages":[${Array(n).fill(MESSAGE).join(",")}]}`

async function count(base: string): Promise<number> {
  return ((await (await fetch(`${base}/count`)).json()) as { received: number }).received
}

async function receiverCpuUs(base: string): Promise<number> {
  return ((await (await fetch(`${base}/count`)).json()) as { cpuUs: number }).cpuUs
}

const cpuUs = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** CPU microseconds (sender + receiver) per envelope of one message, over `n` envelopes. */
async function cpuPerEnvelope(base: string, n: number, send: (n: number) => Promise<unknown>): Promise<number> {
  const r0 = await receiverCpuUs(base)
  const s0 = cpuUs()
  await send(n)
  const s1 = cpuUs()
  const r1 = await receiverCpuUs(base)
  return (s1 - s0 + (r1 - r0)) / n
}

async function httpRtt(base: string, n: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${base}/peer`, { method: "POST", body: envelope(1), headers: { "content-type": "application/json" } })
    await r.arrayBuffer()
  }
  return ((performance.now() - t0) * 1000) / n
}

/** Sends `msgs` messages over HTTP, one request in flight; `coalesce` packs what queued meanwhile. */
async function httpBurst(base: string, msgs: number, coalesce: boolean): Promise<number> {
  const start = await count(base)
  const t0 = performance.now()
  let queued = 0
  let sent = 0
  // The producer enqueues all messages at once; the sender takes what is queued.
  queued = msgs
  while (sent < msgs) {
    const take = coalesce ? Math.min(queued, 4096) : 1
    queued -= take
    sent += take
    const r = await fetch(`${base}/peer`, { method: "POST", body: envelope(take), headers: { "content-type": "application/json" } })
    await r.arrayBuffer()
  }
  const ms = performance.now() - t0
  if ((await count(base)) - start !== msgs) throw new Error("http: lost messages")
  return (msgs / ms) * 1000
}

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.onopen = () => resolve(ws)
    ws.onerror = (e) => reject(e)
  })
}

async function wsRtt(ws: WebSocket, n: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        if (String(e.data) === String(i)) resolve()
      }
      ws.send(envelope(1, i))
    })
  }
  return ((performance.now() - t0) * 1000) / n
}

/** Sends `msgs` messages over the WebSocket; the last envelope asks for an ack. */
async function wsBurst(ws: WebSocket, base: string, msgs: number, coalesce: boolean): Promise<number> {
  const start = await count(base)
  const t0 = performance.now()
  const per = coalesce ? 4096 : 1
  let sent = 0
  const done = new Promise<void>((resolve) => (ws.onmessage = () => resolve()))
  while (sent < msgs) {
    const take = Math.min(per, msgs - sent)
    sent += take
    ws.send(envelope(take, sent === msgs ? 1 : undefined))
    // Respect backpressure like a real sender would.
    while (ws.bufferedAmount > 8 * 1024 * 1024) await Bun.sleep(0)
  }
  await done
  const ms = performance.now() - t0
  if ((await count(base)) - start !== msgs) throw new Error("ws: lost messages")
  return (msgs / ms) * 1000
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function measure(runs: number, f: () => Promise<number>): Promise<number> {
  await f() // warm-up
  const xs: number[] = []
  for (let i = 0; i < runs; i++) xs.push(await f())
  return median(xs)
}

async function main(): Promise<void> {
  if (process.argv.includes("--serve")) return serve()
  const args = parseArgs(process.argv.slice(2))
  const child = spawn([process.execPath, import.meta.path, "--serve"], { stdout: "pipe", stderr: "inherit" })
  try {
    const reader = child.stdout.getReader()
    const { value } = await reader.read()
    const port = Number(new TextDecoder().decode(value).trim())
    const base = `http://127.0.0.1:${port}`
    const ws = await openWs(`ws://127.0.0.1:${port}/ws`)
    const result = {
      http: {
        rttUs: await measure(args.runs, () => httpRtt(base, args.rtt)),
        burst1MsgsPerS: await measure(args.runs, () => httpBurst(base, Math.min(args.msgs, 5000), false)),
        burstCoalescedMsgsPerS: await measure(args.runs, () => httpBurst(base, args.msgs, true)),
        cpuUsPerEnvelope: await measure(args.runs, () => cpuPerEnvelope(base, 2000, (n) => httpBurst(base, n, false)))
      },
      websocket: {
        rttUs: await measure(args.runs, () => wsRtt(ws, args.rtt)),
        burst1MsgsPerS: await measure(args.runs, () => wsBurst(ws, base, args.msgs, false)),
        burstCoalescedMsgsPerS: await measure(args.runs, () => wsBurst(ws, base, args.msgs, true)),
        cpuUsPerEnvelope: await measure(args.runs, () => cpuPerEnvelope(base, 2000, (n) => wsBurst(ws, base, n, false)))
      }
    }
    ws.close()
    console.log(`transport   rtt mean (us)   1 msg/envelope (msgs/s)   coalesced (msgs/s)   cpu/envelope (us, both sides)   [median of ${args.runs} runs]`)
    for (const [name, r] of Object.entries(result)) {
      console.log(
        `${name.padEnd(10)}  ${r.rttUs.toFixed(0).padStart(12)}   ${r.burst1MsgsPerS.toFixed(0).padStart(23)}   ${r.burstCoalescedMsgsPerS.toFixed(0).padStart(18)}   ${r.cpuUsPerEnvelope.toFixed(0).padStart(29)}`
      )
    }
    if (args.json !== undefined) await Bun.write(args.json, JSON.stringify(result, null, 2) + "\n")
  } finally {
    child.kill()
  }
}

await main()
