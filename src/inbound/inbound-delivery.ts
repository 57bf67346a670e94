import { Effect, Metric } from "effect"
import { classify, className, PriorityClass } from "../message/priority.ts"
import { SnapshotAssembler } from "../message/snapshot-chunks.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import type { TransportKind } from "../domain/errors.ts"
import type { InboundMailbox } from "./inbound-mailbox.ts"
import { type Receipts, receiptUnits } from "./inbound-receipts.ts"

export interface InboundStreamContext {
  readonly self: NodeId
  /** The raft id bound to the authenticated remote identity of the connection. */
  readonly peer: NodeId
  readonly cls: PriorityClass
  readonly transport: TransportKind
  readonly mailbox: InboundMailbox
  readonly maxSnapshotBytes: number
  /** Told of every message handled (taken by the application, or dropped here); absent: the sender expects no acknowledgements. */
  readonly receipts?: Receipts | undefined
}

/**
 * The inbound half shared by every transport: one instance per inbound class stream. It
 * checks each message against the stream's authenticated peer, reassembles snapshots, counts,
 * and hands the rest to the mailbox (suspending when the class's queue is full).
 */
export class InboundDelivery {
  private readonly assembler: SnapshotAssembler | undefined
  private readonly received: Metric.Metric<number, unknown>
  private readonly bytes: Metric.Metric<number, unknown>
  /** Whole snapshots delivered; only on the snapshot stream. */
  private readonly snapshots: Metric.Metric<number, unknown> | undefined
  private readonly labels: M.Labels

  constructor(private readonly ctx: InboundStreamContext) {
    this.assembler = ctx.cls === PriorityClass.Snapshot ? new SnapshotAssembler(ctx.maxSnapshotBytes) : undefined
    this.labels = { peer: String(ctx.peer), class: className(ctx.cls), transport: ctx.transport }
    this.received = Metric.withAttributes(M.messagesReceived, this.labels)
    this.bytes = Metric.withAttributes(M.bytesReceived, this.labels)
    this.snapshots = this.assembler === undefined
      ? undefined
      : Metric.withAttributes(M.snapshotsReceived, { peer: String(ctx.peer), transport: ctx.transport })
  }

  /** Counts bytes read off the wire, before decoding. */
  countBytes(n: number): Effect.Effect<void> {
    return Metric.update(this.bytes, n)
  }

  deliver(messages: ReadonlyArray<RaftMessage>): Effect.Effect<void> {
    const { peer, self } = this.ctx
    const accepted: Array<RaftMessage> = []
    let forged = 0
    let misaddressed = 0
    let wrongClass = 0
    const broken: Array<string> = []
    // What was dropped here, in the units its sender counts (see `receiptUnits`).
    let droppedUnits = 0
    const { cls } = this.ctx
    for (const m of messages) {
      if (m.from !== peer) {
        forged++
        droppedUnits += receiptUnits(cls, m)
        continue
      }
      if (m.to !== self) {
        misaddressed++
        droppedUnits += receiptUnits(cls, m)
        continue
      }
      // Senders put each message on its own class's stream; one on another stream would jump
      // the priority order (an append on the election stream) or skip snapshot reassembly and
      // its size cap (a snapshot outside the snapshot stream).
      if (classify(m) !== cls) {
        wrongClass++
        droppedUnits += receiptUnits(cls, m)
        continue
      }
      if (this.assembler === undefined) {
        accepted.push(m)
        continue
      }
      const result = this.assembler.push(m)
      if (result._tag === "Complete") accepted.push(result.message)
      else if (result._tag === "Broken") {
        broken.push(result.reason)
        droppedUnits += receiptUnits(cls, m)
      }
    }
    if (forged === 0 && misaddressed === 0 && wrongClass === 0 && broken.length === 0 && (this.assembler?.abandoned ?? 0) === 0) {
      return this.accept(accepted)
    }
    this.ctx.receipts?.handled(cls, droppedUnits)
    const that = this
    return Effect.gen(function*() {
      if (forged > 0) yield* that.drop("forged_from", forged, `message 'from' disagrees with the connection's identity (peer ${peer})`)
      if (misaddressed > 0) yield* that.drop("misaddressed", misaddressed, `message 'to' is not this node (${self})`)
      if (wrongClass > 0) {
        yield* that.drop("wrong_class", wrongClass, `message of another class on the ${className(that.ctx.cls)} stream`)
      }
      for (const reason of broken) yield* that.drop("snapshot_failed", 1, `snapshot transfer broken: ${reason}`)
      const abandoned = that.assembler?.abandoned ?? 0
      if (abandoned > 0) {
        that.assembler!.abandoned = 0
        yield* that.drop("snapshot_failed", abandoned, "snapshot transfer abandoned by the sender")
      }
      yield* that.accept(accepted)
    })
  }

  private accept(messages: ReadonlyArray<RaftMessage>): Effect.Effect<void> {
    if (messages.length === 0) return Effect.void
    const counted = Metric.update(this.received, messages.length)
    return Effect.andThen(
      this.snapshots === undefined ? counted : Effect.andThen(counted, Metric.update(this.snapshots, messages.length)),
      this.ctx.mailbox.offerAll(this.ctx.cls, messages, this.ctx.receipts)
    )
  }

  private drop(reason: string, count: number, detail: string): Effect.Effect<void> {
    return Effect.andThen(
      Metric.update(Metric.withAttributes(M.messagesDropped, { ...this.labels, reason }), count),
      Effect.logWarning(`dropped ${count} inbound message(s): ${detail}`).pipe(
        Effect.annotateLogs({ ...this.labels, reason })
      )
    )
  }
}
