/**
 * A small EDN reader and writer for the history files Jepsen writes.
 *
 * How Jepsen 0.3.13 writes `store/<test>/<time>/history.edn` (checked in jepsen-io/jepsen at tag
 * v0.3.13, `jepsen/src/jepsen/store.clj` `write-history!` → `jepsen/src/jepsen/print.clj`
 * `pwrite-history!`): it folds over the history and calls `prn` on each op, so the file is one op
 * a line, no enclosing vector. Ops are `jepsen.history.Op` records, but io.jepsen/history
 * (jepsen-io/history `src/jepsen/history.clj`) overrides their `print-method` with
 * `(.write w (str (into {} op)))`, so each line is a plain map in field order
 * `{:index 0, :time 123, :type :invoke, :process 0, :f :txn, :value [[:append 0 5] [:r 0 nil]]}`,
 * followed by any extra keys (`:error`, ...). Nemesis ops have `:process :nemesis` and arbitrary
 * values (sets, strings, maps, sometimes `#object[...]` or exception data with symbols).
 *
 * This reader also accepts a single top-level vector of ops, record syntax `#jepsen.history.Op{...}`
 * (older or hand-made files; any tagged map reads as the map), `#inst`/`#uuid`, `#:ns{}` maps,
 * `##Inf`, regexes, metadata, comments and `#_` discards. It scans the text once with an index
 * (no repeated slicing), so large files read in linear time; deep nesting is bounded.
 * Malformed input raises {@link EdnError} with line and column. The values themselves are
 * defined in edn-value.ts and exported from here too. No Bun or Node APIs here.
 */
import { Char, EdnFloat, EdnList, EdnMap, EdnSet, EdnTagged, Keyword, Sym, type EdnValue } from "./edn-value.ts"
import type { MicroOp, Op } from "./op.ts"

export { Char, EdnFloat, EdnList, EdnMap, EdnSet, EdnTagged, Keyword, Sym, type EdnValue }

/** Malformed EDN: `line` and `column` count from 1; `offset` from 0. */
export class EdnError extends Error {
  override readonly name = "EdnError"
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
    readonly offset: number,
  ) {
    super(`line ${line}, column ${column}: ${reason}`)
  }
}

/** A top-level form with where it starts. */
export interface Form {
  readonly value: EdnValue
  readonly line: number
  readonly column: number
  readonly offset: number
}

/** Line and column (both from 1) of `offset` in `text`. */
export function locate(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, column: offset - lineStart + 1 }
}

/**
 * Maps offsets to lines quickly for many look-ups: builds the table of line starts once.
 */
export function lineLocator(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0]
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1)
  return (offset) => {
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((starts[mid] ?? 0) <= offset) lo = mid
      else hi = mid - 1
    }
    return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 }
  }
}

/** Reads every top-level form of `text`. */
export function parseEdnAll(text: string): EdnValue[] {
  const out: EdnValue[] = []
  for (const form of readEdnForms(text)) out.push(form.value)
  return out
}

/** Reads exactly one form; anything but whitespace and comments after it is an error. */
export function parseEdn(text: string): EdnValue {
  const r = new Reader(text)
  const v = r.next()
  if (v === EOF) throw r.error("no EDN value in the input", r.pos)
  if (r.next() !== EOF) throw r.error("more than one top-level value", r.lastStart)
  return v
}

/** Lazily reads the top-level forms of `text`, one at a time, with their start positions. */
export function* readEdnForms(text: string): Generator<Form, void, undefined> {
  const r = new Reader(text)
  let line = 1
  let lineStart = 0
  let scanned = 0
  for (;;) {
    const v = r.next()
    if (v === EOF) return
    const start = r.lastStart
    for (let i = text.indexOf("\n", scanned); i !== -1 && i < start; i = text.indexOf("\n", i + 1)) {
      line++
      lineStart = i + 1
    }
    scanned = start
    yield { value: v, line, column: start - lineStart + 1, offset: start }
  }
}

const EOF: unique symbol = Symbol("eof")
const MAX_DEPTH = 1000

