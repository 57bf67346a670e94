import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { forkDarkSampler } from "../../src/iroh/dark-sampler.ts"
import type { IrohConnection } from "../../src/iroh/host.ts"

const DARK_AFTER_MS = 200

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

/** A sampler on `connection` with the shipped threshold; a dark verdict is a defect unless `onDark` is given. */
const samplerOn = (
  connection: IrohConnection,
  options: { readonly lateAnswerMs?: number | undefined; readonly onDark?: () => Effect.Effect<void> } = {}
) =>
  forkDarkSampler({
    peer: 2,
    connection,
    darkAfterMs: DARK_AFTER_MS,
    lateAnswerMs: options.lateAnswerMs,
    stopped: () => false,
    onDark: options.onDark ?? (() => Effect.die("not dark"))
  })

/** How long after a send nobody answers the sampler finds the path dark. */
const darkAfterSend = (answeredLate: boolean, lateAnswerMs?: number) =>
  Effect.gen(function*() {
    const { reads, connection } = silentConnection()
    const dark = yield* Deferred.make<number>()
    const sampler = yield* samplerOn(connection, {
      lateAnswerMs,
      onDark: () => Deferred.succeed(dark, performance.now()).pipe(Effect.asVoid)
    })
    const sentAt = performance.now()
    sampler.noteSent(answeredLate)
    const darkAt = yield* Deferred.await(dark)
    return { ms: darkAt - sentAt, reads: reads.count }
  })

describe("dark sampler", () => {
  it.live("an answer that comes another way ends the wait: no read after the baseline", () =>
    Effect.gen(function*() {
      const { reads, connection } = silentConnection()
      const sampler = yield* samplerOn(connection)
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
      const dark = yield* darkAfterSend(false)
      expect(dark.ms).toBeGreaterThanOrEqual(DARK_AFTER_MS)
      expect(dark.reads).toBeGreaterThan(2) // the baseline, and samples from 31 ms on
    }).pipe(Effect.scoped))

  it.live("a late wait is answered without a read, and sampled early once a send that is not late joins it", () =>
    Effect.gen(function*() {
      const { reads, connection } = silentConnection()
      const sampler = yield* samplerOn(connection, { lateAnswerMs: 150 })
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
      const dark = yield* darkAfterSend(true, 150)
      expect(dark.ms).toBeGreaterThanOrEqual(DARK_AFTER_MS)
    }).pipe(Effect.scoped))
})
