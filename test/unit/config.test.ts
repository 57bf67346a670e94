import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import {
  ConfigError,
  decodeTransportConfig,
  loadConfigFile,
  makeConfig,
  parseConfigToml,
  queueConfigFor
} from "../../src/config/index.ts"

const ID_A = "5bde58b777fa06ab4eaebd2a113b22ebe2b413adc3cd3216d487e947655a4844"
const ID_B = "56f041918b30bd90eae34216e1de19ffcd3ef6ee2d2e2c469e0aeb83a2a78101"

const toml = (lines: ReadonlyArray<string>) => lines.join("\n") + "\n"
/** The `ConfigError` a TOML document (given line by line) must fail with. */
const tomlError = (...lines: ReadonlyArray<string>) => Effect.flip(parseConfigToml(toml(lines)))
/** As `tomlError`, after `[transport]` and `node_id = 1`. */
const transportError = (...lines: ReadonlyArray<string>) => tomlError("[transport]", "node_id = 1", ...lines)

/** The issue paths of a failed decode. */
const paths = (e: ConfigError) => e.issues.map((i) => i.path)

describe("config: defaults", () => {
  it.effect("a minimal config decodes with every default filled in", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(toml(["[transport]", "node_id = 1"]))
      expect(c).toEqual({
        mode: "iroh",
        node_id: 1,
        cluster_id: "default",
        enabled: true,
        bind_address: "0.0.0.0:0",
        max_frame_bytes: 4 * 1024 * 1024,
        iroh_config: {
          enabled: true,
          bind_address: "0.0.0.0:0",
          relay_mode: { _tag: "disabled" },
          connect_timeout_ms: 5000,
          worker_thread: false,
          binding_thread_policy: "batch"
        },
        grpc_config: {
          enabled: true,
          bind_address: "0.0.0.0:0",
          max_message_bytes: 4 * 1024 * 1024,
          connect_timeout_ms: 5000
        },
        strategy: {
          raft_transport: { _tag: "always_iroh" },
          fallback_to_grpc: true,
          probe_interval_ms: 250,
          probe_timeout_ms: 1000,
          probe_failures: 3,
          dark_after_ms: 200,
          recovery_hold_down_ms: 1000,
          class_routes: {}
        },
        batching: {
          max_batch: 400,
          max_batch_bytes: 65536,
          max_linger_ms: 10,
          max_age_ms: 30000,
          snapshot_chunk_bytes: 4096,
          iroh_snapshot_bytes_per_sec: 5_000_000,
          grpc_snapshot_bytes_per_sec: 0,
          iroh_snapshot_election_bytes_per_sec: 2_000_000,
          grpc_snapshot_election_bytes_per_sec: 2_000_000,
          election_window_ms: 1000,
          max_snapshot_bytes: 1024 * 1024 * 1024
        },
        compression: {
          algorithm: "zstd",
          level: 1,
          min_batch_bytes: 4096,
          min_saving: 0.35,
          classes: ["append", "snapshot"],
          snapshot_chunk_bytes: 16384
        },
        queues: {
          election: { capacity: 256, overflow: "drop_oldest" },
          heartbeat: { capacity: 1024, overflow: "drop_oldest" },
          append: { capacity: 8192, overflow: "drop_newest" },
          snapshot: { capacity: 64, overflow: "drop_newest" },
          inbound_capacity: 8192
        },
        reconnect: { initial_backoff_ms: 50, max_backoff_ms: 5000, jitter: 0.2 },
        limits: {
          max_connections: 256,
          max_connections_per_peer: 2,
          max_streams_per_connection: 5,
          handshake_timeout_ms: 5000,
          idle_timeout_ms: 60_000,
          grpc_max_connection_age_ms: 0,
          max_batch_messages: 1024,
          max_message_entries: 4096,
          max_batch_entries: 65_536,
          max_snapshot_receive_bytes: 1024 * 1024 * 1024,
          refusal_log_interval_ms: 10_000
        },
        peers: []
      })
      // Optional fields without a default stay absent.
      expect("home_relay" in c).toBe(false)
      expect("metrics_address" in c).toBe(false)
      expect("token" in c.grpc_config).toBe(false)
      expect("tls" in c.grpc_config).toBe(false)
    }))

  it.effect("other top-level tables are ignored", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml(["[raft]", "election_tick = 10", "[http]", "port = 8080", "[transport]", "node_id = 7"])
      )
      expect(c.node_id).toBe(7)
    }))

  it.effect("mode grpc defaults the strategy to always_grpc", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(toml(["[transport]", "node_id = 1", "mode = \"grpc\""]))
      expect(c.strategy.raft_transport).toEqual({ _tag: "always_grpc" })
      const d = yield* parseConfigToml(toml(["[transport]", "node_id = 1", "mode = \"dual\""]))
      expect(d.strategy.raft_transport).toEqual({ _tag: "always_iroh" })
    }))

  it.effect("a queue table given partially keeps that class's other default", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "[transport.queues]",
          "append = { capacity = 10 }",
          "heartbeat = { overflow = \"drop_newest\" }"
        ])
      )
      expect(c.queues.append).toEqual({ capacity: 10, overflow: "drop_newest" })
      expect(c.queues.heartbeat).toEqual({ capacity: 1024, overflow: "drop_newest" })
      expect(queueConfigFor(c, 0)).toEqual({ capacity: 256, overflow: "drop_oldest" })
      expect(queueConfigFor(c, 1)).toBe(c.queues.heartbeat)
      expect(queueConfigFor(c, 2)).toBe(c.queues.append)
      expect(queueConfigFor(c, 3)).toEqual({ capacity: 64, overflow: "drop_newest" })
    }))
})

