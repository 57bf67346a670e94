/**
 * The Raft message model, mirroring `raft.Message` in `proto/raft.proto` (etcd/raft-rs
 * `eraftpb`). Numbers are JS numbers: terms, indexes and ids stay below 2^53 in any cluster
 * that will ever run, and keeping them as numbers avoids a `Long` allocation per field on
 * the hot path.
 */
export const MessageType = {
  Unspecified: 0,
  Append: 1,
  AppendResponse: 2,
  RequestVote: 3,
  RequestVoteResponse: 4,
  RequestPreVote: 5,
  RequestPreVoteResponse: 6,
  Heartbeat: 7,
  HeartbeatResponse: 8,
  Snapshot: 9,
  TimeoutNow: 10,
  Propose: 11,
  ReadIndex: 12,
  ReadIndexResponse: 13
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/**
 * A message whose receiver does not write back to its sender because of it: a heartbeat's
 * answer (the leader's next write to that follower is the next heartbeat). Every other message
 * is a request its receiver answers, or an answer that moves the receiver to write again (an
 * append's answer commits entries and frees the next append; a vote's answer makes a leader).
 */
export const leadsToNoWrite = (type: MessageType): boolean => type === MessageType.HeartbeatResponse

/** The kind of a log entry: a normal command or a membership change. */
export const EntryType = { Normal: 0, ConfChange: 1 } as const
export type EntryType = (typeof EntryType)[keyof typeof EntryType]

/** A Raft log entry: `data` is the command a `StateMachine` applies. */
export interface Entry {
  readonly entryType?: EntryType
  readonly term: number
  readonly index: number
  readonly data?: Uint8Array
  readonly context?: Uint8Array
}

/** Cluster membership recorded in a snapshot. */
export interface ConfState {
  readonly voters: ReadonlyArray<number>
  readonly learners?: ReadonlyArray<number>
}

/** The log position (and membership) a snapshot covers. */
export interface SnapshotMetadata {
  readonly confState?: ConfState
  readonly index: number
  readonly term: number
}

/** A state machine snapshot; the transport chunks it on the wire and delivers it whole. */
export interface Snapshot {
  readonly data: Uint8Array
  readonly metadata?: SnapshotMetadata
  /** Chunking fields, set by the transport; a delivered snapshot is always whole. */
  readonly offset?: number
  readonly totalSize?: number
  readonly done?: boolean
  readonly transferId?: number
}

/** Raft node ids are unsigned integers, as in etcd/raft and raft-rs. */
export type NodeId = number

/**
 * One Raft message (`raft.Message` in `proto/raft.proto`). `msgType` decides its priority
 * class (`classify`); `from` must be the sending node: receivers drop a message whose `from`
 * disagrees with the connection's authenticated identity.
 */
export interface RaftMessage {
  readonly msgType: MessageType
  readonly to: NodeId
  readonly from: NodeId
  readonly term?: number
  readonly logTerm?: number
  readonly index?: number
  readonly entries?: ReadonlyArray<Entry>
  readonly commit?: number
  readonly snapshot?: Snapshot
  readonly reject?: boolean
  readonly rejectHint?: number
  readonly context?: Uint8Array
  readonly requestSnapshot?: number
}

const typeNames: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, value]) => [value, name])
)

/** The name of a message type (`"Append"`), for logs; `Unknown(n)` for a number outside `MessageType`. */
export const messageTypeName = (type: number): string => typeNames[type] ?? `Unknown(${type})`
