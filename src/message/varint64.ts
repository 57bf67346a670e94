import protobuf from "protobufjs"

/**
 * `uint64` for protobufjs without a `LongBits` object per field. Every Raft field is a uint64
 * (term, index, commit, ids), so with `Long` off protobufjs allocated one `LongBits` per field
 * read and per non-zero field written: a quarter of everything the receiver of a 100 B append
 * stream allocated (bench/tools/heap-profile-summary.ts), paid again as scavenge time. These read
 * and write the same bits, and read into the same number (`lo + hi * 2^32`, so values above
 * 2^53 round exactly as before); test/varint64.test.ts checks them against protobufjs's own.
 */

interface ReaderState {
  buf: Uint8Array
  pos: number
  len: number
}

interface WriterState {
  buf: Uint8Array
  pos: number
  _reserve(n: number): void
}

const TWO_32 = 4294967296

const outOfRange = (reader: ReaderState): RangeError => RangeError(`index out of range: ${reader.pos} + 1 > ${reader.len}`)

/** Bytes 1-4 fill `lo`, byte 5 straddles `lo` and `hi`, bytes 6-10 fill `hi`: LongBits's layout. */
function readUint64(this: ReaderState): number {
  const buf = this.buf
  const len = this.len
  let pos = this.pos
  let lo = 0
  let hi = 0
  for (let i = 0; i < 10; i++) {
    if (pos >= len) throw outOfRange(this)
    const b = buf[pos++]!
    const bits = b & 127
    if (i < 4) lo = (lo | (bits << (7 * i))) >>> 0
    else if (i === 4) {
      lo = (lo | (bits << 28)) >>> 0
      hi = bits >> 4
    } else hi = (hi | (bits << (7 * i - 32))) >>> 0
    if (b < 128) {
      this.pos = pos
      return lo + hi * TWO_32
    }
  }
  throw Error("invalid varint encoding")
}

type WriteUint64 = (this: WriterState, value: number) => WriterState
type ReadUint64 = (this: ReaderState) => number

/** protobufjs's own uint64 codec as `installFastUint64` found it (tests compare against it). */
export const protobufUint64: { read: ReadUint64; write: WriteUint64 } = {
  read: protobuf.Reader.prototype.uint64 as never,
  write: protobuf.Writer.prototype.uint64 as never
}

function writeUint64(this: WriterState, value: number): WriterState {
  // Negative numbers (10-byte two's complement), `Long`s and strings keep protobufjs's path.
  if (typeof value !== "number" || value < 0) return protobufUint64.write.call(this, value)
  let lo = value >>> 0
  let hi = ((value - lo) / TWO_32) >>> 0
  this._reserve(10)
  const buf = this.buf
  let pos = this.pos
  while (hi !== 0) {
    buf[pos++] = (lo & 127) | 128
    lo = ((lo >>> 7) | (hi << 25)) >>> 0
    hi >>>= 7
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128
    lo >>>= 7
  }
  buf[pos++] = lo
  this.pos = pos
  return this
}

/**
 * Installs both on protobufjs's prototypes. Safe to repeat: `protobuf.configure()` puts back
 * its own reader (not its writer), and each one is remembered only while it is protobufjs's,
 * so the writer's fallback can never end up calling itself.
 */
export const installFastUint64 = (): void => {
  const reader = protobuf.Reader.prototype.uint64 as unknown
  const writer = protobuf.Writer.prototype.uint64 as unknown
  if (reader !== readUint64) protobufUint64.read = reader as ReadUint64
  if (writer !== writeUint64) protobufUint64.write = writer as WriteUint64
  protobuf.Reader.prototype.uint64 = readUint64 as never
  protobuf.Writer.prototype.uint64 = writeUint64 as never
}
