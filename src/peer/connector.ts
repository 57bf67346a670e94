import { Cause, Clock, Deferred, Effect, Exit, Metric, PubSub, Result, Scope, Semaphore } from "effect"
import { className, type PriorityClass } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { ConnectFailed, describeCause, type TransportKind } from "../domain/errors.ts"
import type { TransportEvent } from "../domain/events.ts"
import type { ConnectorState } from "../domain/peer-status.ts"
import { backoffDelays, type BackoffPolicy } from "./backoff.ts"
import type { Link, LinkSession } from "./link.ts"

interface Live {
  readonly session: LinkSession
  readonly scope: Scope.Closeable
}


/** While another fiber dials, how often a caller that wants the link looks again. */
const BUSY_POLL_MS = 5

/** A send after this long without anyone wanting the link ends its backoff (see `wakeIfIdle`). */
const IDLE_REDIAL_MS = 1000

/** Told when a link comes up or goes down (a failed dial counts as down): routing listens. */
export type LinkStateListener = (kind: TransportKind, up: boolean, cause: string) => Effect.Effect<void>

/**
 * Owns the one live session of a peer on one transport. Writers (and, in dual mode, the
 * supervisor's keeper) ask it for the session; the first to ask after a loss dials (one dial
 * at a time), and the others never queue behind that dial: `tryAcquire` fails at once,
 * `acquireWhile` looks again shortly and leaves if its class was routed elsewhere meanwhile.
 * Failed dials back off per `reconnectSchedule`; the backoff is the connector's, so the link
 * is dialled once per step however many fibers want it, and nobody holds the lock while
 * waiting it out. A session that fails or closes is invalidated once, however many writers
 * notice it.
 */
export class Connector {
  private live: Live | undefined
  private failures = 0
  private lastError: string | undefined
  private sessions = 0
  /** The last dial's failure, while no session is up. */
  private failedDial: ConnectFailed | undefined
  /** Dials that ended (either way): a caller that waited for the lock sees if one ended meanwhile. */
  private dials = 0
  /** A dial holds the lock (set and cleared synchronously around it). */
  private dialInFlight = false
  /** Clock time before which no new dial starts (the backoff after the last failure). */
  private retryAt = 0
  /** The reconnect schedule of the current run of failures; a new one after each success. */
  private backoff: Effect.Effect<number> | undefined
  /** Clock time of the last failed dial: a failure long after it starts a new schedule. */
  private lastFailureAt = 0
  /** Fibers in `acquireWhile` (waiting for a dial or a backoff). */
  private waiting = 0
  /** Completed by `wake`: fibers sleeping out a backoff dial at once. */
  private wakeup: Deferred.Deferred<void>

  private constructor(
    readonly peer: NodeId,
    private readonly link: Link,
    private readonly policy: BackoffPolicy,
    private readonly scope: Scope.Scope,
    private readonly dialLock: Semaphore.Semaphore,
    private readonly events: PubSub.PubSub<TransportEvent>,
    private readonly onLinkState: LinkStateListener
  ) {
    this.wakeup = Deferred.makeUnsafe<void>()
  }

  static make(
    peer: NodeId,
    link: Link,
    policy: BackoffPolicy,
    events: PubSub.PubSub<TransportEvent>,
    onLinkState: LinkStateListener = () => Effect.void
  ): Effect.Effect<Connector, never, Scope.Scope> {
    return Effect.gen(function*() {
      const scope = yield* Effect.scope
      const connector = new Connector(peer, link, policy, scope, yield* Semaphore.make(1), events, onLinkState)
      yield* Effect.addFinalizer(() => Effect.andThen(connector.closeLive, connector.setLinkUp(false)))
      yield* connector.setLinkUp(false)
      return connector
    })
  }

  /** The `raft_transport_link_up` series of this peer and transport. */
  private setLinkUp(up: boolean): Effect.Effect<void> {
    return Metric.update(Metric.withAttributes(M.linkUp, { peer: String(this.peer), transport: this.link.kind }), up ? 1 : 0)
  }

  get kind(): TransportKind {
    return this.link.kind
  }

