/**
 * Runtime-neutral test registration, so the core's and the checker's tests run unchanged under
 * `bun test` and `deno test`. Assertions come from `node:assert/strict`, which both provide.
 *
 *   import { test } from "../portable.ts"
 *   test("name", () => { assert.equal(1, 1) })
 */
type TestFn = () => void | Promise<void>

const g = globalThis as unknown as {
  Bun?: unknown
  Deno?: { test: (name: string, fn: TestFn) => void }
}

// The specifier is built at run time so Deno's module graph never tries to resolve "bun:test".
const bunTestSpecifier = ["bun", "test"].join(":")
const bunTest: { test: (name: string, fn: TestFn, timeoutMs?: number) => void } | undefined =
  g.Bun !== undefined ? await import(bunTestSpecifier) : undefined

export const runtime: "bun" | "deno" = g.Bun !== undefined ? "bun" : "deno"

export function test(name: string, fn: TestFn, timeoutMs?: number): void {
  if (bunTest !== undefined) bunTest.test(name, fn, timeoutMs)
  else if (g.Deno !== undefined) g.Deno.test(name, fn)
  else throw new Error("test/portable.ts: neither Bun nor Deno is running these tests")
}
