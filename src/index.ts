/**
 * `raft-transport`: carries Raft messages between cluster nodes over Iroh (QUIC), gRPC, or
 * both with fallback, with four priority classes, batching, typed drops and metrics.
 *
 * The other entry points: `raft-transport/raft` (the reference Raft manager, storage and
 * state machines), `raft-transport/node` (the key-value node process and its HTTP API) and
 * `raft-transport/testing` (an in-memory transport for unit tests).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { layerConfig, MessageType, parseConfigToml, RaftTransport } from "raft-transport"
 *
 * const program = Effect.gen(function*() {
 *   const transport = yield* RaftTransport
 *   yield* transport.send(2, { msgType: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 10 })
 *   return yield* transport.receive
 * })
 * const layer = Layer.unwrap(Effect.map(parseConfigToml(toml), layerConfig))
 * ```
 */

// The service
export { type LocalAddress, RaftTransport, type RaftTransportService } from "./domain/raft-transport.ts"
export { layerConfig, layerTomlFile } from "./transport/layer.ts"
export { makeRaftTransport } from "./transport/service.ts"
export type { TransportEvent } from "./domain/events.ts"
export type { PeerAddress } from "./domain/peer-table.ts"
export type { ConnectorState, LinkStatus, PeerStatus } from "./domain/peer-status.ts"

// The errors a caller can receive: from `send`, `removePeer` and `peerStatus`, from building
// the layer, from reading configuration and key files. Link and stream failures are not among
// them: the transport retries, counts and reports them as events and peer status.
export {
  type DropReason,
  MessageDropped,
  PeerUnknown,
  type TransportKind,
  TransportStartFailed
} from "./domain/errors.ts"

// Messages and their codec
export {
  type ConfState,
  type Entry,
  EntryType,
  MessageType,
  messageTypeName,
  type NodeId,
  type RaftMessage,
  type Snapshot,
  type SnapshotMetadata
} from "./message/types.ts"
export { classify, type ClassName, classNames, PriorityClass } from "./message/priority.ts"
export { decodeMessage, encodeMessage } from "./message/codec.ts"

// Configuration
export {
  ConfigError,
  type ConfigIssue,
  decodeTransportConfig,
  loadConfigFile,
  makeConfig,
  parseConfigToml,
  TransportConfig,
  type TransportConfigEncoded
} from "./config/index.ts"

// Identity (Iroh key files)
export { endpointIdOf, IdentityError, loadOrCreateSecretKey } from "./iroh/identity.ts"

// Metrics: Effect `Metric`s, listed in docs/metrics.md
export * as TransportMetrics from "./metrics/metrics.ts"
