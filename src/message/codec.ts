import protobuf from "protobufjs"
import { fileURLToPath } from "node:url"
import type { BlockDecoder } from "./blocks.ts"
import { countEntries } from "./decode-limits.ts"
import { DecodeFailed, DecodeLimitExceeded, type FrameTooLarge } from "./errors.ts"
import type { FrameDecoder } from "./framing.ts"
import type { RaftMessage } from "./types.ts"
import { installFastUint64 } from "./varint64.ts"

// Without `Long`, protobufjs reads uint64 as plain numbers: one allocation less per field and
// no conversion for callers. Measured in bench/phases/codec.ts.
protobuf.util.Long = undefined as never
protobuf.configure()
installFastUint64()

export const protoPath: string = fileURLToPath(new URL("../../proto/raft.proto", import.meta.url))

/**
 * Reflection, not static generation: protobufjs compiles per-type encoders and decoders at
 * load time with the same generated code that `pbjs -t static` would write, so the speed is
 * the same (bench/phases/codec.ts) without a generated file to keep in sync with the .proto.
 */
export const protoRoot: protobuf.Root = protobuf.loadSync(protoPath)

// protobufjs leaves an absent sub-message (`snapshot`, `metadata`, `conf_state`) as the
// constructor prototype's default, `null`, while `RaftMessage` and every consumer treat absence
// as `undefined` (`s === undefined`, `?.`, spreads). A peer that omits `snapshot` would then
// crash the snapshot reassembler with a TypeError (on gRPC, an unhandled rejection that ends
// the process). Making the prototype default `undefined` fixes decoding at the source, at no
// cost per message; encoders test `!= null`, so they are unaffected.
const raftNamespace = protoRoot.lookup("raft")
for (const type of raftNamespace instanceof protobuf.Namespace ? raftNamespace.nestedArray : []) {
  if (!(type instanceof protobuf.Type)) continue
  const prototype = type.ctor.prototype as Record<string, unknown>
  for (const field of type.fieldsArray) {
    if (!field.repeated && !field.map && field.resolve().resolvedType instanceof protobuf.Type) prototype[field.name] = undefined
  }
}

const MessageCodec = protoRoot.lookupType("raft.Message")
const BatchCodec = protoRoot.lookupType("raft.MessageBatch")

/** Encodings up to this size are handed out of a shared slab, like `Buffer.allocUnsafe`'s pool. */
const SLAB_BYTES = 32 * 1024
const MAX_SLAB_ITEM_BYTES = SLAB_BYTES / 4
/** A writer grown past this by one large message is dropped rather than kept. */
const MAX_KEPT_WRITER_BYTES = 1024 * 1024

/**
 * One writer for every encoding, and what the transport writes carved out of 32 KiB slabs
 * (`encodePayload`). A fresh protobufjs writer grows its buffer by doubling and then copies
 * the result into one more: for a 4 KiB snapshot chunk that was two ArrayBuffers of its own
 * per message, and at gRPC's 60-90 MB/s the sender spent 20-30 ms at a time in
 * `Buffer.allocUnsafe` while V8 collected for the external memory (bench/tools/profile-summary.ts,
 * "longest stretches").
 */
let writer = protobuf.Writer.create()
let slab = Buffer.allocUnsafe(SLAB_BYTES)
let slabUsed = 0

const take = (n: number): Buffer => {
  if (n > MAX_SLAB_ITEM_BYTES) return Buffer.allocUnsafe(n)
  if (slabUsed + n > SLAB_BYTES) {
    slab = Buffer.allocUnsafe(SLAB_BYTES)
    slabUsed = 0
  }
  const out = slab.subarray(slabUsed, slabUsed + n)
  // Eight-byte aligned, as the pool aligns its slices.
  slabUsed = (slabUsed + n + 7) & ~7
  return out
}

/** Encodes into the shared writer; the result is in `writer.buf` up to `writer.pos`. */
const encodeIntoWriter = (message: RaftMessage): protobuf.Writer => {
  const w = writer
  w.pos = 0
  w.states = null
  try {
    MessageCodec.encode(message as never, w)
  } catch (cause) {
    writer = protobuf.Writer.create()
    throw cause
  }
  if (w.buf.length > MAX_KEPT_WRITER_BYTES) writer = protobuf.Writer.create()
  return w
}

/**
 * Encodes one message for a write that happens now: small encodings share a 32 KiB slab
 * with others, which stays alive while any of them is kept (the transport frames or copies
 * them at once; only a batch retried after a failed write waits, for one reconnect).
 */
export const encodePayload = (message: RaftMessage): Uint8Array => {
  const w = encodeIntoWriter(message)
  const out = take(w.pos)
  out.set(w.buf.subarray(0, w.pos))
  return out
}

/** Encodes one message into bytes of the caller's own (from Node's pool, as `Buffer.allocUnsafe` gives them). */
export const encodeMessage = (message: RaftMessage): Uint8Array => {
  const w = encodeIntoWriter(message)
  const out = Buffer.allocUnsafe(w.pos)
  out.set(w.buf.subarray(0, w.pos))
  return out
}

