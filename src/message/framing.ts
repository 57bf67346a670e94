import { bytesToArray, transientArray } from "./byte-arrays.ts"
import { BadPreamble, FrameTooLarge } from "./errors.ts"
import { isPriorityClass, type PriorityClass } from "./priority.ts"

/** Wire version 1: frames straight on the stream. Version 2 wraps them in blocks (`blocks.ts`). */
export const WIRE_VERSION = 1
export const PREAMBLE_LENGTH = 4
export const FRAME_HEADER_LENGTH = 4
const MAGIC_R = 0x52 // "R"
const MAGIC_T = 0x54 // "T"

/**
 * A class stream opens with `R`, `T`, the wire version and the class. The version repeats
 * the connection's ALPN (`iroh/protocol.ts`), so a stream is read by what it says it carries.
 */
export const preamble = (cls: PriorityClass, version: number = WIRE_VERSION): Uint8Array =>
  Uint8Array.of(MAGIC_R, MAGIC_T, version, cls)

/** Returns the stream's class, or the reason the preamble is not ours (or not `version`). */
export const parsePreamble = (bytes: ArrayLike<number>, version: number = WIRE_VERSION): PriorityClass | BadPreamble => {
  const b = Array.from(bytes)
  if (b.length !== PREAMBLE_LENGTH) return new BadPreamble({ bytes: b, reason: "short" })
  if (b[0] !== MAGIC_R || b[1] !== MAGIC_T) return new BadPreamble({ bytes: b, reason: "bad magic" })
  if (b[2] !== version) return new BadPreamble({ bytes: b, reason: `version ${b[2]} on a version ${version} connection` })
  const cls = b[3]!
  return isPriorityClass(cls) ? cls : new BadPreamble({ bytes: b, reason: `unknown class ${cls}` })
}

/** Total bytes that `writeFrames` produces for these payloads. */
export const framedLength = (payloads: ReadonlyArray<Uint8Array>): number => {
  let n = 0
  for (const p of payloads) n += FRAME_HEADER_LENGTH + p.length
  return n
}

/** A frame's u32-BE length prefix at `o`, into either sink. */
const writeLength = (out: Uint8Array | Array<number>, o: number, n: number): void => {
  out[o] = (n >>> 24) & 0xff
  out[o + 1] = (n >>> 16) & 0xff
  out[o + 2] = (n >>> 8) & 0xff
  out[o + 3] = n & 0xff
}

/**
 * Writes u32-BE length-prefixed frames into the pre-sized `Array<number>` that the Iroh binding
 * takes, so a batch is converted once, with no intermediate buffer (bench/phases/codec.ts).
 */
const writeFramesToArray = (payloads: ReadonlyArray<Uint8Array>, out: Array<number>, start: number): Array<number> => {
  let o = start
  for (const p of payloads) {
    const n = p.length
    writeLength(out, o, n)
    o += 4
    for (let i = 0; i < n; i++) out[o + i] = p[i]!
    o += n
  }
  return out
}

/** Frames as one buffer, optionally led by a preamble. */
export const encodeFrames = (payloads: ReadonlyArray<Uint8Array>, lead?: Uint8Array): Uint8Array => {
  const leadLength = lead?.length ?? 0
  const out = new Uint8Array(leadLength + framedLength(payloads))
  if (lead !== undefined) out.set(lead, 0)
  let o = leadLength
  for (const p of payloads) {
    const n = p.length
    writeLength(out, o, n)
    out.set(p, o + 4)
    o += 4 + n
  }
  return out
}

/**
 * Frames as the `Array<number>` the Iroh binding takes, optionally led by a preamble. A large
 * result is a `transientArray`: hand it to the binding at once, before anything else encodes.
 */
export const encodeFramesToArray = (payloads: ReadonlyArray<Uint8Array>, lead?: Uint8Array): Array<number> => {
  const leadLength = lead?.length ?? 0
  const out = transientArray(leadLength + framedLength(payloads))
  if (lead !== undefined) bytesToArray(lead, out)
  return writeFramesToArray(payloads, out, leadLength)
}

/**
 * Incremental decoder: feed it reads of any size, get back whole frame payloads. Handles
 * frames split across reads and many frames per read; rejects a header above `maxFrameBytes`
 * before buffering its body, so a hostile length cannot make us allocate.
 *
 * A frame that spans many reads is appended into spare room at the end of the buffer, which
 * grows geometrically (never past the end of the frame being assembled): each byte is copied
 * a bounded number of times. Re-copying everything pending on every read cost O(n^2): a
 * 4 MiB append in 8 KiB reads copied ~1 GiB and held the event loop for a second.
 *
 * Decoded `bytes` fields are views into the buffer (protobufjs `subarray`s), so bytes before
 * `offset` are never written again: appends go after `end` only, and growth moves the
 * pending bytes into a fresh buffer.
 */
export class FrameDecoder {
  private buffer: Uint8Array = new Uint8Array(0)
  private offset = 0
  /** End of the received bytes in `buffer`; `buffer.length - end` is spare room. */
  private end = 0

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.end - this.offset
  }

  /** The buffer that the spans of the last `pushSpans` index into. */
  get bytes(): Uint8Array {
    return this.buffer
  }

  /** Set once a frame header above `maxFrameBytes` arrived: the stream must be closed. */
  tooLarge: FrameTooLarge | undefined = undefined

  /**
   * Takes a read and returns the whole frames it completes as spans, `[start, end, start,
   * end, ...]` of their payloads in `bytes`: numbers rather than a view per frame, so the
   * decoder can read every frame of a read with one protobufjs reader and no allocation per
   * frame (bench/tools/heap-profile-summary.ts). Valid until the next push. Frames before a header
   * above the maximum are still returned, and `tooLarge` says the stream is over.
   */
  pushSpans(chunk: Uint8Array): Array<number> {
    if (this.tooLarge !== undefined) return []
    const pending = this.pending
    if (pending === 0) {
      // Not copied: the caller hands over a fresh read, and we never write into it (no spare room).
      this.buffer = chunk
      this.offset = 0
      this.end = chunk.length
    } else if (this.buffer.length - this.end >= chunk.length) {
      this.buffer.set(chunk, this.end)
      this.end += chunk.length
    } else {
      const needed = pending + chunk.length
      // `offset` is at a frame boundary: once its header is in, the frame's end bounds the growth
      // (the header was checked against `maxFrameBytes` when it arrived).
      const frameEnd = pending >= FRAME_HEADER_LENGTH ? FRAME_HEADER_LENGTH + this.lengthAt(this.offset) : needed
      const grown = new Uint8Array(Math.max(needed, Math.min(2 * needed, frameEnd)))
      grown.set(this.buffer.subarray(this.offset, this.end), 0)
      grown.set(chunk, pending)
      this.buffer = grown
      this.offset = 0
      this.end = needed
    }
    const spans: Array<number> = []
    while (this.end - this.offset >= FRAME_HEADER_LENGTH) {
      const o = this.offset
      const length = this.lengthAt(o)
      if (length > this.maxFrameBytes) {
        this.tooLarge = new FrameTooLarge({ length, max: this.maxFrameBytes })
        break
      }
      if (this.end - o - FRAME_HEADER_LENGTH < length) break
      spans.push(o + FRAME_HEADER_LENGTH, o + FRAME_HEADER_LENGTH + length)
      this.offset = o + FRAME_HEADER_LENGTH + length
    }
    return spans
  }

  private lengthAt(o: number): number {
    const buf = this.buffer
    return ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0
  }
}
