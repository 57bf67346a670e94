/**
 * The compressed ceiling: the raw ceiling's two bare endpoints and one uni stream
 * (`raw-ceiling.ts`), carrying exactly what a version 2 append stream carries for a payload
 * kind compressed, with no transport work besides compressing and inflating. It bounds what
 * any transport on this binding can reach with compressed appends on this machine.
 *
 * The sender frames appends as the transport does (`benchMessage`, protobuf, u32 length) and
 * groups them into full writes of the Iroh writer's limits (`max_batch` 400, `max_batch_bytes`
 * 64 KiB): the best case, the transport's writes are never larger. Each write is one block of
 * `BlockEncoder` at the given zstd level, converted by `encodeFramesToArray` as the link's host
 * does. Two variants:
 * - `compressing`: each write is compressed in the loop: binding plus zstd, the bound for a
 *   transport (it cannot send what it has not compressed);
 * - `precompressed`: the blocks are compressed and converted once and cycled: the binding alone
 *   at the compressed wire size.
 * The receiver reads as the raw receiver does (`RAW_READ_BYTES`), converts with `arrayToBytes`,
 * and feeds the transport's `BlockDecoder`, which inflates each block and finds its frames; it
 * counts the frames. The rate is the receiver's frame count over the steady windows.
 */
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_FRAME_BYTES } from "../../src/config/schema.ts"
import { BlockEncoder, noCompression } from "../../src/iroh/block-encoder.ts"
import { BlockDecoder } from "../../src/message/blocks.ts"
import { arrayToBytes, bytesToArray } from "../../src/message/byte-arrays.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { encodeFrames, encodeFramesToArray, FRAME_HEADER_LENGTH, framedLength } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { type FirstMsg, type PeerMsg, type PeerProcessFailed, type ReadyMsg, type Role, runFromStartToStop } from "../harness/ipc.ts"
import { spawnPeer } from "../harness/peer-processes.ts"
import { counterDelta } from "../harness/probe.ts"
import { mbPerSecond, perSecond } from "../harness/stats.ts"
import { type FlowOptions, measureFlow, quietMedian } from "../harness/windows.ts"
import { type PayloadKind, payloadPool } from "./payloads.ts"
import { addressOf, bindRaw, openUniTo, RAW_READ_BYTES, readFirstUni } from "./raw-ceiling.ts"
import { benchMessage } from "./transport-throughput.ts"

export type CompressedCeilingVariant = "compressing" | "precompressed"


const parseArgs = (args: ReadonlyArray<string>) => {
  const [payload, variant, level] = args
  if (payload === undefined || (variant !== "compressing" && variant !== "precompressed")) {
    throw new Error(`expected <payload> <compressing|precompressed> [level], got ${JSON.stringify(args)}`)
  }
  return { payload: payload as PayloadKind, variant: variant as CompressedCeilingVariant, level: Number(level ?? 1) }
}

/** The kind's pool as append payloads, grouped into full writes (a partial last one is left out). */
const fullWrites = (payload: PayloadKind): Array<Array<Uint8Array>> => {
  const pool = payloadPool(payload)
  const writes: Array<Array<Uint8Array>> = []
  let write: Array<Uint8Array> = []
  let bytes = 0
  for (let seq = 1; seq <= pool.length; seq++) {
    const encoded = encodeMessage(benchMessage("append", seq, pool[seq % pool.length]!))
    const size = FRAME_HEADER_LENGTH + encoded.length
    if (write.length === DEFAULT_MAX_BATCH || bytes + size > DEFAULT_MAX_BATCH_BYTES) {
      writes.push(write)
      write = []
      bytes = 0
    }
    write.push(encoded)
    bytes += size
  }
  return writes
}

