/**
 * A `RaftTransport` node on loopback for the network benchmarks, built as the tests build
 * theirs (test/support/cluster.ts): Iroh mode, relays disabled, bound to 127.0.0.1:0, the
 * key file in a directory the orchestrator made. Everything else is the shipped defaults,
 * so the numbers describe the transport as configured out of the box.
 */
import { Effect, type Scope } from "effect"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { decodeTransportConfig } from "../src/config/load.ts"
import type { TransportConfig } from "../src/config/schema.ts"
import { makeRaftTransport, type RaftTransportService } from "../src/transport/service.ts"
import type { NodeAddress } from "./ipc.ts"

/** Config tables to set on top of the defaults, e.g. `{ batching: { snapshot_chunk_bytes: 4096 } }`. */
export type ConfigOverrides = Readonly<Record<string, unknown>>

export const loopbackConfig = (
  nodeId: number,
  keyDir: string,
  overrides: ConfigOverrides = {}
): Effect.Effect<TransportConfig, Error> =>
  decodeTransportConfig({
    mode: "iroh",
    node_id: nodeId,
    bind_address: "127.0.0.1:0",
    iroh_config: { key_file: join(keyDir, `node${nodeId}.key`), relay_mode: "disabled" },
    reconnect: { initial_backoff_ms: 20, max_backoff_ms: 500 },
    ...overrides
  }).pipe(Effect.mapError((e) => new Error(e.message)))

/** Overrides travel to peer processes as one JSON argument. */
export const parseOverrides = (arg: string | undefined): ConfigOverrides =>
  arg === undefined || arg === "" ? {} : (JSON.parse(arg) as ConfigOverrides)

export interface LoopbackNode {
  readonly transport: RaftTransportService
  readonly config: TransportConfig
  readonly address: NodeAddress
}

export const startLoopbackNode = (
  nodeId: number,
  keyDir: string,
  overrides: ConfigOverrides = {}
): Effect.Effect<LoopbackNode, Error, Scope.Scope> =>
  Effect.gen(function*() {
    yield* Effect.sync(() => mkdirSync(keyDir, { recursive: true }))
    const config = yield* loopbackConfig(nodeId, keyDir, overrides)
    const transport = yield* makeRaftTransport(config).pipe(Effect.mapError((e) => new Error(e.message)))
    const iroh = transport.localAddress().iroh
    if (iroh === undefined) return yield* Effect.fail(new Error("the transport has no Iroh address"))
    return { transport, config, address: { nodeId, endpointId: iroh.endpointId, addresses: iroh.addresses } }
  })

/** Tells the node about its peer, as `introduce` does in the tests. */
export const addPeer = (node: LoopbackNode, peer: NodeAddress): Effect.Effect<void> =>
  node.transport.addPeer({ id: peer.nodeId, irohEndpointId: peer.endpointId, irohAddresses: peer.addresses })
