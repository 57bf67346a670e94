import { Clock, Effect, Metric, PubSub, Queue, Result, type Scope } from "effect"
import { encodePayload } from "../message/codec.ts"
import { FRAME_HEADER_LENGTH } from "../message/framing.ts"
import { classify, className, PriorityClass, priorityClasses } from "../message/priority.ts"
import { leadsToNoWrite, type NodeId, type RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { type DropReason, MessageDropped, type TransportKind } from "../domain/errors.ts"
import type { ElectionActivity } from "../domain/election-activity.ts"
import type { TransportEvent } from "../domain/events.ts"
import type { PeerStatus } from "../domain/peer-status.ts"
import type { BackoffPolicy } from "./backoff.ts"
import { Connector, type LinkStateListener } from "./connector.ts"
import type { Link, LinkSession } from "./link.ts"
import { type ClassQueueOptions, type Envelope, OutboundQueue } from "./outbound-queue.ts"
import { snapshotPace, writeSnapshotChunks } from "./snapshot-sender.ts"

export interface PeerActorOptions {
  readonly peer: NodeId
  /** Queue options by class index (election, heartbeat, append, snapshot). */
  readonly queues: ReadonlyArray<ClassQueueOptions>
  readonly maxBatch: number
  readonly maxBatchBytes: number
  /** Age limit of classes whose queue options set none. */
  readonly maxAgeMs: number
  readonly maxFrameBytes: number
  readonly snapshotChunkBytes: number
  /** Pace of snapshot bytes per transport (0 or absent: unpaced). */
  readonly snapshotBytesPerSec?: Partial<Record<TransportKind, number>>
  /** A cap on that pace while `electionActivity` says an election is under way (0 or absent: none). */
  readonly snapshotElectionBytesPerSec?: Partial<Record<TransportKind, number>>
  /** Told of every election message sent; read before each snapshot chunk. */
  readonly electionActivity?: ElectionActivity
  /** Attempts at a whole snapshot transfer before it is reported failed. */
  readonly snapshotAttempts: number
  readonly backoff: BackoffPolicy
  readonly links: ReadonlyArray<Link>
  readonly routes: RouteSelector
  readonly events: PubSub.PubSub<TransportEvent>
  /** Told of every link going up or down (routing listens). */
  readonly onLinkState?: LinkStateListener
}

/** The routing the actor's writers consult before each batch (see transport/router.ts). */
export interface RouteSelector {
  /** Which transport carries a class right now. */
  route(cls: PriorityClass): TransportKind
  /** True when a failed Iroh link would move this class to gRPC rather than wait for Iroh. */
  canFallBack(cls: PriorityClass): boolean
}

/** Every class on one transport, for single-transport modes and tests. */
export const fixedRoute = (kind: TransportKind): RouteSelector => ({ route: () => kind, canFallBack: () => false })

/** A live session and the transport and connector it belongs to. */
interface Routed {
  readonly session: LinkSession
  readonly kind: TransportKind
  readonly connector: Connector
}

interface ClassMetrics {
  readonly sent: Metric.Metric<number, unknown>
  readonly bytes: Metric.Metric<number, unknown>
  readonly batch: Metric.Metric<number, unknown>
  readonly depth: Metric.Metric<number, unknown>
}

/**
 * One peer's actor: four bounded outbound queues (its mailbox), one writer fiber per class,
 * and one connector per transport. Everything lives in the scope the actor is made in, so
 * removing the peer closes its links and stops its writers.
 */
export class PeerActor {
  private transferIds = 0
  /**
   * Per class, the messages a writer has taken from its queue and neither written nor dropped
   * yet. When the peer closes, the queues' contents are counted by `shutdown` and these by the
   * interrupted writer: a batch waiting for a dial to an unreachable peer is no exception to
   * "written, or dropped with a counted reason".
   */
  private readonly held = [0, 0, 0, 0]

  private constructor(
    readonly peer: NodeId,
    private readonly options: PeerActorOptions,
    private readonly queues: ReadonlyArray<OutboundQueue>,
    private readonly connectors: ReadonlyMap<TransportKind, Connector>,
    private readonly metrics: ReadonlyArray<ReadonlyMap<TransportKind, ClassMetrics>>,
    /** Whole snapshots written, by transport. */
    private readonly snapshotsSent: ReadonlyMap<TransportKind, Metric.Metric<number, unknown>>
  ) {}

  static make(options: PeerActorOptions): Effect.Effect<PeerActor, never, Scope.Scope> {
    return Effect.gen(function*() {
      const queues: Array<OutboundQueue> = []
      for (const cls of priorityClasses) queues.push(yield* OutboundQueue.make(options.queues[cls]!))
      const connectors = new Map<TransportKind, Connector>()
      for (const link of options.links) {
        connectors.set(link.kind, yield* Connector.make(options.peer, link, options.backoff, options.events, options.onLinkState))
      }
      const peer = String(options.peer)
      const metrics = priorityClasses.map((cls) => {
        const byKind = new Map<TransportKind, ClassMetrics>()
        for (const link of options.links) {
          const labels = { peer, class: className(cls), transport: link.kind }
          byKind.set(link.kind, {
            sent: M.series(M.messagesSent, labels),
            bytes: M.series(M.bytesSent, labels),
            batch: M.series(M.batchSize, { class: className(cls), transport: link.kind }),
            depth: M.series(M.queueDepth, { peer, class: className(cls) })
          })
        }
        return byKind
      })
      const snapshotsSent = new Map(options.links.map((link) => [link.kind, M.series(M.snapshotsSent, { peer, transport: link.kind })]))
      const actor = new PeerActor(options.peer, options, queues, connectors, metrics, snapshotsSent)
      for (const cls of priorityClasses) {
        yield* Effect.forkScoped(actor.writer(cls), { startImmediately: true })
      }
      yield* Effect.addFinalizer(() => actor.shutdown)
      return actor
    })
  }

  /**
   * Enqueues without waiting. Fails with `MessageDropped` when the class's queue is full and
   * its policy rejects new messages; with `drop_oldest` the displaced message is counted and
   * the new one queued.
   */
  send(message: RaftMessage): Effect.Effect<void, MessageDropped> {
    return Effect.clockWith((clock) => {
      const cls = classify(message)
      const now = clock.currentTimeMillisUnsafe()
      if (cls === PriorityClass.Election) this.options.electionActivity?.noteAt(now)
      const outcome = this.queues[cls]!.offer({ message, enqueuedAt: now })
      if (outcome === "queued") return Effect.void
      const dropped = this.countDrop(cls, "queue_full", 1)
      return outcome === "displaced_oldest"
        ? dropped
        : Effect.andThen(dropped, Effect.fail(new MessageDropped({ peer: this.peer, class: className(cls), reason: "queue_full" })))
    })
  }

  status(): PeerStatus {
    return {
      peer: this.peer,
      links: [...this.connectors.values()].map((c) => ({
        transport: c.kind,
        state: c.state,
        consecutiveFailures: c.consecutiveFailures,
        lastFailure: c.lastFailure,
        rttMs: c.rttMs(),
        unconfirmed: c.unconfirmed()
      })),
      queued: this.queues.map((q) => q.size),
      routes: priorityClasses.map((cls) => this.options.routes.route(cls))
    }
  }

  /** Ends every link's backoff: the peer showed it is up (see `Connector.wake`). */
  wake(reason: string): Effect.Effect<void> {
    return Effect.forEach(this.connectors.values(), (c) => c.wake(reason), { discard: true })
  }

  connector(kind: TransportKind): Connector | undefined {
    return this.connectors.get(kind)
  }

  private readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    const pending = this.queues.reduce((n, q) => n + q.size, 0)
    const drops = priorityClasses.map((cls) => {
      const n = this.queues[cls]!.size
      return n > 0 ? this.countDrop(cls, "peer_removed", n) : Effect.void
    })
    return Effect.all([
      ...drops,
      ...this.queues.map((q) => Queue.shutdown(q.queue)),
      pending > 0 ? Effect.logInfo(`peer ${this.peer} closed with ${pending} queued message(s) dropped`) : Effect.void
    ], { discard: true })
  })

  private writer(cls: PriorityClass): Effect.Effect<void> {
    const queue = this.queues[cls]!.queue
    const self = this
    return Effect.gen(function*() {
      while (true) {
        // Taking and recording what was taken is one step, so an interruption cannot fall
        // between them and lose the batch uncounted.
        const batch = yield* Effect.uninterruptibleMask((restore) =>
          Effect.tap(restore(Queue.takeBetween(queue, 1, self.options.maxBatch)), (taken) =>
            Effect.sync(() => {
              self.held[cls] = taken.length
            }))
        )
        // Writers woken in the same turn run in the order their queues were offered to. A
        // higher class waiting (a vote queued behind 1,000 appends) goes first, so it is not
        // held for the time this batch takes to encode. At most one turn per class above
        // this one: a higher writer stuck on a slow write must not keep this one spinning.
        for (let turns = 0; turns < cls && self.higherClassWaiting(cls); turns++) yield* Effect.yieldNow
        if (cls === PriorityClass.Snapshot) {
          for (const envelope of batch) yield* self.sendSnapshot(envelope)
          continue
        }
        yield* self.writeBatch(cls, batch)
      }
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          const held = this.held[cls]!
          this.held[cls] = 0
          return held > 0 ? this.countDrop(cls, "peer_removed", held) : Effect.void
        })
      ),
      Effect.annotateLogs({ peer: String(this.peer), class: className(cls) })
    )
  }

  /** A class above `cls` has messages queued, or taken and not yet written. */
  private higherClassWaiting(cls: PriorityClass): boolean {
    for (let higher = 0; higher < cls; higher++) {
      if (this.queues[higher]!.size > 0 || this.held[higher]! > 0) return true
    }
    return false
  }

  /** `count` held messages were written or dropped (and counted as such). */
  private settle(cls: PriorityClass, count: number): void {
    this.held[cls] = Math.max(0, this.held[cls]! - count)
  }

  /** Drops expired envelopes (counted) and returns the rest. */
  private unexpired(cls: PriorityClass, batch: ReadonlyArray<Envelope>): Effect.Effect<ReadonlyArray<Envelope>> {
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const oldest = now - (this.queues[cls]!.options.maxAgeMs ?? this.options.maxAgeMs)
      const live = batch.filter((e) => e.enqueuedAt >= oldest)
      const expired = batch.length - live.length
      if (expired === 0) return Effect.succeed(live)
      this.settle(cls, expired)
      return Effect.as(this.countDrop(cls, "expired", expired), live)
    })
  }

  /**
   * Per-batch steps are `Effect.fnUntraced` generator functions made once, not `Effect.gen`
   * closures made per call: a generator closure per batch kept its batch alive across
   * scavenges (docs/design.md, "No generator closure per batch"). The sender's scavenges promoted
   * 0.5-1.2 MB each instead of 3.2-3.5 MB, with half the pause.
   */
  private readonly writeBatch = Effect.fnUntraced(function*(this: PeerActor, cls: PriorityClass, taken: ReadonlyArray<Envelope>) {
    const self = this
    // Connect first: messages may age while a dead peer is redialled, and go out only if
    // they are still fresh once there is a link to put them on.
    let target = yield* self.acquireRouted(cls)
    const live = yield* self.unexpired(cls, taken)
    let payloads = yield* self.fitting(cls, live.map((envelope) => encodePayload(envelope.message)), target.session)
    const answeredLate = live.length > 0 && live.every((envelope) => leadsToNoWrite(envelope.message.msgType))
    // Keep each write under the byte cap: large writes stall the event loop (docs/design.md, "Bounded writes and reads").
    // The whole batch stays on one session, so a route change cannot reorder it; only a
    // failed write makes the rest look for a session again (whose size limit may differ).
    let start = 0
    while (start < payloads.length) {
      let bytes = 0
      let end = start
      while (end < payloads.length) {
        const size = FRAME_HEADER_LENGTH + payloads[end]!.length
        if (end > start && bytes + size > self.options.maxBatchBytes) break
        bytes += size
        end++
      }
      const group = start === 0 && end === payloads.length ? payloads : payloads.slice(start, end)
      const written = yield* self.writeGroup(cls, target, group, bytes, answeredLate)
      start = end
      if (!written && start < payloads.length) {
        target = yield* self.acquireRouted(cls)
        payloads = yield* self.fitting(cls, payloads.slice(start), target.session)
        start = 0
      }
    }
  })

  /** The payloads `session` can carry; the rest are dropped (and settled) as `too_large`. */
  private fitting(cls: PriorityClass, payloads: ReadonlyArray<Uint8Array>, session: LinkSession): Effect.Effect<ReadonlyArray<Uint8Array>> {
    const maxBytes = Math.min(this.options.maxFrameBytes, session.maxPayloadBytes)
    // Nearly always everything fits: then the batch goes on as it is, without a copy.
    if (payloads.every((payload) => payload.length <= maxBytes)) return Effect.succeed(payloads)
    const fit = payloads.filter((payload) => payload.length <= maxBytes)
    const tooLarge = payloads.length - fit.length
    this.settle(cls, tooLarge)
    return Effect.as(this.countDrop(cls, "too_large", tooLarge), fit)
  }

  /**
   * The session of the transport that carries `cls` now. Where a failed Iroh link would fall
   * back to gRPC, Iroh gets one dial and no waiting: the failure moves the route (through the
   * link-state listener) and the loop picks gRPC. Otherwise the writer redials with backoff
   * for as long as the class stays routed to that transport, and follows a route change.
   */
  private acquireRouted(cls: PriorityClass): Effect.Effect<Routed> {
    const self = this
    return Effect.gen(function*() {
      while (true) {
        const kind = self.options.routes.route(cls)
        const connector = self.connectors.get(kind)!
        if (kind === "iroh" && self.options.routes.canFallBack(cls)) {
          const tried = yield* Effect.result(connector.tryAcquire)
          if (Result.isSuccess(tried)) return { session: tried.success, kind, connector }
          if (self.options.routes.route(cls) !== "iroh") continue
        }
        const session = yield* connector.acquireWhile(() => self.options.routes.route(cls) === kind)
        if (session !== undefined) return { session, kind, connector }
      }
    })
  }

  /** One write; false when the link failed (its messages are counted as lost). */
  private readonly writeGroup = Effect.fnUntraced(function*(
    this: PeerActor,
    cls: PriorityClass,
    target: Routed,
    payloads: ReadonlyArray<Uint8Array>,
    bytes: number,
    answeredLate: boolean
  ) {
    const self = this
    const { session, kind, connector } = target
    const written = yield* Effect.result(session.write(cls, payloads, bytes, answeredLate))
    self.settle(cls, payloads.length)
    // Either way the peer may have delivered them: the session's ledger decides what is lost.
    const lostNow = connector.noteWritten(session, cls, payloads.length)
    if (lostNow > 0) yield* self.countDrop(cls, "link_failed", lostNow)
    if (Result.isSuccess(written)) {
      const m = self.metrics[cls]!.get(kind)!
      yield* Metric.update(m.sent, payloads.length)
      yield* Metric.update(m.bytes, bytes)
      yield* Metric.update(m.batch, payloads.length)
      yield* Metric.update(m.depth, self.queues[cls]!.size)
      return true
    }
    // Invalidating counts what the peer never confirmed, these among them.
    yield* connector.invalidate(session, written.failure)
    return false
  })

  /** Writes one snapshot in chunks; a broken transfer is retried from the start. */
  private readonly sendSnapshot = Effect.fnUntraced(function*(this: PeerActor, envelope: Envelope) {
    const self = this
    const cls = PriorityClass.Snapshot
    let lastError = "no attempt made"
    for (let attempt = 1; attempt <= self.options.snapshotAttempts; attempt++) {
      const { session, kind, connector } = yield* self.acquireRouted(cls)
      const live = yield* self.unexpired(cls, [envelope])
      if (live.length === 0) return // counted (and settled) as expired
      // Only successive transfers on one stream must differ: the receiver restarts at offset 0.
      const transferId = self.transferIds = (self.transferIds % 0x7fffffff) + 1
      const { bytes, chunks, failure } = yield* writeSnapshotChunks(
        session,
        envelope.message,
        self.options.snapshotChunkBytes,
        transferId,
        snapshotPace(self.options, kind)
      )
      if (failure !== undefined) yield* connector.invalidate(session, failure)
      if (failure === undefined && bytes > 0) {
        // A transfer is one message to the ledger, confirmed with its last chunk; a broken one
        // is retried whole, so only a complete one is recorded.
        const lostNow = connector.noteWritten(session, cls, 1)
        if (lostNow > 0) {
          self.settle(cls, 1)
          return yield* self.countDrop(cls, "link_failed", lostNow)
        }
        const m = self.metrics[cls]!.get(kind)!
        yield* Metric.update(m.sent, chunks)
        yield* Metric.update(m.bytes, bytes)
        yield* Metric.update(self.snapshotsSent.get(kind)!, 1)
        self.settle(cls, 1)
        return
      }
      lastError = failure?.message ?? "nothing written"
      yield* Effect.logWarning(`snapshot transfer to peer ${self.peer} broken (attempt ${attempt}): ${lastError}`)
    }
    self.settle(cls, 1)
    yield* self.countDrop(cls, "snapshot_failed", 1)
    yield* PubSub.publish(self.options.events, {
      _tag: "SnapshotFailed",
      peer: self.peer,
      transport: self.options.routes.route(cls),
      cause: lastError
    })
  })

  private countDrop(cls: PriorityClass, reason: DropReason, count: number): Effect.Effect<void> {
    const labels = { peer: String(this.peer), class: className(cls), reason }
    const level = reason === "expired" || reason === "queue_full" ? Effect.logDebug : Effect.logWarning
    return Effect.andThen(
      Metric.update(Metric.withAttributes(M.messagesDropped, labels), count),
      level(`dropped ${count} outbound message(s) to peer ${this.peer}: ${reason}`).pipe(Effect.annotateLogs(labels))
    )
  }
}
