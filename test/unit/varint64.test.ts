import { describe, expect, it } from "@effect/vitest"
import protobuf from "protobufjs"
import { decodeMessage, encodeMessage } from "../../src/message/codec.ts"
import { MessageType } from "../../src/message/types.ts"
import { installFastUint64, protobufUint64 } from "../../src/message/varint64.ts"

const edges = [
  0, 1, 127, 128, 300, 2 ** 14 - 1, 2 ** 14, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1,
  2 ** 35, 2 ** 42 + 12345, 2 ** 49, 2 ** 53 - 1, 2 ** 53, 2 ** 56 + 2 ** 40, 2 ** 63, 2 ** 64 - 2 ** 12, 2 ** 64, 1.5, -1, -(2 ** 40)
]

/** A deterministic spread of magnitudes: every bit length, with varied low bits. */
const spread = (): Array<number> => {
  const out: Array<number> = []
  let seed = 12345
  for (let bits = 1; bits <= 64; bits++) {
    for (let k = 0; k < 8; k++) {
      seed = (seed * 1103515245 + 12345) >>> 0
      out.push(Math.floor(2 ** (bits - 1) * (1 + seed / 2 ** 32)))
    }
  }
  return out
}

const writeWith = (write: typeof protobufUint64.write, value: number): Uint8Array => {
  const writer = protobuf.Writer.create()
  write.call(writer as never, value)
  return writer.finish()
}

const readWith = (read: typeof protobufUint64.read, bytes: Uint8Array): { value: number; pos: number } | string => {
  const reader = protobuf.Reader.create(bytes)
  try {
    const value = read.call(reader as never)
    return { value, pos: reader.pos }
  } catch (error) {
    return (error as Error).constructor.name
  }
}

const fastWrite = protobuf.Writer.prototype.uint64 as unknown as typeof protobufUint64.write
const fastRead = protobuf.Reader.prototype.uint64 as unknown as typeof protobufUint64.read

describe("uint64 without LongBits", () => {
  it("is installed by the codec", () => {
    expect(fastRead).not.toBe(protobufUint64.read)
    expect(fastWrite).not.toBe(protobufUint64.write)
  })

  it("can be installed again after protobufjs reconfigures itself", () => {
    protobuf.configure()
    installFastUint64()
    installFastUint64()
    expect(protobuf.Reader.prototype.uint64).toBe(fastRead)
    expect(protobufUint64.write).not.toBe(fastWrite)
    // Negative numbers take protobufjs's own path: it must not be ours.
    expect(writeWith(fastWrite, -5)).toEqual(writeWith(protobufUint64.write, -5))
  })

  it("writes the same bytes and reads back the same numbers as protobufjs", () => {
    for (const value of [...edges, ...spread()]) {
      const bytes = writeWith(fastWrite, value)
      expect(bytes, `write ${value}`).toEqual(writeWith(protobufUint64.write, value))
      expect(readWith(fastRead, bytes), `read ${value}`).toEqual(readWith(protobufUint64.read, bytes))
    }
  })

  it("agrees with protobufjs on truncated, over-long and random input", () => {
    const cases: Array<Uint8Array> = [
      new Uint8Array(0),
      Uint8Array.of(0x80),
      Uint8Array.of(0xff, 0xff, 0xff, 0xff),
      Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff),
      Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      new Uint8Array(10).fill(0xff),
      new Uint8Array(11).fill(0xff),
      Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
      Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02)
    ]
    let seed = 7
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(1 + (i % 12))
      for (let j = 0; j < bytes.length; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0
        bytes[j] = seed >>> 24
      }
      cases.push(bytes)
    }
    for (const bytes of cases) {
      expect(readWith(fastRead, bytes), `read ${Array.from(bytes)}`).toEqual(readWith(protobufUint64.read, bytes))
    }
  })

  it("round-trips every uint64 field of a message", () => {
    const big = 2 ** 53 - 1
    const message = {
      msgType: MessageType.Append,
      to: big,
      from: 2 ** 32,
      term: 2 ** 40,
      logTerm: 127,
      index: 128,
      commit: 0,
      rejectHint: 2 ** 31,
      entries: [{ term: 2 ** 35, index: big, data: Uint8Array.of(1, 2, 3) }]
    }
    const decoded = decodeMessage(encodeMessage(message))
    expect(decoded).toMatchObject({ ...message, commit: 0, entries: [{ term: 2 ** 35, index: big }] })
  })
})
