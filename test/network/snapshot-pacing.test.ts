import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import type { Link } from "../../src/peer/link.ts"
import { ElectionActivity } from "../../src/domain/election-activity.ts"
import { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { actorOver, fakeSession } from "../support/fake-link.ts"

const CHUNK = 1000
const CHUNKS = 6

const snapshot: RaftMessage = {
  msgType: MessageType.Snapshot,
  from: 1,
  to: 2,
  term: 1,
  snapshot: { data: new Uint8Array(CHUNK * CHUNKS), metadata: { index: 10, term: 1, confState: { voters: [1, 2] } } }
}
const vote: RaftMessage = { msgType: MessageType.RequestVote, from: 1, to: 2, term: 2, index: 9, logTerm: 1 }

/**
 * Sends one snapshot through an actor whose session records the (test) clock at each snapshot
 * chunk write, stepping the clock 1 ms at a time until every chunk is out; returns the gaps
 * between consecutive chunk writes in ms.
 */
const chunkGaps = (
  before: (send: (m: RaftMessage) => Effect.Effect<void, unknown>) => Effect.Effect<void, unknown>,
  paces: { readonly normal: number; readonly election: number } = { normal: 1_000_000, election: 100_000 }
) =>
  Effect.gen(function*() {
    const writes: Array<number> = []
    const session = fakeSession("iroh", (cls, _payloads, bytes) =>
      cls === PriorityClass.Snapshot
        ? Effect.map(Clock.currentTimeMillis, (now) => {
          writes.push(now)
          return bytes
        })
        : Effect.succeed(bytes))
    const link: Link = { kind: "iroh", connect: Effect.succeed(session) }
    const activity = new ElectionActivity(1000)
    const actor = yield* actorOver(2, link, {
      snapshotChunkBytes: CHUNK,
      // ~1 ms per chunk normally, ~10 ms while an election is under way.
      snapshotBytesPerSec: { iroh: paces.normal },
      snapshotElectionBytesPerSec: { iroh: paces.election },
      electionActivity: activity
    })
    yield* before((m) => actor.send(m))
    yield* actor.send(snapshot)
    const stepper = yield* Effect.forkChild(
      Effect.gen(function*() {
        while (writes.length < CHUNKS) {
          yield* TestClock.adjust("1 millis")
          yield* Effect.yieldNow
        }
      })
    )
    yield* Fiber.join(stepper)
    return writes.slice(1).map((t, i) => t - writes[i]!)
  }).pipe(Effect.scoped)

describe("snapshot pacing", () => {
  it.effect("keeps to iroh_snapshot_bytes_per_sec when no election is under way", () =>
    Effect.gen(function*() {
      const gaps = yield* chunkGaps(() => Effect.void)
      // Each chunk is a little over 1,000 bytes encoded: about 1 ms apart, never 10.
      for (const gap of gaps) expect(gap).toBeLessThanOrEqual(3)
    }))

  it.effect("steps down to the election pace while an election message is recent", () =>
    Effect.gen(function*() {
      const gaps = yield* chunkGaps((send) => send(vote))
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(9)
    }))

  it.effect("goes back to the normal pace once election_window_ms has passed without one", () =>
    Effect.gen(function*() {
      const gaps = yield* chunkGaps((send) => Effect.andThen(send(vote), TestClock.adjust("1001 millis")))
      for (const gap of gaps) expect(gap).toBeLessThanOrEqual(3)
    }))

  it.effect("only ever slows snapshots down: an election pace of 0 adds no cap, and caps an unpaced snapshot otherwise", () =>
    Effect.gen(function*() {
      const noCap = yield* chunkGaps((send) => send(vote), { normal: 100_000, election: 0 })
      for (const gap of noCap) expect(gap).toBeGreaterThanOrEqual(9)
      const capped = yield* chunkGaps((send) => send(vote), { normal: 0, election: 100_000 })
      for (const gap of capped) expect(gap).toBeGreaterThanOrEqual(9)
      const faster = yield* chunkGaps((send) => send(vote), { normal: 100_000, election: 1_000_000 })
      for (const gap of faster) expect(gap).toBeGreaterThanOrEqual(9)
    }))

  it.effect("counts an election message received as an election under way", () =>
    Effect.gen(function*() {
      const activity = new ElectionActivity(1000)
      const mailbox = yield* InboundMailbox.make(10, activity)
      yield* mailbox.offerAll(PriorityClass.Append, [{ msgType: MessageType.Append, from: 2, to: 1, term: 1 }])
      expect(activity.underWayAt(yield* Clock.currentTimeMillis)).toBe(false)
      yield* mailbox.offerAll(PriorityClass.Election, [{ ...vote, from: 2, to: 1 }])
      expect(activity.underWayAt(yield* Clock.currentTimeMillis)).toBe(true)
    }))
})
