import { Data } from "effect"
import type { NodeId } from "../message/types.ts"
import { describeCause } from "../domain/errors.ts"

/** This node cannot serve the request: it is not the leader and knows of none to forward to. */
export class NotLeader extends Data.TaggedError("NotLeader")<{
  readonly node: NodeId
  readonly term: number
  /** The leader this node believes in, if any: clients retry there. */
  readonly leader: NodeId | undefined
}> {
  override get message() {
    return this.leader === undefined
      ? `node ${this.node} is not the leader and knows no leader (term ${this.term})`
      : `node ${this.node} is not the leader; the leader is node ${this.leader} (term ${this.term})`
  }
}

/**
 * A proposal did not commit (or a read could not be confirmed) in time: a majority of the
 * voters did not answer. `reachable` counts the voters (this node included) this node heard
 * from within the last election timeout.
 */
export class NoQuorum extends Data.TaggedError("NoQuorum")<{
  readonly node: NodeId
  readonly term: number
  readonly operation: "propose" | "read"
  readonly timeoutMs: number
  readonly reachable: number
  readonly voters: number
  readonly detail?: string
}> {
  override get message() {
    const what = this.operation === "propose" ? "commit" : "confirm the read"
    const detail = this.detail === undefined ? "" : ` (${this.detail})`
    return `no quorum: could not ${what} within ${this.timeoutMs} ms; ${this.reachable} of ${this.voters} voters reachable${detail}`
  }
}

/** The proposal is known not to have been (or not to be going to be) applied. */
export class ProposalDropped extends Data.TaggedError("ProposalDropped")<{
  readonly node: NodeId
  readonly term: number
  readonly reason: string
}> {
  override get message() {
    return `proposal dropped on node ${this.node} (term ${this.term}): ${this.reason}`
  }
}

/** Reading or writing the Raft log, hard state or snapshot failed. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly operation: string
  readonly path: string
  readonly cause: unknown
}> {
  override get message() {
    return `raft storage ${this.operation} failed (${this.path}): ${describeCause(this.cause)}`
  }
}

/**
 * The stored snapshot does not restore into the state machine (it was written by another
 * version, or damaged in a way its checksum did not catch). Restarting cannot help: the node
 * needs an operator, who recovers it as docs/node.md ("A snapshot that does not restore") says.
 */
export class SnapshotUnusable extends Data.TaggedError("SnapshotUnusable")<{
  /** The snapshot file, or a description of where the storage keeps it. */
  readonly path: string
  readonly index: number
  readonly term: number
  readonly reason: string
}> {
  override get message() {
    return `the stored snapshot ${this.path} (index ${this.index}, term ${this.term}) does not restore: ${this.reason}; ` +
      `the node cannot start from it (see "A snapshot that does not restore" in docs/node.md)`
  }
}
