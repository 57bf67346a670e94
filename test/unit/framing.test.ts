import { describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { decodeMessage, decodeRead, encodeMessage, encodePayload } from "../../src/message/codec.ts"
import { arrayToBytes } from "../../src/message/byte-arrays.ts"
import {
  encodeFrames,
  encodeFramesToArray,
  FrameDecoder,
  parsePreamble,
  preamble
} from "../../src/message/framing.ts"
import { classify, PriorityClass } from "../../src/message/priority.ts"
import { SnapshotAssembler, snapshotChunks, unlimitedSnapshotMemory } from "../../src/message/snapshot-chunks.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"

const msg = (i: number): RaftMessage => ({
  msgType: MessageType.Append,
  to: 2,
  from: 1,
  term: 3,
  index: i,
  entries: [{ term: 3, index: i, data: new Uint8Array([i & 0xff, 1, 2]) }]
})

describe("codec", () => {
  it("round-trips every field of a message, with uint64 as numbers", () => {
    const m: RaftMessage = {
      msgType: MessageType.Snapshot,
      to: 7,
      from: 9,
      term: 2 ** 40,
      logTerm: 4,
      index: 1234567,
      commit: 99,
      reject: true,
      rejectHint: 5,
      context: new Uint8Array([1, 2, 3]),
      entries: [{ term: 1, index: 2, data: new Uint8Array([4]) }],
      snapshot: { data: new Uint8Array([5, 6]), metadata: { index: 10, term: 2, confState: { voters: [1, 2, 3] } } }
    }
    const back = decodeMessage(encodeMessage(m))
    expect(back.term).toBe(2 ** 40)
    expect(back.msgType).toBe(MessageType.Snapshot)
    expect(back.reject).toBe(true)
    expect(Array.from(back.snapshot!.data)).toEqual([5, 6])
    expect(back.snapshot!.metadata!.confState!.voters).toEqual([1, 2, 3])
    expect(back.entries![0]!.index).toBe(2)
  })

  it("keeps every encoding intact while later ones share its slab or outgrow it", () => {
    const small = Array.from({ length: 2000 }, (_, i) => msg(i))
    const big = (i: number): RaftMessage => ({ ...msg(i), entries: [{ term: 3, index: i, data: new Uint8Array(20_000).fill(i & 0xff) }] })
    const encoded: Array<Uint8Array> = []
    for (const [i, m] of small.entries()) {
      encoded.push(i % 2 === 0 ? encodePayload(m) : encodeMessage(m))
      if (i % 500 === 0) encoded.push(encodePayload(big(i)))
    }
    // An encoding that throws half-way leaves nothing behind for the next one.
    const throwing = { term: 3, index: 1, get data(): Uint8Array { throw new Error("unreadable") } }
    expect(() => encodePayload({ ...msg(1), entries: [throwing] })).toThrow("unreadable")
    encoded.push(encodePayload(msg(7)))
    const decoded = encoded.map((b) => decodeMessage(new Uint8Array(b)))
    const expected = [...small.flatMap((m, i) => (i % 500 === 0 ? [m, big(i)] : [m])), msg(7)]
    expect(decoded.map((m) => [m.index, m.entries![0]!.data!.length, m.entries![0]!.data![0]])).toEqual(
      expected.map((m) => [m.index, m.entries![0]!.data!.length, m.entries![0]!.data![0]])
    )
  })

  it("classifies by priority", () => {
    expect(classify({ msgType: MessageType.RequestPreVote, to: 1, from: 2 })).toBe(PriorityClass.Election)
    expect(classify({ msgType: MessageType.TimeoutNow, to: 1, from: 2 })).toBe(PriorityClass.Election)
    expect(classify({ msgType: MessageType.HeartbeatResponse, to: 1, from: 2 })).toBe(PriorityClass.Heartbeat)
    expect(classify({ msgType: MessageType.Snapshot, to: 1, from: 2 })).toBe(PriorityClass.Snapshot)
    expect(classify({ msgType: MessageType.ReadIndex, to: 1, from: 2 })).toBe(PriorityClass.Append)
    expect(classify({ msgType: 99 as MessageType, to: 1, from: 2 })).toBe(PriorityClass.Append)
  })
})

/** The frames one push completes, as views into the decoder's buffer. */
const framesOf = (decoder: FrameDecoder, chunk: Uint8Array): Array<Uint8Array> => {
  const spans = decoder.pushSpans(chunk)
  if (decoder.tooLarge !== undefined) throw decoder.tooLarge
  const frames: Array<Uint8Array> = []
  for (let i = 0; i < spans.length; i += 2) frames.push(decoder.bytes.subarray(spans[i], spans[i + 1]))
  return frames
}

describe("framing", () => {
  it("parses the preamble and rejects strangers", () => {
    expect(parsePreamble(preamble(PriorityClass.Heartbeat))).toBe(PriorityClass.Heartbeat)
    expect(parsePreamble([0x52, 0x54, 2, 0])).toMatchObject({ _tag: "BadPreamble" })
    expect(parsePreamble([0x47, 0x45, 0x54, 0x20])).toMatchObject({ _tag: "BadPreamble" })
    expect(parsePreamble([0x52, 0x54, 1, 4])).toMatchObject({ _tag: "BadPreamble" })
  })

  it("decodes frames split across reads and many frames per read", () => {
    const payloads = Array.from({ length: 50 }, (_, i) => encodeMessage(msg(i)))
    const bytes = encodeFrames(payloads)
    expect(Array.from(arrayToBytes(encodeFramesToArray(payloads)))).toEqual(Array.from(bytes))
    for (const step of [1, 3, 7, 64, bytes.length]) {
      const decoder = new FrameDecoder(1024)
      const got: Array<number> = []
      for (let o = 0; o < bytes.length; o += step) {
        const frames = framesOf(decoder, bytes.slice(o, o + step))
        for (const f of frames) got.push(decodeMessage(f).index!)
      }
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i))
      expect(decoder.pending).toBe(0)
    }
  })

  it("copies a frame that arrives in many reads a bounded number of times, not once per read", () => {
    // Every byte the decoder buffers goes through TypedArray#set; count them. Before, each
    // read re-copied everything pending: a 4 MiB frame in 8 KiB reads copied ~1 GiB and held
    // the event loop for about a second (16 MiB: ten seconds), stalling every other stream.
    const typedArraySet = Object.getPrototypeOf(Uint8Array.prototype) as { set: Uint8Array["set"] }
    const spied = vi.spyOn(typedArraySet, "set")
    let copied = 0
    const size = 4 * 1024 * 1024
    const payload = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 0xff)
    const next = encodeMessage(msg(1))
    const bytes = encodeFrames([payload, next])
    const decoder = new FrameDecoder(size)
    const frames: Array<Uint8Array> = []
    const step = 8 * 1024
    try {
      for (let o = 0; o < bytes.length; o += step) {
        const chunk = bytes.slice(o, o + step)
        const before = spied.mock.calls.length
        const got = framesOf(decoder, chunk)
        for (const call of spied.mock.calls.slice(before)) copied += (call[0] as ArrayLike<number>).length
        frames.push(...got)
      }
    } finally {
      spied.mockRestore()
    }
    expect(frames).toHaveLength(2)
    expect(frames[0]!.length).toBe(size)
    expect(frames[0]!.every((b, i) => b === ((i * 7) & 0xff))).toBe(true)
    expect(decodeMessage(frames[1]!).index).toBe(1)
    expect(copied).toBeLessThan(4 * size)
  })

  it("never overwrites the bytes of a frame it returned (decoded messages alias them)", () => {
    const payloads = Array.from({ length: 20 }, (_, i) => encodeMessage(msg(i)))
    const bytes = encodeFrames(payloads)
    const decoder = new FrameDecoder(1024)
    const decoded: Array<RaftMessage> = []
    for (let o = 0; o < bytes.length; o += 5) {
      const { messages, failure } = decodeRead(decoder, bytes.slice(o, o + 5))
      expect(failure).toBeUndefined()
      decoded.push(...messages)
    }
    expect(decoded.map((m) => Array.from(m.entries![0]!.data!))).toEqual(payloads.map((_, i) => [i & 0xff, 1, 2]))
  })

  it("decodes spans with one reader exactly as frames decoded one by one", () => {
    const payloads = Array.from({ length: 30 }, (_, i) => encodeMessage(msg(i)))
    const bytes = encodeFrames(payloads)
    for (const step of [1, 9, 100, bytes.length]) {
      const decoder = new FrameDecoder(1024)
      const got: Array<RaftMessage> = []
      for (let o = 0; o < bytes.length; o += step) {
        const { messages, failure } = decodeRead(decoder, bytes.slice(o, o + step))
        expect(failure).toBeUndefined()
        got.push(...messages)
      }
      expect(got).toEqual(payloads.map((p) => decodeMessage(new Uint8Array(p))))
    }
  })

  it("bounds each span by its own end: a frame cannot borrow the next frame's bytes", () => {
    const good = encodeMessage(msg(7))
    // Field 7 (entries), length-delimited, claiming 20 bytes of which the frame holds 2: alone
    // it fails; through a shared reader it would read on into the next frame.
    const bad = Uint8Array.of(0x3a, 20, 0x10, 0x01)
    const decoder = new FrameDecoder(1024)
    const { messages, failure } = decodeRead(decoder, encodeFrames([good, bad, good]))
    expect(() => decodeMessage(bad)).toThrow()
    expect(failure).toMatchObject({ _tag: "DecodeFailed" })
    expect(messages.map((m) => m.index)).toEqual([7])
  })

  it("still returns the frames before a header above the maximum, then takes nothing more", () => {
    const decoder = new FrameDecoder(100)
    const good = encodeMessage(msg(3))
    const { messages, failure } = decodeRead(decoder, Uint8Array.of(...encodeFrames([good, good]), 0, 0, 1, 0, 9, 9))
    expect(messages.map((m) => m.index)).toEqual([3, 3])
    expect(failure).toMatchObject({ _tag: "FrameTooLarge", length: 256, max: 100 })
    expect(decodeRead(decoder, encodeFrames([good]))).toMatchObject({ messages: [], failure: { _tag: "FrameTooLarge" } })
  })

  it("rejects a frame header above the maximum before buffering it", () => {
    const decoder = new FrameDecoder(100)
    expect(decoder.pushSpans(Uint8Array.of(0, 0, 1, 0, 9, 9))).toEqual([])
    expect(decoder.tooLarge).toMatchObject({ _tag: "FrameTooLarge", length: 256, max: 100 })
  })
})

