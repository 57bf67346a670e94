/**
 * With `RUST_BACKTRACE=1`, every error of the Iroh binding would capture a Rust backtrace and
 * symbolise it on the runtime threads that carry all Iroh traffic (up to 285 ms each; a
 * connection's close fails many calls at once). Loading the transport turns these captures
 * off unless the user chose otherwise (`src/iroh/native.ts`). Each case runs in a fresh child
 * process: Rust reads the variables once per process.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const PROBE = fileURLToPath(new URL("../support/binding-error.ts", import.meta.url))

interface Outcome {
  readonly failed: boolean
  readonly backtrace: boolean
}

const bindingErrorAfter = (specifier: string | undefined, env: Record<string, string>): Outcome => {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
  if (env["RUST_LIB_BACKTRACE"] === undefined) delete childEnv["RUST_LIB_BACKTRACE"]
  const out = execFileSync(
    process.execPath,
    ["--conditions=raft-transport-source", "--import", "tsx", PROBE, ...(specifier === undefined ? [] : [specifier])],
    { cwd: ROOT, encoding: "utf8", timeout: 60_000, env: childEnv }
  )
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Outcome
}

describe("Rust backtraces on the binding's errors", () => {
  it("the probe sees one when nothing turned them off", () => {
    expect(bindingErrorAfter(undefined, { RUST_BACKTRACE: "1" })).toEqual({ failed: true, backtrace: true })
  })

  it("loading the transport turns them off under RUST_BACKTRACE=1", () => {
    expect(bindingErrorAfter("raft-transport", { RUST_BACKTRACE: "1" })).toEqual({ failed: true, backtrace: false })
  })

  it("a RUST_LIB_BACKTRACE the user set is kept", () => {
    expect(bindingErrorAfter("raft-transport", { RUST_BACKTRACE: "1", RUST_LIB_BACKTRACE: "1" })).toEqual({ failed: true, backtrace: true })
  })
})
