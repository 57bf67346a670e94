import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import { DEFAULT_ELECTION_MAX_AGE_MS, maxAgeFor, QueuesConfig } from "../../src/config/schema.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { messagesDropped } from "../../src/metrics/metrics.ts"
import type { Link } from "../../src/peer/link.ts"
import { ConnectFailed } from "../../src/domain/errors.ts"
import { append, heartbeat, vote } from "../support/network-cluster.ts"
import { actorOver, fakeSession } from "../support/fake-link.ts"
import { counter } from "../support/metrics.ts"

const queues = (overrides: Record<string, unknown> = {}) => Schema.decodeUnknownSync(QueuesConfig)(overrides)

describe("age limits per class", () => {
  it("election and heartbeat default to an election timeout, append and snapshot to batching.max_age_ms", () => {
    const config = { queues: queues(), batching: { max_age_ms: 30_000 } }
    expect([0, 1, 2, 3].map((cls) => maxAgeFor(config, cls as 0 | 1 | 2 | 3))).toEqual([
      DEFAULT_ELECTION_MAX_AGE_MS,
      DEFAULT_ELECTION_MAX_AGE_MS,
      30_000,
      30_000
    ])
    const custom = { queues: queues({ election: { max_age_ms: 250 }, append: { max_age_ms: 5000 } }), batching: { max_age_ms: 30_000 } }
    expect([0, 1, 2, 3].map((cls) => maxAgeFor(custom, cls as 0 | 1 | 2 | 3))).toEqual([250, DEFAULT_ELECTION_MAX_AGE_MS, 5000, 30_000])
  })

  // Finding 7: a peer down for seconds got an election message over 7 s old once it came back.
  it.effect("a vote or heartbeat queued past its class's limit is dropped and counted; an append of the same age goes out", () =>
    Effect.gen(function*() {
      let up = false
      const written: Array<{ readonly cls: PriorityClass; readonly count: number }> = []
      const session = fakeSession("iroh", (cls, payloads, bytes) =>
        Effect.sync(() => {
          written.push({ cls, count: payloads.length })
          return bytes
        }))
      const link: Link = {
        kind: "iroh",
        connect: Effect.suspend(() =>
          up ? Effect.succeed(session) : Effect.fail(new ConnectFailed({ peer: 4, transport: "iroh", cause: "down" }))
        )
      }
      const limits = [600, 600, 30_000, 30_000]
      const actor = yield* actorOver(4, link, {
        queues: limits.map((maxAgeMs) => ({ capacity: 100, overflow: "drop_newest" as const, maxAgeMs }))
      })
      const expired = (cls: string) => counter(messagesDropped, { peer: "4", class: cls, reason: "expired" })
      const before = { election: yield* expired("election"), heartbeat: yield* expired("heartbeat"), append: yield* expired("append") }
      for (let i = 1; i <= 3; i++) yield* actor.send(vote(1, 4, 10 + i))
      for (let i = 1; i <= 4; i++) yield* actor.send(heartbeat(1, 4, i))
      for (let i = 1; i <= 5; i++) yield* actor.send(append(1, 4, i))
      yield* TestClock.adjust("7 seconds")
      expect(written).toEqual([])
      up = true
      yield* TestClock.adjust("1 second")
      expect((yield* expired("election")) - before.election).toBe(3)
      expect((yield* expired("heartbeat")) - before.heartbeat).toBe(4)
      expect((yield* expired("append")) - before.append).toBe(0)
      expect(written).toEqual([{ cls: PriorityClass.Append, count: 5 }])
      // A fresh vote still goes out.
      yield* actor.send(vote(1, 4, 20))
      yield* TestClock.adjust("10 millis")
      expect(written.at(-1)).toEqual({ cls: PriorityClass.Election, count: 1 })
    }))
})
