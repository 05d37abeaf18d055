/** The version of this build: package.json's, bundled into the binary. */
import pkg from "../../package.json" with { type: "json" }

export const VERSION: string = pkg.version

/** `paxos 0.1.0 (bun 1.4.5)`: what `paxos --version` prints. */
export const versionLine = (): string => `paxos ${VERSION} (bun ${typeof Bun === "undefined" ? "?" : Bun.version})`
