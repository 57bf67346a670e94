import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { type ProbeOptions, runProbe } from "../../src/peer/probe.ts"

/**
 * A probe whose pings always answer at once, every 250 ms, with `extra` options; the pings sent
 * so far come from `pings()`.
 */
const countingProbe = (extra: Partial<ProbeOptions<never>>) =>
  Effect.gen(function*() {
    let pings = 0
    const fiber = yield* Effect.forkChild(runProbe<never>({
      ping: Effect.sync(() => pings++).pipe(Effect.as(1)),
      intervalMs: 250,
      failuresBeforeDead: 3,
      onSample: () => {},
      onDead: () => Effect.void,
      stopped: () => false,
      ...extra
    }))
    return { fiber, pings: () => pings }
  })

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

  it.effect("confirmations of writes made in an interval stand in for its ping, up to one ping a second", () =>
    Effect.gen(function*() {
      let written = 0
      let confirmed = 0
      let flowing = true
      // A heartbeat every 100 ms, confirmed at once while the path carries traffic.
      const traffic = Effect.forever(Effect.andThen(Effect.sleep(100), Effect.sync(() => {
        if (!flowing) return
        written++
        confirmed++
      })))
      yield* Effect.forkChild(traffic)
      const { fiber, pings } = yield* countingProbe({
        confirmations: { written: () => written, confirmed: () => confirmed }
      })
      yield* TestClock.adjust(4_100)
      // The first ping at start, then one every fourth interval (RTT_REFRESH_MS).
      expect(pings()).toBe(5)
      // Traffic stops: after the interval it was last confirmed in, every interval pings again.
      flowing = false
      yield* TestClock.adjust(250)
      const before = pings()
      yield* TestClock.adjust(1_000)
      expect(pings() - before).toBe(4)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a longer refresh bound lets confirmations and quiet stand in for pings that much longer", () =>
    Effect.gen(function*() {
      let written = 0
      let confirmed = 0
      yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sleep(100), Effect.sync(() => {
        written++
        confirmed++
      }))))
      const busy = yield* countingProbe({
        confirmations: { written: () => written, confirmed: () => confirmed },
        refreshMs: 5000
      })
      const quiet = yield* countingProbe({
        confirmations: { written: () => 0, confirmed: () => 0 },
        skipWhileQuiet: true,
        refreshMs: 5000
      })
      yield* TestClock.adjust(10_100)
      // The first ping at start, then one every twentieth interval (5 s of 250 ms).
      expect(busy.pings()).toBe(3)
      expect(quiet.pings()).toBe(3)
      yield* Fiber.interrupt(busy.fiber)
      yield* Fiber.interrupt(quiet.fiber)
    }))

  it.effect("a confirmation for writes from before the interval does not skip its ping", () =>
    Effect.gen(function*() {
      let confirmed = 0
      const { fiber, pings } = yield* countingProbe({
        // Ten writes long ago, their confirmations trickling in now.
        confirmations: { written: () => 10, confirmed: () => confirmed }
      })
      for (let i = 0; i < 8; i++) {
        yield* TestClock.adjust(125)
        confirmed = Math.min(10, confirmed + 1)
      }
      expect(pings()).toBe(5)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a link that carries nothing pings once a second when told it may stay quiet, every interval otherwise", () =>
    Effect.gen(function*() {
      const run = (skipWhileQuiet: boolean) =>
        Effect.gen(function*() {
          const { fiber, pings } = yield* countingProbe({
            confirmations: { written: () => 0, confirmed: () => 0 },
            skipWhileQuiet
          })
          yield* TestClock.adjust(2_100)
          yield* Fiber.interrupt(fiber)
          return pings()
        })
      expect(yield* run(true)).toBe(3)
      expect(yield* run(false)).toBe(9)
    }))
})
