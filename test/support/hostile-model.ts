/**
 * What the victim must count for one hostile input, worked out with the same pure functions
 * the transport uses (framing, decode caps, protobuf decode): the fuzz tests then check that
 * the network path counts exactly this, input by input summed over a run.
 */
import { decodeSpans } from "../../src/message/codec.ts"
import { type DecodeLimits, scanBatch } from "../../src/message/decode-limits.ts"
import { FrameDecoder, parsePreamble } from "../../src/message/framing.ts"
import { classify, type PriorityClass } from "../../src/message/priority.ts"
import type { RaftMessage } from "../../src/message/types.ts"

export interface Expected {
  /** Inbound error kinds (stream or call closed), by kind. */
  readonly errors: Record<string, number>
  /** Messages dropped, by reason. */
  readonly drops: Record<string, number>
  readonly delivered: number
}

export const emptyExpected = (): { errors: Record<string, number>; drops: Record<string, number>; delivered: number } => ({
  errors: {},
  drops: {},
  delivered: 0
})

const bump = (r: Record<string, number>, k: string, n = 1) => {
  r[k] = (r[k] ?? 0) + n
}

/** Sorts decoded messages as `InboundDelivery` does (no snapshot class here); returns the delivered count. */
const sortMessages = (messages: ReadonlyArray<RaftMessage>, self: number, peer: number, cls: PriorityClass, into: Expected): number => {
  let delivered = 0
  for (const m of messages) {
    if (m.from !== peer) bump(into.drops, "forged_from")
    else if (m.to !== self) bump(into.drops, "misaddressed")
    else if (classify(m) !== cls) bump(into.drops, "wrong_class")
    else delivered++
  }
  return delivered
}

/** One Iroh uni stream carrying `bytes`, then finished. */
export const expectIrohStream = (
  bytes: Uint8Array,
  ctx: { readonly self: number; readonly peer: number; readonly maxFrameBytes: number; readonly maxMessageEntries: number },
  into: { errors: Record<string, number>; drops: Record<string, number>; delivered: number }
): void => {
  const cls = parsePreamble(bytes.subarray(0, 4))
  if (typeof cls !== "number") return bump(into.errors, "bad_preamble")
  const decoder = new FrameDecoder(ctx.maxFrameBytes)
  const spans = decoder.pushSpans(bytes.slice(4))
  const messages: Array<RaftMessage> = []
  let from = 0
  while (from < spans.length) {
    const slice = decodeSpans(decoder.bytes, spans, from, ctx.maxMessageEntries, messages)
    if (slice.failure !== undefined) {
      into.delivered += sortMessages(messages, ctx.self, ctx.peer, cls, into)
      return bump(into.errors, slice.failure._tag === "DecodeLimitExceeded" ? "too_many_entries" : "decode_failed")
    }
    from = slice.next
  }
  into.delivered += sortMessages(messages, ctx.self, ctx.peer, cls, into)
  if (decoder.tooLarge !== undefined) bump(into.errors, "frame_too_large")
  else if (decoder.pending > 0) bump(into.errors, "truncated_frame")
}

const limitKind = { max_batch_messages: "too_many_messages", max_message_entries: "too_many_entries", max_batch_entries: "too_many_entries" } as const

/**
 * One gRPC `Stream` call of class `cls` carrying `batches`: true when it ends with an `Ack`
 * (of `ackReceived`), false when the server ends it with an error.
 */
export const expectGrpcCall = (
  batches: ReadonlyArray<Uint8Array>,
  cls: PriorityClass,
  ctx: { readonly self: number; readonly peer: number; readonly maxMessageBytes: number; readonly limits: DecodeLimits },
  into: { errors: Record<string, number>; drops: Record<string, number>; delivered: number }
): { readonly ok: boolean; readonly ackReceived: number } => {
  let acked = 0
  for (const batch of batches) {
    if (batch.length > ctx.maxMessageBytes) {
      bump(into.errors, "message_too_large")
      return { ok: false, ackReceived: 0 }
    }
    const spans = scanBatch(batch, ctx.limits)
    if (!Array.isArray(spans)) {
      bump(into.errors, spans._tag === "DecodeLimitExceeded" ? limitKind[spans.limit] : "decode_failed")
      return { ok: false, ackReceived: 0 }
    }
    const messages: Array<RaftMessage> = []
    let from = 0
    while (from < spans.length) {
      const slice = decodeSpans(batch, spans, from, ctx.limits.maxMessageEntries, messages)
      if (slice.failure !== undefined) {
        const n = sortMessages(messages, ctx.self, ctx.peer, cls, into)
        into.delivered += n
        bump(into.errors, "decode_failed")
        return { ok: false, ackReceived: 0 }
      }
      from = slice.next
    }
    const n = sortMessages(messages, ctx.self, ctx.peer, cls, into)
    into.delivered += n
    acked += n
  }
  return { ok: true, ackReceived: acked }
}