  get state(): ConnectorState {
    if (this.live !== undefined) return "connected"
    if (this.dialInFlight) return "connecting"
    return this.failures > 0 ? "backoff" : "idle"
  }

  get consecutiveFailures(): number {
    return this.failures
  }

  get lastFailure(): string | undefined {
    return this.lastError
  }

  /**
   * Connected, and the peer heard from within `ms` (or the transport cannot tell): a link
   * that is up by its state but may have just gone dark is not yet trusted with traffic.
   */
  heardWithin(ms: number): boolean {
    const heardAt = this.live?.session.heardAt
    if (this.live === undefined) return false
    return heardAt === undefined || performance.now() - heardAt() <= ms
  }

  /** Messages written on the current session and not yet confirmed by the peer. */
  unconfirmed(): number {
    return this.live?.session.ledger.unconfirmed() ?? 0
  }

  /** The current session's RTT, if connected and known. */
  rttMs(): number | undefined {
    return this.live?.session.rttMs()
  }

  /** The live session, dialling (after any backoff) until one is established. */
  readonly acquire: Effect.Effect<LinkSession> = Effect.flatMap(
    this.acquireWhile(),
    (session) => session === undefined ? Effect.die("unreachable: acquire is always wanted") : Effect.succeed(session)
  )

  /**
   * Like `acquire`, but a writer whose class has been routed elsewhere meanwhile stops
   * waiting: while another fiber dials, and during the backoff after a failed dial, `wanted()` is
   * asked every few ms, and `undefined` means "not wanted any
   * more". Without it a writer would sit in this link's backoff while another link it is now
   * routed to is up. Without `wanted` (always wanted) there is nothing to look at: it waits
   * for the dial lock and sleeps each backoff whole.
   */
  acquireWhile(wanted?: () => boolean): Effect.Effect<LinkSession | undefined> {
    const self = this
    return Effect.gen(function*() {
      yield* self.wakeIfIdle
      self.waiting++
      yield* Effect.addFinalizer(() => Effect.sync(() => void self.waiting--))
      while (true) {
        // Someone else is dialling: look again shortly instead of queueing for the lock, so a
        // route change meanwhile is followed at once (a dial to a peer that is going away can
        // take as long as its connect timeout).
        if (wanted !== undefined && self.live === undefined && self.dialInFlight) {
          yield* Effect.sleep(BUSY_POLL_MS)
          if (!wanted()) return undefined
          continue
        }
        const attempt = yield* Effect.result(self.attempt)
        if (Result.isSuccess(attempt)) return attempt.success
        // The backoff, looked at every few ms: a route change meanwhile is followed at once.
        while (true) {
          if (wanted !== undefined && !wanted()) return undefined
          const left = self.retryAt - (yield* Clock.currentTimeMillis)
          if (left <= 0) break
          yield* Effect.raceFirst(
            Effect.sleep(wanted === undefined ? left : Math.min(left, BUSY_POLL_MS)),
            Deferred.await(self.wakeup)
          )
        }
      }
    }).pipe(Effect.scoped)
  }