/** Decodes one message; throws on malformed input (callers turn that into `DecodeFailed`). */
export const decodeMessage = (bytes: Uint8Array): RaftMessage => MessageCodec.decode(bytes) as unknown as RaftMessage

export interface DecodedRead {
  /** The messages the read completed, in stream order, up to any failure. */
  readonly messages: Array<RaftMessage>
  /** What ends the stream, if anything: an undecodable frame, or a header above the maximum. */
  readonly failure: DecodeFailed | FrameTooLarge | DecodeLimitExceeded | undefined
}

/**
 * Bytes decoded before a long decode yields the event loop (each message counts 16 more, for
 * its object): at most 16 K objects, about 1-2 ms of protobufjs work on the benchmark machine
 * (bench/tools/decode-limits.ts), so no single input holds the loop for longer.
 */
export const DECODE_SLICE_BYTES = 32 * 1024

export interface DecodedSlice {
  /** Index in `spans` where the next slice starts (`spans.length` when all are done). */
  readonly next: number
  readonly failure: DecodeFailed | DecodeLimitExceeded | undefined
}

/**
 * Decodes the messages at `spans` (`[start, end, ...]` in `buf`) from index `from` into `out`,
 * until about `DECODE_SLICE_BYTES` are decoded, all through one reader whose bounds are moved
 * frame by frame: no view and no reader per message. Each frame is bounded by its own end,
 * exactly as if it were decoded alone. A message long enough to hold more than
 * `maxMessageEntries` entries (two bytes each at least) has them counted first.
 */
export const decodeSpans = (
  buf: Uint8Array,
  spans: ReadonlyArray<number>,
  from: number,
  maxMessageEntries: number,
  out: Array<RaftMessage>
): DecodedSlice => {
  if (from >= spans.length) return { next: from, failure: undefined }
  const reader = protobuf.Reader.create(buf)
  const mayExceed = 2 * (maxMessageEntries + 1)
  let bytes = 0
  let i = from
  for (; i < spans.length && bytes < DECODE_SLICE_BYTES; i += 2) {
    const start = spans[i]!
    const end = spans[i + 1]!
    if (end - start >= mayExceed && countEntries(buf, start, end, maxMessageEntries) > maxMessageEntries) {
      return { next: i, failure: new DecodeLimitExceeded({ limit: "max_message_entries", max: maxMessageEntries }) }
    }
    reader.pos = start
    reader.len = end
    try {
      out.push(MessageCodec.decode(reader) as unknown as RaftMessage)
    } catch (cause) {
      return { next: i, failure: new DecodeFailed({ cause }) }
    }
    bytes += end - start + 16
  }
  return { next: i, failure: undefined }
}

/** Decodes every message at `spans` in `bytes` into `messages`, slice after slice; the failure that stopped it. */
const decodeAllSpans = (
  bytes: Uint8Array,
  spans: ReadonlyArray<number>,
  maxMessageEntries: number,
  messages: Array<RaftMessage>
): DecodeFailed | DecodeLimitExceeded | undefined => {
  let from = 0
  while (from < spans.length) {
    const slice = decodeSpans(bytes, spans, from, maxMessageEntries, messages)
    if (slice.failure !== undefined) return slice.failure
    from = slice.next
  }
  return undefined
}

/**
 * Feeds one read to a stream's frame decoder and decodes every frame it completes, in one go
 * (the acceptor decodes slice by slice with `decodeSpans` instead). What decoded before a
 * failure arrived intact and in order, so it is returned with it.
 */
export const decodeRead = (
  decoder: FrameDecoder,
  chunk: Uint8Array,
  maxMessageEntries: number = Number.MAX_SAFE_INTEGER
): DecodedRead => {
  const spans = decoder.pushSpans(chunk)
  const messages: Array<RaftMessage> = []
  const failure = decodeAllSpans(decoder.bytes, spans, maxMessageEntries, messages)
  return { messages, failure: failure ?? decoder.tooLarge }
}

/** `decodeRead` for a wire version 2 stream (`blocks.ts`). */
export const decodeBlockRead = (
  decoder: BlockDecoder,
  chunk: Uint8Array,
  maxMessageEntries: number = Number.MAX_SAFE_INTEGER
): DecodedRead => {
  const read = decoder.push(chunk)
  const messages: Array<RaftMessage> = []
  for (const segment of read.segments) {
    const failure = decodeAllSpans(segment.bytes, segment.spans, maxMessageEntries, messages)
    if (failure !== undefined) return { messages, failure }
  }
  return { messages, failure: read.failure }
}

export const encodeBatch = (messages: ReadonlyArray<RaftMessage>): Uint8Array =>
  BatchCodec.encode({ messages } as never).finish()

export const decodeBatch = (bytes: Uint8Array): ReadonlyArray<RaftMessage> =>
  (BatchCodec.decode(bytes) as unknown as { messages: ReadonlyArray<RaftMessage> }).messages

