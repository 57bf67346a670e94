/**
 * Dark-path detection from what the transport already counts, instead of missed pings.
 *
 * QUIC acknowledges every ack-eliciting packet within its max ack delay (25 ms), in the
 * peer's network stack rather than its application thread. So once this side has sent
 * something that must be answered (a write or a ping) and datagrams went out after it, a
 * live path brings datagrams back within about a round trip; a path that brings nothing back
 * for `darkAfterMs` is dark. Pings on a timeout needed `probe_failures × probe_timeout_ms`
 * (3 s by default, 4 s measured) and, on a path that came back, failed anyway while QUIC sat
 * out its retransmission backoff (a false dark path 1.2-1.4 s into an up period); datagrams
 * coming back say the path is up the moment it is.
 *
 * Pure state: the owner feeds it sends and counter samples with their clock times. Samples
 * are needed only while a send waits for an answer: the owner takes a baseline right before
 * the send that starts a wait (`noteSent` says which one), then samples from
 * `firstSampleAfterMs` on until `waiting` is false, and reads nothing while the connection has
 * nothing outstanding.
 */
export interface DarkWatchOptions {
  /** Nothing received for this long after an unanswered send declares the path dark. */
  readonly darkAfterMs: number
  /**
   * How long the peer may take to answer a send whose answer comes late by design (see
   * `noteSent`): its acknowledgement waits for the peer's next write to this side. Default 0:
   * every wait is sampled from `firstSampleAfterMs` as usual.
   */
  readonly lateAnswerMs?: number | undefined
}

/** Datagram counters of a connection at one moment. */
export interface ActivitySample {
  readonly txDatagrams: number
  readonly rxDatagrams: number
  /**
   * The transport's own RTT estimate, if it has one. QUIC's, measured in its network stack,
   * not a ping's: a ping's round trip also holds both event loops' delays (200 ms and more
   * on a loaded machine), which would raise the threshold for no reason.
   */
  readonly rttMs?: number | undefined
}

/** Where a path stands after a sample: fine, or dark with how long it has been silent. */
export type DarkVerdict =
  | { readonly _tag: "Alive" }
  | { readonly _tag: "Dark"; readonly silentMs: number }

const alive: DarkVerdict = { _tag: "Alive" }

/** QUIC's max ack delay: a lone ack-eliciting packet is acknowledged within it (quinn's default). */
const QUIC_MAX_ACK_DELAY_MS = 25
/** Added to the ack delay and the round trip before a wait's first sample (timers run late). */
const FIRST_SAMPLE_SPARE_MS = 5

/**
 * The floor on the silence that counts as dark, given the path's smoothed RTT: two round
 * trips plus the ack delay of both ends, so a slow but live path is never taken for a dark one.
 */
export const darkAfterFor = (configuredMs: number, rttMs: number | undefined): number =>
  rttMs === undefined ? configuredMs : Math.max(configuredMs, Math.ceil(2 * rttMs + 50))

export class DarkWatch {
  private rx: number | undefined
  private tx: number | undefined
  /** When the first send not yet followed by anything received was made. */
  private unansweredSince: number | undefined
  /** `tx` as of the last sample before `unansweredSince`: datagrams must go out after it. */
  private txAtUnanswered: number | undefined
  private lastHeardAt: number
  /** The transport's RTT as of the last reading, for the threshold. */
  private rttMs: number | undefined
  /** Every send of the current wait is answered late (`noteSent`'s `late`). */
  private lateWait = false

  /** `now`: when the connection was established (it was heard from then). */
  constructor(private readonly options: DarkWatchOptions, now: number) {
    this.lastHeardAt = now
  }

  /** When a sample last saw datagrams arrive: the last answer to a send, as samples run only then. */
  get heardAt(): number {
    return this.lastHeardAt
  }

  /** A send is waiting for anything to come back. */
  get waiting(): boolean {
    return this.unansweredSince !== undefined
  }

