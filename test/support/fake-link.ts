import { Effect, PubSub } from "effect"
import type { NodeId } from "../../src/message/types.ts"
import { fixedRoute, PeerActor, type PeerActorOptions } from "../../src/peer/actor.ts"
import { ProbeLedger } from "../../src/peer/delivery-ledger.ts"
import type { Link, LinkSession } from "../../src/peer/link.ts"
import type { TransportKind } from "../../src/domain/errors.ts"
import type { TransportEvent } from "../../src/domain/events.ts"

/** An in-memory session that never closes, with `write` as given (by default, accept at once). */
export const fakeSession = (
  kind: TransportKind,
  write: LinkSession["write"] = (_cls, _payloads, framedBytes) => Effect.succeed(framedBytes)
): LinkSession => ({
  kind,
  maxPayloadBytes: Number.POSITIVE_INFINITY,
  write,
  closed: Effect.never,
  rttMs: () => undefined,
  ledger: new ProbeLedger(() => 0)
})

/**
 * A peer actor whose only link is `link` (routed there for every class), with the shipped
 * queue and batching defaults unless `overrides` says otherwise.
 */
export const actorOver = (peer: NodeId, link: Link, overrides: Partial<PeerActorOptions> = {}) =>
  Effect.flatMap(PubSub.unbounded<TransportEvent>(), (events) =>
    PeerActor.make({
      peer,
      queues: [0, 1, 2, 3].map(() => ({ capacity: 100, overflow: "drop_newest" as const })),
      maxBatch: 100,
      maxBatchBytes: 65536,
      maxAgeMs: 30_000,
      maxFrameBytes: 1 << 20,
      snapshotChunkBytes: 16384,
      snapshotAttempts: 3,
      backoff: { initialMs: 10, maxMs: 500, jitter: 0 },
      links: [link],
      routes: fixedRoute(link.kind),
      events,
      ...overrides
    }))
