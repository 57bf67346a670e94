import { type PriorityClass, isPriorityClass } from "../message/priority.ts"
import type { ReceiptCount } from "../inbound/inbound-receipts.ts"

/**
 * The acknowledgement stream of a version 2 connection: one uni stream from the accepting
 * side to the dialler, led by `ACK_PREAMBLE`, then 9-byte records: the class (1 byte) and the
 * cumulative number of that class's messages the receiver has handled on this connection
 * (u64 big-endian): taken by its application, or dropped there with a counted reason. A
 * snapshot counts once, with its last chunk. Counts only grow; each record replaces the last.
 */
export const ACK_PREAMBLE = Uint8Array.of(0x52, 0x54, 0x41, 0x4b) // "RTAK"
export const ACK_RECORD_LENGTH = 9

export const encodeAcks = (counts: ReadonlyArray<ReceiptCount>): Uint8Array => {
  const out = new Uint8Array(counts.length * ACK_RECORD_LENGTH)
  const view = new DataView(out.buffer)
  counts.forEach(({ cls, cumulative }, i) => {
    const o = i * ACK_RECORD_LENGTH
    out[o] = cls
    view.setBigUint64(o + 1, BigInt(cumulative))
  })
  return out
}

/** Records from reads of any size; a record split across reads waits for its rest. */
export class AckDecoder {
  private pending = new Uint8Array(0)

  /** The records `chunk` completes, or the reason the stream is not ours. */
  push(chunk: Uint8Array): ReadonlyArray<ReceiptCount> | string {
    const bytes = this.pending.length === 0 ? chunk : concat(this.pending, chunk)
    const whole = bytes.length - (bytes.length % ACK_RECORD_LENGTH)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const records: Array<ReceiptCount> = []
    for (let o = 0; o < whole; o += ACK_RECORD_LENGTH) {
      const cls = bytes[o]!
      if (!isPriorityClass(cls)) return `unknown class ${cls} in an acknowledgement`
      const cumulative = view.getBigUint64(o + 1)
      if (cumulative > BigInt(Number.MAX_SAFE_INTEGER)) return `acknowledged count ${cumulative} out of range`
      records.push({ cls: cls as PriorityClass, cumulative: Number(cumulative) })
    }
    this.pending = bytes.slice(whole)
    return records
  }
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/**
 * Acknowledgements riding in a version 3 block's header extension (`message/blocks.ts`): records
 * of `u8 type`, `u8 length`, then `length` bytes, so a receiver skips types it does not know.
 * Type 1 is one class's cumulative count for one connection the receiver accepted, named by the
 * session id its dialler gave it in the class streams' preambles: `u64` session, `u8` class,
 * `u64` count, all big-endian.
 */
export interface RiddenAck extends ReceiptCount {
  readonly session: bigint
}

const RIDE_ACK_TYPE = 1
const RIDE_ACK_LENGTH = 17
/** Bytes of one acknowledgement record in an extension. */
export const RIDE_RECORD_BYTES = 2 + RIDE_ACK_LENGTH

export const encodeRiddenAcks = (acks: ReadonlyArray<RiddenAck>): Uint8Array => {
  const out = new Uint8Array(acks.length * RIDE_RECORD_BYTES)
  const view = new DataView(out.buffer)
  acks.forEach(({ session, cls, cumulative }, i) => {
    const o = i * RIDE_RECORD_BYTES
    out[o] = RIDE_ACK_TYPE
    out[o + 1] = RIDE_ACK_LENGTH
    view.setBigUint64(o + 2, session)
    out[o + 10] = cls
    view.setBigUint64(o + 11, BigInt(cumulative))
  })
  return out
}

/** The acknowledgements of one extension, or the reason it is malformed. */
export const decodeRiddenAcks = (extension: Uint8Array): ReadonlyArray<RiddenAck> | string => {
  const view = new DataView(extension.buffer, extension.byteOffset, extension.byteLength)
  const acks: Array<RiddenAck> = []
  let o = 0
  while (o < extension.length) {
    if (extension.length - o < 2) return "extension ends inside a record header"
    const type = extension[o]!
    const length = extension[o + 1]!
    const body = o + 2
    if (extension.length - body < length) return "extension ends inside a record"
    o = body + length
    if (type !== RIDE_ACK_TYPE) continue
    if (length !== RIDE_ACK_LENGTH) return `acknowledgement record of ${length} bytes`
    const cls = extension[body + 8]!
    if (!isPriorityClass(cls)) return `unknown class ${cls} in an acknowledgement`
    const cumulative = view.getBigUint64(body + 9)
    if (cumulative > BigInt(Number.MAX_SAFE_INTEGER)) return `acknowledged count ${cumulative} out of range`
    acks.push({ session: view.getBigUint64(body), cls: cls as PriorityClass, cumulative: Number(cumulative) })
  }
  return acks
}