  /**
   * Something that the peer must acknowledge is handed to the connection at `now`. True when
   * it starts a wait: the owner then reads the counters before handing it over and passes
   * them to `rebase`, so that nothing received before the send counts as its answer.
   *
   * `late`: the peer's answer to this send comes late by design (a follower's heartbeat answer,
   * whose acknowledgement rides on the leader's next heartbeat). A wait of such sends only is
   * first sampled once that answer is overdue (`lateAnswerMs`), and is expected to end by an
   * answer that comes another way (`answered`) rather than by a sample of the counters. A send
   * that is not late, made while such a wait lasts, brings its first sample back to the usual
   * time (`firstSampleAt` moves earlier).
   */
  noteSent(now: number, late = false): boolean {
    if (this.unansweredSince !== undefined) {
      if (!late) this.lateWait = false
      return false
    }
    this.unansweredSince = now
    this.txAtUnanswered = this.tx
    this.lateWait = late && (this.options.lateAnswerMs ?? 0) > 0
    return true
  }

  /** The current wait is of late-answered sends only (see `noteSent`): its first sample is far off. */
  get waitingLate(): boolean {
    return this.unansweredSince !== undefined && this.lateWait
  }

  /**
   * The counters as of just before the send that started the wait. Datagrams received since
   * the previous sample arrived before that send, at a time nobody knows, so they neither
   * answer it nor move `heardAt`.
   */
  rebase(activity: ActivitySample): void {
    this.rx = activity.rxDatagrams
    this.tx = activity.txDatagrams
    this.rttMs = activity.rttMs
    if (this.unansweredSince !== undefined) this.txAtUnanswered = activity.txDatagrams
  }

  /**
   * The peer confirmed, by another way than this connection's datagram counters, that it took
   * what was sent on it (an acknowledgement, a ping's echo): the wait is answered.
   */
  answered(now: number): void {
    this.lastHeardAt = now
    this.unansweredSince = undefined
    this.txAtUnanswered = undefined
  }

  /**
   * How long after its send a wait's first sample is taken: once QUIC's acknowledgement of a lone
   * packet can be back (its max ack delay, a round trip and a few ms to spare), or at the
   * threshold if that comes first. A sample before then finds nothing unless the peer wrote back
   * on this connection, and an answer that comes another way (`answered`) says that without a
   * read. Later samples follow at the owner's pace: a wait must end soon after the path answers,
   * or sends made meanwhile start no wait of their own and a path that goes dark after them is
   * found that much later.
   */
  firstSampleAfterMs(): number {
    const answerDelay = this.lateWait ? Math.max(QUIC_MAX_ACK_DELAY_MS, this.options.lateAnswerMs ?? 0) : QUIC_MAX_ACK_DELAY_MS
    const ackBack = answerDelay + FIRST_SAMPLE_SPARE_MS + Math.ceil(this.rttMs ?? 0)
    return Math.min(ackBack, darkAfterFor(this.options.darkAfterMs, this.rttMs))
  }

  /** When the current wait's first sample is due (`firstSampleAfterMs` after its send); undefined when nothing waits. */
  firstSampleAt(): number | undefined {
    return this.unansweredSince === undefined ? undefined : this.unansweredSince + this.firstSampleAfterMs()
  }

  /**
   * A sample of the counters at `now`. Dark when a send has waited `darkAfterMs` (raised for
   * a slow path, see `darkAfterFor`) with datagrams sent since and none received.
   */
  sample(now: number, activity: ActivitySample): DarkVerdict {
    const heard = this.rx !== undefined && activity.rxDatagrams > this.rx
    this.rx = activity.rxDatagrams
    this.tx = activity.txDatagrams
    this.rttMs = activity.rttMs
    if (heard) {
      this.lastHeardAt = now
      this.unansweredSince = undefined
      this.txAtUnanswered = undefined
      return alive
    }
    const since = this.unansweredSince
    if (since === undefined) return alive
    // Nothing went out yet (flow control, congestion window): nothing can have come back, and
    // the wait for an answer starts no earlier than now.
    if (this.txAtUnanswered !== undefined && activity.txDatagrams <= this.txAtUnanswered) {
      this.unansweredSince = now
      return alive
    }
    const silentMs = now - since
    return silentMs >= darkAfterFor(this.options.darkAfterMs, activity.rttMs) ? { _tag: "Dark", silentMs } : alive
  }
}
