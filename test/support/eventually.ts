import { Clock, Effect } from "effect"

/**
 * Polls `effect` every 50 ms until `check` holds (for effects of background fibers and other
 * processes); fails naming `what`, with the last value, after `timeoutMs`.
 */
export const eventually = <A, E>(
  what: string,
  effect: Effect.Effect<A, E>,
  check: (a: A) => boolean,
  timeoutMs = 20_000
): Effect.Effect<A, E | Error> =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    while (true) {
      const value = yield* effect
      if (check(value)) return value
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* Effect.fail(new Error(`${what}: not reached within ${timeoutMs} ms; last: ${JSON.stringify(value)}`))
      }
      yield* Effect.sleep(50)
    }
  })

/** As `eventually`, for an effect that yields `undefined` until the value exists. */
export const eventuallyDefined = <A, E>(what: string, effect: Effect.Effect<A | undefined, E>, timeoutMs?: number) =>
  Effect.map(eventually(what, effect, (a) => a !== undefined, timeoutMs), (a) => a!)
