import { Duration, Effect, Random, Schedule } from "effect"

export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  /** Relative jitter: a delay d becomes d * U(1 - jitter, 1 + jitter). */
  readonly jitter: number
}

/** A delay capped at `maxMs` and jittered by `random` in [0, 1). */
export const jitteredDelay = (policy: BackoffPolicy, delayMs: number, random: number): number =>
  Math.max(0, Math.round(Math.min(policy.maxMs, delayMs) * (1 + policy.jitter * (2 * random - 1))))

/**
 * Reconnect schedule: exponential from `initialMs`, capped at `maxMs`, jittered so that a
 * cluster that lost a node does not redial it in lockstep. Runs forever: a peer that is down
 * is retried until it comes back or is removed.
 */
export const reconnectSchedule = (policy: BackoffPolicy): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(Duration.millis(policy.initialMs), 2).pipe(
    Schedule.modifyDelay(({ duration }) =>
      Effect.map(Random.next, (random) => Duration.millis(jitteredDelay(policy, Duration.toMillis(duration), random)))
    )
  )

/**
 * `reconnectSchedule`, stepped by hand: each call of the returned effect is one failed dial
 * and gives the delay in ms before the next. The connector owns the backoff (rather than
 * retrying inside a lock) so that nobody holds its dial lock while it waits.
 */
export const backoffDelays = (policy: BackoffPolicy): Effect.Effect<Effect.Effect<number>> =>
  Effect.map(Schedule.toStep(reconnectSchedule(policy)), (step) =>
    Effect.clockWith((clock) => step(clock.currentTimeMillisUnsafe(), undefined)).pipe(
      Effect.map(([, delay]) => Duration.toMillis(delay)),
      Effect.orDie // the schedule never ends
    ))
