import { Effect, type Scope } from "effect"
import type { IrohConnection } from "./host.ts"
import { ErrorCode } from "./protocol.ts"

/**
 * Connections given up as dark and left open: closing a connection whose path is dark holds
 * up every other connection of the endpoint inside Iroh (votes to two healthy peers stalled
 * 130-190 ms at each close; `test/network/dead-peer-stall.test.ts`), while leaving it costs
 * nothing. Their class streams are reset first, so nothing written to them is sent again if
 * the path comes back: what the sender counted as lost stays lost. Each ends by itself (QUIC's
 * idle timeout, or the peer closing it when this node dials it again); whatever is left is
 * closed when the endpoint closes, where a stall no longer matters and Iroh would otherwise
 * wait out the connection's close.
 */
export class AbandonedConnections {
  private readonly open = new Set<IrohConnection>()

  private constructor(private readonly scope: Scope.Scope) {}

  /** A registry whose connections are closed when `scope` closes (before the endpoint's own close). */
  static readonly make: Effect.Effect<AbandonedConnections, never, Scope.Scope> = Effect.gen(function*() {
    const registry = new AbandonedConnections(yield* Effect.scope)
    yield* Effect.addFinalizer(() => Effect.sync(() => registry.closeAll()))
    return registry
  })

  /** Connections left open, waiting to end. */
  get size(): number {
    return this.open.size
  }

  /** Keeps `connection` until it ends by itself or the endpoint closes. */
  add(connection: IrohConnection): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.open.add(connection)
      // `_signal` keeps the wait interruptible when the registry's scope closes first.
      return Effect.asVoid(Effect.forkIn(
        Effect.promise((_signal) => connection.closed().catch(() => "")).pipe(
          Effect.andThen(Effect.sync(() => void this.open.delete(connection)))
        ),
        this.scope,
        { startImmediately: true }
      ))
    })
  }

  private closeAll(): void {
    for (const connection of this.open) connection.close(ErrorCode.Abandoned, "endpoint closing")
    this.open.clear()
  }
}
