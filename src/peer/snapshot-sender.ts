/**
 * Writes one snapshot as a train of chunks on a session, at a pace that leaves room for
 * votes. The actor owns the retries, accounting and events around it.
 */
import { Clock, Effect, Result } from "effect"
import type { ElectionActivity } from "../domain/election-activity.ts"
import type { StreamFailed, TransportKind } from "../domain/errors.ts"
import { encodePayload } from "../message/codec.ts"
import { FRAME_HEADER_LENGTH } from "../message/framing.ts"
import { PriorityClass } from "../message/priority.ts"
import { snapshotChunks } from "../message/snapshot-chunks.ts"
import type { RaftMessage } from "../message/types.ts"
import type { LinkSession } from "./link.ts"

/** At most this much of a slow snapshot write's lost time may be made up at full speed. */
const PACE_CREDIT_MS = 50

/**
 * A compressed chunk is paced by its bytes on the wire, but never as less than this fraction
 * of its bytes before compression: chunking, compressing, inflating and reassembling still
 * cost per byte. Paced by the wire alone, a snapshot of mostly zeros went out at the CPU's
 * speed and held votes to 8-26x their idle p99 (`BENCH_ONLY=vote npm run bench`). During an
 * election every byte before compression counts: then votes come first.
 */
const MAX_COMPRESSED_SPEEDUP = 4

/** Where a snapshot's pace stands at one moment. */
export interface Pace {
  /** Bytes per second (0: unpaced). */
  readonly bytesPerSec: number
  /** How many times fewer bytes on the wire may speed a compressed chunk up (see `MAX_COMPRESSED_SPEEDUP`). */
  readonly maxSpeedup: number
}

export interface SnapshotPaceOptions {
  /** Pace of snapshot bytes per transport (0 or absent: unpaced). */
  readonly snapshotBytesPerSec?: Partial<Record<TransportKind, number>> | undefined
  /** A cap on that pace while `electionActivity` says an election is under way (0 or absent: none). */
  readonly snapshotElectionBytesPerSec?: Partial<Record<TransportKind, number>> | undefined
  readonly electionActivity?: ElectionActivity | undefined
}

/**
 * The snapshot pace on `kind` as a function of the time: while an election is under way the
 * election pace caps it, and only ever slows it down (0 there adds no cap), and compression
 * earns no speed-up.
 */
export const snapshotPace = (options: SnapshotPaceOptions, kind: TransportKind): (now: number) => Pace => {
  const normal: Pace = { bytesPerSec: options.snapshotBytesPerSec?.[kind] ?? 0, maxSpeedup: MAX_COMPRESSED_SPEEDUP }
  const activity = options.electionActivity
  if (activity === undefined) return () => normal
  const cap = options.snapshotElectionBytesPerSec?.[kind] ?? 0
  const duringElection: Pace = {
    bytesPerSec: cap === 0 ? normal.bytesPerSec : normal.bytesPerSec === 0 ? cap : Math.min(normal.bytesPerSec, cap),
    maxSpeedup: 1
  }
  return (now) => (activity.underWayAt(now) ? duringElection : normal)
}

export interface ChunkTrain {
  readonly chunks: number
  readonly bytes: number
  /** Set when a write failed; the transfer is then broken and must start over. */
  readonly failure: StreamFailed | undefined
}

/** Writes `snapshot`'s chunks on `session` at `paceAt`, stopping at the first failed write. */
export const writeSnapshotChunks = Effect.fnUntraced(function*(
  session: LinkSession,
  snapshot: RaftMessage,
  chunkBytes: number,
  transferId: number,
  paceAt: (now: number) => Pace
) {
  let chunks = 0
  let bytes = 0
  let due = yield* Clock.currentTimeMillis
  const chunkSize = session.snapshotChunkBytes === undefined
    ? chunkBytes
    : () => session.snapshotChunkBytes?.() ?? chunkBytes
  for (const chunk of snapshotChunks(snapshot, chunkSize, transferId)) {
    chunks++
    const now = yield* Clock.currentTimeMillis
    const { bytesPerSec: rate, maxSpeedup } = paceAt(now)
    if (rate > 0) {
      // Keep to `rate`: an unpaced snapshot saturates both event loops (the binding copies
      // every byte on the JS thread), and votes would wait behind it. Credit for slow writes
      // is capped, so a stalled transfer does not come back as a burst.
      due = Math.max(due, now - PACE_CREDIT_MS)
      if (due - now > 1) yield* Effect.sleep(due - now)
    }
    // Encoded after the wait: slab bytes are for writing at once.
    const payload = encodePayload(chunk)
    const written = yield* Effect.result(
      session.write(PriorityClass.Snapshot, [payload], FRAME_HEADER_LENGTH + payload.length)
    )
    if (Result.isFailure(written)) return { chunks, bytes, failure: written.failure } satisfies ChunkTrain
    const framed = FRAME_HEADER_LENGTH + payload.length
    // Paced by the bytes on the wire: a compressed chunk costs the binding only those.
    if (rate > 0) due += (Math.max(written.success, framed / maxSpeedup) / rate) * 1000
    bytes += framed
  }
  return { chunks, bytes, failure: undefined } satisfies ChunkTrain
})
