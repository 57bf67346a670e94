import { Effect, Queue } from "effect"
import type { RaftMessage } from "../message/types.ts"

export type OverflowPolicy = "drop_oldest" | "drop_newest"

export interface ClassQueueOptions {
  readonly capacity: number
  readonly overflow: OverflowPolicy
  /** Messages queued longer than this are dropped (as `expired`) instead of written; absent: the actor's `maxAgeMs`. */
  readonly maxAgeMs?: number | undefined
}

/** A message waiting to be written, stamped with the (Clock) time it was handed to `send`. */
export interface Envelope {
  readonly message: RaftMessage
  readonly enqueuedAt: number
}

export type OfferOutcome = "queued" | "displaced_oldest" | "rejected"

/**
 * One class's bounded outbound queue. Offering is synchronous so `send` never suspends the
 * Raft loop; when full, `drop_oldest` keeps the newest (heartbeats, votes: only the latest
 * matters) and `drop_newest` rejects the new message (appends: the Raft manager retries
 * from its own log, and a gap in the middle of a stream would only force a rejection).
 */
export class OutboundQueue {
  private constructor(
    readonly queue: Queue.Queue<Envelope>,
    readonly options: ClassQueueOptions
  ) {}

  static make(options: ClassQueueOptions): Effect.Effect<OutboundQueue> {
    return Effect.map(
      options.overflow === "drop_oldest" ? Queue.sliding<Envelope>(options.capacity) : Queue.dropping<Envelope>(options.capacity),
      (queue) => new OutboundQueue(queue, options)
    )
  }

  offer(envelope: Envelope): OfferOutcome {
    const full = Queue.sizeUnsafe(this.queue) >= this.options.capacity
    const accepted = Queue.offerUnsafe(this.queue, envelope)
    if (!accepted) return "rejected"
    return full ? "displaced_oldest" : "queued"
  }

  get size(): number {
    return Queue.sizeUnsafe(this.queue)
  }
}
