import { Effect, Queue } from "effect"
import type { TransportEvent } from "../../src/domain/events.ts"

/** Takes events until one with `tag` arrives (within 20 s), and returns it. */
export const awaitEvent = (events: Queue.Queue<TransportEvent>, tag: TransportEvent["_tag"]) =>
  Effect.gen(function*() {
    while (true) {
      const e = yield* Queue.take(events)
      if (e._tag === tag) return e
    }
  }).pipe(Effect.timeout("20 seconds"))
