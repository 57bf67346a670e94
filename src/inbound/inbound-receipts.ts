import { Effect, Queue, type Scope } from "effect"
import { PriorityClass } from "../message/priority.ts"
import type { RaftMessage } from "../message/types.ts"

/**
 * Where the receiving end of one connection (Iroh) or class stream (gRPC) reports what it has
 * handled, for its sender's ledger (`peer/delivery-ledger.ts`).
 */
export interface Receipts {
  /**
   * `count` messages of `cls` were handled: taken by the application from the inbound
   * mailbox, or dropped here with a counted reason. Never suspends: the application's
   * receive calls it. `quiet`: none of them makes the application write back to their sender
   * soon (`leadsToNoWrite`), so their acknowledgement waits for whatever the node writes to that
   * sender next rather than for an answer (`ReceiptRide.waitMs`).
   */
  readonly handled: (cls: PriorityClass, count: number, quiet?: boolean) => void
  /**
   * False once the connection or stream is gone: its sender has counted everything it did
   * not hear acknowledged as lost, so messages still waiting in the mailbox are discarded
   * rather than delivered a second time in the accounting.
   */
  readonly open: boolean
}

/**
 * The units a sender counts a message in: one per message, except that a snapshot travels
 * as chunks and counts once, with its last chunk (a transfer broken mid-way is retried whole
 * by the sender, so its earlier chunks are nobody's message).
 */
export const receiptUnits = (cls: PriorityClass, message: RaftMessage): number => {
  if (cls !== PriorityClass.Snapshot) return 1
  const s = message.snapshot
  return s === undefined || !s.totalSize || s.done === true ? 1 : 0
}

/**
 * Turns of the event loop an acknowledgement waits before it is written. The message it
 * acknowledges is usually on the Raft path: the take runs the application's round in the next
 * turn (a follower's log write, a leader's commit), and that round what it woke in the one
 * after (the reply to a client, a transport writer). An acknowledgement only feeds the
 * sender's ledger, so it goes after them rather than hold them for the cost of its write.
 */
export const ACK_DEFER_TURNS = 2

/**
 * The receipts of one class stream whose acknowledgements are written through a callback
 * that never waits (a gRPC call's `write`): the takes of the same turns go out as one, after
 * `ACK_DEFER_TURNS`.
 */
export class StreamReceipts implements Receipts {
  private count = 0
  private reported = 0
  private scheduled = false
  private ended = false

  constructor(private readonly write: (cumulative: number) => void) {}

  get open(): boolean {
    return !this.ended
  }

  readonly handled = (_cls: PriorityClass, count: number): void => {
    if (count <= 0 || this.ended) return
    this.count += count
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.deferred, ACK_DEFER_TURNS)
  }

  private readonly deferred = (turns: number): void => {
    if (turns > 0) setImmediate(this.deferred, turns - 1)
    else this.flush()
  }

  /** No more acknowledgements; `flush`: send the last count first. */
  end(flush: boolean): void {
    if (this.ended) return
    if (flush) this.flush()
    this.ended = true
  }

  private readonly flush = (): void => {
    this.scheduled = false
    if (this.ended || this.count === this.reported) return
    this.reported = this.count
    this.write(this.count)
  }
}

const deferTurns: Effect.Effect<void> = Effect.gen(function*() {
  for (let turn = 0; turn < ACK_DEFER_TURNS; turn++) yield* Effect.yieldNow
})

/** One class's cumulative count, as sent to the peer. */
export interface ReceiptCount {
  readonly cls: PriorityClass
  readonly cumulative: number
}

/**
 * A way for a pump's counts to reach the peer in a write the node makes to it anyway (Iroh wire
 * version 3: `iroh/ack-rides.ts`) instead of in a write of their own.
 */
export interface ReceiptRide {
  /**
   * How long counts may wait for such a write now; 0 when nothing could carry them. `quiet`: the
   * counts are of messages that make the application write nothing back, so they wait for
   * whatever the node writes to the peer next.
   */
  readonly waitMs: (quiet: boolean) => number
  /**
   * From now until `withdraw`, writes to the peer may take the pump's counts (`ReceiptPump.take`).
   * Once is enough: the pump stays offered while it lives, and a write that finds nothing new
   * takes nothing.
   */
  readonly offer: (pump: ReceiptPump) => void
  readonly withdraw: (pump: ReceiptPump) => void
}

