import { Context, type Effect, type Stream } from "effect"
import type { NodeId, RaftMessage } from "../message/types.ts"
import type { MessageDropped, PeerUnknown } from "./errors.ts"
import type { TransportEvent } from "./events.ts"
import type { PeerStatus } from "./peer-status.ts"
import type { PeerAddress } from "./peer-table.ts"

/** How other nodes reach this one. */
export interface LocalAddress {
  readonly nodeId: NodeId
  readonly grpc?: { readonly address: string }
  /** The Prometheus `/metrics` server, when `metrics_address` is set. */
  readonly metrics?: { readonly address: string }
  readonly iroh?: {
    readonly endpointId: string
    readonly addresses: ReadonlyArray<string>
    readonly ticket: string
  }
}

/**
 * What a Raft implementation sees of the transport: send to a peer, receive in priority order,
 * watch link events and change membership. The real implementation (Iroh, gRPC or both) is
 * `makeRaftTransport` in `raft-transport`; `raft-transport/testing` has an in-memory one.
 */
export interface RaftTransportService {
  readonly nodeId: NodeId
  readonly localAddress: () => LocalAddress
  /**
   * Hands a message to the peer's actor and returns at once. Fails with `PeerUnknown` for a
   * node outside the peer table, and `MessageDropped` when the class's queue is full and its
   * policy rejects new messages.
   */
  readonly send: (to: NodeId, message: RaftMessage) => Effect.Effect<void, PeerUnknown | MessageDropped>
  /** The next inbound message, highest class first (election > heartbeat > append > snapshot). */
  readonly receive: Effect.Effect<RaftMessage>
  /** Up to `max` inbound messages in priority order; waits for at least one. */
  readonly receiveBatch: (max: number) => Effect.Effect<ReadonlyArray<RaftMessage>>
  /** Inbound messages as a stream, in the same priority order as `receive`. */
  readonly messages: Stream.Stream<RaftMessage>
  /** Link and membership events. Subscribe before the events you care about happen. */
  readonly events: Stream.Stream<TransportEvent>
  /** Adds or replaces a peer (membership change); replacing closes the old peer's links. */
  readonly addPeer: (peer: PeerAddress) => Effect.Effect<void>
  /** Removes a peer: its queued messages are dropped (counted), its links closed. */
  readonly removePeer: (id: NodeId) => Effect.Effect<void, PeerUnknown>
  readonly peerStatus: (id: NodeId) => Effect.Effect<PeerStatus, PeerUnknown>
  readonly peers: Effect.Effect<ReadonlyArray<PeerStatus>>
}

/**
 * The transport service tag. Provide it with `layerConfig(config)` or `layerTomlFile(path)`
 * from `raft-transport`, or with the in-memory network of `raft-transport/testing`.
 *
 * @example
 * const program = Effect.gen(function*() {
 *   const transport = yield* RaftTransport
 *   yield* transport.send(2, { msgType: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 10 })
 * })
 */
export class RaftTransport extends Context.Service<RaftTransport, RaftTransportService>()("raft-transport/RaftTransport") {}
