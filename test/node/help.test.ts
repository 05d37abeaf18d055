/**
 * The command line as a user meets it, on the compiled binary: every subcommand answers --help
 * (exit 0) with a text that names every one of its options; `paxos --version` and `paxos CMD
 * --version` print the build's version; an unknown option is a usage error (exit 2, one line
 * naming the command), and a near miss names the option meant.
 */
import { expect, test } from "bun:test"
import { COMMANDS } from "../../src/cli/main.ts"
import { VERSION } from "../../src/cli/version.ts"
import { ensureBinary } from "./support.ts"

async function paxos(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([ensureBinary(), ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { code: await p.exited, out, err }
}

test("every subcommand's --help exits 0 and names every option", async () => {
  expect(Object.keys(COMMANDS).length).toBeGreaterThanOrEqual(10)
  for (const [name, sub] of Object.entries(COMMANDS)) {
    for (const ask of ["--help", "-h"]) {
      const r = await paxos([name, ask])
      expect({ name, ask, code: r.code }).toEqual({ name, ask, code: 0 })
      expect(r.out.startsWith(`usage: paxos ${name}`)).toBe(true)
      for (const flag of sub.flags.filter((f) => f !== "h" && f !== "help")) expect({ name, flag, named: r.out.includes(`--${flag}`) }).toEqual({ name, flag, named: true })
      if (sub.flags.some((f) => f !== "h" && f !== "help")) expect(r.out).toContain("default")
    }
  }
  const top = await paxos(["--help"])
  expect(top.code).toBe(0)
  for (const name of Object.keys(COMMANDS)) expect(top.out).toContain(`  ${name} `)
  expect((await paxos(["help", "sim"])).out.startsWith("usage: paxos sim")).toBe(true)
}, 60_000)

test("--version on its own and after any subcommand", async () => {
  for (const args of [["--version"], ["-V"], ["client", "--version"], ["sim", "--version"]]) {
    const r = await paxos(args)
    expect({ args, code: r.code }).toEqual({ args, code: 0 })
    expect(r.out.trim()).toStartWith(`paxos ${VERSION} (bun `)
  }
})

test("an unknown option is a usage error naming the command, and a near miss names the option meant", async () => {
  for (const name of Object.keys(COMMANDS)) {
    const r = await paxos([name, "--xyzzy-nope"])
    expect({ name, code: r.code }).toEqual({ name, code: 2 })
    expect(r.err.split("\n")[0]).toStartWith(`paxos ${name}: `)
    expect(r.err).not.toContain("    at ")
  }
  expect((await paxos(["client", "--tmeout", "5", "1"])).err).toContain("did you mean --timeout?")
  expect((await paxos(["sim", "--sed", "5"])).err).toContain("did you mean --seed?")
  expect((await paxos(["chaos", "--time-limt", "5"])).err).toContain("did you mean --time-limit?")
  expect((await paxos(["sttus"])).err).toContain("did you mean 'status'?")
}, 60_000)
