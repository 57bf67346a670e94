import { Effect, Exit, Queue, Stream } from "effect"
import { PriorityClass, priorityClasses } from "../message/priority.ts"
import { leadsToNoWrite, type RaftMessage } from "../message/types.ts"
import type { ElectionActivity } from "../domain/election-activity.ts"
import type { Receipts } from "./inbound-receipts.ts"

/** A message and where to report it taken (absent: its sender expects no acknowledgement). */
interface Entry {
  readonly message: RaftMessage
  readonly receipts: Receipts | undefined
}

/**
 * Four bounded inbound queues and a receive that always takes the highest class first.
 *
 * Producers (stream readers) suspend when their class's queue is full, so flow control pushes
 * back on the sender instead of dropping. A one-slot sliding "doorbell" wakes a waiting
 * receiver: it is rung after every offer, and a ring that lands between the receiver's
 * empty poll and its wait stays in the slot, so no wake-up is lost.
 *
 * Each message carries the receipts of the stream it came on: taking it tells its sender it
 * was delivered. Messages still here when the process dies were never acknowledged, so their
 * sender counts them as lost rather than losing them silently.
 */
export class InboundMailbox {
  private constructor(
    private readonly queues: ReadonlyArray<Queue.Queue<Entry>>,
    private readonly doorbell: Queue.Queue<void>,
    private readonly electionActivity: ElectionActivity | undefined
  ) {}

  /** `electionActivity` is told of every election message received. */
  static make(capacity: number, electionActivity?: ElectionActivity): Effect.Effect<InboundMailbox> {
    return Effect.gen(function*() {
      const queues: Array<Queue.Queue<Entry>> = []
      for (const _ of priorityClasses) queues.push(yield* Queue.bounded<Entry>(capacity))
      return new InboundMailbox(queues, yield* Queue.sliding<void>(1), electionActivity)
    })
  }

  /**
   * Suspends while the class's queue is full (backpressure), never drops. `receipts` is told
   * of each message as the application takes it.
   */
  offerAll(cls: PriorityClass, messages: ReadonlyArray<RaftMessage>, receipts?: Receipts): Effect.Effect<void> {
    if (messages.length === 0) return Effect.void
    const activity = this.electionActivity
    if (cls === PriorityClass.Election && activity !== undefined) {
      return Effect.clockWith((clock) => {
        activity.noteAt(clock.currentTimeMillisUnsafe())
        return this.offerQueued(cls, messages, receipts)
      })
    }
    return Effect.suspend(() => this.offerQueued(cls, messages, receipts))
  }

  /** Enqueues at once (call it from inside a running effect); the result waits for the rest. */
  private offerQueued(cls: PriorityClass, messages: ReadonlyArray<RaftMessage>, receipts: Receipts | undefined): Effect.Effect<void> {
    const queue = this.queues[cls]!
    const doorbell = this.doorbell
    const entries = new Array<Entry>(messages.length)
    for (let i = 0; i < messages.length; i++) entries[i] = { message: messages[i]!, receipts }
    const rejected = Queue.offerAllUnsafe(queue, entries)
    Queue.offerUnsafe(doorbell, undefined)
    if (rejected.length === 0) return Effect.void
    return Queue.offerAll(queue, rejected).pipe(Effect.tap(() => Effect.sync(() => Queue.offerUnsafe(doorbell, undefined))), Effect.asVoid)
  }

  /** Messages discarded since the last report: their connection ended before they were taken. */
  private discarded = 0

  private pollOne(): RaftMessage | undefined {
    for (let cls = 0; cls < this.queues.length; cls++) {
      const queue = this.queues[cls]!
      while (true) {
        const taken = Queue.takeUnsafe(queue)
        if (taken === undefined || !Exit.isSuccess(taken)) break
        const { message, receipts } = taken.value
        if (receipts === undefined) return message
        if (!receipts.open) {
          this.discarded++
          continue
        }
        receipts.handled(cls as PriorityClass, 1, leadsToNoWrite(message.msgType))
        return message
      }
    }
    return undefined
  }

  private pollMany(max: number): Array<RaftMessage> {
    const out: Array<RaftMessage> = []
    for (let cls = 0; cls < this.queues.length; cls++) {
      const queue = this.queues[cls]!
      // Runs of one stream's messages are reported as one.
      let receipts: Receipts | undefined
      let run = 0
      let quiet = true
      while (out.length < max) {
        const taken = Queue.takeUnsafe(queue)
        if (taken === undefined || !Exit.isSuccess(taken)) break
        const entry = taken.value
        if (entry.receipts !== undefined && !entry.receipts.open) {
          this.discarded++
          continue
        }
        out.push(entry.message)
        if (entry.receipts !== receipts) {
          receipts?.handled(cls as PriorityClass, run, quiet)
          receipts = entry.receipts
          run = 0
          quiet = true
        }
        run++
        quiet &&= leadsToNoWrite(entry.message.msgType)
      }
      receipts?.handled(cls as PriorityClass, run, quiet)
    }
    return out
  }

  /** The next message, highest class first; waits when all queues are empty. */
  readonly receive: Effect.Effect<RaftMessage> = Effect.suspend(() => {
    const message = this.pollOne()
    const next = message !== undefined ? Effect.succeed(message) : Effect.flatMap(Queue.take(this.doorbell), () => this.receive)
    return this.withReport(next)
  })

  /** Up to `max` messages in priority order (at least one); waits when all queues are empty. */
  receiveBatch(max: number): Effect.Effect<ReadonlyArray<RaftMessage>> {
    return Effect.suspend(() => {
      const messages = this.pollMany(max)
      return this.withReport(
        messages.length > 0
          ? Effect.succeed(messages)
          : Effect.flatMap(Queue.take(this.doorbell), () => this.receiveBatch(max))
      )
    })
  }

  /** Their senders counted them as lost (`link_failed`); here they are only logged. */
  private withReport<A>(next: Effect.Effect<A>): Effect.Effect<A> {
    const discarded = this.discarded
    if (discarded === 0) return next
    this.discarded = 0
    return Effect.andThen(
      Effect.logInfo(`discarded ${discarded} inbound message(s) whose connection ended before they were taken; their sender counted them as lost`),
      next
    )
  }

  /** Inbound messages as a stream, in the order `receive` gives them. */
  get messages(): Stream.Stream<RaftMessage> {
    return Stream.fromEffectRepeat(this.receiveBatch(256)).pipe(Stream.flattenIterable)
  }
}