  /**
   * A send that finds the link in a backoff nobody has waited on since `IDLE_REDIAL_MS` after
   * the failure dials at once: a follower's link to another follower carries nothing for whole
   * terms, and the first vote request on it must not sleep out a backoff that was set while
   * the peer was down long ago. Links in steady use (a leader's heartbeats, a dual-mode
   * keeper) always have a waiter and keep their backoff.
   */
  private readonly wakeIfIdle: Effect.Effect<void> = Effect.suspend(() => {
    if (this.live !== undefined || this.waiting > 0 || this.retryAt === 0) return Effect.void
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now < this.retryAt && now - this.lastFailureAt >= Math.min(this.policy.maxMs, IDLE_REDIAL_MS)
        ? this.wake(`first send after ${now - this.lastFailureAt} ms without one`)
        : Effect.void)
  })

  /**
   * Ends the backoff: the peer has shown it is back (it connected to this node, on any
   * transport), so the next dial goes out now instead of after up to `max_backoff_ms`, and a
   * failure of that dial starts the schedule again from `initial_backoff_ms`. A restarted
   * peer's first vote request then gets its answer within a dial, not a backoff (in a 3-node
   * gRPC cluster the survivor's backoff held a new leader back 2.9 s at the median). A no-op
   * while connected or dialling.
   */
  wake(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.live !== undefined || this.failures === 0 || this.retryAt === 0) return Effect.void
      this.retryAt = 0
      this.backoff = undefined
      const woken = this.wakeup
      this.wakeup = Deferred.makeUnsafe<void>()
      const labels = { peer: String(this.peer), transport: this.link.kind }
      return Effect.all([
        Deferred.succeed(woken, undefined),
        Metric.update(Metric.withAttributes(M.reconnectWakeups, labels), 1),
        Effect.logInfo(`peer ${this.peer} over ${this.link.kind}: backoff ended early: ${reason}`).pipe(Effect.annotateLogs(labels))
      ], { discard: true })
    })
  }

  /**
   * One attempt, no waiting: the session if connected, else the outcome of a new dial. While
   * another fiber dials, or during a backoff, it fails at once.
   */
  readonly tryAcquire: Effect.Effect<LinkSession, ConnectFailed> = Effect.suspend(() =>
    this.live === undefined && this.dialInFlight
      ? Effect.fail(this.failedDial ?? new ConnectFailed({ peer: this.peer, transport: this.link.kind, cause: "a dial is in progress" }))
      : this.attempt
  )

  /**
   * The live session or one dial's outcome. During a backoff nobody dials; a caller that got
   * the lock just after another fiber's dial ended (both had found no dial in flight) takes
   * that dial's failure as its own rather than dialling again at once.
   */
  private readonly attempt: Effect.Effect<LinkSession, ConnectFailed> = Effect.suspend(() => {
    if (this.live !== undefined) return Effect.succeed(this.live.session)
    const seen = this.dials
    return Semaphore.withPermits(this.dialLock, 1)(Effect.clockWith((clock) => {
      const failure = this.failedDial
      if (this.live !== undefined) return Effect.succeed(this.live.session)
      if (failure !== undefined && (this.dials !== seen || clock.currentTimeMillisUnsafe() < this.retryAt)) return Effect.fail(failure)
      this.dialInFlight = true
      return Effect.ensuring(this.dialOnce, Effect.sync(() => void (this.dialInFlight = false)))
    }))
  })

  /** One dial; only `attempt` runs it, holding the lock with `dialInFlight` set. */
  private readonly dialOnce: Effect.Effect<LinkSession, ConnectFailed> = Effect.suspend(() => {
    const labels = { peer: String(this.peer), transport: this.link.kind }
    const that = this
    return Effect.gen(function*() {
      yield* Metric.update(Metric.withAttributes(M.connectionAttempts, labels), 1)
      const scope = yield* Scope.fork(that.scope)
      const exit = yield* Effect.exit(Scope.provide(scope)(that.link.connect))
      if (Exit.isFailure(exit)) {
        yield* Scope.close(scope, exit)
        that.failures++
        that.dials++
        yield* Metric.update(Metric.withAttributes(M.connectionFailures, { ...labels, kind: "connect" }), 1)
        const error = Cause.squash(exit.cause)
        that.lastError = describeCause(error)
        that.failedDial = error instanceof ConnectFailed
          ? error
          : new ConnectFailed({ peer: that.peer, transport: that.link.kind, cause: that.lastError })
        const now = yield* Clock.currentTimeMillis
        // A dial after a long quiet spell (nothing wanted the link) is a new run of failures:
        // the peer may have been back for a while, and its backoff should not be the one it
        // reached while it was down.
        if (now - that.lastFailureAt > 2 * that.policy.maxMs) that.backoff = undefined
        that.lastFailureAt = now
        that.backoff ??= yield* backoffDelays(that.policy)
        that.retryAt = now + (yield* that.backoff)
        yield* (that.failures === 1 ? Effect.logWarning : Effect.logDebug)(
          `connect to peer ${that.peer} over ${that.link.kind} failed (attempt ${that.failures}); backing off`
        ).pipe(Effect.annotateLogs({ ...labels, cause: that.lastError }))
        yield* that.onLinkState(that.link.kind, false, that.lastError)
        return yield* Effect.failCause(exit.cause)
      }
      const session = exit.value
      that.live = { session, scope }
      that.failures = 0
      that.dials++
      that.lastError = undefined
      that.failedDial = undefined
      that.retryAt = 0
      that.backoff = undefined
      if (that.sessions++ > 0) yield* Metric.update(Metric.withAttributes(M.reconnects, labels), 1)
      yield* that.setLinkUp(true)
      yield* that.onLinkState(that.link.kind, true, "connected")
      yield* Effect.logInfo(`connected to peer ${that.peer} over ${that.link.kind}`).pipe(Effect.annotateLogs(labels))
      yield* PubSub.publish(that.events, { _tag: "Connected", peer: that.peer, transport: that.link.kind })
      // Watch the connection so a close is noticed even while no writer is writing.
      yield* Effect.forkIn(
        Effect.flatMap(session.closed, (reason) => that.invalidate(session, `connection closed: ${reason}`)),
        scope,
        { startImmediately: true }
      )
      return session
    })
  })

  /**
   * Records `count` messages of `cls` handed to a write of `session`, whatever its outcome,
   * and returns how many to count as lost at once (the session was lost before the write
   * ended). The rest are counted when the session is lost, unless its peer confirmed them.
   */
  noteWritten(session: LinkSession, cls: PriorityClass, count: number): number {
    return session.ledger.written(cls, count)
  }

  /** Counts what `session`'s peer never confirmed, under `reason`, and closes its ledger. */
  private countUnconfirmed(session: LinkSession, reason: "link_failed" | "peer_removed"): Effect.Effect<void> {
    return Effect.suspend(() => {
      const lost = session.ledger.close()
      const total = lost.reduce((a, b) => a + b, 0)
      if (total === 0) return Effect.void
      return Effect.all([
        ...lost.flatMap((count, cls) =>
          count === 0 ? [] : [
            Metric.update(
              Metric.withAttributes(M.messagesDropped, { peer: String(this.peer), class: className(cls as PriorityClass), reason }),
              count
            )
          ]
        ),
        Effect.logWarning(
          `${total} message(s) written to the ${reason === "link_failed" ? "lost" : "closed"} ${this.link.kind} link to peer ${this.peer} were never confirmed${
            session.ledger.acknowledged ? " by its acknowledgements" : ""
          }; counted as lost (${reason})`
        )
      ], { discard: true })
    })
  }

  /** Drops `session` if it is still the live one; later callers dial a new one. */
  invalidate(session: LinkSession, cause: unknown): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.live?.session !== session) return Effect.void
      const reason = describeCause(cause)
      const labels = { peer: String(this.peer), transport: this.link.kind }
      this.lastError = reason
      return Effect.all([
        this.countUnconfirmed(session, "link_failed"),
        Metric.update(Metric.withAttributes(M.connectionFailures, { ...labels, kind: "lost" }), 1),
        Effect.logWarning(`link to peer ${this.peer} over ${this.link.kind} lost: ${reason}`).pipe(Effect.annotateLogs(labels)),
        PubSub.publish(this.events, { _tag: "Disconnected", peer: this.peer, transport: this.link.kind, cause: reason }),
        this.dropLive(reason),
        this.setLinkUp(false),
        this.onLinkState(this.link.kind, false, reason)
      ], { discard: true })
    })
  }

  /**
   * The peer is closing: its session ends here, not in the background, so what it confirms
   * while closing (gRPC half-closes and waits for the last acknowledgements) is known before
   * the rest is counted.
   */
  private readonly closeLive: Effect.Effect<void> = Effect.suspend(() => {
    const live = this.live
    if (live === undefined) return Effect.void
    this.live = undefined
    return Effect.andThen(Scope.close(live.scope, Exit.succeed("peer closed")), this.countUnconfirmed(live.session, "peer_removed"))
  })

  private dropLive(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const live = this.live
      if (live === undefined) return Effect.void
      this.live = undefined
      // Closing runs the session's finalizers (close the connection) and interrupts its
      // watcher; done in the background so an invalidating writer never waits on it.
      return Effect.asVoid(Effect.forkDetach(Scope.close(live.scope, Exit.succeed(reason))))
    })
  }
}