const CH_QUOTE = 34
const CH_HASH = 35
const CH_LPAREN = 40
const CH_RPAREN = 41
const CH_COMMA = 44
const CH_COLON = 58
const CH_SEMI = 59
const CH_LBRACKET = 91
const CH_BACKSLASH = 92
const CH_RBRACKET = 93
const CH_CARET = 94
const CH_LBRACE = 123
const CH_RBRACE = 125

/** Whitespace for EDN: ASCII blanks and commas. */
function isSpace(c: number): boolean {
  return c === 32 || c === CH_COMMA || (c >= 9 && c <= 13)
}

/** Characters that end a token (Clojure's terminating macro characters and whitespace). */
function endsToken(c: number): boolean {
  return (
    isSpace(c) ||
    c === CH_QUOTE ||
    c === CH_SEMI ||
    c === CH_LPAREN ||
    c === CH_RPAREN ||
    c === CH_LBRACKET ||
    c === CH_RBRACKET ||
    c === CH_LBRACE ||
    c === CH_RBRACE ||
    c === CH_BACKSLASH ||
    c === CH_CARET ||
    c === 64 /* @ */ ||
    c === 96 /* ` */ ||
    c === 126 /* ~ */
  )
}

const NAMED_CHARS: Record<string, string> = {
  newline: "\n",
  space: " ",
  tab: "\t",
  return: "\r",
  backspace: "\b",
  formfeed: "\f",
}

const STRING_ESCAPES: Record<string, string> = {
  t: "\t",
  r: "\r",
  n: "\n",
  b: "\b",
  f: "\f",
  "\\": "\\",
  '"': '"',
  "'": "'",
}

