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
