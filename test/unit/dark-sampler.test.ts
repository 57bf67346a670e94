import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { forkDarkSampler } from "../../src/iroh/dark-sampler.ts"
import type { IrohConnection } from "../../src/iroh/host.ts"

/** A connection whose counters never move: only an acknowledgement from elsewhere can answer a send. */
const silentConnection = () => {
  const reads = { count: 0 }
  const connection: Pick<IrohConnection, "activity"> = {
    activity: () => {
      reads.count++
      return Promise.resolve({ txDatagrams: reads.count, rxDatagrams: 0, rttMs: 1 })
    }
  }
  return { reads, connection: connection as IrohConnection }
}

describe("dark sampler", () => {
  it.live("an answer that comes another way ends the wait: no read after the baseline", () =>
    Effect.gen(function*() {
      const { reads, connection } = silentConnection()
      const sampler = yield* forkDarkSampler({
        peer: 2,
        connection,
        darkAfterMs: 200,
        stopped: () => false,
        onDark: () => Effect.die("not dark")
      })
      sampler.noteSent()
      expect(reads.count).toBe(1) // the baseline, in the same step as the send
      sampler.answered()
      yield* Effect.sleep(80)
      expect(reads.count).toBe(1)
      // The next send waits afresh: its baseline, and no sample before QUIC's acknowledgement
      // could be back (its 25 ms ack delay, the 1 ms round trip and 5 ms to spare).
      sampler.noteSent()
      expect(reads.count).toBe(2)
      yield* Effect.sleep(20)
      expect(reads.count).toBe(2)
      sampler.answered()
      yield* Effect.sleep(60) // past the first sample's time: the answered wait takes none
      expect(reads.count).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a wait nobody answers is sampled until it is found dark at the threshold", () =>
    Effect.gen(function*() {
      const { reads, connection } = silentConnection()
      const dark = yield* Deferred.make<number>()
      const sampler = yield* forkDarkSampler({
        peer: 2,
        connection,
        darkAfterMs: 200,
        stopped: () => false,
        onDark: () => Deferred.succeed(dark, performance.now()).pipe(Effect.asVoid)
      })
      const sentAt = performance.now()
      sampler.noteSent()
      const darkAt = yield* Deferred.await(dark)
      expect(darkAt - sentAt).toBeGreaterThanOrEqual(200)
      expect(reads.count).toBeGreaterThan(2) // the baseline, and samples from 31 ms on
    }).pipe(Effect.scoped))
  it.live("a late wait is answered without a read, and sampled early once a send that is not late joins it", () =>
    Effect.gen(function*() {
      const { reads, connection } = silentConnection()
      const sampler = yield* forkDarkSampler({
        peer: 2,
        connection,
        darkAfterMs: 200,
        lateAnswerMs: 150,
        stopped: () => false,
        onDark: () => Effect.die("not dark")
      })
      sampler.noteSent(true)
      expect(reads.count).toBe(1) // the baseline
      yield* Effect.sleep(60) // past a usual wait's first sample: a late one takes none yet
      expect(reads.count).toBe(1)
      sampler.answered()
      yield* Effect.sleep(150) // past the late wait's first sample, which its answer called off
      expect(reads.count).toBe(1)
      // A late wait that a send that is not late joins: sampled from the wait's start as usual.
      sampler.noteSent(true)
      yield* Effect.sleep(10)
      sampler.noteSent()
      expect(reads.count).toBe(2) // no new baseline: the wait goes on
      yield* Effect.sleep(60)
      expect(reads.count).toBeGreaterThan(2)
      sampler.answered()
    }).pipe(Effect.scoped))

  it.live("a late wait nobody answers is found dark at the threshold", () =>
    Effect.gen(function*() {
      const { connection } = silentConnection()
      const dark = yield* Deferred.make<number>()
      const sampler = yield* forkDarkSampler({
        peer: 2,
        connection,
        darkAfterMs: 200,
        lateAnswerMs: 150,
        stopped: () => false,
        onDark: () => Deferred.succeed(dark, performance.now()).pipe(Effect.asVoid)
      })
      const sentAt = performance.now()
      sampler.noteSent(true)
      const darkAt = yield* Deferred.await(dark)
      expect(darkAt - sentAt).toBeGreaterThanOrEqual(200)
    }).pipe(Effect.scoped))
})
