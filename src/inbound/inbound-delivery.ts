import { Effect, Metric } from "effect"
import { classify, className, PriorityClass } from "../message/priority.ts"
import { SnapshotAssembler, type SnapshotMemory, unlimitedSnapshotMemory } from "../message/snapshot-chunks.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import type { TransportKind } from "../domain/errors.ts"
import type { InboundMailbox } from "./inbound-mailbox.ts"
import { type Receipts, receiptUnits } from "./inbound-receipts.ts"
import { makeRefusalLog, type RefusalLog } from "../metrics/refusal-log.ts"
import type { SnapshotBudget } from "./snapshot-budget.ts"

export interface InboundStreamContext {
  readonly self: NodeId
  /** The raft id bound to the authenticated remote identity of the connection. */
  readonly peer: NodeId
  readonly cls: PriorityClass
  readonly transport: TransportKind
  readonly mailbox: InboundMailbox
  readonly maxSnapshotBytes: number
  /** The node's snapshot receive memory; absent: unlimited (tools and tests). */
  readonly snapshotBudget?: SnapshotBudget | undefined
  /** Drops are logged once per reason per this interval (default 10 s). */
  readonly refusalLogIntervalMs?: number | undefined
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
  private readonly intervalMs: number
  private readonly drops: RefusalLog<string>
  private readonly errors: RefusalLog<string>
  /** Drops of transfers of other peers this stream's chunks displaced, by peer and transport. */
  private readonly abandonedDrops = new Map<string, RefusalLog<string>>()

  constructor(private readonly ctx: InboundStreamContext) {
    const memory: SnapshotMemory = ctx.snapshotBudget ?? unlimitedSnapshotMemory
    const now = ctx.snapshotBudget?.now ?? Date.now
    this.assembler = ctx.cls === PriorityClass.Snapshot
      ? new SnapshotAssembler(ctx.maxSnapshotBytes, ctx.peer, memory, now)
      : undefined
    if (this.assembler !== undefined) ctx.snapshotBudget?.register(this.assembler, ctx.transport)
    this.labels = { peer: String(ctx.peer), class: className(ctx.cls), transport: ctx.transport }
    this.received = M.series(M.messagesReceived, this.labels)
    this.bytes = M.series(M.bytesReceived, this.labels)
    this.snapshots = this.assembler === undefined
      ? undefined
      : M.series(M.snapshotsReceived, { peer: String(ctx.peer), transport: ctx.transport })
    this.intervalMs = ctx.refusalLogIntervalMs ?? 10_000
    this.drops = makeRefusalLog({ counter: M.messagesDropped, attributes: this.labels, intervalMs: this.intervalMs })
    this.errors = makeRefusalLog({ counter: M.inboundErrors, attributes: { transport: ctx.transport }, reasonKey: "kind", intervalMs: this.intervalMs })
  }

  /** Counts bytes read off the wire, before decoding. */
  countBytes(n: number): Effect.Effect<void> {
    return Metric.update(this.bytes, n)
  }

  /** Checks, reassembles and delivers; succeeds with the number handed to the mailbox. */
  deliver(messages: ReadonlyArray<RaftMessage>): Effect.Effect<number> {
    const { peer, self } = this.ctx
    const accepted: Array<RaftMessage> = []
    let forged = 0
    let misaddressed = 0
    let wrongClass = 0
    const broken: Array<string> = []
    const overBudget: Array<string> = []
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
      } else if (result._tag === "OverBudget") {
        overBudget.push(result.reason)
        droppedUnits += receiptUnits(cls, m)
      }
    }
    const budget = this.ctx.snapshotBudget
    const abandonedElsewhere = budget?.hasAbandoned() ?? false
    if (
      forged === 0 && misaddressed === 0 && wrongClass === 0 && broken.length === 0 && overBudget.length === 0 &&
      (this.assembler?.abandoned ?? 0) === 0 && !abandonedElsewhere
    ) {
      return this.assembler === undefined ? this.accept(accepted) : Effect.andThen(this.sampleBudget, this.accept(accepted))
    }
    this.ctx.receipts?.handled(cls, droppedUnits, true)
    const that = this
    return Effect.gen(function*() {
      if (forged > 0) yield* that.drop("forged_from", forged, `message 'from' disagrees with the connection's identity (peer ${peer})`)
      if (misaddressed > 0) yield* that.drop("misaddressed", misaddressed, `message 'to' is not this node (${self})`)
      if (wrongClass > 0) {
        yield* that.drop("wrong_class", wrongClass, `message of another class on the ${className(that.ctx.cls)} stream`)
      }
      for (const reason of broken) yield* that.drop("snapshot_failed", 1, `snapshot transfer broken: ${reason}`)
      for (const reason of overBudget) yield* that.drop("snapshot_memory", 1, `snapshot transfer abandoned: ${reason}`)
      const abandoned = that.assembler?.abandoned ?? 0
      if (abandoned > 0) {
        that.assembler!.abandoned = 0
        yield* that.drop("snapshot_failed", abandoned, "snapshot transfer abandoned by the sender")
      }
      // Transfers of other streams that this one's chunks displaced (same peer) or evicted (stalled).
      for (const event of budget?.takeAbandoned() ?? []) {
        yield* that.abandonedDropsOf(event.peer, event.transport).refuse(
          event.reason,
          `dropped a partial snapshot transfer of peer ${event.peer}: ${event.detail}`
        )
      }
      if (that.assembler !== undefined) yield* that.sampleBudget
      return yield* that.accept(accepted)
    })
  }

  /** The node's snapshot memory in use, after this stream's chunks took or gave back theirs. */
  private readonly sampleBudget: Effect.Effect<void> = Effect.suspend(() =>
    this.ctx.snapshotBudget === undefined ? Effect.void : Metric.update(M.snapshotReceiveBytes, this.ctx.snapshotBudget.usedBytes)
  )

  /**
   * The stream ended (finished, reset or failed): a snapshot transfer still under way is
   * abandoned, counted, and its memory given back.
   */
  readonly end: Effect.Effect<void> = Effect.suspend(() => {
    const assembler = this.assembler
    if (assembler === undefined || !assembler.inProgress) {
      assembler?.abort()
      return Effect.void
    }
    const received = assembler.receivedBytes
    assembler.abort()
    return Effect.andThen(
      this.sampleBudget,
      this.errors.refuse("truncated_snapshot", `snapshot stream from peer ${this.ctx.peer} ended inside a transfer (${received} bytes received)`)
    )
  })

  private abandonedDropsOf(peer: NodeId, transport: string): RefusalLog<string> {
    const key = `${peer}/${transport}`
    let log = this.abandonedDrops.get(key)
    if (log === undefined) {
      const attributes = { peer: String(peer), class: "snapshot", transport }
      this.abandonedDrops.set(key, log = makeRefusalLog({ counter: M.messagesDropped, attributes, intervalMs: this.intervalMs }))
    }
    return log
  }

  private accept(messages: ReadonlyArray<RaftMessage>): Effect.Effect<number> {
    if (messages.length === 0) return Effect.succeed(0)
    const counted = Metric.update(this.received, messages.length)
    return Effect.andThen(
      this.snapshots === undefined ? counted : Effect.andThen(counted, Metric.update(this.snapshots, messages.length)),
      Effect.as(this.ctx.mailbox.offerAll(this.ctx.cls, messages, this.ctx.receipts), messages.length)
    )
  }

  private drop(reason: string, count: number, detail: string): Effect.Effect<void> {
    return this.drops.refuse(reason, `dropped ${count} inbound message(s) of peer ${this.ctx.peer}: ${detail}`, count)
  }
}