describe("config: value forms", () => {
  it.effect("raft_transport string forms", () =>
    Effect.gen(function*() {
      const iroh = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "[transport.strategy]", "raft_transport = \"always_iroh\""])
      )
      expect(iroh.strategy.raft_transport).toEqual({ _tag: "always_iroh" })
      const grpc = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "mode = \"dual\"", "[transport.strategy]", "raft_transport = \"always_grpc\""])
      )
      expect(grpc.strategy.raft_transport).toEqual({ _tag: "always_grpc" })
      const adaptive = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "mode = \"dual\"", "[transport.strategy]", "raft_transport = \"adaptive\""])
      )
      expect(adaptive.strategy.raft_transport).toEqual({ _tag: "adaptive", latency_threshold_ms: 50, hysteresis: 0.2 })
    }))

  it.effect("raft_transport table form, with and without parameters", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "mode = \"dual\"",
          "[transport.strategy]",
          "raft_transport = { adaptive = { latency_threshold_ms = 25 } }"
        ])
      )
      expect(c.strategy.raft_transport).toEqual({ _tag: "adaptive", latency_threshold_ms: 25, hysteresis: 0.2 })
      const d = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "mode = \"dual\"",
          "[transport.strategy.raft_transport.adaptive]",
          "hysteresis = 0.5"
        ])
      )
      expect(d.strategy.raft_transport).toEqual({ _tag: "adaptive", latency_threshold_ms: 50, hysteresis: 0.5 })
      const e = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "mode = \"dual\"", "[transport.strategy]", "raft_transport = { adaptive = {} }"])
      )
      expect(e.strategy.raft_transport).toEqual({ _tag: "adaptive", latency_threshold_ms: 50, hysteresis: 0.2 })
    }))

  it.effect("class_routes keeps only the given keys", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "mode = \"dual\"", "[transport.strategy.class_routes]", "snapshot = \"grpc\""])
      )
      expect(c.strategy.class_routes).toEqual({ snapshot: "grpc" })
      expect(Object.keys(c.strategy.class_routes)).toEqual(["snapshot"])
    }))

  it.effect("relay_mode forms", () =>
    Effect.gen(function*() {
      const relay = (value: string) =>
        parseConfigToml(toml(["[transport]", "node_id = 1", "[transport.iroh_config]", `relay_mode = ${value}`])).pipe(
          Effect.map((c) => c.iroh_config.relay_mode)
        )
      expect(yield* relay("\"disabled\"")).toEqual({ _tag: "disabled" })
      expect(yield* relay("\"default\"")).toEqual({ _tag: "default" })
      expect(yield* relay("{ custom = [\"https://r1.example\", \"https://r2.example\"] }")).toEqual({
        _tag: "custom",
        urls: ["https://r1.example", "https://r2.example"]
      })
      const empty = yield* Effect.flip(relay("{ custom = [] }"))
      expect(empty.path).toBe("transport.iroh_config.relay_mode.custom")
      const bad = yield* Effect.flip(relay("\"sometimes\""))
      expect(bad.path).toBe("transport.iroh_config.relay_mode")
    }))

  it.effect("home_relay is shorthand for a custom relay_mode", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "home_relay = \"https://relay.example\""])
      )
      expect(c.home_relay).toBe("https://relay.example")
      expect(c.iroh_config.relay_mode).toEqual({ _tag: "custom", urls: ["https://relay.example"] })
      const both = yield* transportError(
        "home_relay = \"https://relay.example\"",
        "[transport.iroh_config]",
        "relay_mode = \"default\""
      )
      expect(both.path).toBe("transport.home_relay")
    }))

  it.effect("listener bind_address falls back to transport.bind_address", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "bind_address = \"10.1.2.3:0\"",
          "[transport.grpc_config]",
          "bind_address = \"[::]:50051\""
        ])
      )
      expect(c.iroh_config.bind_address).toBe("10.1.2.3:0")
      expect(c.grpc_config.bind_address).toBe("[::]:50051")
      const d = yield* parseConfigToml(
        toml(["[transport]", "node_id = 1", "[transport.iroh_config]", "bind_address = \"127.0.0.1:7001\""])
      )
      expect(d.iroh_config.bind_address).toBe("127.0.0.1:7001")
      expect(d.grpc_config.bind_address).toBe("0.0.0.0:0")
    }))

  it.effect("the gRPC token is decoded as Redacted and TLS keeps its fields", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "mode = \"grpc\"",
          "[transport.grpc_config]",
          "token = \"hunter2\"",
          "[transport.grpc_config.tls]",
          "cert_file = \"n.crt\"",
          "key_file = \"n.key\""
        ])
      )
      const token = c.grpc_config.token
      expect(token !== undefined && Redacted.isRedacted(token)).toBe(true)
      expect(token === undefined ? undefined : Redacted.value(token)).toBe("hunter2")
      expect(String(token)).not.toContain("hunter2")
      expect(c.grpc_config.tls).toEqual({ cert_file: "n.crt", key_file: "n.key", require_client_cert: false, bind_identity: false })
    }))

  it.effect("peers: endpoint ids, tickets, and this node's own entry", () =>
    Effect.gen(function*() {
      const c = yield* parseConfigToml(
        toml([
          "[transport]",
          "node_id = 1",
          "mode = \"dual\"",
          "[[transport.peers]]",
          "id = 1",
          "[[transport.peers]]",
          "id = 2",
          `iroh_endpoint_id = "${ID_A}"`,
          "iroh_addresses = [\"127.0.0.1:7002\", \"[::1]:7002\"]",
          "grpc_address = \"localhost:50052\"",
          "[[transport.peers]]",
          "id = 3",
          "iroh_ticket = \"endpointadpi4pypwprd3kmjeqteuef6i7rc55ivqokmuw3p4meikw5yuezfaaa\"",
          "grpc_address = \"10.0.0.3:50053\""
        ])
      )
      expect(c.peers).toEqual([
        { id: 1, iroh_addresses: [] },
        { id: 2, iroh_endpoint_id: ID_A, iroh_addresses: ["127.0.0.1:7002", "[::1]:7002"], grpc_address: "localhost:50052" },
        { id: 3, iroh_addresses: [], iroh_ticket: "endpointadpi4pypwprd3kmjeqteuef6i7rc55ivqokmuw3p4meikw5yuezfaaa", grpc_address: "10.0.0.3:50053" }
      ])
    }))

  it.effect("decodeTransportConfig / makeConfig accept configs built in code", () =>
    Effect.gen(function*() {
      const c = yield* makeConfig({
        node_id: 3,
        mode: "grpc",
        grpc_config: { token: "t" },
        peers: [{ id: 1, grpc_address: "127.0.0.1:50051" }]
      })
      expect(c.mode).toBe("grpc")
      expect(c.strategy.raft_transport).toEqual({ _tag: "always_grpc" })
      expect(c.peers[0]?.grpc_address).toBe("127.0.0.1:50051")
      // `undefined` counts as absent in code.
      const d = yield* decodeTransportConfig({ node_id: 1, home_relay: undefined, batching: { max_batch: undefined } })
      expect(d.batching.max_batch).toBe(400)
      const e = yield* Effect.flip(decodeTransportConfig({ node_id: 0 }))
      expect(e.path).toBe("transport.node_id")
    }))
})

