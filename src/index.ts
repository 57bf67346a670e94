/**
 * raft-transport: carries Raft messages between cluster nodes over Iroh (QUIC) and gRPC,
 * with four priority classes, batching, typed drops and metrics. This file is the whole
 * public API.
 */

// The service
export {
  type LocalAddress,
  makeRaftTransport,
  RaftTransport,
  type RaftTransportService
} from "./transport/service.ts"
export type { TransportEvent } from "./transport/events.ts"
export type { PeerAddress } from "./transport/peer-table.ts"
export type { LinkStatus, PeerStatus } from "./peer/actor.ts"
export type { ConnectorState } from "./peer/connector.ts"

// Errors
export {
  ConnectFailed,
  type DropReason,
  MessageDropped,
  PeerUnknown,
  StreamFailed,
  type TransportKind,
  TransportStartFailed
} from "./transport/errors.ts"
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

// Metrics (Effect `Metric`s; see the README's metrics section)
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
