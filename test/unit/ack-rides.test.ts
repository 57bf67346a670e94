import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ACK_DEFER_TURNS, type ReceiptCount, ReceiptPump, type ReceiptRide } from "../../src/inbound/inbound-receipts.ts"
import { AckRides } from "../../src/iroh/ack-rides.ts"
import { decodeRiddenAcks, encodeRiddenAcks, RIDE_RECORD_BYTES } from "../../src/iroh/ack-stream.ts"
import { BlockDecoder, compressedBlock, MAX_BLOCK_EXTENSION_BYTES, plainBlockHeader } from "../../src/message/blocks.ts"
import { encodeFrames } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { zstdCompressSync } from "node:zlib"

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
const turns = (n: number) => Effect.promise(async () => {
  for (let i = 0; i < n; i++) await turn()
})

/** The payloads a decoder's read yields, as arrays. */
const payloadsOf = (read: ReturnType<BlockDecoder["push"]>) =>
  read.segments.flatMap(({ bytes, spans }) => {
    const out: Array<Array<number>> = []
    for (let i = 0; i < spans.length; i += 2) out.push(Array.from(bytes.subarray(spans[i]!, spans[i + 1]!)))
    return out
  })

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

describe("block header extensions", () => {
  const payloads = [Uint8Array.of(1, 2, 3), Uint8Array.of(4)]
  const extension = encodeRiddenAcks([{ session: 7n, cls: PriorityClass.Append, cumulative: 42 }])

  it("a plain and a compressed block carry an extension beside the same frames", () => {
    const frames = encodeFrames(payloads)
    const plain = concat(plainBlockHeader(frames.length, extension), frames)
    const compressed = compressedBlock(frames.length, zstdCompressSync(frames), extension)
    const none = concat(plainBlockHeader(frames.length), frames)
    const read = new BlockDecoder(1024).push(concat(plain, compressed, none))
    expect(read.failure).toBeUndefined()
    expect(payloadsOf(read)).toEqual([[1, 2, 3], [4], [1, 2, 3], [4], [1, 2, 3], [4]])
    expect(read.extensions).toEqual([extension, extension])
  })

  it("an extension longer than its block is refused", () => {
    const header = plainBlockHeader(0, extension)
    header[3] = 3 // the block's length now ends inside the extension
    expect(new BlockDecoder(1024).push(header.subarray(0, 7)).failure?._tag).toBe("DecodeFailed")
  })
})

describe("acknowledgements in an extension", () => {
  it("records round-trip; records of other types are skipped", () => {
    const acks = [
      { session: 2n ** 64n - 1n, cls: PriorityClass.Election, cumulative: 1 },
      { session: 3n, cls: PriorityClass.Snapshot, cumulative: Number.MAX_SAFE_INTEGER }
    ]
    const other = Uint8Array.of(9, 2, 0xaa, 0xbb)
    expect(decodeRiddenAcks(concat(other, encodeRiddenAcks(acks), other))).toEqual(acks)
  })

  it("malformed extensions are refused with a reason", () => {
    const one = encodeRiddenAcks([{ session: 1n, cls: PriorityClass.Append, cumulative: 5 }])
    expect(decodeRiddenAcks(one.subarray(0, 1))).toBe("extension ends inside a record header")
    expect(decodeRiddenAcks(one.subarray(0, RIDE_RECORD_BYTES - 1))).toBe("extension ends inside a record")
    const short = Uint8Array.of(1, 3, 0, 0, 0)
    expect(decodeRiddenAcks(short)).toBe("acknowledgement record of 3 bytes")
    const badClass = one.slice()
    badClass[10] = 9
    expect(decodeRiddenAcks(badClass)).toBe("unknown class 9 in an acknowledgement")
    const huge = one.slice()
    huge.fill(0xff, 11)
    expect(decodeRiddenAcks(huge)).toMatch(/out of range/)
  })
})

/** A pump fed by hand, as the acceptor's receipts would be. */
const pumpWith = (ride: ReceiptRide | undefined) =>
  Effect.gen(function*() {
    const sent: Array<ReadonlyArray<ReceiptCount>> = []
    const pump = yield* ReceiptPump.make((counts) => Effect.sync(() => void sent.push(counts)), () => Effect.void, ride)
    return { pump, sent }
  })

/**
 * Rides that wait `waitMs` (`quietWaitMs` for counts nothing answers), a session to peer 2 to
 * carry them, and a pump of session 11 from peer 2.
 */
const carriedPump = (waitMs: number, quietWaitMs = waitMs) =>
  Effect.gen(function*() {
    const rides = new AckRides(waitMs, quietWaitMs)
    const removeCarrier = rides.addCarrier(2)
    return { rides, removeCarrier, ...(yield* pumpWith(rides.ride(2, () => 11n))) }
  })

