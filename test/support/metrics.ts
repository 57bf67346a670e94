import { Effect, Metric } from "effect"

/** Current value of one labelled counter series. */
export const counter = (metric: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => Number(state.count))
