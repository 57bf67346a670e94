import type { PriorityClass } from "../message/priority.ts"

/**
 * What one session has been handed and what its peer confirmed, per class: when the session
 * ends, the messages never confirmed are the ones to count as lost (`link_failed`). A
 * completed write only means the transport buffered the bytes; only the peer can say what it
 * delivered.
 */
export interface DeliveryLedger {
  /** True when the peer acknowledges what it delivered; false when only probes confirm (older peers). */
  readonly acknowledged: boolean
  /**
   * `count` messages of `cls` were handed to a write of this session, whatever its outcome.
   * Returns how many to count as lost at once: those of a write that ended after the ledger
   * was closed and that no acknowledgement covers.
   */
  written(cls: PriorityClass, count: number): number
  /** Messages written on this session that the peer has not confirmed yet (0 once closed). */
  unconfirmed(): number
  /**
   * Ends the ledger when its session is lost: per class, the messages written and never
   * confirmed. Later calls return zeros.
   */
  close(): ReadonlyArray<number>
}

const zeros = (): Array<number> => [0, 0, 0, 0]
const sum = (counts: ReadonlyArray<number>): number => counts[0]! + counts[1]! + counts[2]! + counts[3]!

/** Cumulative counts of one session, all classes together: what the probe reads (`peer/probe.ts`). */
export interface ConfirmationCounts {
  /** Messages handed to writes that have ended. */
  readonly written: () => number
  /** Messages the peer confirmed it took. */
  readonly confirmed: () => number
}

/**
 * Confirmation by the peer's acknowledgements: per class stream, the receiver reports the
 * cumulative number of messages it has handled (handed to the application, or dropped there
 * with a counted reason). Counts, not times: a message is confirmed exactly when the peer
 * said it was taken, however backed up the streams are.
 *
 * A write is recorded when it ends, so an acknowledgement can run ahead of the writes it
 * covers (the receiver took the frames before the sender's write call returned). What runs
 * ahead at close is kept as a surplus for the writes still ending.
 */
export class AckLedger implements DeliveryLedger {
  readonly acknowledged = true
  private readonly sent = zeros()
  private readonly acked = zeros()
  /** Set by `close`: per class, acknowledgements beyond the writes recorded by then. */
  private surplus: Array<number> | undefined

  readonly totals: ConfirmationCounts = { written: () => sum(this.sent), confirmed: () => sum(this.acked) }

  written(cls: PriorityClass, count: number): number {
    const surplus = this.surplus
    if (surplus === undefined) {
      this.sent[cls]! += count
      return 0
    }
    const covered = Math.min(surplus[cls]!, count)
    surplus[cls]! -= covered
    return count - covered
  }

  /** The peer's cumulative count for `cls`; ignored once closed, or when it does not advance. */
  ack(cls: PriorityClass, cumulative: number): void {
    if (this.surplus === undefined && cumulative > this.acked[cls]!) this.acked[cls] = cumulative
  }

  /** Messages of `cls` the peer has confirmed so far. */
  confirmed(cls: PriorityClass): number {
    return this.acked[cls]!
  }

  unconfirmed(): number {
    if (this.surplus !== undefined) return 0
    return this.sent.reduce((n, sent, cls) => n + Math.max(0, sent - this.acked[cls]!), 0)
  }

  close(): ReadonlyArray<number> {
    if (this.surplus !== undefined) return zeros()
    this.surplus = this.acked.map((acked, cls) => Math.max(0, acked - this.sent[cls]!))
    return this.sent.map((sent, cls) => Math.max(0, sent - this.acked[cls]!))
  }
}

/**
 * Confirmation by probes, for peers that send no acknowledgements: a write is confirmed once
 * a probe sent after it was answered. Weaker on two counts: an answered probe says the
 * connection was alive, not that the class streams were read (it travels on its own stream),
 * and writes since the last answered probe are counted as lost even when they arrived.
 */
export class ProbeLedger implements DeliveryLedger {
  readonly acknowledged = false
  /** Writes not yet confirmed by an answered probe (oldest first). */
  private readonly pending: Array<{ readonly at: number; readonly cls: PriorityClass; readonly count: number }> = []
  private closed = false

  /** `confirmedAt`: `performance.now()` when the last answered probe was sent (0 before any). */
  constructor(private readonly confirmedAt: () => number) {}

  written(cls: PriorityClass, count: number): number {
    if (this.closed) return count
    this.dropConfirmed()
    this.pending.push({ at: performance.now(), cls, count })
    return 0
  }

  unconfirmed(): number {
    if (this.closed) return 0
    this.dropConfirmed()
    return this.pending.reduce((n, w) => n + w.count, 0)
  }

  close(): ReadonlyArray<number> {
    const lost = zeros()
    if (this.closed) return lost
    this.closed = true
    this.dropConfirmed()
    for (const w of this.pending) lost[w.cls]! += w.count
    this.pending.length = 0
    return lost
  }

  private dropConfirmed(): void {
    const confirmed = this.confirmedAt()
    while (this.pending.length > 0 && this.pending[0]!.at <= confirmed) this.pending.shift()
  }
}
