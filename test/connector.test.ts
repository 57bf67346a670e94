import { describe, expect, it } from "@effect/vitest"
import { Effect, PubSub } from "effect"
import { Connector } from "../src/peer/connector.ts"
import type { Link, LinkSession } from "../src/peer/link.ts"
import { ConnectFailed } from "../src/transport/errors.ts"
import type { TransportEvent } from "../src/transport/events.ts"

const session: LinkSession = {
  kind: "grpc",
  write: () => Effect.void,
  closed: Effect.never,
  rttMs: () => undefined,
  confirmedAt: () => 0
}

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
})
