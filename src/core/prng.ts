/**
 * A small seeded PRNG (mulberry32) whose whole state is one 32-bit integer, so it can live inside
 * the immutable node state and a simulation replays exactly from its seed. Nothing in the core
 * uses Math.random.
 */
export type Rng = number

/** Returns a uniformly distributed 32-bit unsigned integer and the next state. */
export const nextU32 = (s: Rng): readonly [number, Rng] => {
  const t = (s + 0x6d2b79f5) | 0
  let r = Math.imul(t ^ (t >>> 15), 1 | t)
  r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
  return [(r ^ (r >>> 14)) >>> 0, t]
}

/** An integer in [lo, hi), and the next state. */
export const nextInt = (s: Rng, lo: number, hi: number): readonly [number, Rng] => {
  const [u, s2] = nextU32(s)
  return [lo + (u % Math.max(1, hi - lo)), s2]
}

/** A float in [0, 1), and the next state. */
export const nextFloat = (s: Rng): readonly [number, Rng] => {
  const [u, s2] = nextU32(s)
  return [u / 4294967296, s2]
}

/** A mutable wrapper for code that draws many numbers in a row (the simulator's world). */
export class Random {
  constructor(private state: Rng) {}
  u32(): number {
    const [u, s] = nextU32(this.state)
    this.state = s
    return u
  }
  int(lo: number, hi: number): number {
    return lo + (this.u32() % Math.max(1, hi - lo))
  }
  float(): number {
    return this.u32() / 4294967296
  }
  chance(p: number): boolean {
    return this.float() < p
  }
  pick<A>(xs: readonly A[]): A {
    if (xs.length === 0) throw new Error("Random.pick: empty")
    return xs[this.int(0, xs.length)] as A
  }
  shuffle<A>(xs: readonly A[]): A[] {
    const a = xs.slice()
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1)
      const t = a[i] as A
      a[i] = a[j] as A
      a[j] = t
    }
    return a
  }
}

/** A seeded source of floats in [0, 1) as a plain function (mulberry32), for code outside the core. */
export function floatSource(seed: number): () => number {
  let s: Rng = seed | 0
  return () => {
    const [u, next] = nextU32(s)
    s = next
    return u / 4294967296
  }
}
