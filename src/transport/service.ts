/**
 * The transport itself: one Iroh endpoint and acceptor, one gRPC server, and an actor per peer
 * with its links and router, all in the layer's scope. `options.ts` maps the config onto each.
 */
import { Effect, Metric, PubSub, Redacted, Scope, Stream } from "effect"
import type { TransportConfig } from "../config/schema.ts"
import { MessageDropped, PeerUnknown, TransportStartFailed } from "../domain/errors.ts"
import { ElectionActivity } from "../domain/election-activity.ts"
import type { TransportEvent } from "../domain/events.ts"
import { type PeerAddress, PeerTable } from "../domain/peer-table.ts"
import type { RaftTransportService } from "../domain/raft-transport.ts"
import { makeGrpcLink } from "../grpc/link.ts"
import { type GrpcServer, runGrpcServer } from "../grpc/server.ts"
import { makeInboundShared } from "../inbound/inbound-limits.ts"
import { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import { runAcceptor, type InboundConnections } from "../iroh/acceptor.ts"
import { ACK_RIDE_WAIT_MS, AckRides } from "../iroh/ack-rides.ts"
import { dialAddressOf, endpointIdOfTicket } from "../iroh/addresses.ts"
import { makeIrohEndpoint } from "../iroh/endpoint.ts"
import type { IrohHost } from "../iroh/host.ts"
import { makeIrohLink } from "../iroh/link.ts"
import type { WireVersion } from "../iroh/protocol.ts"
import { classify, className } from "../message/priority.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { serveMetrics } from "../metrics/server.ts"
import { PeerActor } from "../peer/actor.ts"
import { PeerActors } from "../peer/peer-actors.ts"
import type { Link } from "../peer/link.ts"
import { PeerRouter } from "../routing/router.ts"
import { superviseDualPeer } from "../routing/supervisor.ts"
import {
  actorOptions,
  grpcLinkOptions,
  grpcServerOptions,
  inboundLimits,
  irohEndpointOptions,
  irohLinkOptions,
  peerAddressOf,
  routerOptions
} from "./options.ts"

/** What only tests set: not part of the configuration. */
export interface TransportInternals {
  /** The Iroh wire versions this node speaks (default: all), to stand in for an older node. */
  readonly irohWireVersions?: ReadonlyArray<WireVersion>
  /** How long acknowledgements wait for a block to ride on (default `ACK_RIDE_WAIT_MS`). */
  readonly ackRideWaitMs?: number
}

/**
 * The transport a decoded config describes, in the caller's scope: the Iroh endpoint and its
 * acceptor, the gRPC server, and one actor per peer with its links and router. Closing the
 * scope closes every link and counts what was still queued as dropped. `layerConfig` is this
 * as a layer.
 *
 * @example
 * ```ts
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const transport = yield* makeRaftTransport(yield* makeConfig({ node_id: 1, mode: "grpc" }))
 *   yield* Effect.log(transport.localAddress())
 * }))
 * ```
 */
export const makeRaftTransport = (
  config: TransportConfig,
  internals: TransportInternals = {}
): Effect.Effect<RaftTransportService, TransportStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const self = config.node_id
    const scope = yield* Effect.scope
    const table = new PeerTable(self, endpointIdOfTicket)
    for (const peer of config.peers) table.set(peerAddressOf(peer))
    const electionActivity = new ElectionActivity(config.batching.election_window_ms)
    const mailbox = yield* InboundMailbox.make(config.queues.inbound_capacity, electionActivity)
    const events = yield* PubSub.sliding<TransportEvent>(1024)

    // `enabled = false`: a node that takes no network traffic (sends are dropped and counted).
    const usesIroh = config.enabled && config.mode !== "grpc" && config.iroh_config.enabled
    const usesGrpc = config.enabled && config.mode !== "iroh" && config.grpc_config.enabled
    const iroh: IrohHost | undefined = usesIroh
      ? yield* makeIrohEndpoint({ ...irohEndpointOptions(config), wireVersions: internals.irohWireVersions })
      : undefined
    // One set of limits, one snapshot budget and one refusal log for both transports.
    const shared = yield* makeInboundShared(inboundLimits(config))
    const actors = new PeerActors()
    /** A peer that reached this node is up: its links stop backing off. */
    const peerSeen = (via: string) => (peer: NodeId): Effect.Effect<void> =>
      Effect.suspend(() => actors.get(peer)?.wake(`peer ${peer} connected over ${via}`) ?? Effect.void)

    const rides = new AckRides(internals.ackRideWaitMs ?? ACK_RIDE_WAIT_MS)
    const inbound: InboundConnections | undefined = iroh === undefined ? undefined : yield* runAcceptor({
      endpoint: iroh,
      self,
      peers: table,
      mailbox,
      maxFrameBytes: config.max_frame_bytes,
      maxSnapshotBytes: config.batching.max_snapshot_bytes,
      wireVersions: internals.irohWireVersions,
      inbound: shared,
      onPeerSeen: peerSeen("iroh"),
      rides
    })
    const token = config.grpc_config.token === undefined ? undefined : Redacted.value(config.grpc_config.token)
    const grpc: GrpcServer | undefined = usesGrpc
      ? yield* runGrpcServer({ ...grpcServerOptions(config, token, table, mailbox, shared), onPeerSeen: peerSeen("grpc") })
      : undefined

    const linksFor = (peer: NodeId): ReadonlyArray<Link> => {
      const links: Array<Link> = []
      if (iroh !== undefined) {
        links.push(makeIrohLink({
          endpoint: iroh,
          peer,
          address: () => {
            const address = table.get(peer)
            return address === undefined ? undefined : dialAddressOf(address)
          },
          ...irohLinkOptions(config),
          wireVersions: internals.irohWireVersions,
          rides
        }))
      }
      if (grpc !== undefined) {
        links.push(makeGrpcLink(grpcLinkOptions(config, peer, token, () => table.get(peer)?.grpcAddress)))
      }
      return links
    }

    const stopPeer = (id: NodeId) =>
      Effect.suspend(() => {
        if (!actors.has(id)) return Effect.void
        inbound?.closeAll(id)
        grpc?.closePeer(id)
        return actors.stop(id)
      })

    const startPeer = (address: PeerAddress) =>
      Effect.gen(function*() {
        yield* stopPeer(address.id)
        table.set(address)
        const peerScope = yield* Scope.fork(scope)
        const router = yield* PeerRouter.make(routerOptions(config, address.id, events)).pipe(Scope.provide(peerScope))
        const actor = yield* PeerActor.make({
          ...actorOptions(config, electionActivity),
          peer: address.id,
          links: linksFor(address.id),
          routes: router,
          events,
          onLinkState: (kind, up, cause) => router.linkState(kind, up, cause)
        }).pipe(Scope.provide(peerScope))
        const irohConnector = actor.connector("iroh")
        if (irohConnector !== undefined && config.strategy.dark_after_ms > 0) {
          // Heard within a quarter of the dark threshold: a path that went dark since is found
          // by the watch soon after the traffic returns, well inside an election timeout.
          const recent = Math.max(1, Math.floor(config.strategy.dark_after_ms / 4))
          router.setRecoveryCheck(() => irohConnector.heardWithin(recent))
        }
        if (config.mode === "dual") {
          yield* superviseDualPeer(actor, router, config.strategy.probe_interval_ms).pipe(Scope.provide(peerScope))
        }
        actors.add(address.id, actor, peerScope)
      })

    if (config.enabled) for (const peer of table.remotes()) yield* startPeer(peer)

    const metrics = config.metrics_address === undefined ? undefined : yield* serveMetrics(config.metrics_address).pipe(
      Effect.mapError((cause) => new TransportStartFailed({ transport: "metrics", cause }))
    )

    const dropDisabled = (to: NodeId, message: RaftMessage) => {
      const cls = className(classify(message))
      return Metric.update(Metric.withAttributes(M.messagesDropped, { peer: String(to), class: cls, reason: "transport_disabled" }), 1).pipe(
        Effect.andThen(Effect.fail(new MessageDropped({ peer: to, class: cls, reason: "transport_disabled" })))
      )
    }

    const service: RaftTransportService = {
      nodeId: self,
      localAddress: () => ({
        nodeId: self,
        ...(iroh !== undefined
          ? { iroh: { endpointId: iroh.endpointId, addresses: iroh.directAddresses(), ticket: iroh.ticket() } }
          : {}),
        ...(grpc !== undefined ? { grpc: { address: grpc.address } } : {}),
        ...(metrics !== undefined ? { metrics: { address: metrics.address } } : {})
      }),
      send: (to, message) => {
        if (!config.enabled) return dropDisabled(to, message)
        const actor = actors.get(to)
        return actor === undefined ? Effect.fail(new PeerUnknown({ peer: to })) : actor.send(message)
      },
      receive: mailbox.receive,
      receiveBatch: (max) => mailbox.receiveBatch(max),
      messages: mailbox.messages,
      events: Stream.fromPubSub(events),
      addPeer: (peer) =>
        Effect.gen(function*() {
          if (peer.id === self) return
          if (!config.enabled) return void table.set(peer)
          yield* startPeer(peer)
          yield* PubSub.publish(events, { _tag: "PeerAdded", peer: peer.id })
          yield* Effect.logInfo(`peer ${peer.id} added`)
        }),
      removePeer: (id) =>
        Effect.gen(function*() {
          yield* actors.require(id)
          // Out of the table first: a redial that lands while the peer's links close is refused.
          table.delete(id)
          yield* stopPeer(id)
          yield* PubSub.publish(events, { _tag: "PeerRemoved", peer: id })
          yield* Effect.logInfo(`peer ${id} removed`)
        }),
      peerStatus: (id) => Effect.map(actors.require(id), (actor) => actor.status()),
      peers: Effect.sync(() => actors.statuses())
    }
    yield* Effect.logInfo(`raft transport started: node ${self}, mode ${config.mode}`).pipe(
      Effect.annotateLogs({ endpoint: iroh?.endpointId ?? "-" })
    )
    return service
  }).pipe(Effect.annotateLogs({ node: String(config.node_id) }))
