import type { Effect, Scope } from "effect"
import type { PriorityClass } from "../message/priority.ts"
import type { ConnectFailed, StreamFailed, TransportKind } from "../domain/errors.ts"
import type { DeliveryLedger } from "./delivery-ledger.ts"

/**
 * The seam between the peer actor and a transport. The actor's writers only ever see a
 * `Link` (how to reach one peer) and the `LinkSession`s it yields (one live connection).
 * Iroh and gRPC are two implementations; tests may add an in-memory one.
 */
export interface Link {
  readonly kind: TransportKind
  /**
   * Establishes a session. The session lives until `scope` closes (the actor closes it when
   * the session fails or the peer is removed).
   */
  readonly connect: Effect.Effect<LinkSession, ConnectFailed, Scope.Scope>
}

export interface LinkSession {
  readonly kind: TransportKind
  /**
   * The largest encoded message this session can carry (the gRPC peer's message limit, less
   * the batch framing); the actor drops larger ones as `too_large` before writing.
   */
  readonly maxPayloadBytes: number
  /**
   * Writes already-encoded message payloads of one class as a single write call, and says how
   * many bytes that put on the wire (fewer than `framedBytes` when the link compressed them):
   * snapshot pacing counts those, since the per-byte cost of a transport is in them.
   *
   * `answeredLate`: every message written makes the peer write nothing back (`leadsToNoWrite`:
   * heartbeat answers), so its acknowledgement comes late, with the peer's next write here; a
   * transport that watches for answers (Iroh's dark watch) then does not look for one early.
   */
  readonly write: (
    cls: PriorityClass,
    payloads: ReadonlyArray<Uint8Array>,
    framedBytes: number,
    answeredLate?: boolean
  ) => Effect.Effect<number, StreamFailed>
  /**
   * The snapshot chunk size this session asks for now, when it differs from the actor's: a
   * link whose snapshot chunks are shrinking takes larger ones (`[transport.compression]
   * snapshot_chunk_bytes`), so each write still puts about as many bytes on the wire.
   */
  readonly snapshotChunkBytes?: (() => number | undefined) | undefined
  /** Completes when the underlying connection closes, with a description of why. */
  readonly closed: Effect.Effect<string>
  /** Smoothed round-trip time of the connection in ms, when the transport knows it. */
  readonly rttMs: () => number | undefined
  /**
   * What the peer confirmed of this session's writes: by its acknowledgements where it sends
   * them, else by answered probes. What is unconfirmed when the session is lost is counted.
   */
  readonly ledger: DeliveryLedger
  /**
   * `performance.now()` when the peer was last heard from on this session (any datagram), for
   * transports that can tell (Iroh's dark watch); recovery after a fallback waits for it.
   */
  readonly heardAt?: (() => number) | undefined
}
