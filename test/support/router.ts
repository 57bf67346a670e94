import { Effect, PubSub } from "effect"
import type { TransportEvent } from "../../src/domain/events.ts"
import { PeerRouter } from "../../src/routing/router.ts"

type RouterOptions = Parameters<typeof PeerRouter.make>[0]

/** A dual-mode router for peer 2 with fallback on, `options` on top, and a subscription to its events. */
export const makeTestRouter = (options: Partial<Omit<RouterOptions, "events">>) =>
  Effect.gen(function*() {
    const events = yield* PubSub.unbounded<TransportEvent>()
    const sub = yield* PubSub.subscribe(events)
    const router = yield* PeerRouter.make({
      peer: 2,
      mode: "dual",
      strategy: { _tag: "always_iroh" },
      classRoutes: {},
      fallbackToGrpc: true,
      ...options,
      events
    })
    return { events, sub, router }
  })