/** Inflates and counts the frames of everything on the first uni stream of the first connection. */
export const compressedCeilingReceiverRole: Role = (parent) =>
  Effect.gen(function*() {
    const endpoint = yield* bindRaw
    const decoder = new BlockDecoder(DEFAULT_MAX_FRAME_BYTES)
    let bytes = 0
    let msgs = 0
    let blocks = 0
    let failures = 0
    let announced = false
    parent.setCounters(() => ({ bytes, msgs, blocks, failures }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* readFirstUni(endpoint, async (stream) => {
      while (true) {
        const chunk = await stream.read(RAW_READ_BYTES)
        if (chunk.length === 0) return
        bytes += chunk.length
        const read = decoder.push(arrayToBytes(chunk))
        for (const segment of read.segments) msgs += segment.spans.length / 2
        blocks += read.segments.length
        if (!announced && msgs > 0) {
          announced = true
          Effect.runFork(parent.send({ type: "first" } as FirstMsg))
        }
        // A malformed block ends the count: the figure would be wrong, and `failures` says so.
        if (read.failure !== undefined) {
          failures++
          return
        }
      }
    })
  })

/** Dials the receiver, then writes the kind's compressed blocks from `start` until `stop`. */
export const compressedCeilingSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const { payload, variant, level } = parseArgs(parent.args)
    const { address } = yield* parent.next<PeerMsg>("peer")
    const endpoint = yield* bindRaw
    // Every write compressed, whatever it sheds: the bound, not the adaptive choice.
    const encoder = new BlockEncoder(PriorityClass.Append, {
      ...noCompression,
      algorithm: "zstd",
      level,
      classes: [PriorityClass.Append]
    })
    let wireBytes = 0
    let framedBytes = 0
    let blocks = 0
    let notCompressed = 0
    let compressMs = 0
    const writes = fullWrites(payload).map((payloads) => ({ payloads, framedBytes: framedLength(payloads) }))
    // Kept arrays (not `transientArray`s, which one write reuses for the next).
    const prebuilt = variant === "precompressed"
      ? writes.map(({ framedBytes, payloads }) => {
        const block = encoder.encode(payloads, framedBytes)
        if (block.outcome !== "compressed") notCompressed++
        return bytesToArray(encodeFrames(block.payloads, block.lead))
      })
      : []
    const stream = yield* openUniTo(endpoint, address)
    parent.setCounters(() => ({ wireBytes, framedBytes, blocks, notCompressed, compressMs }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* runFromStartToStop(parent, (running) =>
      Effect.tryPromise(async () => {
        for (let i = 0; running(); i = (i + 1) % writes.length) {
          const write = writes[i]!
          let array: Array<number>
          if (variant === "precompressed") {
            array = prebuilt[i]!
          } else {
            const t0 = performance.now()
            const block = encoder.encode(write.payloads, write.framedBytes)
            compressMs += performance.now() - t0
            if (block.outcome !== "compressed") notCompressed++
            array = encodeFramesToArray(block.payloads, block.lead)
          }
          await stream.writeAll(array)
          wireBytes += array.length
          framedBytes += write.framedBytes
          blocks++
        }
      }))
    yield* parent.send({ type: "stop" })
  })

export interface CompressedCeilingResult {
  readonly variant: CompressedCeilingVariant
  /** Median over the windows without background load (all windows if none was quiet). */
  readonly msgsPerSec: number
  readonly windows: ReadonlyArray<{ readonly msgsPerSec: number; readonly backgroundCores: number }>
  /** Wire MB/s the receiver read (compressed blocks, headers included). */
  readonly wireMbPerSec: number
  /** Wire bytes per message, and messages per block, as sent. */
  readonly wireBytesPerMessage: number
  readonly messagesPerBlock: number
  /** Sender time in `BlockEncoder.encode` per framed byte (ns); 0 when precompressed. */
  readonly compressNsPerByte: number
  /** Blocks the receiver refused, or the sender sent uncompressed: 0 unless something is off. */
  readonly failures: number
  readonly notCompressed: number
}

/** Orchestrator side: spawn both processes, measure a steady flow, stop. */
export const runCompressedCeiling = (
  options: FlowOptions & { readonly payload: PayloadKind; readonly variant: CompressedCeilingVariant; readonly level?: number }
): Effect.Effect<CompressedCeilingResult, PeerProcessFailed> =>
  Effect.scoped(
    Effect.gen(function*() {
      const receiver = yield* spawnPeer("compressed-ceiling-receiver")
      const { address } = yield* receiver.next<ReadyMsg>("ready")
      const sender = yield* spawnPeer("compressed-ceiling-sender", [options.payload, options.variant, String(options.level ?? 1)])
      yield* sender.send({ type: "peer", address } as PeerMsg)
      yield* sender.next<ReadyMsg>("ready")
      const { receiver: r, sender: s, ...measured } = yield* measureFlow(receiver, sender, options)
      const windows = measured.windows.map((w) => ({
        msgsPerSec: perSecond(w.deltas[0]!["msgs"] ?? 0, w.ms),
        backgroundCores: w.backgroundCores
      }))
      const msgs = counterDelta(r, "msgs")
      const sentFramed = counterDelta(s, "framedBytes")
      return {
        variant: options.variant,
        msgsPerSec: quietMedian(windows, (w) => w.msgsPerSec),
        windows,
        wireMbPerSec: mbPerSecond(counterDelta(r, "bytes"), r.ms),
        wireBytesPerMessage: counterDelta(r, "bytes") / msgs,
        messagesPerBlock: msgs / counterDelta(r, "blocks"),
        compressNsPerByte: sentFramed > 0 ? (counterDelta(s, "compressMs") * 1e6) / sentFramed : Number.NaN,
        failures: r.end.counters["failures"] ?? 0,
        notCompressed: s.end.counters["notCompressed"] ?? 0
      }
    })
  )
