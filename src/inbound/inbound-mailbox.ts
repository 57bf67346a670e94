import { Effect, Exit, Queue } from "effect"
import { PriorityClass, priorityClasses } from "../message/priority.ts"
import type { RaftMessage } from "../message/types.ts"
import type { ElectionActivity } from "../domain/election-activity.ts"

/**
 * Four bounded inbound queues and a receive that always takes the highest class first.
 *
 * Producers (stream readers) suspend when their class's queue is full, so flow control pushes
 * back on the sender instead of dropping. A one-slot sliding "doorbell" wakes a waiting
 * receiver: it is rung after every offer, and a ring that lands between the receiver's
 * empty poll and its wait stays in the slot, so no wake-up is lost.
 */
export class InboundMailbox {
  private constructor(
    private readonly queues: ReadonlyArray<Queue.Queue<RaftMessage>>,
    private readonly doorbell: Queue.Queue<void>,
    private readonly electionActivity: ElectionActivity | undefined
  ) {}

  /** `electionActivity` is told of every election message received. */
  static make(capacity: number, electionActivity?: ElectionActivity): Effect.Effect<InboundMailbox> {
    return Effect.gen(function*() {
      const queues: Array<Queue.Queue<RaftMessage>> = []
      for (const _ of priorityClasses) queues.push(yield* Queue.bounded<RaftMessage>(capacity))
      return new InboundMailbox(queues, yield* Queue.sliding<void>(1), electionActivity)
    })
  }

  /** Suspends while the class's queue is full (backpressure), never drops. */
  offerAll(cls: PriorityClass, messages: ReadonlyArray<RaftMessage>): Effect.Effect<void> {
    if (messages.length === 0) return Effect.void
    const activity = this.electionActivity
    if (cls === PriorityClass.Election && activity !== undefined) {
      return Effect.clockWith((clock) => {
        activity.noteAt(clock.currentTimeMillisUnsafe())
        return this.offerQueued(cls, messages)
      })
    }
    return Effect.suspend(() => this.offerQueued(cls, messages))
  }

  /** Enqueues at once (call it from inside a running effect); the result waits for the rest. */
  private offerQueued(cls: PriorityClass, messages: ReadonlyArray<RaftMessage>): Effect.Effect<void> {
    const queue = this.queues[cls]!
    const doorbell = this.doorbell
    const rejected = Queue.offerAllUnsafe(queue, messages)
    Queue.offerUnsafe(doorbell, undefined)
    if (rejected.length === 0) return Effect.void
    return Queue.offerAll(queue, rejected).pipe(Effect.tap(() => Effect.sync(() => Queue.offerUnsafe(doorbell, undefined))), Effect.asVoid)
  }

  private pollOne(): RaftMessage | undefined {
    for (const queue of this.queues) {
      const taken = Queue.takeUnsafe(queue)
      if (taken !== undefined && Exit.isSuccess(taken)) return taken.value
    }
    return undefined
  }

  private pollMany(max: number): Array<RaftMessage> {
    const out: Array<RaftMessage> = []
    for (const queue of this.queues) {
      while (out.length < max) {
        const taken = Queue.takeUnsafe(queue)
        if (taken === undefined || !Exit.isSuccess(taken)) break
        out.push(taken.value)
      }
    }
    return out
  }

  /** The next message, highest class first; waits when all queues are empty. */
  readonly receive: Effect.Effect<RaftMessage> = Effect.suspend(() => {
    const message = this.pollOne()
    return message !== undefined ? Effect.succeed(message) : Effect.flatMap(Queue.take(this.doorbell), () => this.receive)
  })

  /** Up to `max` messages in priority order (at least one); waits when all queues are empty. */
  receiveBatch(max: number): Effect.Effect<ReadonlyArray<RaftMessage>> {
    return Effect.suspend(() => {
      const messages = this.pollMany(max)
      return messages.length > 0
        ? Effect.succeed(messages)
        : Effect.flatMap(Queue.take(this.doorbell), () => this.receiveBatch(max))
    })
  }
}
