import { DecodeFailed, DecodeLimitExceeded } from "./errors.ts"

/**
 * Caps on what one input may decode into. A message field costs as little as two bytes on the
 * wire but an object once decoded: a 16 MiB frame of empty entries became ~8 M objects and
 * held the event loop for seconds. These caps are checked by walking field headers, before
 * anything is decoded.
 */
export interface DecodeLimits {
  readonly maxBatchMessages: number
  readonly maxMessageEntries: number
  readonly maxBatchEntries: number
}

/** `raft.Message.entries` (field 7) and `raft.MessageBatch.messages` (field 1), length-delimited. */
const ENTRIES_KEY = (7 << 3) | 2
const MESSAGES_KEY = (1 << 3) | 2

/** Position after the varint at `o`, or -1 past `end` / over ten bytes. */
const skipVarint = (buf: Uint8Array, o: number, end: number): number => {
  for (let i = 0; i < 10; i++) {
    if (o >= end) return -1
    if ((buf[o++]! & 0x80) === 0) return o
  }
  return -1
}

let varintValue = 0

/** Reads the varint at `o` into `varintValue`; the position after it, or -1. */
const readVarint = (buf: Uint8Array, o: number, end: number): number => {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (o >= end) return -1
    const b = buf[o++]!
    value += (b & 0x7f) * scale
    if ((b & 0x80) === 0) {
      varintValue = value
      return o
    }
    scale *= 128
  }
  return -1
}

/**
 * Walks the fields in `[start, end)`, calling `onField(key, from, to)` for each length-delimited
 * one. Returns false when the bytes are not a well-formed message (protobufjs then reports why).
 */
const walk = (buf: Uint8Array, start: number, end: number, onField: (key: number, from: number, to: number) => boolean): boolean => {
  let o = start
  while (o < end) {
    o = readVarint(buf, o, end)
    if (o < 0) return false
    const key = varintValue
    switch (key & 7) {
      case 0:
        o = skipVarint(buf, o, end)
        if (o < 0) return false
        break
      case 1:
        o += 8
        break
      case 2: {
        o = readVarint(buf, o, end)
        if (o < 0 || varintValue > end - o) return false
        const to = o + varintValue
        if (!onField(key, o, to)) return true // stopped early: over a limit
        o = to
        break
      }
      case 5:
        o += 4
        break
      default:
        return false
    }
  }
  return o === end
}

/**
 * Entries of the `raft.Message` in `[start, end)`, counted up to `max + 1`; on the receive hot
 * path for every message, so a plain loop over the field headers. Malformed input ends the
 * count early (protobufjs then reports why when it decodes).
 */
export const countEntries = (buf: Uint8Array, start: number, end: number, max: number): number => {
  let n = 0
  let o = start
  while (o < end) {
    // Field keys of raft.Message fit one byte (fields 1-13); longer ones are read in full.
    let key = buf[o++]!
    if (key >= 0x80) {
      o = readVarint(buf, o - 1, end)
      if (o < 0) return n
      key = varintValue
    }
    switch (key & 7) {
      case 0:
        while (o < end && buf[o++]! >= 0x80);
        break
      case 1:
        o += 8
        break
      case 2: {
        let length = buf[o++]!
        if (length >= 0x80) {
          o = readVarint(buf, o - 1, end)
          if (o < 0) return n
          length = varintValue
        }
        if (key === ENTRIES_KEY && ++n > max) return n
        o += length
        break
      }
      case 5:
        o += 4
        break
      default:
        return n
    }
  }
  return n
}

/** The entry cap of one message, checked without decoding it. */
export const checkMessage = (
  buf: Uint8Array,
  start: number,
  end: number,
  limits: DecodeLimits
): DecodeLimitExceeded | undefined =>
  countEntries(buf, start, end, limits.maxMessageEntries) > limits.maxMessageEntries
    ? new DecodeLimitExceeded({ limit: "max_message_entries", max: limits.maxMessageEntries })
    : undefined

/**
 * The spans `[start, end, ...]` of the messages of a `raft.MessageBatch`, once every cap is
 * checked; the work is one pass over field headers, bounded by the bytes.
 */
export const scanBatch = (buf: Uint8Array, limits: DecodeLimits): Array<number> | DecodeLimitExceeded | DecodeFailed => {
  const spans: Array<number> = []
  let entries = 0
  let over: DecodeLimitExceeded | undefined
  const ok = walk(buf, 0, buf.length, (key, from, to) => {
    if (key !== MESSAGES_KEY) return true
    if (spans.length / 2 >= limits.maxBatchMessages) {
      over = new DecodeLimitExceeded({ limit: "max_batch_messages", max: limits.maxBatchMessages })
      return false
    }
    const n = countEntries(buf, from, to, limits.maxMessageEntries)
    if (n > limits.maxMessageEntries) {
      over = new DecodeLimitExceeded({ limit: "max_message_entries", max: limits.maxMessageEntries })
      return false
    }
    entries += n
    if (entries > limits.maxBatchEntries) {
      over = new DecodeLimitExceeded({ limit: "max_batch_entries", max: limits.maxBatchEntries })
      return false
    }
    spans.push(from, to)
    return true
  })
  if (over !== undefined) return over
  return ok ? spans : new DecodeFailed({ cause: "malformed MessageBatch" })
}
