import { Effect } from "effect"
import type { LinkSession } from "../../src/peer/link.ts"
import type { TransportKind } from "../../src/transport/errors.ts"

/** An in-memory session that never closes, with `write` as given (by default, accept at once). */
export const fakeSession = (kind: TransportKind, write: LinkSession["write"] = () => Effect.void): LinkSession => ({
  kind,
  maxPayloadBytes: Number.POSITIVE_INFINITY,
  write,
  closed: Effect.never,
  rttMs: () => undefined,
  confirmedAt: () => 0
})
