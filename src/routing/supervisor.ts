import { Effect, type Scope } from "effect"
import type { PeerActor } from "../peer/actor.ts"
import type { Connector } from "../peer/connector.ts"
import type { PeerRouter } from "./router.ts"

/**
 * Dual mode keeps both links of a peer up whether or not they carry traffic: a fallback to
 * gRPC then finds a warm connection, recovery to Iroh is noticed without waiting for a send,
 * and the adaptive strategy has an RTT for both. Each keeper redials with the connector's
 * backoff and jitter after every loss; a tick feeds the links' smoothed RTTs to the router.
 * Everything runs in the peer's scope: removing the peer stops it.
 */
export const superviseDualPeer = (
  actor: PeerActor,
  router: PeerRouter,
  probeIntervalMs: number
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const iroh = actor.connector("iroh")
    const grpc = actor.connector("grpc")
    for (const connector of [iroh, grpc]) {
      if (connector !== undefined) yield* Effect.forkScoped(keepAlive(connector), { startImmediately: true })
    }
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (true) {
          yield* router.observe({ iroh: iroh?.rttMs(), grpc: grpc?.rttMs() })
          yield* Effect.sleep(probeIntervalMs)
        }
      }),
      { startImmediately: true }
    )
  }).pipe(Effect.annotateLogs({ peer: String(actor.peer) }))

/** Holds a session open: connect (with backoff), wait for it to close, repeat. */
const keepAlive = (connector: Connector): Effect.Effect<never> =>
  Effect.gen(function*() {
    while (true) {
      const session = yield* connector.acquire
      const reason = yield* session.closed
      // The connector's watcher invalidates it too; whichever runs first wins, the other is a no-op.
      yield* connector.invalidate(session, `connection closed: ${reason}`)
    }
  })
