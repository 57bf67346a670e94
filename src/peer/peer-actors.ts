import { Effect, Exit, Scope } from "effect"
import { PeerUnknown } from "../domain/errors.ts"
import type { PeerStatus } from "../domain/peer-status.ts"
import type { NodeId } from "../message/types.ts"
import type { PeerActor } from "./actor.ts"

/**
 * A transport's peer actors by node id, each in a scope of its own, so that removing or
 * replacing a peer closes exactly its links, writers and queues (counting what they held).
 */
export class PeerActors {
  private readonly entries = new Map<NodeId, { readonly actor: PeerActor; readonly scope: Scope.Closeable }>()

  /** Keeps `actor`, living in `scope`, as the actor of `id` (stop the previous one first). */
  add(id: NodeId, actor: PeerActor, scope: Scope.Closeable): void {
    this.entries.set(id, { actor, scope })
  }

  has(id: NodeId): boolean {
    return this.entries.has(id)
  }

  /** The actor of `id`, for the hot path (`send`): no effect around the lookup. */
  get(id: NodeId): PeerActor | undefined {
    return this.entries.get(id)?.actor
  }

  /** The actor of `id`, or `PeerUnknown`. */
  require(id: NodeId): Effect.Effect<PeerActor, PeerUnknown> {
    return Effect.suspend(() => {
      const actor = this.get(id)
      return actor === undefined ? Effect.fail(new PeerUnknown({ peer: id })) : Effect.succeed(actor)
    })
  }

  /** Forgets `id` and closes its actor's scope; nothing when there is none. */
  stop(id: NodeId): Effect.Effect<void> {
    return Effect.suspend(() => {
      const entry = this.entries.get(id)
      if (entry === undefined) return Effect.void
      this.entries.delete(id)
      return Scope.close(entry.scope, Exit.void)
    })
  }

  statuses(): ReadonlyArray<PeerStatus> {
    return [...this.entries.values()].map((e) => e.actor.status())
  }
}