describe("config: errors name the field", () => {
  it.effect("bad mode", () =>
    Effect.gen(function*() {
      const e = yield* transportError("mode = \"quic\"")
      expect(e).toBeInstanceOf(ConfigError)
      expect(e._tag).toBe("ConfigError")
      expect(e.path).toBe("transport.mode")
      expect(e.message).toBe("transport.mode: Expected \"grpc\" | \"iroh\" | \"dual\", got \"quic\"")
    }))

  it.effect("max_batch = 0", () =>
    Effect.gen(function*() {
      const e = yield* transportError("[transport.batching]", "max_batch = 0")
      expect(e.path).toBe("transport.batching.max_batch")
      expect(e.message).toBe("transport.batching.max_batch: Expected an integer greater than or equal to 1, got 0")
      expect(e.issues).toEqual([
        { path: "transport.batching.max_batch", message: "Expected an integer greater than or equal to 1, got 0" }
      ])
    }))

  it.effect("missing node_id", () =>
    Effect.gen(function*() {
      const e = yield* tomlError("[transport]", "mode = \"iroh\"")
      expect(e.path).toBe("transport.node_id")
    }))

  it.effect("missing [transport] table", () =>
    Effect.gen(function*() {
      const e = yield* tomlError("[raft]", "x = 1")
      expect(e.path).toBe("transport")
    }))

  it.effect("a peer without iroh_endpoint_id in iroh mode", () =>
    Effect.gen(function*() {
      const e = yield* transportError(
        "[[transport.peers]]",
        "id = 2",
        `iroh_endpoint_id = "${ID_A}"`,
        "[[transport.peers]]",
        "id = 3",
        "grpc_address = \"127.0.0.1:50053\""
      )
      expect(e.path).toBe("transport.peers[1]")
      expect(e.message).toContain("iroh_endpoint_id")
    }))

  it.effect("a peer without grpc_address in dual mode", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(
        decodeTransportConfig({ node_id: 1, mode: "dual", peers: [{ id: 2, iroh_endpoint_id: ID_A }] })
      )
      expect(e.path).toBe("transport.peers[0]")
      expect(e.message).toContain("grpc_address")
    }))

  it.effect("duplicate peer id", () =>
    Effect.gen(function*() {
      const e = yield* transportError(
        "[[transport.peers]]",
        "id = 2",
        `iroh_endpoint_id = "${ID_A}"`,
        "[[transport.peers]]",
        "id = 2",
        `iroh_endpoint_id = "${ID_B}"`
      )
      expect(e.path).toBe("transport.peers[1].id")
      expect(e.message).toContain("Duplicate peer id 2")
    }))

  it.effect("bad endpoint id format", () =>
    Effect.gen(function*() {
      for (const bad of ["xyz", ID_A.toUpperCase(), ID_A.slice(1)]) {
        const e = yield* transportError("[[transport.peers]]", "id = 2", `iroh_endpoint_id = "${bad}"`)
        expect(e.path).toBe("transport.peers[0].iroh_endpoint_id")
        expect(e.message).toContain("64 lowercase hex")
      }
    }))

  it.effect("bad addresses", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(
        decodeTransportConfig({
          node_id: 1,
          mode: "grpc",
          bind_address: "0.0.0.0:99999",
          peers: [{ id: 2, grpc_address: "no-port", iroh_addresses: ["example.com:7001"] }]
        })
      )
      expect(paths(e)).toEqual([
        "transport.bind_address",
        "transport.peers[0].iroh_addresses[0]",
        "transport.peers[0].grpc_address"
      ])
    }))

  it.effect("a wrong type deep in a table", () =>
    Effect.gen(function*() {
      const e = yield* transportError("[transport.queues]", "append = { capacity = \"x\" }")
      expect(e.path).toBe("transport.queues.append.capacity")
      expect(e.message).toBe("transport.queues.append.capacity: Expected number, got \"x\"")
    }))

  it.effect("a binding thread policy the transport does not know", () =>
    Effect.gen(function*() {
      const e = yield* transportError("[transport.iroh_config]", "binding_thread_policy = \"fifo\"")
      expect(e.path).toBe("transport.iroh_config.binding_thread_policy")
    }))

  it.effect("all issues are collected, unknown keys included", () =>
    Effect.gen(function*() {
      const e = yield* transportError(
        "mode = \"quic\"",
        "[transport.batching]",
        "max_batch = 0",
        "max_bach = 10",
        "[transport.reconnect]",
        "jitter = 1.5"
      )
      expect(paths(e)).toEqual([
        "transport.mode",
        "transport.batching.max_bach",
        "transport.batching.max_batch",
        "transport.reconnect.jitter"
      ])
      expect(e.message.split("\n")).toHaveLength(4)
      expect(e.path).toBe("transport.mode")
    }))

  it.effect("a route the mode cannot take", () =>
    Effect.gen(function*() {
      const always = yield* transportError("[transport.strategy]", "raft_transport = \"always_grpc\"")
      expect(always.path).toBe("transport.strategy.raft_transport")
      const route = yield* transportError("[transport.strategy.class_routes]", "snapshot = \"grpc\"")
      expect(route.path).toBe("transport.strategy.class_routes.snapshot")
      const grpc = yield* transportError(
        "mode = \"grpc\"",
        "[transport.strategy.class_routes]",
        "election = \"iroh\""
      )
      expect(grpc.path).toBe("transport.strategy.class_routes.election")
      const adaptive = yield* transportError("[transport.strategy]", "raft_transport = \"adaptive\"")
      expect(adaptive.path).toBe("transport.strategy.raft_transport")
    }))

  it.effect("TOML syntax error", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(parseConfigToml("[transport]\nnode_id = 1\nmode = \n"))
      expect(e.path).toBe("<toml>")
      expect(e.message).toMatch(/^<toml>: line 3, column \d+: /)
    }))
})

