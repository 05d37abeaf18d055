/**
 * The EDN data model: the values edn.ts's reader returns and its writer prints. Keywords are
 * interned, vectors are plain arrays, maps and sets keep their written order. No Bun or Node APIs.
 */

/** A keyword such as `:type` or `:a/b`; interned, so keywords compare with `===`. */
export class Keyword {
  private static readonly table = new Map<string, Keyword>()
  private constructor(readonly name: string) {}

  /** The one keyword with this name (without the leading colon). */
  static of(name: string): Keyword {
    let k = Keyword.table.get(name)
    if (k === undefined) {
      k = new Keyword(name)
      Keyword.table.set(name, k)
    }
    return k
  }

  toString(): string {
    return ":" + this.name
  }
}

/** A symbol such as `foo` or `clojure.core/inc`. */
export class Sym {
  constructor(readonly name: string) {}
}

/** A character literal such as `\a` or `\newline`; `char` holds the character itself. */
export class Char {
  constructor(readonly char: string) {}
}

/** A non-integer number (float, ratio, BigDecimal, `##Inf`); `text` is how it was written. */
export class EdnFloat {
  constructor(
    readonly value: number,
    readonly text: string,
  ) {}
}

/** A list `( ... )`. Vectors are plain arrays. */
export class EdnList {
  constructor(readonly items: EdnValue[]) {}
}

/** A set `#{ ... }`, in written order. */
export class EdnSet {
  constructor(readonly items: EdnValue[]) {}
}

/**
 * A map, in written order. `tag` is set when it was written as a record (`#a.b.C{...}`);
 * `offset` is where it starts in the source text (for error messages), -1 if built in code.
 */
export class EdnMap {
  constructor(
    readonly entries: Array<readonly [EdnValue, EdnValue]>,
    readonly tag: string | undefined = undefined,
    readonly offset: number = -1,
  ) {}

  /** The value under `key` (compared with `===`; keywords are interned), or undefined. */
  get(key: EdnValue): EdnValue | undefined {
    for (const [k, v] of this.entries) if (k === key) return v
    return undefined
  }

  /** Whether `key` is present. */
  has(key: EdnValue): boolean {
    for (const [k] of this.entries) if (k === key) return true
    return false
  }
}

/** A tagged literal other than a tagged map, e.g. `#inst "2024-01-01"` or `#object[...]`. */
export class EdnTagged {
  constructor(
    readonly tag: string,
    readonly value: EdnValue,
  ) {}
}

/** Any EDN value. Integers are numbers when safe, bigints otherwise; vectors are arrays. */
export type EdnValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Keyword
  | Sym
  | Char
  | EdnFloat
  | EdnValue[]
  | EdnList
  | EdnSet
  | EdnMap
  | EdnTagged
