/**
 * One key-value node in the caller's scope: the transport, the Raft manager with its
 * key-value state machine, and the HTTP API, started in that order and stopped in reverse
 * when the scope closes. `raft-node run` is this plus a ready line and signal handling.
 */
import { Effect, type Scope } from "effect"
import type { ConfigError } from "../config/errors.ts"
import type { SnapshotUnusable, StorageError } from "../raft/errors.ts"
import { KvStateMachine } from "../raft/kv-state-machine.ts"
import { makeRaftManager, type RaftManagerService, storageFor } from "../raft/manager.ts"
import type { TransportStartFailed } from "../domain/errors.ts"
import { RaftTransport, type RaftTransportService } from "../domain/raft-transport.ts"
import { makeRaftTransport } from "../transport/service.ts"
import { type HttpApi, type HttpApiStartFailed, maxCommandBytes, serveHttpApi, trackEvents } from "./http-api.ts"
import { httpLimitsOf, type NodeConfig } from "./node-config.ts"

/** A running node: its transport, its Raft manager and the address its HTTP API serves on. */
export interface RunningNode {
  readonly transport: RaftTransportService
  readonly manager: RaftManagerService
  readonly http: HttpApi
}

/**
 * Starts a node from a decoded `NodeConfig` (`loadNodeConfigFile`, `parseNodeConfigToml`).
 * `manager.done` completes when the Raft node stops (a storage failure); closing the scope
 * stops everything.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { loadNodeConfigFile, startNode } from "raft-transport/node"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const node = yield* startNode(yield* loadNodeConfigFile("node1.toml"))
 *   yield* Effect.logInfo(`serving on ${node.http.address}`)
 *   yield* node.manager.done
 * }))
 * ```
 */
export const startNode = (
  config: NodeConfig
): Effect.Effect<
  RunningNode,
  TransportStartFailed | StorageError | SnapshotUnusable | ConfigError | HttpApiStartFailed,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const transport = yield* makeRaftTransport(config.transport)
    const storage = yield* storageFor(config.raft)
    const manager = yield* makeRaftManager(config.raft, new KvStateMachine(), storage).pipe(
      Effect.provideService(RaftTransport, transport)
    )
    const counters = yield* trackEvents(manager)
    const http = yield* serveHttpApi(
      {
        bindAddress: config.http.bind_address,
        requestTimeoutMs: config.http.request_timeout_ms ?? config.raft.proposal_timeout_ms,
        maxCommandBytes: maxCommandBytes(config.transport),
        limits: httpLimitsOf(config.http)
      },
      manager,
      transport,
      counters
    )
    return { transport, manager, http }
  })
