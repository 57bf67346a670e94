import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect, Result } from "effect"
import { TestClock } from "effect/testing"
import { PriorityClass } from "../../src/message/priority.ts"
import { messagesDropped } from "../../src/metrics/metrics.ts"
import type { Link } from "../../src/peer/link.ts"
import { ConnectFailed } from "../../src/domain/errors.ts"
import { append, heartbeat, irohNodeConfig, startNode, tempDir } from "../support/network-cluster.ts"
import { actorOver, fakeSession } from "../support/fake-link.ts"
import { counter } from "../support/metrics.ts"

describe("outbound overflow", () => {
  it.live("each class follows its policy when a peer is unreachable, and every drop is counted", () =>
    Effect.gen(function*() {
      const node = yield* startNode(yield* irohNodeConfig(1, tempDir(), {
        queues: { append: { capacity: 10 }, heartbeat: { capacity: 5 } },
        iroh_config: { relay_mode: "disabled", connect_timeout_ms: 60_000 }
      }))
      // A peer whose address answers nothing: every dial hangs, so queues fill.
      const ghost = iroh.SecretKey.generate().public().toString()
      yield* node.addPeer({ id: 5, irohEndpointId: ghost, irohAddresses: ["127.0.0.1:9"] })
      const full = { peer: "5", reason: "queue_full" }
      const appendDrops = yield* counter(messagesDropped, { ...full, class: "append" })
      const heartbeatDrops = yield* counter(messagesDropped, { ...full, class: "heartbeat" })

      let rejected = 0
      for (let i = 1; i <= 100; i++) {
        const r = yield* Effect.result(node.send(5, append(1, 5, i)))
        if (Result.isFailure(r)) {
          expect(r.failure).toMatchObject({ _tag: "MessageDropped", reason: "queue_full", class: "append", peer: 5 })
          rejected++
        }
      }
      // drop_newest: the queue (10) plus at most one batch the writer holds are kept.
      expect(rejected).toBeGreaterThanOrEqual(80)
      expect(yield* counter(messagesDropped, { ...full, class: "append" })).toBe(appendDrops + rejected)

      // drop_oldest: no send fails, the displaced are counted.
      for (let i = 1; i <= 100; i++) yield* node.send(5, heartbeat(1, 5, i))
      const displaced = (yield* counter(messagesDropped, { ...full, class: "heartbeat" })) - heartbeatDrops
      expect(displaced).toBeGreaterThanOrEqual(90)
      const status = yield* node.peerStatus(5)
      expect(status.queued[PriorityClass.Heartbeat]).toBeLessThanOrEqual(5)
      expect(status.links[0]!.state).not.toBe("connected")
    }).pipe(Effect.scoped))
})

describe("message age", () => {
  it.effect("messages older than max_age are dropped at dequeue (test clock)", () =>
    Effect.gen(function*() {
      let up = false
      const written: Array<number> = []
      const session = fakeSession("iroh", (_cls, payloads, bytes) =>
        Effect.sync(() => {
          written.push(payloads.length)
          return bytes
        }))
      const link: Link = {
        kind: "iroh",
        connect: Effect.suspend(() =>
          up ? Effect.succeed(session) : Effect.fail(new ConnectFailed({ peer: 4, transport: "iroh", cause: "down" }))
        )
      }
      const actor = yield* actorOver(4, link)
      const labels = { peer: "4", class: "append", reason: "expired" }
      const before = yield* counter(messagesDropped, labels)
      for (let i = 1; i <= 5; i++) yield* actor.send(append(1, 4, i))
      yield* TestClock.adjust("31 seconds")
      expect(written).toEqual([])
      up = true
      yield* TestClock.adjust("1 second")
      expect(yield* counter(messagesDropped, labels)).toBe(before + 5)
      expect(written).toEqual([])
      yield* actor.send(append(1, 4, 6))
      yield* TestClock.adjust("10 millis")
      expect(written).toEqual([1])
    }))
})

describe("a disabled transport", () => {
  it.live("binds nothing and drops every send with a typed, counted reason", () =>
    Effect.gen(function*() {
      const node = yield* startNode(yield* irohNodeConfig(1, tempDir(), { enabled: false }))
      expect(node.localAddress().iroh).toBeUndefined()
      yield* node.addPeer({ id: 2, irohEndpointId: iroh.SecretKey.generate().public().toString(), irohAddresses: [] })
      const r = yield* Effect.result(node.send(2, append(1, 2, 1)))
      expect(Result.isFailure(r) && r.failure).toMatchObject({ _tag: "MessageDropped", reason: "transport_disabled" })
    }).pipe(Effect.scoped))
})
