/**
 * The client's transport (src/client/http.ts) and its attempts at several nodes
 * (src/client/deadline.ts) against stand-in nodes on loopback: what it calls definite and
 * unknown, how long a node that never opens a connection costs, the deadline it sends in
 * x-paxos-timeout-ms, and how one total deadline is shared between the nodes.
 */
import { afterAll, expect, test } from "bun:test"
import { dlopen, FFIType, ptr } from "bun:ffi"
import { appendWithin, describeTried } from "../../src/client/deadline.ts"
import { append, CONNECT_TIMEOUT_MS } from "../../src/client/http.ts"
import { freePorts } from "../../src/cli/local-cluster.ts"

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 }
})

const toClose: Array<() => void> = []
afterAll(() => {
  for (const close of toClose.splice(0)) close()
})

/**
 * `host:port` of a socket that listens with a backlog of 0 and never accepts: one connection fills
 * its queue, and the kernel then drops every SYN, so later connections never open (as with a
 * host that is down or cut off).
 */
async function neverOpens(): Promise<string> {
  const fd = libc.symbols.socket(2 /* AF_INET */, 1 /* SOCK_STREAM */, 0)
  const addr = new Uint8Array(16)
  const view = new DataView(addr.buffer)
  view.setUint16(0, 2, true)
  addr.set([127, 0, 0, 1], 4)
  if (fd < 0 || libc.symbols.bind(fd, ptr(addr), 16) !== 0 || libc.symbols.listen(fd, 0) !== 0) throw new Error("cannot make the listening socket")
  toClose.push(() => libc.symbols.close(fd))
  libc.symbols.getsockname(fd, ptr(addr), ptr(new Uint32Array([16])))
  const port = view.getUint16(2, false)
  const filler = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })
  toClose.push(() => filler.end())
  return `127.0.0.1:${port}`
}

/** A stand-in node answering every request with `answer`. */
function node(answer: (req: Request) => Response | Promise<Response>): string {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: answer })
  toClose.push(() => void s.stop(true))
  return `127.0.0.1:${s.port}`
}

const body = { value: 1, client: "c", seq: 1 }

test("a node that never opens the connection: definitely not applied, after the connect timeout, not the request's", async () => {
  const t0 = performance.now()
  const r = await append(await neverOpens(), body, { timeoutMs: 5_000 })
  const ms = performance.now() - t0
  expect(r).toEqual({ type: "fail", status: null, error: "ConnectTimeout", message: `no connection within ${CONNECT_TIMEOUT_MS} ms` })
  expect(ms).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 5)
  expect(ms).toBeLessThan(CONNECT_TIMEOUT_MS + 400)
})

test("a refused connection is definite and quick; a node that takes the request and never answers is unknown at the deadline", async () => {
  const [free] = await freePorts(1)
  const refused = await append(`127.0.0.1:${free}`, body, { timeoutMs: 5_000 })
  expect(refused).toMatchObject({ type: "fail", status: null, message: "connection refused" })
  const silent = node(() => new Promise<Response>(() => {}))
  const t0 = performance.now()
  const r = await append(silent, body, { timeoutMs: 500 })
  expect(r).toEqual({ type: "info", status: null, error: "Timeout", message: "no answer within 500 ms" })
  expect(performance.now() - t0).toBeLessThan(900)
})

test("appends send the time left in x-paxos-timeout-ms; 503 is definite, 504 unknown", async () => {
  let said = ""
  const n = node((req) => {
    said = req.headers.get("x-paxos-timeout-ms") ?? "none"
    return Response.json({ error: "Unavailable", message: "no quorum: test", definite: true }, { status: 503 })
  })
  expect(await append(n, body, { timeoutMs: 1_234 })).toEqual({ type: "fail", status: 503, error: "Unavailable", message: "no quorum: test" })
  expect(Number(said)).toBeGreaterThan(1_134)
  expect(Number(said)).toBeLessThanOrEqual(1_234)
  const unknown = node(() => Response.json({ error: "OutcomeUnknown", message: "test", definite: false }, { status: 504 }))
  expect((await append(unknown, body, { timeoutMs: 1_000 })).type).toBe("info")
})

test("appendWithin: a silent first node costs its share of the time, then the next appends; every try has the same client and seq", async () => {
  const seen: string[] = []
  const silent = node(async (req) => {
    seen.push(await req.text())
    return new Promise<Response>(() => {})
  })
  const ok = node(async (req) => {
    seen.push(await req.text())
    return Response.json({ value: 1, index: 0, list: [1] })
  })
  const t0 = performance.now()
  const r = await appendWithin([silent, ok], body, { timeoutMs: 3_000 })
  const ms = performance.now() - t0
  expect(r).toMatchObject({ type: "ok", node: ok, attempts: 2, value: { list: [1] } })
  expect(ms).toBeGreaterThan(1_400)
  expect(ms).toBeLessThan(2_000)
  expect(seen).toEqual([JSON.stringify(body), JSON.stringify(body)])
})

test("appendWithin: an unknown outcome stays unknown whatever the other nodes say later", async () => {
  const unknown = node(() => Response.json({ error: "OutcomeUnknown", message: "test", definite: false }, { status: 504 }))
  const no = node(() => Response.json({ error: "Unavailable", message: "no quorum: test", definite: true }, { status: 503 }))
  const [free] = await freePorts(1)
  const r = await appendWithin([unknown, no, `127.0.0.1:${free}`], body, { timeoutMs: 1_000 })
  expect(r.type).toBe("info")
  expect(describeTried(r.tried)).toMatch(new RegExp(`^${unknown}: 504 test \\(\\d+ tries\\); ${no}: 503 no quorum: test \\(\\d+ tries\\); 127.0.0.1:${free}: connection refused`))
  const definite = await appendWithin([no, `127.0.0.1:${free}`], body, { timeoutMs: 1_000 })
  expect(definite.type).toBe("fail")
})
