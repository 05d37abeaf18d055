/**
 * One log line per event, on stderr: `2025-01-01T00:00:00.000Z localhost:5000 became-leader ballot=3.1`.
 * Every line carries the node's name, so the lines of several nodes can be merged and grepped.
 * `limited` keeps noisy events (peer down, rejected envelopes) to one line per key and period.
 */
export type Fields = Record<string, string | number | boolean | null | undefined>

export interface Log {
  (event: string, fields?: Fields): void
  /** Logs at most once per `periodMs` for this key; says how many were suppressed. */
  limited(key: string, periodMs: number, event: string, fields?: Fields): void
}

export function makeLog(node: string, write: (line: string) => void = (l) => process.stderr.write(l + "\n")): Log {
  const last = new Map<string, { at: number; suppressed: number }>()
  const log = ((event: string, fields: Fields = {}) => write(formatLine(node, event, fields))) as Log
  log.limited = (key, periodMs, event, fields = {}) => {
    const now = Date.now()
    const prev = last.get(key)
    if (prev !== undefined && now - prev.at < periodMs) {
      prev.suppressed += 1
      return
    }
    const suppressed = prev?.suppressed ?? 0
    last.set(key, { at: now, suppressed: 0 })
    log(event, suppressed > 0 ? { ...fields, suppressed } : fields)
  }
  return log
}

export function formatLine(node: string, event: string, fields: Fields): string {
  let line = `${new Date().toISOString()} ${node} ${event}`
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    const s = String(v)
    line += ` ${k}=${/[\s"=]/.test(s) || s.length === 0 ? JSON.stringify(s) : s}`
  }
  return line
}
