import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { PriorityClass } from "../../src/message/priority.ts"
import type { Link } from "../../src/peer/link.ts"
import { append, heartbeat, vote } from "../support/network-cluster.ts"
import { actorOver, fakeSession } from "../support/fake-link.ts"

describe("order of the class writers", () => {
  // A vote queued behind a batch of appends must not wait while that batch is encoded and
  // compressed (test/network/delivery.test.ts checks where the vote lands at the receiver).
  it.effect("messages of several classes queued at once are written highest class first", () =>
    Effect.gen(function*() {
      const written: Array<PriorityClass> = []
      const session = fakeSession("iroh", (cls, _payloads, bytes) =>
        Effect.sync(() => {
          written.push(cls)
          return bytes
        }))
      const link: Link = { kind: "iroh", connect: Effect.succeed(session) }
      const actor = yield* actorOver(4, link)
      // Connected first, so the burst below is not ordered by the writers' wait for a session.
      yield* actor.send(heartbeat(1, 4))
      yield* TestClock.adjust("10 millis")
      expect(written).toEqual([PriorityClass.Heartbeat])
      written.length = 0

      for (let i = 1; i <= 50; i++) yield* actor.send(append(1, 4, i, 64))
      yield* actor.send(heartbeat(1, 4, 2))
      yield* actor.send(vote(1, 4))
      for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow
      expect(written).toEqual([PriorityClass.Election, PriorityClass.Heartbeat, PriorityClass.Append])
    }).pipe(Effect.scoped))
})
