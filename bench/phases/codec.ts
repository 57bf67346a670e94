/**
 * In-process micro-benchmarks (tinybench): the codec on the two hot message shapes, and the
 * byte conversions the Iroh binding forces on every write and read (`Array<number>` in and
 * out; docs/design.md, "The binding's byte conversion is the ceiling"). Sub-microsecond work is run `inner` times per
 * sample so the timer's own cost does not swamp it; results are per single operation.
 */
import { Bench } from "tinybench"
import { decodeMessage, encodeMessage, encodePayload } from "../../src/message/codec.ts"
import { arrayToBytes } from "../../src/message/byte-arrays.ts"
import { encodeFrames, encodeFramesToArray, FRAME_HEADER_LENGTH } from "../../src/message/framing.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"

export interface MicroResult {
  readonly name: string
  /** Mean time of one operation (ns). */
  readonly nsPerOp: number
  readonly opsPerSec: number
  /** Relative margin of error of the mean, percent. */
  readonly rmePercent: number
  /** Bytes one operation handles, when it is a byte conversion. */
  readonly bytes?: number
  readonly group: "codec" | "to-array" | "from-array"
}

export interface CodecResults {
  readonly results: ReadonlyArray<MicroResult>
  readonly heartbeatBytes: number
  readonly appendBytes: number
  readonly batchMessages: number
}

const heartbeatMessage: RaftMessage = {
  msgType: MessageType.Heartbeat,
  from: 1,
  to: 2,
  term: 42,
  commit: 123_456
}

const append100Message: RaftMessage = {
  msgType: MessageType.Append,
  from: 1,
  to: 2,
  term: 42,
  logTerm: 42,
  index: 123_456,
  commit: 123_450,
  entries: [{ term: 42, index: 123_457, data: new Uint8Array(100).map((_, i) => i) }]
}

const TO_ARRAY_BYTES = 16 * 1024
const FROM_ARRAY_BYTES = 32 * 1024

/** Append payloads whose frames add up to exactly `total` bytes (the last one padded). */
const batchOf = (total: number): Array<Uint8Array> => {
  const one = encodeMessage(append100Message)
  const payloads: Array<Uint8Array> = []
  let left = total
  while (left >= FRAME_HEADER_LENGTH + one.length * 2) {
    payloads.push(one)
    left -= FRAME_HEADER_LENGTH + one.length
  }
  payloads.push(new Uint8Array(left - FRAME_HEADER_LENGTH).fill(7))
  return payloads
}

let sink = 0

export const runCodecBench = async (options: { readonly timeMs: number }): Promise<CodecResults> => {
  const bench = new Bench({ time: options.timeMs, warmupTime: 200, timestampProvider: "hrtimeNow" })
  const meta = new Map<string, { inner: number; bytes?: number; group: MicroResult["group"] }>()
  const add = (name: string, group: MicroResult["group"], inner: number, fn: () => void, bytes?: number) => {
    meta.set(name, { inner, group, ...(bytes !== undefined ? { bytes } : {}) })
    bench.add(name, fn)
  }

  const heartbeatBytes = encodeMessage(heartbeatMessage).length
  const appendBytes = encodeMessage(append100Message).length
  const CODEC_INNER = 100
  add(`heartbeat encode+decode (${heartbeatBytes} B)`, "codec", CODEC_INNER, () => {
    for (let i = 0; i < CODEC_INNER; i++) sink += decodeMessage(encodePayload(heartbeatMessage)).commit ?? 0
  })
  add(`append 100 B encode+decode (${appendBytes} B)`, "codec", CODEC_INNER, () => {
    for (let i = 0; i < CODEC_INNER; i++) sink += decodeMessage(encodePayload(append100Message)).index ?? 0
  })

  const payloads = batchOf(TO_ARRAY_BYTES)
  const framed = encodeFrames(payloads)
  if (framed.length !== TO_ARRAY_BYTES) throw new Error(`batch is ${framed.length} bytes, expected ${TO_ARRAY_BYTES}`)
  add("Array.from(u8), 16 KiB", "to-array", 1, () => {
    sink += Array.from(framed).length
  }, TO_ARRAY_BYTES)
  add("indexed loop into new Array(n), 16 KiB", "to-array", 1, () => {
    const n = framed.length
    const out = new Array<number>(n)
    for (let i = 0; i < n; i++) out[i] = framed[i]!
    sink += out.length
  }, TO_ARRAY_BYTES)
  add(`encodeFramesToArray(${payloads.length} payloads), 16 KiB`, "to-array", 1, () => {
    sink += encodeFramesToArray(payloads).length
  }, TO_ARRAY_BYTES)

  const array = Array.from(new Uint8Array(FROM_ARRAY_BYTES).map((_, i) => (i * 13) & 0xff))
  add("arrayToBytes(arr), 32 KiB", "from-array", 1, () => {
    sink += arrayToBytes(array).length
  }, FROM_ARRAY_BYTES)
  add("Uint8Array.from(arr), 32 KiB", "from-array", 1, () => {
    sink += Uint8Array.from(array).length
  }, FROM_ARRAY_BYTES)
  add("new Uint8Array(arr), 32 KiB", "from-array", 1, () => {
    sink += new Uint8Array(array).length
  }, FROM_ARRAY_BYTES)

  await bench.run()
  if (sink === 42) console.error("") // keep `sink` observable

  const results: Array<MicroResult> = bench.tasks.map((task) => {
    const m = meta.get(task.name)!
    const r = task.result
    if (r.state !== "completed") {
      throw new Error(`micro-benchmark "${task.name}" ${r.state}${"error" in r ? `: ${r.error.message}` : ""}`)
    }
    const nsPerOp = (r.latency.mean * 1e6) / m.inner
    return {
      name: task.name,
      nsPerOp,
      opsPerSec: 1e9 / nsPerOp,
      rmePercent: r.latency.rme,
      group: m.group,
      ...(m.bytes !== undefined ? { bytes: m.bytes } : {})
    }
  })
  return { results, heartbeatBytes, appendBytes, batchMessages: payloads.length }
}
