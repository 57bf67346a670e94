/**
 * A `raft.MessageBatch` (`repeated Message messages = 1`) built straight from already-encoded
 * `raft.Message` payloads, without decoding or re-encoding them: per payload, the field key
 * byte 0x0A (field 1, wire type 2), the payload length as a protobuf varint, then the payload.
 * That is byte for byte what protobufjs writes for the same messages (checked in
 * test/grpc-transport.test.ts against `decodeBatch` and `encodeBatch`).
 */
const MESSAGES_FIELD_KEY = 0x0a

/** Bytes of `n` as an unsigned protobuf varint. */
export const varintLength = (n: number): number => {
  let length = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    length++
  }
  return length
}

/** Bytes one payload takes inside a `MessageBatch`. */
export const batchEntryLength = (payload: Uint8Array): number => entryLength(payload.length)

const entryLength = (payloadLength: number): number => 1 + varintLength(payloadLength) + payloadLength

/** The largest payload whose batch entry fits in `maxBytes` (a batch of that one payload). */
export const maxPayloadInBatch = (maxBytes: number): number => {
  let p = maxBytes - 2 // one key byte and a varint of at least one byte
  while (p > 0 && entryLength(p) > maxBytes) p--
  return Math.max(0, p)
}

/** Bytes of the `MessageBatch` that `encodeMessageBatch` writes for these payloads. */
export const messageBatchLength = (payloads: ReadonlyArray<Uint8Array>): number => {
  let n = 0
  for (const p of payloads) n += batchEntryLength(p)
  return n
}

/** One `MessageBatch` holding the payloads, in order, in a single buffer. */
export const encodeMessageBatch = (payloads: ReadonlyArray<Uint8Array>): Buffer => {
  const out = Buffer.allocUnsafe(messageBatchLength(payloads))
  let o = 0
  for (const p of payloads) {
    out[o++] = MESSAGES_FIELD_KEY
    let n = p.length
    while (n >= 0x80) {
      out[o++] = (n % 128) | 0x80
      n = Math.floor(n / 128)
    }
    out[o++] = n
    out.set(p, o)
    o += p.length
  }
  return out
}

export interface SplitBatches {
  /** Groups of payloads, in order, each of whose `MessageBatch` fits in `maxBytes`. */
  readonly batches: ReadonlyArray<ReadonlyArray<Uint8Array>>
  /** Payloads that cannot fit in any batch on their own (not in `batches`). */
  readonly oversize: number
}

/**
 * Splits payloads into consecutive groups whose encoded `MessageBatch` stays within
 * `maxBytes` (the peer's `max_receive_message_length`). Order is kept; a payload too large for
 * a batch of its own is left out and counted.
 */
export const splitBatches = (payloads: ReadonlyArray<Uint8Array>, maxBytes: number): SplitBatches => {
  const batches: Array<Array<Uint8Array>> = []
  let current: Array<Uint8Array> = []
  let bytes = 0
  let oversize = 0
  for (const p of payloads) {
    const size = batchEntryLength(p)
    if (size > maxBytes) {
      oversize++
      continue
    }
    if (current.length > 0 && bytes + size > maxBytes) {
      batches.push(current)
      current = []
      bytes = 0
    }
    current.push(p)
    bytes += size
  }
  if (current.length > 0) batches.push(current)
  return { batches, oversize }
}
