import { Effect, type Scope } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"

/**
 * The longest this process's event loop was held up while the scope is open, in ms. Timing
 * bounds in tests that share a loaded machine add it: a timer-driven detection on a loop that
 * was stalled for 200 ms (seen at a load average of 12 on 2 cores) is late by as much,
 * through no fault of the code under test.
 */
export const watchLoopDelay = (): Effect.Effect<() => number, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const histogram = monitorEventLoopDelay({ resolution: 5 })
        histogram.enable()
        return histogram
      }),
      (histogram) => Effect.sync(() => histogram.disable())
    ),
    (histogram) => () => histogram.max / 1e6
  )
