import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { PriorityClass } from "../../src/message/priority.ts"
import { ACK_DEFER_TURNS, type ReceiptCount, ReceiptPump, StreamReceipts } from "../../src/inbound/inbound-receipts.ts"

/** One turn of the event loop: what `setImmediate` queued before it has run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("acknowledgements", () => {
  // The take that an acknowledgement reports runs the application's round in the next turn, and
  // that round what it woke (a reply, a transport writer) in the one after: those go first.
  it.live("the pump writes the takes of the same turns as one, after the application's next turns", () =>
    Effect.gen(function*() {
      const sent: Array<ReadonlyArray<ReceiptCount>> = []
      const pump = yield* ReceiptPump.make((counts) => Effect.sync(() => void sent.push(counts)), () => Effect.void)
      pump.handled(PriorityClass.Append, 1)
      pump.handled(PriorityClass.Election, 1)
      // The doorbell's own hop, then the deferred turns.
      for (let t = 0; t < ACK_DEFER_TURNS; t++) {
        yield* Effect.promise(turn)
        expect(sent).toEqual([])
      }
      pump.handled(PriorityClass.Append, 2)
      yield* Effect.promise(turn)
      yield* Effect.promise(turn)
      expect(sent).toEqual([[{ cls: PriorityClass.Election, cumulative: 1 }, { cls: PriorityClass.Append, cumulative: 3 }]])
    }).pipe(Effect.scoped))

  it.live("a gRPC stream's receipts write one count for the takes of the same turns, after the application's next turns", () =>
    Effect.gen(function*() {
      const written: Array<number> = []
      const receipts = new StreamReceipts((cumulative) => void written.push(cumulative))
      receipts.handled(PriorityClass.Append, 2)
      for (let t = 0; t < ACK_DEFER_TURNS; t++) {
        yield* Effect.promise(turn)
        receipts.handled(PriorityClass.Append, 1)
        expect(written).toEqual([])
      }
      yield* Effect.promise(turn)
      expect(written).toEqual([4])
      // Ended with a flush: the last count goes at once, and nothing after it.
      receipts.handled(PriorityClass.Append, 1)
      receipts.end(true)
      expect(written).toEqual([4, 5])
      yield* Effect.promise(turn)
      yield* Effect.promise(turn)
      yield* Effect.promise(turn)
      expect(written).toEqual([4, 5])
    }))
})
