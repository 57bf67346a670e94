import { describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import { zstdCompressSync } from "node:zlib"
import { BlockEncoder, type CompressionOptions } from "../../src/iroh/block-encoder.ts"
import { BlockDecoder, compressedBlock, maxBlockRawBytes } from "../../src/message/blocks.ts"
import { decodeBlockRead, encodeMessage } from "../../src/message/codec.ts"
import { encodeFrames, framedLength } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"

const zstd: CompressionOptions = {
  algorithm: "zstd",
  level: 1,
  minBatchBytes: 1024,
  minSaving: 0.1,
  classes: [PriorityClass.Append, PriorityClass.Snapshot],
  snapshotChunkBytes: 16384
}

const appendOf = (index: number, data: Uint8Array): RaftMessage => ({
  msgType: MessageType.Append,
  from: 1,
  to: 2,
  term: 3,
  index,
  logTerm: 3,
  commit: index,
  entries: [{ term: 3, index: index + 1, data }]
})

const json = (i: number) =>
  new TextEncoder().encode(JSON.stringify({ id: i, name: `user ${i}`, email: `user${i}@example.com`, balance: i * 3.25 }))

/** The bytes a write of `messages` puts on a version 2 stream, and how it went. */
const block = (encoder: BlockEncoder, messages: ReadonlyArray<RaftMessage>) => {
  const payloads = messages.map(encodeMessage)
  const encoded = encoder.encode(payloads, framedLength(payloads))
  return { bytes: encodeFrames(encoded.payloads, encoded.lead), encoded }
}

/** Feeds `bytes` to a fresh decoder in reads of `step` bytes; every message and the first failure. */
const decodeAll = (bytes: Uint8Array, step: number, maxFrameBytes = 1 << 20) => {
  const decoder = new BlockDecoder(maxFrameBytes)
  const messages: Array<RaftMessage> = []
  for (let o = 0; o < bytes.length; o += step) {
    const read = decodeBlockRead(decoder, bytes.slice(o, o + step))
    messages.push(...read.messages)
    if (read.failure !== undefined) return { messages, failure: read.failure, pending: decoder.pending }
  }
  return { messages, failure: undefined, pending: decoder.pending }
}

describe("wire version 2 blocks", () => {
  it("carry compressible appends compressed and incompressible ones as they are, in reads of any size", () => {
    const encoder = new BlockEncoder(PriorityClass.Append, zstd)
    const compressible = Array.from({ length: 200 }, (_, i) => appendOf(i, json(i)))
    const random = Array.from({ length: 200 }, (_, i) => appendOf(1000 + i, randomBytes(1000)))
    const a = block(encoder, compressible)
    const b = block(encoder, random)
    expect(a.encoded.outcome).toBe("compressed")
    expect(a.encoded.wireBytes).toBeLessThan(a.encoded.framedBytes / 2)
    expect(b.encoded.outcome).toBe("did_not_shrink")
    const stream = encodeFrames([], Uint8Array.from([...a.bytes, ...b.bytes]))
    for (const step of [1, 7, 4096, stream.length]) {
      const { messages, failure, pending } = decodeAll(stream, step)
      expect(failure).toBeUndefined()
      expect(pending).toBe(0)
      expect(messages.map((m) => m.index)).toEqual([...compressible, ...random].map((m) => m.index))
      expect(Uint8Array.from(messages[5]!.entries![0]!.data!)).toEqual(json(5))
      expect(Uint8Array.from(messages[205]!.entries![0]!.data!)).toEqual(Uint8Array.from(random[5]!.entries![0]!.data!))
    }
  })

  it("never compress votes, heartbeats, small writes, or anything with algorithm none", () => {
    const big = Array.from({ length: 100 }, (_, i) => appendOf(i, json(i)))
    expect(block(new BlockEncoder(PriorityClass.Election, zstd), big).encoded.outcome).toBe("not_eligible")
    expect(block(new BlockEncoder(PriorityClass.Heartbeat, { ...zstd, classes: [0, 1, 2, 3] }), big).encoded.outcome)
      .toBe("not_eligible")
    expect(block(new BlockEncoder(PriorityClass.Append, zstd), big.slice(0, 2)).encoded.outcome).toBe("not_eligible")
    expect(block(new BlockEncoder(PriorityClass.Append, { ...zstd, algorithm: "none" }), big).encoded.outcome)
      .toBe("not_eligible")
    expect(block(new BlockEncoder(PriorityClass.Snapshot, { ...zstd, classes: [PriorityClass.Append] }), big).encoded.outcome)
      .toBe("not_eligible")
  })

  it("back off a class whose writes do not shrink: 4, 8, 16 ... writes skipped, reset by one that shrinks", () => {
    const encoder = new BlockEncoder(PriorityClass.Append, zstd)
    const random = () => Array.from({ length: 50 }, (_, i) => appendOf(i, randomBytes(1000)))
    const outcomes: Array<string> = []
    for (let i = 0; i < 1 + 4 + 1 + 8 + 1; i++) outcomes.push(block(encoder, random()).encoded.outcome)
    expect(outcomes).toEqual([
      "did_not_shrink",
      ...Array(4).fill("backing_off"),
      "did_not_shrink",
      ...Array(8).fill("backing_off"),
      "did_not_shrink"
    ])
    for (let i = 0; i < 16; i++) block(encoder, random())
    const compressible = Array.from({ length: 50 }, (_, i) => appendOf(i, json(i)))
    expect(encoder.shrinking).toBe(false)
    expect(block(encoder, compressible).encoded.outcome).toBe("compressed")
    expect(encoder.shrinking).toBe(true)
    expect(block(encoder, random()).encoded.outcome).toBe("did_not_shrink")
    expect(encoder.shrinking).toBe(false)
    expect(Array.from({ length: 5 }, () => block(encoder, random()).encoded.outcome)).toEqual([
      ...Array(4).fill("backing_off"),
      "did_not_shrink"
    ])
  })

  it("skip a header extension and refuse flags they do not know", () => {
    const payload = encodeMessage(appendOf(7, json(7)))
    const frames = encodeFrames([payload])
    // rest = flags + E + 3 extension bytes + frames
    const withExtension = Uint8Array.from([0, 0, 0, 2 + 3 + frames.length, 0, 3, 9, 9, 9, ...frames])
    expect(decodeAll(withExtension, 3).messages.map((m) => m.index)).toEqual([7])
    const unknownFlag = Uint8Array.from([0, 0, 0, 2 + frames.length, 0x02, 0, ...frames])
    expect(decodeAll(unknownFlag, 64).failure?._tag).toBe("DecodeFailed")
  })

  it("refuse a compressed body that announces more than one largest frame, or inflates to another size", () => {
    const max = 4096
    const raw = new Uint8Array(64 * 1024) // zeros: a few bytes compressed
    const bomb = compressedBlock(raw.length, zstdCompressSync(raw))
    expect(decodeAll(bomb, 1024, max).failure?._tag).toBe("FrameTooLarge")
    const small = encodeFrames([encodeMessage(appendOf(1, json(1)))])
    const lying = compressedBlock(small.length + 10, zstdCompressSync(small))
    expect(decodeAll(lying, 1024, max).failure?._tag).toBe("DecodeFailed")
    const garbage = compressedBlock(100, randomBytes(50))
    expect(decodeAll(garbage, 1024, max).failure?._tag).toBe("DecodeFailed")
    expect(maxBlockRawBytes(max)).toBe(max + 4)
  })

  it("refuse frames that do not fill their block exactly", () => {
    const frames = encodeFrames([encodeMessage(appendOf(1, json(1)))])
    const cut = frames.subarray(0, frames.length - 3)
    const truncated = Uint8Array.from([0, 0, 0, 2 + cut.length, 0, 0, ...cut])
    expect(decodeAll(truncated, 64).failure?._tag).toBe("DecodeFailed")
  })
})
