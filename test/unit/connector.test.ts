import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, PubSub, Result } from "effect"
import { TestClock } from "effect/testing"
import { Connector } from "../../src/peer/connector.ts"
import type { Link } from "../../src/peer/link.ts"
import { ConnectFailed } from "../../src/domain/errors.ts"
import type { TransportEvent } from "../../src/domain/events.ts"
import { fakeSession } from "../support/fake-link.ts"

const session = fakeSession("grpc")

/** A link whose dials fail until `up` is set; counts the dials. */
const flakyLink = () => {
  const state = { up: false, dials: 0 }
  const link: Link = {
    kind: "grpc",
    connect: Effect.suspend(() => {
      state.dials++
      return state.up ? Effect.succeed(session) : Effect.fail(new ConnectFailed({ peer: 2, transport: "grpc", cause: "refused" }))
    })
  }
  return { link, state }
}

const policy = { initialMs: 1, maxMs: 4, jitter: 0 }

describe("connector", () => {
  it.live("a writer stops redialling once its class is routed elsewhere", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, policy, yield* PubSub.unbounded<TransportEvent>())
      const got = yield* connector.acquireWhile(() => state.dials < 5)
      expect(got).toBeUndefined()
      expect(state.dials).toBe(5)
      expect(connector.state).toBe("backoff")
    }).pipe(Effect.scoped))

  it.live("while the class stays routed here, it redials until the link is up", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, policy, yield* PubSub.unbounded<TransportEvent>())
      const got = yield* connector.acquireWhile(() => {
        if (state.dials === 3) state.up = true
        return true
      })
      expect(got).toBe(session)
      expect(state.dials).toBe(4)
      expect(connector.state).toBe("connected")
      // Connected: no dial, whatever `wanted` says.
      expect(yield* connector.acquireWhile(() => false)).toBe(session)
      expect(state.dials).toBe(4)
    }).pipe(Effect.scoped))

  // Dual mode: the supervisor's keeper redials a dead link forever. A writer that asks for the
  // link meanwhile must learn that the dial failed (its class then falls back), not queue
  // behind the keeper's redial loop until the link comes back.
  it.live("a caller that arrives during another's dial does not wait for it, and no backoff holds the lock", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      let dials = 0
      const link: Link = {
        kind: "iroh",
        connect: Effect.suspend(() => {
          dials++
          return Effect.andThen(Deferred.await(release), Effect.fail(new ConnectFailed({ peer: 2, transport: "iroh", cause: "timed out" })))
        })
      }
      const connector = yield* Connector.make(2, link, { initialMs: 60_000, maxMs: 60_000, jitter: 0 }, yield* PubSub.unbounded<TransportEvent>())
      const keeper = yield* Effect.forkScoped(connector.acquire, { startImmediately: true })
      expect(connector.state).toBe("connecting")
      // A writer that can fall back asks while the keeper's dial hangs: it fails at once.
      const tried = yield* Effect.result(connector.tryAcquire).pipe(Effect.timeout("10 seconds"))
      expect(Result.isFailure(tried) && tried.failure).toMatchObject({ _tag: "ConnectFailed", cause: "a dial is in progress" })
      // One that waits for the link follows a route change while the dial still hangs.
      let routedHere = true
      const waiter = yield* Effect.forkScoped(connector.acquireWhile(() => routedHere), { startImmediately: true })
      routedHere = false
      expect(yield* Fiber.join(waiter).pipe(Effect.timeout("10 seconds"))).toBeUndefined()
      yield* Deferred.succeed(release, void 0)
      yield* Effect.sleep("50 millis")
      // The keeper is in its (long) backoff; asking again fails at once, without a dial.
      expect(Result.isFailure(yield* Effect.result(connector.tryAcquire).pipe(Effect.timeout("10 seconds")))).toBe(true)
      expect(dials).toBe(1)
      expect(connector.state).toBe("backoff")
      yield* Fiber.interrupt(keeper)
    }).pipe(Effect.scoped))

  it.effect("the backoff is the connector's: several waiting fibers dial once per step", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, { initialMs: 100, maxMs: 100, jitter: 0 }, yield* PubSub.unbounded<TransportEvent>())
      for (let i = 0; i < 3; i++) yield* Effect.forkScoped(connector.acquireWhile(() => true), { startImmediately: true })
      expect(state.dials).toBe(1)
      for (let step = 1; step <= 4; step++) {
        yield* TestClock.adjust("100 millis")
        expect(state.dials).toBe(1 + step)
      }
      state.up = true
      yield* TestClock.adjust("100 millis")
      expect(state.dials).toBe(6)
      expect(connector.state).toBe("connected")
    }).pipe(Effect.scoped))
})

/** Every step waits the whole 5 s: a backoff that has grown to `max_backoff_ms`. */
const slow = { initialMs: 5000, maxMs: 5000, jitter: 0 }

describe("connector wake-up", () => {
  it.effect("the peer connecting to this node ends the backoff: the waiting writer dials at once", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, slow, yield* PubSub.unbounded<TransportEvent>())
      yield* Effect.forkScoped(connector.acquire, { startImmediately: true })
      expect(state.dials).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(state.dials).toBe(1)
      state.up = true
      yield* connector.wake("peer 2 connected over grpc")
      yield* TestClock.adjust("1 millis")
      expect(state.dials).toBe(2)
      expect(connector.state).toBe("connected")
      // Connected: waking is a no-op.
      yield* connector.wake("again")
      expect(state.dials).toBe(2)
    }).pipe(Effect.scoped))

  it.effect("a woken dial that fails again backs off from the start of the schedule", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, { initialMs: 100, maxMs: 5000, jitter: 0 }, yield* PubSub.unbounded<TransportEvent>())
      yield* Effect.forkScoped(connector.acquire, { startImmediately: true })
      // 100, 200, 400, 800 ms: five dials by 1.5 s, the next one due 1.6 s later.
      yield* TestClock.adjust("1500 millis")
      expect(state.dials).toBe(5)
      yield* connector.wake("peer seen")
      yield* TestClock.adjust("1 millis")
      expect(state.dials).toBe(6)
      yield* TestClock.adjust("100 millis")
      expect(state.dials).toBe(7)
    }).pipe(Effect.scoped))

  it.effect("the first send after a quiet spell dials at once; a link in steady use keeps its backoff", () =>
    Effect.gen(function*() {
      const { link, state } = flakyLink()
      const connector = yield* Connector.make(2, link, slow, yield* PubSub.unbounded<TransportEvent>())
      // A writer whose class then went elsewhere: nobody waits on the backoff afterwards.
      expect(yield* connector.acquireWhile(() => state.dials < 1)).toBeUndefined()
      expect(state.dials).toBe(1)
      yield* TestClock.adjust("500 millis")
      // Within a second of the failure: the backoff holds.
      const early = yield* Effect.forkScoped(connector.acquireWhile(() => state.dials < 2), { startImmediately: true })
      yield* TestClock.adjust("1 millis")
      expect(state.dials).toBe(1)
      yield* TestClock.adjust("4600 millis")
      expect(state.dials).toBe(2)
      yield* Fiber.await(early)
      // Two seconds of quiet after that failure: the next send dials at once.
      yield* TestClock.adjust("2 seconds")
      state.up = true
      yield* Effect.forkScoped(connector.acquire, { startImmediately: true })
      yield* TestClock.adjust("1 millis")
      expect(state.dials).toBe(3)
      expect(connector.state).toBe("connected")
    }).pipe(Effect.scoped))
})