const INT_RE = /^[+-]?(?:0|[1-9][0-9]*)N?$/
const HEX_RE = /^([+-]?)0[xX]([0-9a-fA-F]+)N?$/
const OCT_RE = /^([+-]?)0([0-7]+)N?$/
const RADIX_RE = /^([+-]?)([1-9][0-9]?)[rR]([0-9a-zA-Z]+)$/
const RATIO_RE = /^([+-]?[0-9]+)\/([0-9]+)$/
const FLOAT_RE = /^[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?M?$/

/** Turns an integer given as a bigint into a number when it is a safe integer. */
function fromBig(b: bigint): number | bigint {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b
}

/** Parses an integer token in the given radix (2..36) as a bigint. */
function bigInRadix(digits: string, radix: number): bigint | undefined {
  const R = BigInt(radix)
  let acc = 0n
  for (const ch of digits.toLowerCase()) {
    const d = parseInt(ch, 36)
    if (Number.isNaN(d) || d >= radix) return undefined
    acc = acc * R + BigInt(d)
  }
  return acc
}

/** The number a numeric token denotes, or undefined if it is not a valid number. */
function parseNumber(tok: string): number | bigint | EdnFloat | undefined {
  if (INT_RE.test(tok)) {
    const digits = tok.endsWith("N") ? tok.slice(0, -1) : tok
    return digits.length <= 15 ? Number(digits) : fromBig(BigInt(digits))
  }
  for (const [re, radix] of [[HEX_RE, 16], [OCT_RE, 8]] as const) {
    const m = re.exec(tok)
    const b = m === null ? undefined : bigInRadix(m[2] ?? "", radix)
    if (m !== null && b !== undefined) return fromBig(m[1] === "-" ? -b : b)
  }
  let m = RADIX_RE.exec(tok)
  if (m !== null) {
    const radix = Number(m[2])
    const b = radix >= 2 && radix <= 36 ? bigInRadix(m[3] ?? "", radix) : undefined
    if (b !== undefined) return fromBig(m[1] === "-" ? -b : b)
    return undefined
  }
  m = RATIO_RE.exec(tok)
  if (m !== null) return new EdnFloat(Number(m[1]) / Number(m[2]), tok)
  if (FLOAT_RE.test(tok)) return new EdnFloat(Number(tok.endsWith("M") ? tok.slice(0, -1) : tok), tok)
  return undefined
}

/** The index-based reader: one instance per text. */
class Reader {
  pos = 0
  lastStart = 0
  private depth = 0

  constructor(readonly text: string) {}

  /** An EdnError at `offset`. */
  error(reason: string, offset: number): EdnError {
    const { line, column } = locate(this.text, offset)
    return new EdnError(reason, line, column, offset)
  }

  /** The next top-level form, or EOF. */
  next(): EdnValue | typeof EOF {
    this.skipSpace()
    this.lastStart = this.pos
    if (this.pos >= this.text.length) return EOF
    const v = this.readForm()
    return v
  }

  /** Skips whitespace, commas and `;` comments. */
  private skipSpace(): void {
    const t = this.text
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos)
      if (isSpace(c)) this.pos++
      else if (c === CH_SEMI) {
        const nl = t.indexOf("\n", this.pos)
        this.pos = nl === -1 ? t.length : nl + 1
      } else return
    }
  }

  /** Reads one form starting at a non-space character (skipping `#_` discards). */
  private readForm(): EdnValue {
    if (++this.depth > MAX_DEPTH) throw this.error(`nesting deeper than ${MAX_DEPTH}`, this.pos)
    try {
      for (;;) {
        const v = this.readOne()
        if (v !== DISCARDED) return v
        this.skipSpace()
        if (this.pos >= this.text.length) throw this.error("`#_` discards nothing at end of input", this.pos)
      }
    } finally {
      this.depth--
    }
  }

  /** Reads one form, or returns DISCARDED after a `#_ form`. */
  private readOne(): EdnValue | typeof DISCARDED {
    const t = this.text
    const start = this.pos
    const c = t.charCodeAt(start)
    switch (c) {
      case CH_LPAREN:
        this.pos++
        return new EdnList(this.readSeq(CH_RPAREN, start))
      case CH_LBRACKET:
        this.pos++
        return this.readSeq(CH_RBRACKET, start)
      case CH_LBRACE:
        this.pos++
        return this.readMap(start, undefined, undefined)
      case CH_QUOTE:
        this.pos++
        return this.readString(start)
      case CH_BACKSLASH:
        return this.readChar(start)
      case CH_COLON:
        return this.readKeyword(start)
      case CH_HASH:
        return this.readDispatch(start)
      case CH_CARET:
        this.pos++
        this.readRequired(start, "metadata")
        return this.readRequired(start, "a value after metadata")
      case CH_RPAREN:
      case CH_RBRACKET:
      case CH_RBRACE:
        throw this.error(`unmatched '${t[start]}'`, start)
      default:
        return this.readAtom(start)
    }
  }

  /** Reads a form that must be there (after `^`, a tag, ...). */
  private readRequired(start: number, what: string): EdnValue {
    this.skipSpace()
    if (this.pos >= this.text.length) throw this.error(`end of input while expecting ${what}`, start)
    const c = this.text.charCodeAt(this.pos)
    if (c === CH_RPAREN || c === CH_RBRACKET || c === CH_RBRACE)
      throw this.error(`expected ${what}, found '${this.text[this.pos]}'`, this.pos)
    return this.readForm()
  }

  /** Reads forms up to the closing character `close`. */
  private readSeq(close: number, start: number): EdnValue[] {
    const items: EdnValue[] = []
    const t = this.text
    for (;;) {
      this.skipSpace()
      if (this.pos >= t.length)
        throw this.error(`unterminated '${t[start]}' (end of input before '${String.fromCharCode(close)}')`, start)
      const c = t.charCodeAt(this.pos)
      if (c === close) {
        this.pos++
        return items
      }
      if (c === CH_RPAREN || c === CH_RBRACKET || c === CH_RBRACE)
        throw this.error(`'${t[this.pos]}' does not close '${t[start]}'`, this.pos)
      const v = this.readOneInSeq()
      if (v !== DISCARDED) items.push(v)
    }
  }

  /** Reads one element of a collection, where a trailing `#_ x` may leave nothing. */
  private readOneInSeq(): EdnValue | typeof DISCARDED {
    if (++this.depth > MAX_DEPTH) throw this.error(`nesting deeper than ${MAX_DEPTH}`, this.pos)
    try {
      return this.readOne()
    } finally {
      this.depth--
    }
  }

  /** Reads a map body after `{`; `ns` qualifies bare keyword keys (for `#:ns{...}`). */
  private readMap(start: number, tag: string | undefined, ns: string | undefined): EdnMap {
    const items = this.readSeq(CH_RBRACE, start)
    if (items.length % 2 !== 0) throw this.error("map literal must have an even number of forms", start)
    const entries: Array<readonly [EdnValue, EdnValue]> = []
    for (let i = 0; i < items.length; i += 2) {
      let k = items[i] as EdnValue
      if (ns !== undefined && k instanceof Keyword) k = qualify(k, ns)
      entries.push([k, items[i + 1] as EdnValue])
    }
    return new EdnMap(entries, tag, start)
  }

  /** Reads a string body after the opening quote, handling escapes. */
  private readString(start: number): string {
    const t = this.text
    let chunkStart = this.pos
    let parts: string[] | undefined
    for (;;) {
      if (this.pos >= t.length) throw this.error("unterminated string", start)
      const c = t.charCodeAt(this.pos)
      if (c === CH_QUOTE) {
        const last = t.slice(chunkStart, this.pos)
        this.pos++
        return parts === undefined ? last : (parts.push(last), parts.join(""))
      }
      if (c !== CH_BACKSLASH) {
        this.pos++
        continue
      }
      parts ??= []
      parts.push(t.slice(chunkStart, this.pos))
      parts.push(this.readEscape())
      chunkStart = this.pos
    }
  }

  /** Reads one escape sequence inside a string, at the backslash. */
  private readEscape(): string {
    const t = this.text
    const at = this.pos
    const e = t[at + 1]
    if (e === undefined) throw this.error("unterminated string escape", at)
    const simple = STRING_ESCAPES[e]
    if (simple !== undefined) {
      this.pos = at + 2
      return simple
    }
    if (e === "u") {
      const hex = t.slice(at + 2, at + 6)
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.error("bad \\u escape in string", at)
      this.pos = at + 6
      return String.fromCharCode(parseInt(hex, 16))
    }
    const oct = /^[0-7]{1,3}/.exec(t.slice(at + 1, at + 4))
    if (oct !== null && parseInt(oct[0], 8) <= 0o377) {
      this.pos = at + 1 + oct[0].length
      return String.fromCharCode(parseInt(oct[0], 8))
    }
    throw this.error(`unknown escape '\\${e}' in string`, at)
  }

  /** Reads a raw token (symbol, number, keyword or character name) from `from`. */
  private token(from: number): string {
    const t = this.text
    let end = from
    while (end < t.length && !endsToken(t.charCodeAt(end))) end++
    this.pos = end
    return t.slice(from, end)
  }

  /** Reads a character literal at the backslash. */
  private readChar(start: number): Char {
    if (start + 1 >= this.text.length) throw this.error("end of input after '\\'", start)
    // The first character is always part of the literal, even a delimiter: `\(`.
    const rest = this.token(start + 2)
    const name = (this.text[start + 1] ?? "") + rest
    if (name.length === 1) return new Char(name)
    const named = NAMED_CHARS[name]
    if (named !== undefined) return new Char(named)
    if (/^u[0-9a-fA-F]{4}$/.test(name)) return new Char(String.fromCharCode(parseInt(name.slice(1), 16)))
    if (/^o[0-7]{1,3}$/.test(name) && parseInt(name.slice(1), 8) <= 0o377)
      return new Char(String.fromCharCode(parseInt(name.slice(1), 8)))
    throw this.error(`unknown character literal '\\${name}'`, start)
  }

  /** Reads a keyword at the colon. */
  private readKeyword(start: number): Keyword {
    const name = this.token(start + 1)
    if (name === "" || name.startsWith(":") || name.endsWith("/") || name.startsWith("/") && name !== "/")
      throw this.error(`invalid keyword ':${name}'`, start)
    return Keyword.of(name)
  }

  /** Reads a short plain decimal integer without slicing; undefined if it is anything else. */
  private fastInt(start: number): number | undefined {
    const t = this.text
    let i = start
    const neg = t.charCodeAt(i) === 45
    if (neg || t.charCodeAt(i) === 43) i++
    const first = i
    let n = 0
    for (let c = t.charCodeAt(i); c >= 48 && c <= 57; c = t.charCodeAt(++i)) n = n * 10 + (c - 48)
    const digits = i - first
    if (digits === 0 || digits > 15 || (digits > 1 && t.charCodeAt(first) === 48)) return undefined
    if (i < t.length && !endsToken(t.charCodeAt(i))) return undefined
    this.pos = i
    return neg && n !== 0 ? -n : n
  }

  /** Reads a number, `nil`, `true`, `false` or a symbol. */
  private readAtom(start: number): EdnValue {
    const fast = this.fastInt(start)
    if (fast !== undefined) return fast
    const tok = this.token(start)
    if (tok === "") throw this.error(`unexpected character '${this.text[start]}'`, start)
    const c0 = tok.charCodeAt(0)
    const c1 = tok.charCodeAt(1)
    const numeric = (c0 >= 48 && c0 <= 57) || ((c0 === 43 || c0 === 45) && c1 >= 48 && c1 <= 57)
    if (numeric) {
      const n = parseNumber(tok)
      if (n === undefined) throw this.error(`invalid number '${tok}'`, start)
      return n
    }
    if (tok === "nil") return null
    if (tok === "true") return true
    if (tok === "false") return false
    if (c0 === 39 /* ' */) throw this.error("quote (') is not EDN", start)
    return new Sym(tok)
  }

  /** Reads what follows `#`: set, discard, symbolic value, regex, namespaced map or tag. */
  private readDispatch(start: number): EdnValue | typeof DISCARDED {
    const t = this.text
    const d = t.charCodeAt(start + 1)
    if (d === CH_LBRACE) {
      this.pos = start + 2
      return new EdnSet(this.readSeq(CH_RBRACE, start))
    }
    if (d === 95 /* _ */) {
      this.pos = start + 2
      this.readRequired(start, "a form after #_")
      return DISCARDED
    }
    if (d === CH_HASH) return this.readSymbolic(start)
    if (d === CH_QUOTE) return new EdnTagged("regex", this.readRegex(start))
    if (d === CH_COLON) return this.readNamespacedMap(start)
    if (d === 39 /* ' */) {
      this.pos = start + 2
      return new EdnTagged("var", this.readRequired(start, "a symbol after #'"))
    }
    const tag = this.token(start + 1)
    if (tag === "" || !/^[a-zA-Z]/.test(tag))
      throw this.error(`unsupported dispatch '#${t[start + 1] ?? ""}'`, start)
    const value = this.readRequired(start, `a value for tag #${tag}`)
    return value instanceof EdnMap ? new EdnMap(value.entries, tag, start) : new EdnTagged(tag, value)
  }

  /** Reads `##Inf`, `##-Inf` or `##NaN`. */
  private readSymbolic(start: number): EdnFloat {
    const name = this.token(start + 2)
    const v = name === "Inf" ? Infinity : name === "-Inf" ? -Infinity : name === "NaN" ? NaN : undefined
    if (v === undefined) throw this.error(`unknown symbolic value '##${name}'`, start)
    return new EdnFloat(v, "##" + name)
  }

  /** Reads a regex `#"..."` raw (backslashes kept). */
  private readRegex(start: number): string {
    const t = this.text
    let i = start + 2
    while (i < t.length && t.charCodeAt(i) !== CH_QUOTE) i += t.charCodeAt(i) === CH_BACKSLASH ? 2 : 1
    if (i >= t.length) throw this.error("unterminated regex", start)
    this.pos = i + 1
    return t.slice(start + 2, i)
  }

  /** Reads `#:ns{...}`: bare keyword keys get namespace `ns`. */
  private readNamespacedMap(start: number): EdnMap {
    const ns = this.token(start + 2)
    if (ns === "" || this.text.charCodeAt(this.pos) !== CH_LBRACE)
      throw this.error("namespaced map must look like #:ns{...}", start)
    const open = this.pos
    this.pos++
    return this.readMap(open, undefined, ns)
  }
}