/**
 * Cumulative handled counts per class, sent by one fiber: `handled` only adds and rings a
 * one-slot doorbell, so an acknowledgement never holds up the application's receive, and
 * the takes made while one acknowledgement is being written (or waits its
 * `ACK_DEFER_TURNS`) go out together in the next. With a `ride`, a write to the peer may take
 * the counts at any time; what none took in those turns waits up to the ride's `waitMs` more
 * (longer for messages that make the application write nothing back), and only what none took
 * then is sent.
 * Sending stops at the first failure (the connection or stream is going away).
 */
export class ReceiptPump implements Receipts {
  private readonly counts = [0, 0, 0, 0]
  private readonly reported = [0, 0, 0, 0]
  private ended = false

  private constructor(
    private readonly doorbell: Queue.Queue<void>,
    /** Rung when a write took every count: a wait for a ride then ends without its timer. */
    private readonly drained: Queue.Queue<void>,
    private readonly ride: ReceiptRide | undefined
  ) {}

  static make<E>(
    send: (counts: ReadonlyArray<ReceiptCount>) => Effect.Effect<void, E>,
    onFailure: (error: E) => Effect.Effect<void>,
    ride?: ReceiptRide
  ): Effect.Effect<ReceiptPump, never, Scope.Scope> {
    return Effect.gen(function*() {
      const pump = new ReceiptPump(yield* Queue.sliding<void>(1), yield* Queue.sliding<void>(1), ride)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          pump.ended = true
          ride?.withdraw(pump)
        })
      )
      // First the same turns as without a ride: the application's answer, written in them, usually
      // takes the counts, and nothing is left to wait for.
      const waitForRide = Effect.suspend(() => {
        const ms = ride?.waitMs(!pump.expectWrite) ?? 0
        pump.expectWrite = false
        if (ride === undefined || ms <= 0 || !pump.unreported()) return Effect.void
        ride.offer(pump)
        // Waits again while writes take what was there when the wait began: what is left came
        // later, and is likely to catch the next. Counts are sent on their own only once no write
        // took them for a whole wait (so when `ms` to twice `ms` old).
        const waitOnce = Effect.suspend(() => {
          const pending = pump.counts.slice()
          Queue.takeUnsafe(pump.drained) // a ring from before this wait says nothing of it
          return Effect.as(Effect.timeoutOption(Queue.take(pump.drained), ms), pending)
        })
        return Effect.repeat(waitOnce, { while: (pending) => pump.reportedUpTo(pending) && pump.unreported() })
      })
      const wait = Effect.andThen(deferTurns, waitForRide)
      yield* Effect.forkScoped(
        Queue.take(pump.doorbell).pipe(
          Effect.andThen(wait),
          Effect.andThen(Effect.suspend(() => {
            const changed = pump.take()
            return changed.length === 0 ? Effect.void : send(changed)
          })),
          Effect.forever,
          Effect.catch(onFailure)
        ),
        { startImmediately: true }
      )
      return pump
    })
  }

  get open(): boolean {
    return !this.ended
  }

  /** Some message handled since the last wait began may make the application write back soon. */
  private expectWrite = false

  readonly handled = (cls: PriorityClass, count: number, quiet = false): void => {
    if (count <= 0) return
    this.counts[cls]! += count
    if (!quiet) this.expectWrite = true
    // Offered at once, not when the pump's fiber next runs: the application's answer to what it
    // just took is often written first, and should carry this.
    if (this.ride !== undefined && !this.ended && this.ride.waitMs(quiet) > 0) this.ride.offer(this)
    Queue.offerUnsafe(this.doorbell, undefined)
  }

  /** True when some class's count changed since it was last taken. */
  private unreported(): boolean {
    for (let cls = 0; cls < this.counts.length; cls++) if (this.counts[cls] !== this.reported[cls]) return true
    return false
  }

  /** True when every class's count in `counts` has been taken. */
  private reportedUpTo(counts: ReadonlyArray<number>): boolean {
    for (let cls = 0; cls < counts.length; cls++) if (this.reported[cls]! < counts[cls]!) return false
    return true
  }

  /**
   * The counts of up to `max` classes that changed since they were last taken, as reported from
   * now on: whoever takes them sends them.
   */
  take(max: number = this.counts.length): Array<ReceiptCount> {
    const changed: Array<ReceiptCount> = []
    for (let cls = 0; cls < this.counts.length && changed.length < max; cls++) {
      const cumulative = this.counts[cls]!
      if (cumulative !== this.reported[cls]) {
        this.reported[cls] = cumulative
        changed.push({ cls: cls as PriorityClass, cumulative })
      }
    }
    if (changed.length > 0 && !this.unreported()) Queue.offerUnsafe(this.drained, undefined)
    return changed
  }
}
