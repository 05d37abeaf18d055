/**
 * How this program runs itself again: the compiled binary is `process.execPath` alone; under Bun
 * (`bun src/cli/main.ts`) it is Bun with the entry script.
 */

/** Whether this is the `bun build --compile` binary (its modules live in Bun's /$bunfs). */
export const isCompiled = (): boolean => Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/")

/** The argv prefix that runs this program's CLI. */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, Bun.main]
}
