import { constants as zlibConstants, zstdCompressSync } from "node:zlib"
import { COMPRESSED_HEADER_LENGTH, compressedBlock, PLAIN_HEADER_LENGTH, plainBlockHeader } from "../message/blocks.ts"
import { encodeFrames } from "../message/framing.ts"
import { PriorityClass } from "../message/priority.ts"

/** `[transport.compression]` as the Iroh link uses it (docs/configuration.md). */
export interface CompressionOptions {
  readonly algorithm: "zstd" | "none"
  /** zstd level (1 is fastest; measured in bench/compression.ts). */
  readonly level: number
  /** Writes with fewer framed bytes than this go uncompressed without trying. */
  readonly minBatchBytes: number
  /** The fraction of its bytes a write must shed to go compressed; otherwise it goes as it is. */
  readonly minSaving: number
  /** Classes that may be compressed: appends and snapshots only (votes and heartbeats never are). */
  readonly classes: ReadonlyArray<PriorityClass>
  /** Snapshot chunk size while snapshot writes are shrinking (`BlockEncoder.shrinking`). */
  readonly snapshotChunkBytes: number
}

export const noCompression: CompressionOptions = {
  algorithm: "none",
  level: 1,
  minBatchBytes: 0,
  minSaving: 0,
  classes: [],
  snapshotChunkBytes: 16384
}

/**
 * After a write that did not shrink enough, the class skips this many writes before trying
 * again, doubling per further miss up to `MAX_SKIP`; a write that shrinks resets it. On
 * incompressible traffic one write in `MAX_SKIP + 1` pays the attempt (~6 ns a byte, against
 * the binding's 50-80): the cost disappears, and a change of payload is noticed within
 * `MAX_SKIP` writes.
 */
const FIRST_SKIP = 4
const MAX_SKIP = 256

export type BlockOutcome =
  /** Sent compressed. */
  | "compressed"
  /** Tried, did not shrink by `minSaving`: sent as it is. */
  | "did_not_shrink"
  /** Not tried: the class is backing off after writes that did not shrink. */
  | "backing_off"
  /** Not tried: the class is never compressed, compression is off, or the write is small. */
  | "not_eligible"

/** One write as the host takes it: `lead` then `payloads` as frames. */
export interface EncodedBlock {
  readonly lead: Uint8Array
  readonly payloads: ReadonlyArray<Uint8Array>
  /** Bytes of the frames, and bytes on the wire (header included). */
  readonly framedBytes: number
  readonly wireBytes: number
  readonly outcome: BlockOutcome
}

/**
 * Encodes one class stream's writes as version 2 blocks, compressing those that pay
 * (docs/design.md, "Compression"). One per class stream of a connection: the backoff is that
 * stream's recent history.
 */
export class BlockEncoder {
  private readonly eligible: boolean
  private readonly params: Record<number, number>
  private skip = 0
  private nextSkip = FIRST_SKIP

  constructor(readonly cls: PriorityClass, private readonly options: CompressionOptions) {
    this.eligible = options.algorithm === "zstd" && options.classes.includes(cls) && cls !== PriorityClass.Election &&
      cls !== PriorityClass.Heartbeat
    this.params = { [zlibConstants.ZSTD_c_compressionLevel]: options.level }
  }

  /**
   * True while this class compresses and its last attempt shrank (or none was made): the
   * writes it is given next are expected to shrink as well.
   */
  get shrinking(): boolean {
    return this.eligible && this.skip === 0 && this.nextSkip === FIRST_SKIP
  }

  /** `extension`: the header extension to carry (version 3's acknowledgements), if any. */
  encode(payloads: ReadonlyArray<Uint8Array>, framedBytes: number, extension?: Uint8Array): EncodedBlock {
    if (!this.eligible || framedBytes < this.options.minBatchBytes) return this.plain(payloads, framedBytes, "not_eligible", extension)
    if (this.skip > 0) {
      this.skip--
      return this.plain(payloads, framedBytes, "backing_off", extension)
    }
    // Output room for the whole input, not zlib's default chunk: on 4 KiB writes that halved the
    // cost (5.8 against 11.8 ns a byte, fastest of 12 alternating runs; the same at 64 KiB).
    const compressed = zstdCompressSync(encodeFrames(payloads), { params: this.params, chunkSize: Math.max(64, framedBytes) })
    if (COMPRESSED_HEADER_LENGTH + compressed.length > (PLAIN_HEADER_LENGTH + framedBytes) * (1 - this.options.minSaving)) {
      this.skip = this.nextSkip
      this.nextSkip = Math.min(MAX_SKIP, this.nextSkip * 2)
      return this.plain(payloads, framedBytes, "did_not_shrink", extension)
    }
    this.nextSkip = FIRST_SKIP
    const lead = compressedBlock(framedBytes, compressed, extension)
    return { lead, payloads: [], framedBytes, wireBytes: lead.length, outcome: "compressed" }
  }

  private plain(payloads: ReadonlyArray<Uint8Array>, framedBytes: number, outcome: BlockOutcome, extension?: Uint8Array): EncodedBlock {
    const lead = plainBlockHeader(framedBytes, extension)
    return { lead, payloads, framedBytes, wireBytes: lead.length + framedBytes, outcome }
  }
}
