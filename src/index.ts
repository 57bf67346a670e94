/**
 * raft-transport: carries Raft messages between cluster nodes over Iroh (QUIC) and gRPC,
 * with four priority classes, batching, typed drops and metrics. This file is the whole
 * public API.
 */

// The service
export { type LocalAddress, RaftTransport, type RaftTransportService } from "./domain/raft-transport.ts"
export { layerConfig, layerTomlFile } from "./transport/layer.ts"
export { makeRaftTransport } from "./transport/service.ts"
export type { TransportEvent } from "./domain/events.ts"
export type { PeerAddress } from "./domain/peer-table.ts"
export type { ConnectorState, LinkStatus, PeerStatus } from "./domain/peer-status.ts"

// Errors
export {
  ConnectFailed,
  type DropReason,
  MessageDropped,
  PeerUnknown,
  StreamFailed,
  type TransportKind,
  TransportStartFailed
} from "./domain/errors.ts"
export { BadPreamble, DecodeFailed, FrameTooLarge } from "./message/errors.ts"

// Messages
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

// Identity
export { endpointIdOf, IdentityError, loadOrCreateSecretKey } from "./iroh/identity.ts"

// Metrics (Effect `Metric`s; see docs/metrics.md metrics section)
export * as TransportMetrics from "./metrics/metrics.ts"

// The reference Raft manager (election with pre-vote, replication, snapshots, read index)
// and its key-value state machine
export {
  type ApplyResult,
  decodeRaftConfig,
  FileStorage,
  KvStateMachine,
  makeMemoryStorage,
  makeRaftManager,
  MemoryStorage,
  NoQuorum,
  NotLeader,
  parseRaftConfigToml,
  ProposalDropped,
  RaftConfig,
  RaftManager,
  type RaftManagerService,
  type RaftEvent,
  type RaftStatus,
  type RaftStorage,
  type Role,
  type StateMachine,
  StorageError,
  storageFor
} from "./raft/index.ts"
