/**
 * Wire version 2: a class stream (after its preamble, `framing.ts`) is a sequence of blocks,
 * one per write. A block wraps the frames of that write, compressed or not:
 *
 * ```
 * u32 BE   rest      bytes after this field (so a block is a v1 frame to any length reader)
 * u8       flags     bit 0: the body is one zstd frame; bits 1-7 reserved (a receiver refuses them)
 * u8       E         length of the header extension
 * E bytes  extension per-block fields of later versions (version 2 writes none, skips any;
 *                    version 3 carries acknowledgements of the reverse direction, `iroh/ack-rides.ts`)
 * u32 BE   raw       only when compressed: the body's length once decompressed
 * body               v1 frames (`u32` length + message), whole, as many as the write carried
 * ```
 *
 * Room for later fields: a per-block field that a receiver may ignore (a sequence number) goes
 * in the extension, so an old receiver skips it; one that changes how the frames are read (a
 * Raft group id before each message) takes a reserved flag bit, which an old receiver refuses.
 * Either comes with a new ALPN (`iroh/protocol.ts`), so a sender uses it only with a peer that
 * said it reads it.
 *
 * A block's frames are whole and its decompressed body is at most one largest frame
 * (`maxBlockRawBytes`), so a receiver bounds what it buffers and what it inflates before
 * doing either.
 */
import { zstdDecompressSync } from "node:zlib"
import { DecodeFailed, FrameTooLarge } from "./errors.ts"
import { FRAME_HEADER_LENGTH, FrameDecoder } from "./framing.ts"

export const BLOCK_LENGTH_BYTES = 4
/** Flags and extension length. */
const FIXED_AFTER_LENGTH = 2
const RAW_LENGTH_BYTES = 4
const MAX_EXTENSION_BYTES = 255

export const BlockFlag = {
  /** The body is one zstd frame of the frames. */
  Compressed: 0x01
} as const
/** Flags this version reads; a block with any other bit set is refused. */
const KNOWN_FLAGS = BlockFlag.Compressed

/** Header of an uncompressed block as written (no extension). */
export const PLAIN_HEADER_LENGTH = BLOCK_LENGTH_BYTES + FIXED_AFTER_LENGTH
/** Header of a compressed block as written (no extension). */
export const COMPRESSED_HEADER_LENGTH = PLAIN_HEADER_LENGTH + RAW_LENGTH_BYTES

/** The largest decompressed body a block may carry: one frame of the largest size. */
export const maxBlockRawBytes = (maxFrameBytes: number): number => maxFrameBytes + FRAME_HEADER_LENGTH

/** The largest `rest` a receiver accepts: a compressed block is sent only when smaller than its frames. */
const maxBlockRest = (maxFrameBytes: number): number =>
  FIXED_AFTER_LENGTH + MAX_EXTENSION_BYTES + RAW_LENGTH_BYTES + maxBlockRawBytes(maxFrameBytes)

const putU32 = (out: Uint8Array, at: number, n: number): void => {
  out[at] = (n >>> 24) & 0xff
  out[at + 1] = (n >>> 16) & 0xff
  out[at + 2] = (n >>> 8) & 0xff
  out[at + 3] = n & 0xff
}

const getU32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0

/** The most bytes a block's header extension holds. */
export const MAX_BLOCK_EXTENSION_BYTES = MAX_EXTENSION_BYTES

const NO_EXTENSION = new Uint8Array(0)

/**
 * The header that leads `framedBytes` of uncompressed frames (written right after it), with
 * `extension` (at most `MAX_BLOCK_EXTENSION_BYTES`) in it.
 */
export const plainBlockHeader = (framedBytes: number, extension: Uint8Array = NO_EXTENSION): Uint8Array => {
  const out = new Uint8Array(PLAIN_HEADER_LENGTH + extension.length)
  putU32(out, 0, FIXED_AFTER_LENGTH + extension.length + framedBytes)
  out[5] = extension.length
  out.set(extension, PLAIN_HEADER_LENGTH)
  return out
}

/** A whole compressed block: header (with `extension`) and the zstd frame of `rawBytes` of frames. */
export const compressedBlock = (rawBytes: number, compressed: Uint8Array, extension: Uint8Array = NO_EXTENSION): Uint8Array => {
  const e = extension.length
  const out = new Uint8Array(COMPRESSED_HEADER_LENGTH + e + compressed.length)
  putU32(out, 0, FIXED_AFTER_LENGTH + e + RAW_LENGTH_BYTES + compressed.length)
  out[4] = BlockFlag.Compressed
  out[5] = e
  out.set(extension, PLAIN_HEADER_LENGTH)
  putU32(out, PLAIN_HEADER_LENGTH + e, rawBytes)
  out.set(compressed, COMPRESSED_HEADER_LENGTH + e)
  return out
}

