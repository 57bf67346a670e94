import { Deferred, Effect, type Scope } from "effect"
import { ConnectFailed, StreamFailed } from "../domain/errors.ts"
import { InboundDelivery } from "../inbound/inbound-delivery.ts"
import type { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import type { Receipts } from "../inbound/inbound-receipts.ts"
import { decodeMessage } from "../message/codec.ts"
import { className, type PriorityClass, priorityClasses } from "../message/priority.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import { AckLedger } from "../peer/delivery-ledger.ts"
import type { Link, LinkSession } from "../peer/link.ts"

/** The receiving end of a node on the in-memory network. */
export interface MemoryEndpoint {
  readonly self: NodeId
  readonly mailbox: InboundMailbox
  readonly maxSnapshotBytes: number
}

/** What a link asks of the network it dials across. */
export interface MemoryFabric {
  /** The endpoint `to` if `from` can reach it now, else why not (a refusal is counted). */
  readonly reach: (from: NodeId, to: NodeId) => Effect.Effect<MemoryEndpoint | string>
  /** Tracks a live session until it closes, so a cut or a stopped node can close it. */
  readonly track: (session: MemorySession) => Effect.Effect<void, never, Scope.Scope>
}

/** One live in-memory connection from `from` to `to`. */
export interface MemorySession {
  readonly from: NodeId
  readonly to: NodeId
  /** Closes the session (idempotent); its writer sees `StreamFailed`, its connector reconnects. */
  readonly close: (reason: string) => Effect.Effect<void>
}

/**
 * A `Link` whose sessions hand encoded payloads straight to the receiver's inbound side.
 * The payloads are decoded again, so a message that the real codec cannot carry fails here
 * too, and every inbound check a real stream makes (identity, addressee, class, snapshot
 * reassembly and its size cap) runs in `InboundDelivery` exactly as on Iroh and gRPC. A full
 * inbound queue suspends the write: flow control pushes back on the sender's writer.
 */
export const makeMemoryLink = (fabric: MemoryFabric, from: NodeId, to: NodeId, maxPayloadBytes: number): Link => ({
  kind: "memory",
  connect: Effect.gen(function*() {
    const target = yield* fabric.reach(from, to)
    if (typeof target === "string") {
      return yield* new ConnectFailed({ peer: to, transport: "memory", cause: target })
    }
    const closed = yield* Deferred.make<string>()
    let closedBecause: string | undefined
    const close = (reason: string) =>
      Effect.suspend(() => {
        closedBecause ??= reason
        return Effect.asVoid(Deferred.succeed(closed, reason))
      })
    yield* Effect.addFinalizer(() => close("session closed"))
    yield* fabric.track({ from, to, close })
    // The receiver's application taking a message acknowledges it at once: no wire in between.
    const acks = new AckLedger()
    const handled = [0, 0, 0, 0]
    const receipts: Receipts = {
      handled: (cls, count) => {
        handled[cls]! += count
        acks.ack(cls, handled[cls]!)
      },
      get open() {
        return closedBecause === undefined
      }
    }
    const deliveries = priorityClasses.map((cls) =>
      new InboundDelivery({
        self: target.self,
        peer: from,
        cls,
        transport: "memory",
        mailbox: target.mailbox,
        maxSnapshotBytes: target.maxSnapshotBytes,
        receipts
      })
    )
    const lost = (cls: PriorityClass, cause: unknown) => new StreamFailed({ peer: to, transport: "memory", class: className(cls), cause })
    const write = (cls: PriorityClass, payloads: ReadonlyArray<Uint8Array>, framedBytes: number) =>
      Effect.gen(function*() {
        if (closedBecause !== undefined) return yield* Effect.fail(lost(cls, closedBecause))
        const messages: Array<RaftMessage> = []
        for (const payload of payloads) {
          try {
            messages.push(decodeMessage(payload))
          } catch (cause) {
            return yield* Effect.fail(lost(cls, cause))
          }
        }
        const delivery = deliveries[cls]!
        yield* delivery.countBytes(framedBytes)
        // A cut while the receiver's queue is full ends the write as a broken stream would.
        yield* Effect.raceFirst(
          delivery.deliver(messages),
          Effect.flatMap(Deferred.await(closed), (why) => Effect.fail(lost(cls, why)))
        )
        return framedBytes
      })
    const session: LinkSession = {
      kind: "memory",
      maxPayloadBytes,
      write,
      closed: Deferred.await(closed),
      rttMs: () => undefined,
      ledger: acks
    }
    return session
  })
})
