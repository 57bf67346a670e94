/**
 * Leader bookkeeping for linearizable reads by read index (§6.4 of the paper, §6.4 of the
 * thesis): each request remembers the commit index at the time it arrived and is released once
 * a majority has answered a heartbeat sent after it, which proves this node was still the
 * leader at that point, so no other leader could have committed anything newer.
 *
 * Requests are released in arrival order: a majority answering the heartbeat of a later request
 * also answered after every earlier request arrived (etcd's `readOnly.advance`).
 */
import type { NodeId } from "../message/types.ts"

/** A read request as it arrives. */
export interface ReadAsk {
  /** The request id (heartbeat context), as a map key. */
  readonly key: string
  readonly context: Uint8Array
  /** Who asked: this node for local reads, a follower for forwarded MsgReadIndex. */
  readonly from: NodeId
}

export interface IndexedRead extends ReadAsk {
  /** Commit index when the request arrived: the read waits until applied >= index. */
  readonly index: number
}

interface ReadRequest extends IndexedRead {
  readonly acks: Set<NodeId>
}

export class ReadIndexQueue {
  private queue: Array<ReadRequest> = []

  add(request: IndexedRead, self: NodeId): void {
    this.queue.push({ ...request, acks: new Set([self]) })
  }

  /** The context of the newest request: the next heartbeat round carries it. */
  lastContext(): Uint8Array | undefined {
    return this.queue[this.queue.length - 1]?.context
  }

  /**
   * Records `from`'s heartbeat answer for request `key`; returns the requests released (in
   * order) when that request now has `quorum` acknowledgements.
   */
  acknowledge(key: string, from: NodeId, isQuorum: (acks: ReadonlySet<NodeId>) => boolean): ReadonlyArray<IndexedRead> {
    const at = this.queue.findIndex((r) => r.key === key)
    if (at === -1) return []
    const request = this.queue[at]!
    request.acks.add(from)
    if (!isQuorum(request.acks)) return []
    const released = this.queue.slice(0, at + 1)
    this.queue = this.queue.slice(at + 1)
    return released
  }

  /** Everything pending (the leader stepped down): the caller rejects them. */
  clear(): ReadonlyArray<IndexedRead> {
    const all = this.queue
    this.queue = []
    return all
  }
}