/** Frames in `bytes[start, end)` as payload spans; they must fill the range exactly. */
const frameSpans = (
  bytes: Uint8Array,
  start: number,
  end: number,
  maxFrameBytes: number,
  spans: Array<number>
): DecodeFailed | FrameTooLarge | undefined => {
  let o = start
  while (o < end) {
    if (end - o < FRAME_HEADER_LENGTH) return new DecodeFailed({ cause: "block ends inside a frame header" })
    const length = getU32(bytes, o)
    if (length > maxFrameBytes) return new FrameTooLarge({ length, max: maxFrameBytes })
    if (end - o - FRAME_HEADER_LENGTH < length) return new DecodeFailed({ cause: "block ends inside a frame" })
    spans.push(o + FRAME_HEADER_LENGTH, o + FRAME_HEADER_LENGTH + length)
    o += FRAME_HEADER_LENGTH + length
  }
  return undefined
}

/** Frame payloads as spans `[start, end, ...]` into `bytes`. */
export interface FrameSpans {
  readonly bytes: Uint8Array
  readonly spans: Array<number>
}

export interface BlockRead {
  /** Per block completed (consecutive uncompressed blocks share one entry), in stream order. */
  readonly segments: Array<FrameSpans>
  /**
   * The non-empty header extensions of the blocks completed, in stream order: copies, so they
   * outlive the next read.
   */
  readonly extensions: Array<Uint8Array>
  /** What ends the stream: a malformed or oversized block. Segments before it are intact. */
  readonly failure: DecodeFailed | FrameTooLarge | undefined
}

/**
 * Incremental decoder of a version 2 stream: reads of any size in, frame spans out. Blocks
 * are delimited by the same u32 length as v1 frames, so `FrameDecoder` does the buffering
 * (and refuses an oversized length before buffering it); this reads each block's header,
 * inflates a compressed body into a buffer of exactly its announced size, and checks that the
 * frames fill the body.
 */
export class BlockDecoder {
  private readonly blocks: FrameDecoder

  constructor(readonly maxFrameBytes: number) {
    this.blocks = new FrameDecoder(maxBlockRest(maxFrameBytes))
  }

  get pending(): number {
    return this.blocks.pending
  }

  push(chunk: Uint8Array): BlockRead {
    const blockSpans = this.blocks.pushSpans(chunk)
    const bytes = this.blocks.bytes
    const segments: Array<FrameSpans> = []
    const extensions: Array<Uint8Array> = []
    let plain: Array<number> | undefined
    const done = (failure: DecodeFailed | FrameTooLarge | undefined): BlockRead => ({ segments, extensions, failure })
    for (let i = 0; i < blockSpans.length; i += 2) {
      const start = blockSpans[i]!
      const end = blockSpans[i + 1]!
      if (end - start < FIXED_AFTER_LENGTH) return done(new DecodeFailed({ cause: "block shorter than its header" }))
      const flags = bytes[start]!
      if ((flags & ~KNOWN_FLAGS) !== 0) return done(new DecodeFailed({ cause: `block flags 0x${flags.toString(16)} not understood` }))
      const headerEnd = start + FIXED_AFTER_LENGTH + bytes[start + 1]!
      if (headerEnd > end) return done(new DecodeFailed({ cause: "block shorter than its header" }))
      if (headerEnd > start + FIXED_AFTER_LENGTH) extensions.push(bytes.slice(start + FIXED_AFTER_LENGTH, headerEnd))
      if ((flags & BlockFlag.Compressed) === 0) {
        if (plain === undefined) segments.push({ bytes, spans: plain = [] })
        const failure = frameSpans(bytes, headerEnd, end, this.maxFrameBytes, plain)
        if (failure !== undefined) return done(failure)
        continue
      }
      plain = undefined
      const bodyStart = headerEnd + RAW_LENGTH_BYTES
      if (bodyStart > end) return done(new DecodeFailed({ cause: "block shorter than its header" }))
      const raw = getU32(bytes, headerEnd)
      const maxRaw = maxBlockRawBytes(this.maxFrameBytes)
      if (raw > maxRaw) return done(new FrameTooLarge({ length: raw, max: maxRaw }))
      let inflated: Uint8Array
      try {
        // Bounded by the announced size, so a small body cannot inflate past what was checked.
        inflated = zstdDecompressSync(bytes.subarray(bodyStart, end), { maxOutputLength: Math.max(1, raw) })
      } catch (cause) {
        return done(new DecodeFailed({ cause: `compressed block: ${String(cause)}` }))
      }
      if (inflated.length !== raw) {
        return done(new DecodeFailed({ cause: `compressed block inflated to ${inflated.length} bytes, announced ${raw}` }))
      }
      const spans: Array<number> = []
      const failure = frameSpans(inflated, 0, raw, this.maxFrameBytes, spans)
      if (spans.length > 0) segments.push({ bytes: inflated, spans })
      if (failure !== undefined) return done(failure)
    }
    return done(this.blocks.tooLarge)
  }
}