const DISCARDED: unique symbol = Symbol("discarded")

/** `:a` → `:ns/a`; `:_/a` → `:a`; already qualified keywords stay. */
function qualify(k: Keyword, ns: string): Keyword {
  if (k.name.startsWith("_/")) return Keyword.of(k.name.slice(2))
  return k.name.includes("/") ? k : Keyword.of(`${ns}/${k.name}`)
}

// ---------------------------------------------------------------------------------------------
// Writer

const CHAR_NAMES: Record<string, string> = {
  "\n": "newline",
  " ": "space",
  "\t": "tab",
  "\r": "return",
  "\b": "backspace",
  "\f": "formfeed",
}

/** Prints a string the way Clojure's `pr` does. */
function formatString(s: string): string {
  let out = '"'
  for (const ch of s) {
    if (ch === '"') out += '\\"'
    else if (ch === "\\") out += "\\\\"
    else if (ch === "\n") out += "\\n"
    else if (ch === "\t") out += "\\t"
    else if (ch === "\r") out += "\\r"
    else if (ch === "\b") out += "\\b"
    else if (ch === "\f") out += "\\f"
    else out += ch
  }
  return out + '"'
}

/** Prints items separated by single spaces. */
function formatItems(items: readonly EdnValue[]): string {
  let out = ""
  for (let i = 0; i < items.length; i++) out += (i === 0 ? "" : " ") + formatEdn(items[i] as EdnValue)
  return out
}

