/**
 * The on-disk record format of the file storage: `u32 length | u32 crc32(payload) | payload`
 * (big-endian), payload a protobuf `raft.Entry` (log file) or `raft.Snapshot` (snapshot file),
 * using the wire schema's own types so the files can be read with any protobuf tool.
 *
 * The checksum tells a torn or half-flushed last record (crash during an append that was
 * never acknowledged) from a complete one.
 */
import { crc32 } from "node:zlib"
import { protoRoot } from "../message/codec.ts"
import type { Entry, Snapshot, SnapshotMetadata } from "../message/types.ts"
import { nonEmptyBytes as nonEmpty } from "./messages.ts"
import type { SnapshotRecord } from "./storage.ts"

const EntryCodec = protoRoot.lookupType("raft.Entry")
const SnapshotCodec = protoRoot.lookupType("raft.Snapshot")

const RECORD_HEADER_BYTES = 8

/** Writes a record's header (payload length, then its checksum) into the first bytes of `out`. */
const writeHeader = (out: Uint8Array, payloadLength: number, checksum: number): void => {
  const view = new DataView(out.buffer, out.byteOffset, RECORD_HEADER_BYTES)
  view.setUint32(0, payloadLength)
  view.setUint32(4, checksum)
}

const frame = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length)
  writeHeader(out, payload.length, crc32(payload))
  out.set(payload, RECORD_HEADER_BYTES)
  return out
}

/**
 * A plain `Entry` with only meaningful fields: decoded protobuf objects carry defaults on
 * their prototype (empty bytes, type 0) which we do not want to store or compare.
 */
export const normalizeEntry = (e: Entry): Entry => {
  const data = nonEmpty(e.data)
  const context = nonEmpty(e.context)
  const entryType = e.entryType !== undefined && e.entryType !== 0 ? e.entryType : undefined
  return {
    term: Number(e.term ?? 0),
    index: Number(e.index ?? 0),
    ...(entryType !== undefined ? { entryType } : {}),
    ...(data !== undefined ? { data } : {}),
    ...(context !== undefined ? { context } : {})
  }
}

/** The tag of `raft.Snapshot`'s `data` (field 1, length-delimited). */
const SNAPSHOT_DATA_TAG = 0x0a

/**
 * A snapshot record as two pieces to write one after the other: the header with everything but
 * the data (the metadata, then the data's tag and length: protobuf fields may come in any
 * order), and the data itself, not copied: encoded whole, a snapshot of megabytes was copied
 * twice on the loop (by protobufjs, then into the frame). The checksum runs over both.
 */
export const snapshotRecordPieces = (snapshot: SnapshotRecord): readonly [Uint8Array, Uint8Array] => {
  const { data } = snapshot
  const prefix = SnapshotCodec.encode({ metadata: snapshot.metadata } as never).uint32(SNAPSHOT_DATA_TAG).uint32(data.length).finish()
  const head = new Uint8Array(RECORD_HEADER_BYTES + prefix.length)
  head.set(prefix, RECORD_HEADER_BYTES)
  writeHeader(head, prefix.length + data.length, crc32(data, crc32(prefix)))
  return [head, data]
}

export const encodeEntryRecord = (entry: Entry): Uint8Array => frame(EntryCodec.encode(entry as never).finish())

export interface DecodedRecord<A> {
  readonly value: A
  /** Byte offset of the record's header in the file. */
  readonly offset: number
}

export type RecordScan<A> =
  | { readonly _tag: "Complete"; readonly records: ReadonlyArray<DecodedRecord<A>> }
  /**
   * The last record is incomplete or fails its checksum, or the file ends in zeros (a power
   * loss mid-append): `validBytes` is where the bad record starts.
   */
  | { readonly _tag: "TornTail"; readonly records: ReadonlyArray<DecodedRecord<A>>; readonly validBytes: number }
  /** A bad record followed by more data: not a torn append but damage; refuse to guess. */
  | { readonly _tag: "Corrupt"; readonly offset: number; readonly reason: string }

/** Only zero bytes from `from` to the end. */
const zerosFrom = (bytes: Uint8Array, from: number): boolean => {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

const scan = <A>(bytes: Uint8Array, decode: (payload: Uint8Array) => A): RecordScan<A> => {
  const records: Array<DecodedRecord<A>> = []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let offset = 0
  while (offset < bytes.length) {
    const remaining = bytes.length - offset
    if (remaining < RECORD_HEADER_BYTES) return { _tag: "TornTail", records, validBytes: offset }
    const length = view.getUint32(offset)
    // No record has an empty payload (an entry always encodes its index). A zero header is what
    // a power loss leaves where the file size reached the disk but the data did not (ext4's
    // delayed allocation, XFS): zeros to the end are an unacknowledged append, like a torn
    // record. Note that crc32 of nothing is 0, so without this check a zero header "passes".
    if (length === 0) {
      return zerosFrom(bytes, offset)
        ? { _tag: "TornTail", records, validBytes: offset }
        : { _tag: "Corrupt", offset, reason: "empty record" }
    }
    const end = offset + RECORD_HEADER_BYTES + length
    if (end > bytes.length) return { _tag: "TornTail", records, validBytes: offset }
    const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, end)
    if (crc32(payload) !== view.getUint32(offset + 4)) {
      // The last record, or one whose tail and everything after it read as zeros (same cause
      // as above): an append that was never acknowledged.
      return zerosFrom(bytes, end)
        ? { _tag: "TornTail", records, validBytes: offset }
        : { _tag: "Corrupt", offset, reason: "checksum mismatch" }
    }
    let value: A
    try {
      value = decode(payload)
    } catch (cause) {
      return { _tag: "Corrupt", offset, reason: `undecodable record: ${String(cause)}` }
    }
    records.push({ value, offset })
    offset = end
  }
  return { _tag: "Complete", records }
}

export const scanEntryRecords = (bytes: Uint8Array): RecordScan<Entry> =>
  scan(bytes, (payload) => normalizeEntry(EntryCodec.decode(payload) as unknown as Entry))

const normalizeMetadata = (m: SnapshotMetadata | null | undefined): SnapshotMetadata => ({
  index: Number(m?.index ?? 0),
  term: Number(m?.term ?? 0),
  confState: {
    voters: (m?.confState?.voters ?? []).map(Number),
    learners: (m?.confState?.learners ?? []).map(Number)
  }
})

/** A snapshot as carried by a message or stored on disk, as a plain record. */
export const snapshotRecordOf = (snapshot: Snapshot): SnapshotRecord => ({
  metadata: normalizeMetadata(snapshot.metadata),
  data: nonEmpty(snapshot.data) ?? new Uint8Array(0)
})

export const scanSnapshotRecord = (bytes: Uint8Array): RecordScan<SnapshotRecord> =>
  scan(bytes, (payload) => snapshotRecordOf(SnapshotCodec.decode(payload) as unknown as Snapshot))

