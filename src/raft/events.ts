import type { NodeId } from "../message/types.ts"
import type { ProgressState } from "./progress.ts"

/** A node's role; `pre-candidate` is the pre-vote phase before a real election (thesis §9.6). */
export type Role = "follower" | "pre-candidate" | "candidate" | "leader"

/** What a node reports about itself on `RaftManager.events`. */
export type RaftEvent =
  | { readonly _tag: "RoleChanged"; readonly node: NodeId; readonly role: Role; readonly term: number }
  | { readonly _tag: "LeaderChanged"; readonly node: NodeId; readonly leader: NodeId | undefined; readonly term: number }
  /** A follower replaced its state with the leader's snapshot (§7). */
  | {
    readonly _tag: "SnapshotInstalled"
    readonly node: NodeId
    readonly index: number
    readonly term: number
    readonly from: NodeId
    readonly bytes: number
  }
  /** This node snapshotted its state machine and compacted its log (§7). */
  | { readonly _tag: "SnapshotTaken"; readonly node: NodeId; readonly index: number; readonly term: number; readonly bytes: number }

/** The leader's view of one follower's replication. */
export interface PeerProgress {
  readonly id: NodeId
  readonly matchIndex: number
  readonly nextIndex: number
  readonly inflight: number
  readonly state: ProgressState
}

/** A node's Raft state, as `status` reports it. */
export interface RaftStatus {
  readonly id: NodeId
  readonly role: Role
  readonly term: number
  readonly vote: NodeId | undefined
  readonly leader: NodeId | undefined
  readonly commitIndex: number
  readonly appliedIndex: number
  readonly lastLogIndex: number
  readonly snapshotIndex: number
  readonly voters: ReadonlyArray<NodeId>
  /** Replication progress of every other voter; empty unless this node is the leader. */
  readonly peers: ReadonlyArray<PeerProgress>
}