/** Prints any EDN value on one line, in Clojure's `pr` style (maps as `{:a 1, :b 2}`). */
export function formatEdn(v: EdnValue): string {
  if (v === null) return "nil"
  if (typeof v === "boolean") return v ? "true" : "false"
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : formatFloat(v)
  if (typeof v === "bigint") return `${v}N`
  if (typeof v === "string") return formatString(v)
  if (Array.isArray(v)) return `[${formatItems(v)}]`
  if (v instanceof Keyword) return ":" + v.name
  if (v instanceof Sym) return v.name
  if (v instanceof Char) return "\\" + (CHAR_NAMES[v.char] ?? v.char)
  if (v instanceof EdnFloat) return v.text
  if (v instanceof EdnList) return `(${formatItems(v.items)})`
  if (v instanceof EdnSet) return `#{${formatItems(v.items)}}`
  if (v instanceof EdnMap) {
    const body = v.entries.map(([k, x]) => `${formatEdn(k)} ${formatEdn(x)}`).join(", ")
    return `${v.tag !== undefined ? "#" + v.tag : ""}{${body}}`
  }
  return v.tag === "regex" && typeof v.value === "string"
    ? `#"${v.value}"`
    : `#${v.tag} ${formatEdn(v.value)}`
}

/** Prints a non-integer JS number as an EDN float. */
function formatFloat(n: number): string {
  if (Number.isNaN(n)) return "##NaN"
  if (!Number.isFinite(n)) return n > 0 ? "##Inf" : "##-Inf"
  const s = String(n)
  return s.includes(".") || s.includes("e") ? s : s + ".0"
}

