/**
 * The reference Raft manager: a compact Raft node (leader election with pre-vote, log
 * replication with pipelining, snapshots, read-index reads) with a key-value state machine,
 * running on `RaftTransport`.
 */
export { RaftManager, type RaftManagerService, type ApplyResult, makeRaftManager, storageFor } from "./manager.ts"
export { makeRaftNode, type RaftNode, type RaftNodeOptions, type ProposeError, type ReadError, type RequestOptions } from "./node.ts"
export {
  decodeRaftConfig,
  loadRaftConfigFile,
  parseRaftConfigToml,
  RaftConfig,
  type RaftConfigEncoded,
  SyncPolicy
} from "./config.ts"
export { NoQuorum, NotLeader, ProposalDropped, SnapshotUnusable, StorageError } from "./errors.ts"
export type { PeerProgress, RaftEvent, RaftStatus, Role } from "./events.ts"
export type { ProgressState } from "./progress.ts"
export { type KvCommand, type KvResult, KvStateMachine, decodeKvCommand, encodeKvCommand } from "./kv-state-machine.ts"
export type { SnapshotCapture, StateMachine } from "./state-machine.ts"
export {
  type HardState,
  type PersistedState,
  type RaftStorage,
  type SnapshotRecord,
  type WriteBatch,
  type WriteOptions,
  emptyHardState
} from "./storage.ts"
export { MemoryStorage, makeMemoryStorage } from "./memory-storage.ts"
export { FileStorage } from "./file-storage.ts"
export { RaftCore, type CoreConfig, type Ready } from "./core.ts"
// What a Raft node runs on, without loading a network transport: the service tag (provide it
// with `layerConfig` from `raft-transport`, or `MemoryNetwork` from `raft-transport/testing`)
// and the message types a `StateMachine` sees.
export { RaftTransport, type RaftTransportService } from "../domain/raft-transport.ts"
export type { Entry, NodeId } from "../message/types.ts"
