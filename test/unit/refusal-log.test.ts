/**
 * `makeRefusalLog`: the counter is exact, the log gets at most one line per reason per
 * interval, and the next line tells how many refusals the suppressed ones were.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, type LogLevel, Metric, References } from "effect"
import { TestClock } from "effect/testing"
import { makeRefusalLog } from "../../src/metrics/refusal-log.ts"
import { counter } from "../support/metrics.ts"

const refusals = Metric.counter("test_refusal_log_total", { description: "refusal-log test" })

describe("refusal log", () => {
  it.effect("counts every refusal, logs one line per reason per interval with the count of the rest", () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly level: LogLevel.LogLevel; readonly text: string }> = []
      const capture = Logger.make((o) => {
        lines.push({ level: o.logLevel, text: (o.message as ReadonlyArray<unknown>).map(String).join(" ") })
      })
      const log = makeRefusalLog<"a" | "b">({ counter: refusals, intervalMs: 1000, levels: { b: "Debug" } })
      const refuseMany = (reason: "a" | "b", n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => log.refuse(reason, `${reason} #${i}`), { discard: true })

      yield* Effect.gen(function*() {
        yield* refuseMany("a", 500)
        yield* refuseMany("b", 3)
        yield* TestClock.adjust(999)
        yield* refuseMany("a", 10)
        yield* TestClock.adjust(1)
        yield* refuseMany("a", 2)
      }).pipe(Effect.provide(Logger.layer([capture])), Effect.provideService(References.MinimumLogLevel, "All"))

      expect(yield* counter(refusals, { reason: "a" })).toBe(512)
      expect(yield* counter(refusals, { reason: "b" })).toBe(3)
      expect(lines).toEqual([
        { level: "Warn", text: "a #0" },
        { level: "Debug", text: "b #0" },
        { level: "Warn", text: "a #0 (and 509 more refused for a since the last line)" }
      ])
    }))
})

describe("refusal log: several at once, another attribute name", () => {
  it.effect("counts a refusal of n as n, under the counter's own reason attribute", () =>
    Effect.gen(function*() {
      const errors = Metric.counter("test_refusal_log_kind_total", { description: "refusal-log test" })
      const log = makeRefusalLog<"x">({ counter: errors, attributes: { transport: "t" }, reasonKey: "kind", intervalMs: 1000 })
      yield* log.refuse("x", "x of 5", 5)
      yield* log.refuse("x", "x of 2", 2)
      expect(yield* counter(errors, { transport: "t", kind: "x" })).toBe(7)
    }))
})