/** Prints a micro-op list such as `[[:append 0 5] [:r 0 [1 2 5]]]`. */
function formatMicroOps(ops: readonly MicroOp[]): string {
  let out = "["
  for (let i = 0; i < ops.length; i++) {
    const m = ops[i] as MicroOp
    const arg = m[0] === "append" ? String(m[2]) : m[2] === null ? "nil" : `[${m[2].join(" ")}]`
    out += `${i === 0 ? "" : " "}[:${m[0]} ${m[1]} ${arg}]`
  }
  return out + "]"
}

/**
 * Prints one op on one line in Jepsen's style:
 * `{:type :invoke, :f :txn, :value [[:append 0 5]], :process 3, :time 123456, :index 0}`,
 * followed by any extra keys the op had (`:error`, ...). A time of -1 (none in the file) is left out.
 */
export function formatOp(op: Op): string {
  const value = op.value !== null ? formatMicroOps(op.value) : formatEdn(op.rawValue ?? null)
  const process = typeof op.process === "string" ? formatString(op.process) : String(op.process)
  let out = `{:type :${op.type}, :f :${op.f}, :value ${value}, :process ${process}`
  if (op.time >= 0) out += `, :time ${op.time}`
  out += `, :index ${op.index}`
  for (const [k, v] of op.extra ?? []) out += `, ${formatEdn(k)} ${formatEdn(v)}`
  return out + "}"
}
