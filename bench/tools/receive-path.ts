/**
 * The receiver's JS work for an append stream, without the binding: pre-framed reads of the
 * size the acceptor asks for on an append stream
 * (as `Array<number>`, like the binding's) go through the same conversion, frame decoder,
 * codec, delivery checks, mailbox and `receiveBatch` as in `src/iroh/acceptor.ts`, with an
 * async boundary per read. What it costs per message, and what it allocates, shows with
 * `node --trace-gc` apart from the binding's own arrays.
 *
 *   npx tsx bench/tools/receive-path.ts [seconds=5] [busy ms per read=0]
 */
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { arrayToBytes } from "../../src/message/byte-arrays.ts"
import { decodeRead, encodeMessage } from "../../src/message/codec.ts"
import { encodeFramesToArray, FrameDecoder } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType } from "../../src/message/types.ts"
import { READ_CHUNK_BYTES } from "../../src/iroh/protocol.ts"
import { InboundDelivery } from "../../src/inbound/inbound-delivery.ts"
import { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"

const seconds = Number(process.argv[2] ?? 5)
const busyMs = Number(process.argv[3] ?? 0)
const data = new Uint8Array(100).map((_, i) => (i * 7) & 0xff)
const payloads: Array<Uint8Array> = []
for (let seq = 1; payloads.length < 480; seq++) {
  payloads.push(encodeMessage({
    msgType: MessageType.Append, from: 1, to: 2, term: 3, logTerm: 3, index: 1_000_000 + seq, commit: 1_000_000 + seq,
    entries: [{ term: 3, index: 1_000_001 + seq, data }]
  }))
}
const stream = encodeFramesToArray(payloads)
// Reads of the size the acceptor asks for, cutting frames anywhere as the binding's do.
const READ = READ_CHUNK_BYTES[PriorityClass.Append]!
const reads: Array<Array<number>> = []
const whole: Array<number> = []
while (whole.length < 4 * READ) whole.push(...stream)
// Whole streams, so cycling through the reads stays aligned; the last read is shorter.
for (let o = 0; o < whole.length; o += READ) reads.push(whole.slice(o, o + READ))
const framesPerRead = payloads.length * (whole.length / stream.length) / reads.length

const program = Effect.gen(function*() {
  const mailbox = yield* InboundMailbox.make(8192)
  const delivery = new InboundDelivery({ self: 2, peer: 1, cls: PriorityClass.Append, transport: "iroh", mailbox, maxSnapshotBytes: 1 << 30 })
  let received = 0
  const consumer = Effect.forever(Effect.map(mailbox.receiveBatch(1000), (batch) => {
    received += batch.length
  }))
  yield* Effect.forkChild(consumer, { startImmediately: true })
  const decoder = new FrameDecoder(1 << 20)
  const start = performance.now()
  let n = 0
  while (performance.now() - start < seconds * 1000) {
    // A fresh array per read, as the binding makes one (copying costs ~1 ns/B, not 60); the
    // optional busy wait stands in for the binding's conversion, so GC sees realistic lifetimes.
    const array = yield* Effect.promise(() => new Promise<Array<number>>((resolve) => setImmediate(() => { const t = performance.now(); while (performance.now() - t < busyMs); resolve(reads[n++ % reads.length]!.slice()) })))
    const chunk = arrayToBytes(array)
    yield* delivery.countBytes(chunk.length)
    const { messages, failure } = decodeRead(decoder, chunk)
    if (failure !== undefined) return yield* Effect.die(failure)
    yield* delivery.deliver(messages)
  }
  yield* Effect.yieldNow
  const ms = performance.now() - start
  console.log(`${received} messages in ${ms.toFixed(0)} ms: ${(received / ms * 1000).toFixed(0)} msg/s, ${(ms * 1e6 / received).toFixed(0)} ns per message (${framesPerRead.toFixed(0)} per read, incl. an array copy per read)`)
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
