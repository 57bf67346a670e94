/**
 * The examples run as written, each in its own process, importing the package by name
 * through its `exports` (source condition), and finish on their own.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const run = promisify(execFile)

const runExample = (file: string) =>
  run(process.execPath, ["--conditions=raft-transport-source", "--import", "tsx", `examples/${file}`], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000
  })

describe("examples", () => {
  it("two-nodes.ts: two Iroh nodes exchange two messages and exit", async () => {
    const { stdout } = await runExample("two-nodes.ts")
    expect(stdout).toContain("done: 2 messages")
  })

  it("using-it.ts: the README's program gets its answer and exits", async () => {
    const { stdout } = await runExample("using-it.ts")
    expect(stdout).toContain("node 1 got HeartbeatResponse from node 2")
  })

  it("custom-state-machine.ts: a replicated counter on three in-memory nodes", async () => {
    const { stdout } = await runExample("custom-state-machine.ts")
    expect(stdout).toContain("done: counter = 12")
  })
})

describe("raft-node CLI", () => {
  const cli = (...args: Array<string>) =>
    run(process.execPath, ["--import", "tsx", "src/node/main.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 })

  it("--version prints the package version", async () => {
    const { stdout } = await cli("--version")
    expect(stdout.trim()).toMatch(/^raft-node \d+\.\d+\.\d+/)
  })

  it("--help prints the usage", async () => {
    const { stdout } = await cli("--help")
    expect(stdout).toContain("raft-node run --config <file>")
    expect(stdout).toContain("raft-node keygen --key-file <file>")
  })
})
