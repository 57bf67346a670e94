import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { runProbe } from "../../src/peer/probe.ts"

describe("link probe", () => {
  it.effect("declares a silent path dead after its ping timeouts, not after intervals", () =>
    Effect.gen(function*() {
      const dead = yield* Deferred.make<string>()
      let pings = 0
      // Each ping hangs for its 1 s timeout, then fails: the path went silent.
      const ping = Effect.andThen(
        Effect.sync(() => void pings++),
        Effect.andThen(Effect.sleep(1000), Effect.fail("no answer within 1000 ms"))
      )
      const fiber = yield* Effect.forkChild(runProbe({
        ping,
        intervalMs: 10_000,
        failuresBeforeDead: 3,
        onSample: () => {},
        onDead: (reason) => Deferred.succeed(dead, reason).pipe(Effect.asVoid),
        stopped: () => false
      }))
      // Three timeouts plus two short pauses; a probe that waited its interval after each
      // miss would need 20 s more.
      yield* TestClock.adjust(3 * 1000 + 2 * 50)
      const reason = yield* Deferred.await(dead)
      expect(reason).toContain("3 consecutive probes failed")
      expect(pings).toBe(3)
      yield* Fiber.join(fiber)
    }))

  it.effect("a late success resets the count", () =>
    Effect.gen(function*() {
      const answers = [false, false, true, false, false]
      let i = 0
      let samples = 0
      let dead = false
      const ping = Effect.suspend(() => (answers[i++] ?? false) ? Effect.succeed(1) : Effect.fail("lost"))
      const fiber = yield* Effect.forkChild(runProbe({
        ping,
        intervalMs: 100,
        failuresBeforeDead: 3,
        onSample: () => void samples++,
        onDead: () => Effect.sync(() => void (dead = true)),
        stopped: () => i >= answers.length
      }))
      yield* TestClock.adjust(1000)
      yield* Fiber.join(fiber)
      expect(samples).toBe(1)
      expect(dead).toBe(false)
    }))
})
