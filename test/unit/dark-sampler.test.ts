import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
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
  it.live("an acknowledgement that rode on the peer's connection answers the wait: no read after the baseline", () =>
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
      yield* Effect.sleep(80) // three sample periods
      expect(reads.count).toBe(1)
      // The next send waits afresh: its baseline, then samples until an answer.
      sampler.noteSent()
      yield* Effect.sleep(60)
      expect(reads.count).toBeGreaterThanOrEqual(3)
      sampler.answered()
    }).pipe(Effect.scoped))
})
