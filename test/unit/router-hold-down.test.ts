import { describe, expect, it } from "@effect/vitest"
import { Effect, PubSub } from "effect"
import { TestClock } from "effect/testing"
import { makeTestRouter } from "../support/router.ts"

const makeRouter = Effect.gen(function*() {
  const { router, sub } = yield* makeTestRouter({ recoveryHoldDownMs: 1000 })
  const tags = Effect.map(PubSub.takeAll(sub), (all) => all.map((e) => e._tag).filter((t) => t === "FellBack" || t === "Recovered"))
  return { router, tags }
})

describe("route hold-down", () => {
  it.effect("falls back at once; returns to Iroh only after it stayed up for the hold-down", () =>
    Effect.gen(function*() {
      const { router, tags } = yield* makeRouter
      yield* router.linkState("iroh", false, "dark path")
      expect(router.route(0)).toBe("grpc")
      yield* router.linkState("iroh", true, "connected")
      yield* TestClock.adjust("999 millis")
      expect(router.route(0)).toBe("grpc")
      yield* TestClock.adjust("1 millis")
      expect(router.route(0)).toBe("iroh")
      expect(yield* tags).toEqual(["FellBack", "Recovered"])
    }).pipe(Effect.scoped))

  it.effect("a path that goes dark again within the hold-down keeps the peer on gRPC", () =>
    Effect.gen(function*() {
      const { router, tags } = yield* makeRouter
      yield* router.linkState("iroh", false, "dark path")
      for (let cycle = 0; cycle < 5; cycle++) {
        yield* router.linkState("iroh", true, "connected")
        yield* TestClock.adjust("600 millis")
        yield* router.linkState("iroh", false, "dark path")
        yield* TestClock.adjust("600 millis")
        expect(router.route(0)).toBe("grpc")
      }
      expect(yield* tags).toEqual(["FellBack"])
      yield* router.linkState("iroh", true, "connected")
      yield* TestClock.adjust("1 second")
      expect(router.route(0)).toBe("iroh")
      expect(yield* tags).toEqual(["Recovered"])
    }).pipe(Effect.scoped))
})