describe("config: files", () => {
  it.effect("loads a TOML file", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "raft-transport-config-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true }))
      )
      const file = join(dir, "node1.toml")
      yield* Effect.promise(() =>
        writeFile(file, toml(["[raft]", "id = 1", "", "[transport]", "node_id = 1", "mode = \"grpc\"", "cluster_id = \"t\""]))
      )
      const c = yield* loadConfigFile(file)
      expect(c.node_id).toBe(1)
      expect(c.mode).toBe("grpc")
      expect(c.cluster_id).toBe("t")
    }))

  it.effect("a missing file is a ConfigError naming the file", () =>
    Effect.gen(function*() {
      const file = join(tmpdir(), "raft-transport-does-not-exist", "nope.toml")
      const e = yield* Effect.flip(loadConfigFile(file))
      expect(e._tag).toBe("ConfigError")
      expect(e.path).toBe("<file>")
      expect(e.message).toContain(file)
    }))
})

// -----------------------------------------------------------------------------
// Documentation examples
// -----------------------------------------------------------------------------

const repoFile = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url))

/** Every ```toml fenced block of a markdown file, except those starting with `# not-a-config`. */
const tomlBlocks = (markdown: string): Array<string> =>
  [...markdown.matchAll(/^```toml[^\S\n]*\n([\s\S]*?)^```/gm)]
    .map((m) => m[1] ?? "")
    .filter((block) => block.split("\n")[0]?.trim() !== "# not-a-config")

