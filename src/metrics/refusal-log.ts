import { Clock, Effect, type LogLevel, Metric } from "effect"

/**
 * Counts refused input and logs it without letting the sender fill the log: the counter is
 * exact (one per refusal), the log gets at most one line per reason per interval. The first
 * refusal of an interval is logged at once with its detail; the ones after it are only counted,
 * and the next line says how many there were. A flood of refusals therefore costs one line per
 * reason per interval, however fast it comes.
 */
export interface RefusalLog<Reason extends string> {
  /**
   * Counts a refusal under `reason` (`count` of them when one input is refused as several, such
   * as the messages of a batch); logs `detail` unless a line for `reason` went out within the
   * interval.
   */
  readonly refuse: (reason: Reason, detail: string, count?: number) => Effect.Effect<void>
}

export interface RefusalLogOptions<Reason extends string> {
  /** The counter, incremented with the attribute `reason` (plus `attributes`). */
  readonly counter: Metric.Counter<number>
  /** The attribute that names the reason, when the counter calls it otherwise (default `reason`). */
  readonly reasonKey?: string
  readonly attributes?: Readonly<Record<string, string>>
  /** Least time between two lines of one reason. */
  readonly intervalMs: number
  /** Level of each reason's lines (default `Warn`): routine closes belong at `Debug`. */
  readonly levels?: Partial<Record<Reason, LogLevel.Severity>>
}

interface ReasonState {
  readonly counter: Metric.Counter<number>
  /** When the last line went out; -Infinity before the first. */
  loggedAt: number
  /** Refusals since that line that it does not tell of. */
  unlogged: number
}

export const makeRefusalLog = <Reason extends string>(options: RefusalLogOptions<Reason>): RefusalLog<Reason> => {
  const states = new Map<Reason, ReasonState>()
  const stateOf = (reason: Reason): ReasonState => {
    let state = states.get(reason)
    if (state === undefined) {
      const counter = Metric.withAttributes(options.counter, { ...options.attributes, [options.reasonKey ?? "reason"]: reason })
      state = { counter, loggedAt: Number.NEGATIVE_INFINITY, unlogged: 0 }
      states.set(reason, state)
    }
    return state
  }
  return {
    refuse: (reason, detail, n = 1) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const state = stateOf(reason)
        const count = Metric.update(state.counter, n)
        if (now - state.loggedAt < options.intervalMs) {
          state.unlogged += n
          return count
        }
        const earlier = state.unlogged
        state.loggedAt = now
        state.unlogged = 0
        const more = earlier === 0 ? "" : ` (and ${earlier} more refused for ${reason} since the last line)`
        const level = options.levels?.[reason] ?? "Warn"
        return Effect.andThen(count, Effect.logWithLevel(level)(`${detail}${more}`).pipe(Effect.annotateLogs({ reason })))
      })
  }
}
