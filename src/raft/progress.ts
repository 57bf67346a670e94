/**
 * The leader's view of one follower's replication (Figure 2's nextIndex / matchIndex), with the
 * flow control etcd/raft uses on top:
 *
 * - `probe`: we do not know where the follower's log matches ours; send one append at a time
 *   and wait for the answer (resent if nothing comes back within a heartbeat interval).
 * - `replicate`: the follower is in step; pipeline appends, at most `maxInflight`
 *   unacknowledged, advancing `next` optimistically. A pipeline that stops answering for an
 *   election timeout (messages lost) falls back to probing from `match + 1`.
 * - `snapshot`: the follower needs entries we compacted away; a snapshot is on its way and no
 *   appends are sent until it is acknowledged (or times out).
 */
import type { NodeId } from "../message/types.ts"

/** How the leader replicates to a follower: probing for the match point, pipelining, or sending a snapshot. */
export type ProgressState = "probe" | "replicate" | "snapshot"

interface Inflight {
  /** Last index the append carried. */
  readonly last: number
  readonly sentAt: number
}

export class Progress {
  match = 0
  next: number
  state: ProgressState = "probe"
  /** Appends in flight (replicate), oldest first. */
  inflights: Array<Inflight> = []
  /** When the outstanding probe was sent (probe state). */
  probeSentAt: number | undefined = undefined
  pendingSnapshot = 0
  snapshotSentAt = 0
  /** Heard from since the last check-quorum round (§6.2 of the thesis). */
  recentActive = false
  /** The highest commit index a message to this follower has carried. */
  private commitTold = 0
  /** The last entry this follower forwarded as a proposal: it waits to apply it. */
  private waiting = 0

  constructor(readonly id: NodeId, next: number) {
    this.next = next
  }

  /** A message to the follower carried `commit` (as far as its log can take it). */
  toldCommit(commit: number): void {
    if (commit > this.commitTold) this.commitTold = commit
  }

  /** The follower has not been told `commit` yet. */
  untold(commit: number): boolean {
    return this.commitTold < commit
  }

  /** The follower waits for `index` to commit (an entry it forwarded). */
  waitFor(index: number): void {
    if (index > this.waiting) this.waiting = index
  }

  /** The follower waits for an entry it forwarded, and no message has said it committed. */
  awaitsCommit(): boolean {
    return this.waiting > this.commitTold
  }

  /** May another append go out now? */
  canSend(now: number, maxInflight: number, probeRetryMs: number): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSentAt === undefined || now - this.probeSentAt >= probeRetryMs
      case "replicate":
        return this.inflights.length < maxInflight
      case "snapshot":
        return false
    }
  }

  /** An append carrying entries up to `last` (or none: `undefined`) went out. */
  sent(last: number | undefined, now: number): void {
    if (this.state === "probe") {
      this.probeSentAt = now
    } else if (this.state === "replicate" && last !== undefined) {
      this.next = last + 1
      this.inflights.push({ last, sentAt: now })
    }
  }

  /** A successful append response: the follower's log matches ours up to `index`. */
  acknowledge(index: number): boolean {
    this.inflights = this.inflights.filter((f) => f.last > index)
    if (index <= this.match) {
      // An answer to our probe all the same: the next one may go out.
      if (this.state === "probe") this.probeSentAt = undefined
      return false
    }
    this.match = index
    this.next = Math.max(this.next, index + 1)
    if (this.state === "probe" || (this.state === "snapshot" && this.match >= this.pendingSnapshot)) {
      this.becomeReplicate()
    }
    return true
  }

  /**
   * A rejected append for `rejectedIndex` (its prevLogIndex), with the follower's hint. Returns
   * false when the rejection is stale (an answer to an append older than what we know).
   */
  rejected(rejectedIndex: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejectedIndex <= this.match) return false
      this.becomeProbe()
    } else if (this.state === "probe") {
      if (rejectedIndex !== this.next - 1) return false
      // A follower that still holds what it acknowledged accepts a probe at or below its match
      // (Log Matching), so this one lost entries: it was restarted on an emptied log (the
      // recovery in docs/node.md). Probe from what it has, or it would be asked for the same
      // index forever. Lowering `match` never lowers the commit index, it only resends.
      if (hint < this.match) this.match = hint
    } else {
      return false
    }
    this.next = Math.max(this.match + 1, Math.min(rejectedIndex, hint + 1))
    this.probeSentAt = undefined
    return true
  }

  /** Back to finding the match point, from the last index known to match. */
  becomeProbe(): void {
    this.next = this.match + 1
    this.state = "probe"
    this.inflights = []
    this.probeSentAt = undefined
    this.pendingSnapshot = 0
  }

  /**
   * What was in flight to the peer is lost (dropped, link down, snapshot failed): probe from the
   * last known match, but not before a probe interval, as an immediate resend would be lost too.
   */
  lost(now: number): void {
    this.becomeProbe()
    this.probeSentAt = now
  }

  becomeReplicate(): void {
    this.state = "replicate"
    this.next = this.match + 1
    this.inflights = []
    this.probeSentAt = undefined
    this.pendingSnapshot = 0
  }

  becomeSnapshot(index: number, now: number): void {
    this.state = "snapshot"
    this.pendingSnapshot = index
    this.snapshotSentAt = now
    this.inflights = []
    this.probeSentAt = undefined
  }

  /**
   * Lost messages: a pipeline whose oldest append has gone unanswered for `stallMs`, or a
   * snapshot unanswered for `snapshotTimeoutMs`, goes back to probing (resending is safe:
   * followers ignore entries they already hold).
   */
  checkStalled(now: number, stallMs: number, snapshotTimeoutMs: number): boolean {
    const oldest = this.inflights[0]
    if (this.state === "replicate" && oldest !== undefined && now - oldest.sentAt >= stallMs) {
      this.becomeProbe()
      return true
    }
    if (this.state === "snapshot" && now - this.snapshotSentAt >= snapshotTimeoutMs) {
      this.becomeProbe()
      return true
    }
    return false
  }
}
