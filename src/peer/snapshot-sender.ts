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

export interface SnapshotPaceOptions {
  /** Pace of snapshot bytes per transport (0 or absent: unpaced). */
  readonly snapshotBytesPerSec?: Partial<Record<TransportKind, number>> | undefined
  /** A cap on that pace while `electionActivity` says an election is under way (0 or absent: none). */
  readonly snapshotElectionBytesPerSec?: Partial<Record<TransportKind, number>> | undefined
  readonly electionActivity?: ElectionActivity | undefined
}

/**
 * Snapshot bytes per second on `kind` (0: unpaced) as a function of the time: while an
 * election is under way the election pace caps it, and only ever slows it down (0 there adds
 * no cap).
 */
export const snapshotPace = (options: SnapshotPaceOptions, kind: TransportKind): (now: number) => number => {
  const normal = options.snapshotBytesPerSec?.[kind] ?? 0
  const activity = options.electionActivity
  const cap = options.snapshotElectionBytesPerSec?.[kind] ?? 0
  if (activity === undefined || cap === 0) return () => normal
  const duringElection = normal === 0 ? cap : Math.min(normal, cap)
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
  paceAt: (now: number) => number
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
    const rate = paceAt(now)
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
    // Paced by the bytes on the wire: a compressed chunk costs the transport only those.
    if (rate > 0) due += (written.success / rate) * 1000
    bytes += FRAME_HEADER_LENGTH + payload.length
  }
  return { chunks, bytes, failure: undefined } satisfies ChunkTrain
})
