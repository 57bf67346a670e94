import { Effect, Metric } from "effect"

/** Current value of one labelled counter series. */
export const counter = (metric: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => Number(state.count))

/** Polls `check` until it holds (for effects of background fibers), or fails after `tries`. */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, check: (a: A) => boolean, tries = 200) =>
  Effect.gen(function*() {
    for (let i = 0; i < tries; i++) {
      const value = yield* effect
      if (check(value)) return value
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.die(new Error("condition not reached"))
  })
