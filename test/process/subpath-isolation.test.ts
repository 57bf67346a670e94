/**
 * What each subpath loads: `raft-transport/raft` and `raft-transport/testing` must run where
 * the Iroh binding or grpc-js cannot load (and cost nothing when unused). Each import runs in
 * a fresh child process, resolved through the package's own `exports` (source condition).
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const PROBE = fileURLToPath(new URL("../support/loaded-packages.ts", import.meta.url))

const loadedBy = (specifier: string): ReadonlyArray<string> => {
  const out = execFileSync(
    process.execPath,
    ["--conditions=raft-transport-source", "--import", "tsx", PROBE, specifier],
    { cwd: ROOT, encoding: "utf8", timeout: 60_000 }
  )
  return JSON.parse(out.trim().split("\n").at(-1) ?? "[]") as ReadonlyArray<string>
}

const networkPackages = (loaded: ReadonlyArray<string>) =>
  loaded.filter((name) => name.startsWith("@number0/") || name === "@grpc/grpc-js")

describe("subpath imports", () => {
  it("raft-transport/raft loads neither the Iroh binding nor grpc-js", () => {
    expect(networkPackages(loadedBy("raft-transport/raft"))).toEqual([])
  })

  it("raft-transport/testing loads neither the Iroh binding nor grpc-js", () => {
    expect(networkPackages(loadedBy("raft-transport/testing"))).toEqual([])
  })

  it("the probe sees them when the root entry point loads them", () => {
    const loaded = networkPackages(loadedBy("raft-transport"))
    expect(loaded).toContain("@grpc/grpc-js")
    expect(loaded.some((name) => name.startsWith("@number0/iroh"))).toBe(true)
  })
})