describe("acknowledgement rides", () => {
  it.live("a pump's counts go in the next block to its peer, named by its session, and only once", () =>
    Effect.gen(function*() {
      const { rides, removeCarrier, pump, sent } = yield* carriedPump(60_000)
      pump.handled(PriorityClass.Append, 3)
      pump.handled(PriorityClass.Heartbeat, 1)
      expect(rides.carry(3)).toBeUndefined() // another peer's blocks carry nothing of it
      const extension = rides.carry(2)!
      expect(decodeRiddenAcks(extension)).toEqual([
        { session: 11n, cls: PriorityClass.Heartbeat, cumulative: 1 },
        { session: 11n, cls: PriorityClass.Append, cumulative: 3 }
      ])
      expect(rides.carry(2)).toBeUndefined()
      yield* turns(ACK_DEFER_TURNS + 3)
      expect(sent).toEqual([])
      removeCarrier()
    }).pipe(Effect.scoped))

  it.live("counts no block took within the wait are written on their own", () =>
    Effect.gen(function*() {
      const { rides, pump, sent } = yield* carriedPump(10)
      pump.handled(PriorityClass.Append, 2)
      while (sent.length === 0) yield* Effect.sleep(5)
      expect(sent).toEqual([[{ cls: PriorityClass.Append, cumulative: 2 }]])
      expect(rides.carry(2)).toBeUndefined()
    }).pipe(Effect.scoped))

  it.live("counts of messages nothing answers (a heartbeat's answer) wait their own time for a block: the next heartbeat", () =>
    Effect.gen(function*() {
      const { rides, pump, sent } = yield* carriedPump(0, 60_000)
      pump.handled(PriorityClass.Heartbeat, 1, true)
      yield* turns(ACK_DEFER_TURNS + 3)
      expect(sent).toEqual([])
      expect(decodeRiddenAcks(rides.carry(2)!)).toEqual([{ session: 11n, cls: PriorityClass.Heartbeat, cumulative: 1 }])
      yield* turns(3)
      expect(sent).toEqual([])
    }).pipe(Effect.scoped))

  it.live("counts of messages nothing answers that no block took within their wait are written on their own", () =>
    Effect.gen(function*() {
      const { rides, pump, sent } = yield* carriedPump(60_000, 10)
      pump.handled(PriorityClass.Heartbeat, 1, true)
      while (sent.length === 0) yield* Effect.sleep(5)
      expect(sent).toEqual([[{ cls: PriorityClass.Heartbeat, cumulative: 1 }]])
      expect(rides.carry(2)).toBeUndefined()
    }).pipe(Effect.scoped))

  it.live("with no session to the peer to carry them, or before the dialler named its connection, counts are written", () =>
    Effect.gen(function*() {
      const rides = new AckRides(60_000)
      const noCarrier = yield* pumpWith(rides.ride(2, () => 11n))
      noCarrier.pump.handled(PriorityClass.Append, 1)
      rides.addCarrier(3)
      const unnamed = yield* pumpWith(rides.ride(3, () => undefined))
      unnamed.pump.handled(PriorityClass.Append, 1)
      yield* turns(ACK_DEFER_TURNS + 2)
      expect(noCarrier.sent).toEqual([[{ cls: PriorityClass.Append, cumulative: 1 }]])
      expect(unnamed.sent).toEqual([[{ cls: PriorityClass.Append, cumulative: 1 }]])
    }).pipe(Effect.scoped))

  it.live("a block holds as many records as its extension fits; the rest go in the next", () =>
    Effect.gen(function*() {
      const rides = new AckRides(60_000)
      rides.addCarrier(2)
      for (let session = 1n; session <= 5n; session++) {
        const { pump } = yield* pumpWith(rides.ride(2, () => session))
        for (const cls of [0, 1, 2, 3] as const) pump.handled(cls, 1)
      }
      const first = decodeRiddenAcks(rides.carry(2)!)
      const second = decodeRiddenAcks(rides.carry(2)!)
      expect(first).toHaveLength(Math.floor(MAX_BLOCK_EXTENSION_BYTES / RIDE_RECORD_BYTES))
      expect(typeof first !== "string" && typeof second !== "string" && first.length + second.length).toBe(20)
      expect(rides.carry(2)).toBeUndefined()
    }).pipe(Effect.scoped))

  it("acknowledgements reach the session they name, of the peer that sent them; ended sessions take none", () => {
    const rides = new AckRides(5)
    const got: Array<string> = []
    const remove = rides.addSession(2, 11n, (cls, n) => void got.push(`2/11 ${cls}=${n}`))
    rides.addSession(3, 11n, (cls, n) => void got.push(`3/11 ${cls}=${n}`))
    rides.acknowledge(2, [{ session: 11n, cls: PriorityClass.Append, cumulative: 4 }, { session: 12n, cls: PriorityClass.Append, cumulative: 9 }])
    remove()
    rides.acknowledge(2, [{ session: 11n, cls: PriorityClass.Append, cumulative: 5 }])
    expect(got).toEqual([`2/11 ${PriorityClass.Append}=4`])
  })
})
