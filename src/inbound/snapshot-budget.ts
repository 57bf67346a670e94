import type { TransportKind } from "../domain/errors.ts"
import type { SnapshotAssembler, SnapshotMemory } from "../message/snapshot-chunks.ts"

/** A transfer abandoned by the budget rather than by its own stream. */
export interface AbandonedTransfer {
  readonly peer: number
  readonly transport: TransportKind
  /** `snapshot_replaced`: its peer started another; `snapshot_stalled`: evicted for memory. */
  readonly reason: "snapshot_replaced" | "snapshot_stalled"
  readonly detail: string
}

/**
 * The node-wide memory of snapshots being received: at most `maxBytes` held by all transfers
 * together, and one transfer per peer (a peer starting another, on any stream or connection,
 * abandons its previous one). When a reservation does not fit, transfers with no data for
 * `stallMs` are evicted first, so a peer that starts a transfer and goes quiet cannot keep the
 * budget from the leader's real one.
 */
export class SnapshotBudget implements SnapshotMemory {
  private used = 0
  private readonly held = new Map<SnapshotAssembler, number>()
  private readonly byPeer = new Map<number, SnapshotAssembler>()
  private abandoned: Array<AbandonedTransfer> = []
  private readonly transports = new WeakMap<SnapshotAssembler, TransportKind>()

  constructor(
    readonly maxBytes: number,
    private readonly stallMs: number,
    readonly now: () => number
  ) {}

  /** Which transport an assembler's stream is on, for the labels of its abandonment. */
  register(owner: SnapshotAssembler, transport: TransportKind): void {
    this.transports.set(owner, transport)
  }

  hasAbandoned(): boolean {
    return this.abandoned.length > 0
  }

  /** Transfers abandoned since the last call, for the caller to count. */
  takeAbandoned(): ReadonlyArray<AbandonedTransfer> {
    const taken = this.abandoned
    this.abandoned = []
    return taken
  }

  /** Bytes held by transfers under way. */
  get usedBytes(): number {
    return this.used
  }

  begin(owner: SnapshotAssembler): void {
    const previous = this.byPeer.get(owner.peer)
    if (previous !== undefined && previous !== owner && previous.inProgress) {
      previous.abort()
      this.abandon(previous, "snapshot_replaced", "its peer started another transfer")
    }
    this.byPeer.set(owner.peer, owner)
  }

  reserve(owner: SnapshotAssembler, bytes: number): boolean {
    if (this.used + bytes > this.maxBytes) this.evictStalled(owner)
    if (this.used + bytes > this.maxBytes) return false
    this.used += bytes
    this.held.set(owner, (this.held.get(owner) ?? 0) + bytes)
    return true
  }

  releaseAll(owner: SnapshotAssembler): void {
    const bytes = this.held.get(owner)
    if (bytes !== undefined) {
      this.used -= bytes
      this.held.delete(owner)
    }
    if (this.byPeer.get(owner.peer) === owner) this.byPeer.delete(owner.peer)
  }

  private abandon(owner: SnapshotAssembler, reason: AbandonedTransfer["reason"], detail: string): void {
    this.abandoned.push({ peer: owner.peer, transport: this.transports.get(owner) ?? "iroh", reason, detail })
  }

  private evictStalled(except: SnapshotAssembler): void {
    const cutoff = this.now() - this.stallMs
    for (const other of [...this.held.keys()]) {
      if (other !== except && other.lastProgressAt <= cutoff) {
        other.abort()
        this.abandon(other, "snapshot_stalled", `no data for ${this.stallMs} ms while memory was needed`)
      }
    }
  }
}
