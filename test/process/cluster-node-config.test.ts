import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseNodeConfigToml } from "../../src/node/node-config.ts"
import { FileStorage } from "../../src/raft/file-storage.ts"
import { tempDir as makeTempDir } from "../support/network-cluster.ts"

const MAIN = fileURLToPath(new URL("../../src/node/main.ts", import.meta.url))

const toml = (parts: { transport?: string; raft?: string; http?: string; extra?: string }) =>
  [
    parts.transport ?? "[transport]\nnode_id = 1\nmode = \"grpc\"\npeers = [{ id = 2, grpc_address = \"127.0.0.1:9002\" }]",
    parts.raft ?? "[raft]\nvoters = [1, 2]",
    parts.http ?? "",
    parts.extra ?? ""
  ].join("\n\n")

const failure = (text: string) => Effect.flip(parseNodeConfigToml(text))

describe("node config", () => {
  it.effect("decodes the three tables, with the http defaults", () =>
    Effect.gen(function*() {
      const config = yield* parseNodeConfigToml(toml({}))
      expect(config.transport.node_id).toBe(1)
      expect(config.raft.voters).toEqual([1, 2])
      expect(config.http.bind_address).toBe("127.0.0.1:0")
      expect(config.http.request_timeout_ms).toBeUndefined()
      const custom = yield* parseNodeConfigToml(toml({ http: "[http]\nbind_address = \"0.0.0.0:8080\"\nrequest_timeout_ms = 900" }))
      expect(custom.http).toEqual({
        bind_address: "0.0.0.0:8080",
        request_timeout_ms: 900,
        header_timeout_ms: 10_000,
        body_timeout_ms: 30_000,
        idle_timeout_ms: 5_000,
        max_connections: 256
      })
    }))

  it.effect("[process] scheduling is batch by default, inherit when asked, and nothing else", () =>
    Effect.gen(function*() {
      expect((yield* parseNodeConfigToml(toml({}))).process).toEqual({ scheduling: "batch" })
      expect((yield* parseNodeConfigToml(toml({ extra: "[process]\nscheduling = \"inherit\"" }))).process).toEqual({ scheduling: "inherit" })
      const e = yield* failure(toml({ extra: "[process]\nscheduling = \"fifo\"" }))
      expect(e.issues.map((i) => i.path)).toEqual(["process.scheduling"])
    }))

  it.effect("the body timeout includes the header timeout, so it may not be shorter", () =>
    Effect.gen(function*() {
      const e = yield* failure(toml({ http: "[http]\nheader_timeout_ms = 5000\nbody_timeout_ms = 4000" }))
      expect(e.issues.map((i) => i.path)).toEqual(["http.body_timeout_ms"])
      const ok = yield* parseNodeConfigToml(toml({ http: "[http]\nheader_timeout_ms = 5000\nbody_timeout_ms = 5000" }))
      expect(ok.http.body_timeout_ms).toBe(5000)
    }))

  it.effect("errors name the field, across tables", () =>
    Effect.gen(function*() {
      const e = yield* failure(toml({
        raft: "[raft]\nvoters = [1, 2]\nheartbeat_interval_ms = 0",
        http: "[http]\nbind_address = \"nope\"\nport = 1"
      }))
      const paths = e.issues.map((i) => i.path)
      expect(paths).toContain("raft.heartbeat_interval_ms")
      expect(paths).toContain("http.bind_address")
      expect(paths).toContain("http.port")
      expect(e.message).toMatch(/http\.bind_address: Expected a bind address/)
    }))

  it.effect("missing and unknown tables, syntax errors", () =>
    Effect.gen(function*() {
      expect((yield* failure("[raft]\nvoters = [1]")).path).toBe("transport")
      expect((yield* failure("[transport]\nnode_id = 1\nmode = \"grpc\"")).path).toBe("raft")
      expect((yield* failure(toml({ extra: "[htp]\nbind_address = \"127.0.0.1:1\"" }))).path).toBe("htp")
      expect((yield* failure("[transport\n")).path).toBe("<toml>")
    }))

  it.effect("this node must be a voter, and every other voter needs a peer entry", () =>
    Effect.gen(function*() {
      const notVoter = yield* failure(toml({ raft: "[raft]\nvoters = [2, 3]" }))
      expect(notVoter.issues.map((i) => i.path)).toEqual(["raft.voters", "transport.peers"])
      expect(notVoter.message).toMatch(/Voter 3 \(raft.voters\) has no entry in transport.peers/)
    }))
})

describe("node CLI", () => {
  const dirs: Array<string> = []
  const tempDir = () => {
    const dir = makeTempDir("raft-node-cli-")
    dirs.push(dir)
    return dir
  }
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const cli = (...args: Array<string>) => spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8" })

  it("keygen creates a 0600 key file once and prints the endpoint id and a ticket", () => {
    const file = join(tempDir(), "node.key")
    const first = cli("keygen", "--key-file", file, "--address", "127.0.0.1:4001")
    expect(first.status).toBe(0)
    const a = JSON.parse(first.stdout) as { created: boolean; endpointId: string; ticket: string }
    expect(a.created).toBe(true)
    expect(a.endpointId).toMatch(/^[0-9a-f]{64}$/)
    expect(a.ticket).toMatch(/^endpoint/)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const again = JSON.parse(cli("keygen", "--key-file", file).stdout) as { created: boolean; endpointId: string }
    expect(again).toMatchObject({ created: false, endpointId: a.endpointId })
  }, 30_000)

  it("usage errors exit 2, startup errors exit 1 with the reason on stderr", () => {
    const usage = cli("run")
    expect(usage.status).toBe(2)
    expect(usage.stderr).toMatch(/run needs --config/)
    const bad = cli("keygen", "--key-file", join(tempDir(), "k"), "--address", "localhost:1")
    expect(bad.status).toBe(2)
    const missing = cli("run", "--config", join(tempDir(), "absent.toml"))
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(/Config file not found/)
    expect(missing.stdout).toBe("")
  }, 30_000)

  it("a stored snapshot that does not restore: exit 3, the snapshot file named on stderr", async () => {
    const dir = tempDir()
    const dataDir = join(dir, "data")
    // A snapshot whose record is sound but whose data the KV state machine cannot read.
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const storage = yield* FileStorage.make(dataDir, "always")
      yield* storage.write({
        snapshot: { metadata: { index: 5, term: 2 }, data: new TextEncoder().encode("{ not a snapshot") },
        hardState: { term: 2, vote: 1, commit: 5 }
      })
    })))
    const config = join(dir, "node.toml")
    writeFileSync(config, toml({ transport: "[transport]\nnode_id = 1\nenabled = false", raft: `[raft]\nvoters = [1]\ndata_dir = ${JSON.stringify(dataDir)}` }))
    const run = cli("run", "--config", config)
    expect(run.status).toBe(3)
    expect(run.stderr).toContain(`the stored snapshot ${join(dataDir, "snapshot")} (index 5, term 2) does not restore`)
    expect(run.stdout).toBe("")
  }, 30_000)
})