const checkBlocks = (name: string) =>
  Effect.gen(function*() {
    const text = yield* Effect.promise(() => readFile(repoFile(name), "utf8"))
    const blocks = tomlBlocks(text)
    for (const [i, block] of blocks.entries()) {
      yield* parseConfigToml(block).pipe(
        Effect.mapError((e) => new Error(`${name}, toml block #${i + 1}:\n${e.message}\n---\n${block}`))
      )
    }
    return blocks
  })

describe("config: documentation examples decode", () => {
  it.effect("docs/configuration.md", () =>
    Effect.gen(function*() {
      const blocks = yield* checkBlocks("docs/configuration.md")
      expect(blocks.length).toBeGreaterThanOrEqual(4)
    }))

  it.effect("README.md and docs/transports.md", () =>
    Effect.gen(function*() {
      yield* checkBlocks("README.md")
      const blocks = yield* checkBlocks("docs/transports.md")
      expect(blocks.length).toBeGreaterThanOrEqual(1)
    }))

  it.effect("the 'every field with its default' example equals the minimal config", () =>
    Effect.gen(function*() {
      const text = yield* Effect.promise(() => readFile(repoFile("docs/configuration.md"), "utf8"))
      const full = tomlBlocks(text).find((b) => b.includes("max_snapshot_bytes = 1073741824"))
      expect(full).toBeDefined()
      const a = yield* parseConfigToml(full ?? "")
      const b = yield* parseConfigToml(toml(["[transport]", "node_id = 1"]))
      expect(a).toEqual(b)
    }))
})
