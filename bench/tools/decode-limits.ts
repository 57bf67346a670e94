/**
 * What the decode caps cost and what they save (docs/design.md, "Security and limits"):
 * - the hot path: walking a 64 KiB read of 100-byte appends for its entry counts, against
 *   decoding it (one run, so the ratio holds on a machine whose speed drifts);
 * - the hostile inputs: refusing a 4 MiB frame of ~2 M empty entries and a 4 MiB gRPC batch
 *   of ~2 M two-byte messages, against decoding them whole as the transport did without caps;
 * - the longest hold of the event loop by one decode slice (`DECODE_SLICE_BYTES`), after warm-up.
 *
 *   npx tsx bench/tools/decode-limits.ts
 */
import { performance } from "node:perf_hooks"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { decodeBatch, decodeMessage, decodeSpans, encodeMessage } from "../../src/message/codec.ts"
import { countEntries, scanBatch } from "../../src/message/decode-limits.ts"
import { encodeFrames, FrameDecoder } from "../../src/message/framing.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"

const MiB = 1024 * 1024
const limits = { maxBatchMessages: 1024, maxMessageEntries: 4096, maxBatchEntries: 65_536 }

const time = (label: string, runs: number, fn: () => void): number => {
  fn()
  const t = performance.now()
  for (let i = 0; i < runs; i++) fn()
  const ms = (performance.now() - t) / runs
  console.log(`${label}: ${ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`}`)
  return ms
}

// 1. Hot path.
const data = new Uint8Array(100).map((_, i) => (i * 7) & 0xff)
const payloads: Array<Uint8Array> = []
for (let seq = 1; payloads.length < 480; seq++) {
  payloads.push(encodeMessage({ msgType: MessageType.Append, from: 1, to: 2, term: 3, logTerm: 3, index: seq, commit: seq, entries: [{ term: 3, index: seq + 1, data }] }))
}
const read = encodeFrames(payloads)
const decoder = new FrameDecoder(4 * MiB)
const spans = decoder.pushSpans(read)
const buf = decoder.bytes
const scan = time(`entry scan of a ${read.length} B read (${payloads.length} appends)`, 2000, () => {
  for (let i = 0; i < spans.length; i += 2) countEntries(buf, spans[i]!, spans[i + 1]!, limits.maxMessageEntries)
})
const decode = time("decode of the same read (messages this short need no scan)", 500, () => {
  const out: Array<RaftMessage> = []
  let from = 0
  while (from < spans.length) from = decodeSpans(buf, spans, from, limits.maxMessageEntries, out).next
})
console.log(`scan / decode: ${(100 * scan / decode).toFixed(1)}%`)

// 2. Hostile inputs.
const entries = Uint8Array.from({ length: 4 * MiB - 8 }, (_, i) => (i % 2 === 0 ? 0x3a : 0))
time("refuse a 4 MiB frame of ~2 M empty entries", 20, () => countEntries(entries, 0, entries.length, limits.maxMessageEntries))
const tiny = Uint8Array.from({ length: 4 * MiB - 64 }, (_, i) => (i % 2 === 0 ? 0x0a : 0))
time("refuse a 4 MiB batch of ~2 M two-byte messages", 20, () => scanBatch(tiny, limits))
// 3. The longest slice, on messages at the entry cap.
const atCap = encodeMessageBatch(Array.from({ length: 16 }, () => encodeMessage({ msgType: MessageType.Append, from: 1, to: 2, entries: Array.from({ length: 4096 }, (_, i) => ({ term: 1, index: i, data })) })))
const capSpans = scanBatch(atCap, { ...limits, maxBatchEntries: 1 << 20 })
if (!Array.isArray(capSpans)) throw capSpans
let longest = 0
for (let round = 0; round < 10; round++) {
  if (round === 5) longest = 0 // the first rounds compile and warm up
  let from = 0
  while (from < capSpans.length) {
    const s = performance.now()
    from = decodeSpans(atCap, capSpans, from, limits.maxMessageEntries, []).next
    longest = Math.max(longest, performance.now() - s)
  }
}
console.log(`longest slice (messages of 4,096 entries of 100 B): ${longest.toFixed(2)} ms`)
const empties = encodeFrames(Array.from({ length: 16_384 }, () => new Uint8Array(0)))
const emptyDecoder = new FrameDecoder(4 * MiB)
const emptySpans = emptyDecoder.pushSpans(empties)
longest = 0
for (let round = 0; round < 10; round++) {
  if (round === 5) longest = 0
  let from = 0
  while (from < emptySpans.length) {
    const s = performance.now()
    from = decodeSpans(emptyDecoder.bytes, emptySpans, from, limits.maxMessageEntries, []).next
    longest = Math.max(longest, performance.now() - s)
  }
}
console.log(`longest slice (a 64 KiB read of empty frames, 16,384 messages): ${longest.toFixed(2)} ms`)

// Last: what the caps save (these decodes leave millions of objects for the collector).
const heap0 = process.memoryUsage().heapUsed
let t = performance.now()
const whole = decodeMessage(entries)
console.log(`decode that frame whole (no caps): ${(performance.now() - t).toFixed(0)} ms, ${whole.entries?.length} entries, heap +${((process.memoryUsage().heapUsed - heap0) / MiB).toFixed(0)} MiB`)
t = performance.now()
const batch = decodeBatch(tiny)
console.log(`decode that batch whole (no caps): ${(performance.now() - t).toFixed(0)} ms, ${batch.length} messages`)

