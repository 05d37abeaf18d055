/**
 * Raw HTTP over a TCP socket (Bun.connect), for what fetch cannot do: a body trickled slowly,
 * a request held open, malformed request lines, oversized headers. Everything is bounded in time.
 */
import type { Socket } from "bun"
import { readFileSync } from "node:fs"

export interface RawReply {
  /** The status of the first response line, or null if the server closed without one. */
  readonly status: number | null
  /** Everything the server sent. */
  readonly text: string
  /** Whether the server closed the connection. */
  readonly closed: boolean
}

/** A connection that writes when told and collects what the server sends. */
export class RawConnection {
  private received = ""
  private closedFlag = false
  private waiters: Array<() => void> = []

  private constructor(private readonly socket: Socket<undefined>) {}

  static async open(host: string, port: number): Promise<RawConnection> {
    let conn: RawConnection | null = null
    const pendingData: string[] = []
    const dec = new TextDecoder()
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data(_s, data) {
          const t = dec.decode(data, { stream: true })
          if (conn === null) pendingData.push(t)
          else conn.onData(t)
        },
        close() {
          conn?.onClose()
        },
        error() {
          conn?.onClose()
        }
      }
    })
    conn = new RawConnection(socket)
    for (const t of pendingData) conn.onData(t)
    return conn
  }

  private onData(t: string): void {
    this.received += t
    this.wake()
  }

  private onClose(): void {
    this.closedFlag = true
    this.wake()
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  write(data: string | Uint8Array): void {
    if (!this.closedFlag) this.socket.write(data)
  }

  /** Closes our side (FIN), or resets the connection with `hard`. */
  close(hard = false): void {
    if (hard) this.socket.terminate()
    else this.socket.end()
  }

  get closed(): boolean {
    return this.closedFlag
  }

  /** Waits for a whole response (headers and Content-Length bytes), the server's close, or the time limit. */
  async reply(timeoutMs: number): Promise<RawReply> {
    const deadline = Date.now() + timeoutMs
    while (!this.complete() && !this.closedFlag && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.received)
    return { status: m === null ? null : Number(m[1]), text: this.received, closed: this.closedFlag }
  }

  private complete(): boolean {
    const end = this.received.indexOf("\r\n\r\n")
    if (end === -1) return false
    const len = /\r\ncontent-length: *(\d+)/i.exec(this.received.slice(0, end))
    return len === null || this.received.length - end - 4 >= Number(len[1])
  }
}

/** Sends `request` (raw bytes) and returns the reply (or what came before the time limit). */
export async function rawRequest(host: string, port: number, request: string | Uint8Array, timeoutMs = 5_000): Promise<RawReply> {
  const c = await RawConnection.open(host, port)
  try {
    c.write(request)
    return await c.reply(timeoutMs)
  } finally {
    c.close(true)
  }
}

/** The resident set size of a process, in bytes (from /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) * 1024
}

/** Whether a process is still running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
