/**
 * A `RaftTransport` node on loopback for the network benchmarks, built as the tests build
 * theirs (test/support/cluster.ts): relays disabled, bound to 127.0.0.1:0, the key file in a
 * directory the orchestrator made. Iroh mode unless a mode is given ("grpc": gRPC only,
 * "dual": both, as in test/dual.test.ts). Apart from that and the tests' short reconnect
 * back-off, everything is the shipped defaults, so the numbers describe the transport as
 * configured out of the box.
 */
import { Effect, type Scope } from "effect"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import type { RaftMessage } from "../../src/message/types.ts"
import { decodeTransportConfig } from "../../src/config/load.ts"
import type { TransportConfig } from "../../src/config/schema.ts"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"
import type { ParentLink, PeerMsg, ReadyMsg } from "./ipc.ts"
import { epochNow } from "./probe.ts"

/** Config tables to set on top of the defaults, e.g. `{ batching: { snapshot_chunk_bytes: 4096 } }`. */
export type ConfigOverrides = Readonly<Record<string, unknown>>

/** Which transports a benchmark node runs (`mode` in the config). */
export type BenchMode = "iroh" | "grpc" | "dual"

export const parseMode = (arg: string | undefined): BenchMode => {
  if (arg === undefined || arg === "") return "iroh"
  if (arg === "iroh" || arg === "grpc" || arg === "dual") return arg
  throw new Error(`unknown mode ${JSON.stringify(arg)} (expected iroh, grpc or dual)`)
}

/** The overrides that switch a node to `mode`: the gRPC server on loopback, port 0. */
export const modeOverrides = (mode: BenchMode): ConfigOverrides =>
  mode === "iroh" ? {} : { mode, grpc_config: { bind_address: "127.0.0.1:0" } }

const workerOverride = process.env["BENCH_IROH_WORKER"]

export const loopbackConfig = (
  nodeId: number,
  keyDir: string,
  overrides: ConfigOverrides = {}
): Effect.Effect<TransportConfig, Error> =>
  decodeTransportConfig({
    mode: "iroh",
    node_id: nodeId,
    bind_address: "127.0.0.1:0",
    iroh_config: {
      key_file: join(keyDir, `node${nodeId}.key`),
      relay_mode: "disabled",
      // BENCH_IROH_WORKER=1 or 0 overrides `worker_thread`, to compare the two hosts.
      ...(workerOverride === undefined ? {} : { worker_thread: workerOverride === "1" })
    },
    reconnect: { initial_backoff_ms: 20, max_backoff_ms: 500 },
    ...(process.env["BENCH_MAX_BATCH"] === undefined ? {} : { batching: { max_batch: Number(process.env["BENCH_MAX_BATCH"]) } }),
    ...overrides
  }).pipe(Effect.mapError((e) => new Error(e.message)))

/** Overrides travel to peer processes as one JSON argument. */
export const parseOverrides = (arg: string | undefined): ConfigOverrides =>
  arg === undefined || arg === "" ? {} : (JSON.parse(arg) as ConfigOverrides)

export interface LoopbackNode {
  readonly transport: RaftTransportService
  readonly config: TransportConfig
  /** The peer-table entry others need to reach this node, as `addressOf` makes it in the tests. */
  readonly address: PeerAddress
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
    const local = transport.localAddress()
    if (local.iroh === undefined && local.grpc === undefined) {
      return yield* Effect.fail(new Error("the transport has neither an Iroh nor a gRPC address"))
    }
    return {
      transport,
      config,
      address: {
        id: nodeId,
        irohEndpointId: local.iroh?.endpointId,
        irohAddresses: local.iroh?.addresses ?? [],
        grpcAddress: local.grpc?.address
      }
    }
  })

/**
 * The handshake every peer-process role starts with: announce this node, learn the other
 * side's address from the orchestrator, add it as a peer, confirm.
 */
export const meetPeer = (parent: ParentLink, node: LoopbackNode): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    yield* parent.send({ type: "ready", address: node.address } as ReadyMsg)
    const { address } = yield* parent.next<PeerMsg>("peer")
    yield* node.transport.addPeer(address)
    yield* parent.send({ type: "peer" })
  })

/** Forks the role's receive loop: every batch the node delivers, with the time it arrived. */
export const onReceived = <E>(
  node: LoopbackNode,
  handle: (batch: ReadonlyArray<RaftMessage>, receivedAt: number) => Effect.Effect<void, E> | void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(Effect.forkScoped(
    Effect.gen(function*() {
      while (true) {
        const batch = yield* node.transport.receiveBatch(1000)
        const result = handle(batch, epochNow())
        if (result !== undefined) yield* result
      }
    }),
    { startImmediately: true }
  ))