describe("snapshot chunks", () => {
  it("splits and reassembles, and reports a broken transfer", () => {
    const data = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff)
    const m: RaftMessage = { msgType: MessageType.Snapshot, to: 2, from: 1, snapshot: { data, metadata: { index: 5, term: 1 } } }
    const chunks = [...snapshotChunks(m, 1024, 7)]
    expect(chunks).toHaveLength(10)
    const assembler = new SnapshotAssembler(1 << 20, 1, unlimitedSnapshotMemory, Date.now)
    const results = chunks.map((c) => assembler.push(decodeMessage(encodeMessage(c))))
    const last = results.at(-1)!
    expect(results.slice(0, -1).every((r) => r._tag === "Pending")).toBe(true)
    if (last._tag !== "Complete") throw new Error(last._tag)
    expect(Array.from(last.message.snapshot!.data)).toEqual(Array.from(data))
    expect(last.message.snapshot!.metadata!.index).toBe(5)

    const gap = new SnapshotAssembler(1 << 20, 1, unlimitedSnapshotMemory, Date.now)
    gap.push(chunks[0]!)
    expect(gap.push(chunks[2]!)).toMatchObject({ _tag: "Broken" })
    expect(new SnapshotAssembler(100, 1, unlimitedSnapshotMemory, Date.now).push(chunks[0]!)).toMatchObject({ _tag: "Broken" })
  })
})
