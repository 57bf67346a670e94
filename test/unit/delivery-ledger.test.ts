import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ACK_RECORD_LENGTH, AckDecoder, encodeAcks } from "../../src/iroh/ack-stream.ts"
import { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"
import type { Receipts } from "../../src/inbound/inbound-receipts.ts"
import { receiptUnits } from "../../src/inbound/inbound-receipts.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { AckLedger, ProbeLedger } from "../../src/peer/delivery-ledger.ts"
import { append, heartbeat } from "../support/network-cluster.ts"

describe("AckLedger", () => {
  it("counts as lost exactly what was written and not acknowledged, per class", () => {
    const ledger = new AckLedger()
    ledger.written(PriorityClass.Append, 100)
    ledger.written(PriorityClass.Heartbeat, 5)
    ledger.ack(PriorityClass.Append, 60)
    ledger.ack(PriorityClass.Append, 40) // stale: counts only grow
    ledger.ack(PriorityClass.Heartbeat, 5)
    expect(ledger.close()).toEqual([0, 0, 40, 0])
    expect(ledger.close()).toEqual([0, 0, 0, 0])
  })

  it("an acknowledgement ahead of the writes recorded covers the writes that end after the close", () => {
    const ledger = new AckLedger()
    ledger.written(PriorityClass.Append, 10)
    // The receiver took 15: five of a write that had not returned yet.
    ledger.ack(PriorityClass.Append, 15)
    expect(ledger.close()).toEqual([0, 0, 0, 0])
    // That write (8 messages) ends now: 5 were acknowledged, 3 are lost.
    expect(ledger.written(PriorityClass.Append, 8)).toBe(3)
    expect(ledger.written(PriorityClass.Append, 2)).toBe(2)
    // Acknowledgements after the close change nothing.
    ledger.ack(PriorityClass.Append, 100)
    expect(ledger.written(PriorityClass.Append, 1)).toBe(1)
  })
})

describe("ProbeLedger", () => {
  it("counts what no answered probe sent after it confirmed, and later writes at once", () => {
    let confirmedAt = 0
    const ledger = new ProbeLedger(() => confirmedAt)
    ledger.written(PriorityClass.Append, 7)
    // A probe sent after the first write was answered; the second write comes after that probe.
    confirmedAt = performance.now()
    while (performance.now() <= confirmedAt) { /* the clock moves on */ }
    ledger.written(PriorityClass.Append, 3)
    expect(ledger.close()).toEqual([0, 0, 3, 0])
    expect(ledger.written(PriorityClass.Election, 2)).toBe(2)
  })
})

describe("acknowledgement records", () => {
  it("decode across reads of any size", () => {
    const bytes = encodeAcks([{ cls: PriorityClass.Append, cumulative: 2 ** 40 + 3 }, { cls: PriorityClass.Election, cumulative: 7 }])
    expect(bytes.length).toBe(2 * ACK_RECORD_LENGTH)
    const decoder = new AckDecoder()
    const out = [...bytes].flatMap((b) => {
      const r = decoder.push(Uint8Array.of(b))
      if (typeof r === "string") throw new Error(r)
      return r
    })
    expect(out).toEqual([{ cls: PriorityClass.Append, cumulative: 2 ** 40 + 3 }, { cls: PriorityClass.Election, cumulative: 7 }])
  })

  it("refuse an unknown class", () => {
    const bytes = encodeAcks([{ cls: PriorityClass.Append, cumulative: 1 }])
    bytes[0] = 9
    expect(new AckDecoder().push(bytes)).toMatch(/unknown class 9/)
  })
})

const recording = (): Receipts & { readonly log: Array<[PriorityClass, number]>; open: boolean } => {
  const log: Array<[PriorityClass, number]> = []
  return { log, open: true, handled: (cls, count) => void log.push([cls, count]) }
}

describe("inbound mailbox receipts", () => {
  it.effect("a message is reported when the application takes it, runs of one stream as one", () =>
    Effect.gen(function*() {
      const mailbox = yield* InboundMailbox.make(100)
      const one = recording()
      const two = recording()
      yield* mailbox.offerAll(PriorityClass.Append, [append(2, 1, 1), append(2, 1, 2)], one)
      yield* mailbox.offerAll(PriorityClass.Append, [append(3, 1, 1)], two)
      yield* mailbox.offerAll(PriorityClass.Heartbeat, [heartbeat(2, 1, 1)], one)
      expect(one.log).toEqual([])
      const first = yield* mailbox.receive
      expect(first.msgType).toBe(heartbeat(2, 1).msgType)
      expect(one.log).toEqual([[PriorityClass.Heartbeat, 1]])
      const rest = yield* mailbox.receiveBatch(10)
      expect(rest.map((m) => [m.from, m.index])).toEqual([[2, 1], [2, 2], [3, 1]])
      expect(one.log).toEqual([[PriorityClass.Heartbeat, 1], [PriorityClass.Append, 2]])
      expect(two.log).toEqual([[PriorityClass.Append, 1]])
    }))

  it.effect("messages of a connection that ended are discarded, not delivered (their sender counted them)", () =>
    Effect.gen(function*() {
      const mailbox = yield* InboundMailbox.make(100)
      const gone = recording()
      const live = recording()
      yield* mailbox.offerAll(PriorityClass.Append, [append(2, 1, 1), append(2, 1, 2)], gone)
      yield* mailbox.offerAll(PriorityClass.Append, [append(3, 1, 1)], live)
      gone.open = false
      const taken = yield* mailbox.receiveBatch(10)
      expect(taken.map((m) => m.from)).toEqual([3])
      expect(gone.log).toEqual([])
    }))

  it("a snapshot counts once, with its last chunk", () => {
    const chunk = (done: boolean) => ({ ...append(2, 1, 1), snapshot: { data: new Uint8Array(1), totalSize: 10, offset: 0, done } })
    expect(receiptUnits(PriorityClass.Snapshot, chunk(false))).toBe(0)
    expect(receiptUnits(PriorityClass.Snapshot, chunk(true))).toBe(1)
    expect(receiptUnits(PriorityClass.Append, chunk(false))).toBe(1)
  })
})
