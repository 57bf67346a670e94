import { Effect, Metric, Queue, type Scope } from "effect"
import * as M from "../metrics/metrics.ts"
import type { NodeId } from "../message/types.ts"
import { type ActivitySample, DarkWatch } from "../peer/dark-watch.ts"
import type { IrohConnection } from "./host.ts"
import { irohCall, IrohFailure } from "./protocol.ts"

/** How often the dark watch reads the counters after a wait's first sample, at most. */
const DARK_SAMPLE_MS = 25

export interface DarkSampler {
  /**
   * Call right before handing the connection something the peer must acknowledge (a write, a
   * ping), in the same synchronous step: a send that starts a wait reads the counters first.
   * `answeredLate`: the peer acknowledges it only with its next write here (`DarkWatch.noteSent`).
   */
  readonly noteSent: (answeredLate?: boolean) => void
  /** `performance.now()` when an answer was last seen (see `DarkWatch.heardAt`). */
  readonly heardAt: () => number
  /**
   * The peer showed it took what came on this connection, by other means than the counters (an
   * acknowledgement, a ping's echo): the wait is answered without a read (`DarkWatch.answered`).
   */
  readonly answered: () => void
}

/**
 * Drives a `DarkWatch` for one connection in the current scope: the counters are read only
 * while a send waits for an answer (a baseline right before the send, then from the wait's
 * first sample on, every `DARK_SAMPLE_MS`), and nothing runs while the connection has nothing
 * outstanding. An answer that comes another way ends the wait without a read. On an idle
 * cluster a leader's heartbeat is answered so by the acknowledgement riding on the follower's
 * answer, and the follower's answer, a late-answered send, by the acknowledgement riding on the
 * next heartbeat: each costs its baseline read only. A fiber reading every connection 40 times
 * a second cost an idle cluster a quarter of its CPU.
 */
export const forkDarkSampler = (options: {
  readonly peer: NodeId
  readonly connection: IrohConnection
  readonly darkAfterMs: number
  /** How late the peer answers a send noted `answeredLate` (`DarkWatchOptions.lateAnswerMs`). */
  readonly lateAnswerMs?: number | undefined
  /** Stop (the connection closed for another reason). */
  readonly stopped: () => boolean
  /** The path is dark; the sampler then stops. */
  readonly onDark: (reason: string) => Effect.Effect<void>
}): Effect.Effect<DarkSampler, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { connection, peer } = options
    const watch = new DarkWatch({ darkAfterMs: options.darkAfterMs, lateAnswerMs: options.lateAnswerMs }, performance.now())
    const sampleMs = Math.max(5, Math.min(DARK_SAMPLE_MS, Math.floor(options.darkAfterMs / 8)))
    const doorbell = yield* Queue.sliding<void>(1)
    /** Rung when a late wait (`DarkWatch.waitingLate`) is answered or stops being late. */
    const bell = yield* Queue.sliding<void>(1)
    /** The counters read right before the send that started the current wait, not yet applied. */
    let baseline: Promise<ActivitySample> | undefined

    const read = (activity: () => Promise<ActivitySample>) => irohCall(activity, IrohFailure.of)

    /**
     * Until the current wait's first sample is due (`DarkWatch.firstSampleAt`). A late wait
     * (`DarkWatch.waitingLate`) is cut short by its answer, or by a send that is not late, which
     * moves its first sample earlier: its timer would otherwise wake an idle follower's loop once
     * per heartbeat for nothing. Any other wait sleeps out its time: cut short, every put's
     * append under load would run a cycle of this fiber, where one timer serves the sends of
     * 25 ms.
     */
    const untilFirstSample = Effect.gen(function*() {
      while (true) {
        const firstAt = watch.firstSampleAt()
        const ms = firstAt === undefined ? 0 : firstAt - performance.now()
        if (ms <= 0) return
        if (!watch.waitingLate) return yield* Effect.sleep(ms)
        yield* Effect.timeoutOption(Queue.take(bell), ms)
      }
    })

    /**
     * Waits for an answer until the wait's first sample is due, then samples every `sampleMs`,
     * until the wait is answered (true) or the path is dark (false).
     */
    const awaitAnswer = Effect.gen(function*() {
      if (!watch.waiting) return true // answered before the baseline was applied
      yield* untilFirstSample
      while (!options.stopped()) {
        if (!watch.waiting) return true // answered meanwhile, without this connection's counters
        // The time of asking, not of the answer: the counters are at least that recent.
        const askedAt = performance.now()
        const verdict = watch.sample(askedAt, yield* read(() => connection.activity()))
        if (verdict._tag === "Dark") {
          const reason = `dark path: nothing received for ${Math.round(verdict.silentMs)} ms after a send`
          yield* Metric.update(Metric.withAttributes(M.darkPaths, { peer: String(peer) }), 1)
          yield* Effect.logWarning(`iroh link to peer ${peer}: ${reason}`)
          yield* options.onDark(reason)
          return false
        }
        if (!watch.waiting) return true
        yield* Effect.sleep(sampleMs)
      }
      return false
    })

    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (!options.stopped()) {
          const before = baseline
          if (before === undefined) {
            yield* Queue.take(doorbell)
            continue
          }
          baseline = undefined
          watch.rebase(yield* read(() => before))
          if (!(yield* awaitAnswer)) return
        }
      }).pipe(
        // The counters fail only once the connection is gone, which its close reports.
        Effect.catch((error) => Effect.logDebug(`dark watch of peer ${peer} ended: ${error.message}`)),
        Effect.annotateLogs({ peer: String(peer), transport: "iroh" })
      ),
      { startImmediately: true }
    )

    /** Wakes `untilFirstSample` when the late wait it sleeps on was answered or turned prompt. */
    const ringIfNoLongerLate = (wasLate: boolean) => {
      if (wasLate && !watch.waitingLate) Queue.offerUnsafe(bell, undefined)
    }

    return {
      noteSent: (answeredLate = false) => {
        const wasLate = watch.waitingLate
        if (!watch.noteSent(performance.now(), answeredLate)) {
          ringIfNoLongerLate(wasLate)
          return
        }
        const reading = connection.activity()
        // Awaited by the sampler, which ends on its failure; never left unhandled meanwhile.
        reading.catch(() => undefined)
        baseline = reading
        Queue.offerUnsafe(doorbell, undefined)
      },
      heardAt: () => watch.heardAt,
      answered: () => {
        const wasLate = watch.waitingLate
        watch.answered(performance.now())
        ringIfNoLongerLate(wasLate)
      }
    }
  })
