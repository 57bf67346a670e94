import { Context, Effect, Exit, Layer, Metric, PubSub, Redacted, Scope, Stream } from "effect"
import type { ConfigError } from "../config/errors.ts"
import { loadConfigFile } from "../config/load.ts"
import type { TransportConfig } from "../config/schema.ts"
import { queueConfigFor } from "../config/schema.ts"
import { dialAddressOf } from "../iroh/addresses.ts"
import { runAcceptor, type InboundConnections } from "../iroh/acceptor.ts"
import { makeIrohEndpoint } from "../iroh/endpoint.ts"
import type { IrohHost } from "../iroh/host.ts"
import { makeIrohLink } from "../iroh/link.ts"
import { makeGrpcLink } from "../grpc/link.ts"
import { type GrpcServer, runGrpcServer } from "../grpc/server.ts"
import { classify, className, priorityClasses } from "../message/priority.ts"
import * as M from "../metrics/metrics.ts"
import { serveMetrics } from "../metrics/server.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import { PeerActor, type PeerStatus } from "../peer/actor.ts"
import type { Link } from "../peer/link.ts"
import { MessageDropped, PeerUnknown, TransportStartFailed } from "./errors.ts"
import type { TransportEvent } from "./events.ts"
import { ElectionActivity } from "./election-activity.ts"
import { InboundMailbox } from "./inbound-mailbox.ts"
import { type PeerAddress, PeerTable } from "./peer-table.ts"
import { PeerRouter } from "./router.ts"
import { superviseDualPeer } from "./supervisor.ts"

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

export class RaftTransport extends Context.Service<RaftTransport, RaftTransportService>()("raft-transport/RaftTransport") {
  /** The transport a decoded config describes, with every resource scoped to the layer. */
  static layerConfig(config: TransportConfig): Layer.Layer<RaftTransport, TransportStartFailed> {
    return Layer.effect(RaftTransport, makeRaftTransport(config))
  }

  /** The transport the `[transport]` table of a TOML file describes. */
  static layerTomlFile(path: string): Layer.Layer<RaftTransport, TransportStartFailed | ConfigError> {
    return Layer.unwrap(Effect.map(loadConfigFile(path), (config) => RaftTransport.layerConfig(config)))
  }
}

interface PeerEntry {
  readonly actor: PeerActor
  readonly scope: Scope.Closeable
}

export const peerAddressOf = (peer: TransportConfig["peers"][number]): PeerAddress => ({
  id: peer.id,
  irohEndpointId: peer.iroh_endpoint_id,
  irohAddresses: peer.iroh_addresses,
  irohTicket: peer.iroh_ticket,
  grpcAddress: peer.grpc_address
})

export const makeRaftTransport = (
  config: TransportConfig
): Effect.Effect<RaftTransportService, TransportStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const self = config.node_id
    const scope = yield* Effect.scope
    const table = new PeerTable(self)
    for (const peer of config.peers) table.set(peerAddressOf(peer))
    const electionActivity = new ElectionActivity(config.batching.election_window_ms)
    const mailbox = yield* InboundMailbox.make(config.queues.inbound_capacity, electionActivity)
    const events = yield* PubSub.sliding<TransportEvent>(1024)

    // `enabled = false`: a node that takes no network traffic (sends are dropped and counted).
    const usesIroh = config.enabled && config.mode !== "grpc" && config.iroh_config.enabled
    const usesGrpc = config.enabled && config.mode !== "iroh" && config.grpc_config.enabled
    const iroh: IrohHost | undefined = usesIroh
      ? yield* makeIrohEndpoint({
        bindAddress: config.iroh_config.bind_address,
        keyFile: config.iroh_config.key_file,
        relayMode: config.iroh_config.relay_mode,
        workerThread: config.iroh_config.worker_thread
      })
      : undefined
    const inbound: InboundConnections | undefined = iroh === undefined ? undefined : yield* runAcceptor({
      endpoint: iroh,
      self,
      peers: table,
      mailbox,
      maxFrameBytes: config.max_frame_bytes,
      maxSnapshotBytes: config.batching.max_snapshot_bytes
    })
    const token = config.grpc_config.token === undefined ? undefined : Redacted.value(config.grpc_config.token)
    const tls = config.grpc_config.tls
    const grpc: GrpcServer | undefined = usesGrpc
      ? yield* runGrpcServer({
        bindAddress: config.grpc_config.bind_address,
        self,
        clusterId: config.cluster_id,
        token,
        tls: tls === undefined ? undefined : {
          certFile: tls.cert_file,
          keyFile: tls.key_file,
          caFile: tls.ca_file,
          requireClientCert: tls.require_client_cert,
          bindIdentity: tls.bind_identity
        },
        peers: table,
        mailbox,
        maxMessageBytes: config.grpc_config.max_message_bytes,
        maxSnapshotBytes: config.batching.max_snapshot_bytes
      })
      : undefined

    const probe = {
      probeIntervalMs: config.strategy.probe_interval_ms,
      probeTimeoutMs: config.strategy.probe_timeout_ms,
      probeFailuresBeforeClose: config.strategy.probe_failures
    }
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
          connectTimeoutMs: config.iroh_config.connect_timeout_ms,
          ...probe
        }))
      }
      if (grpc !== undefined) {
        links.push(makeGrpcLink({
          self,
          peer,
          address: () => table.get(peer)?.grpcAddress,
          clusterId: config.cluster_id,
          token,
          tls: tls === undefined ? undefined : { caFile: tls.ca_file, certFile: tls.cert_file, keyFile: tls.key_file },
          connectTimeoutMs: config.grpc_config.connect_timeout_ms,
          maxMessageBytes: config.grpc_config.max_message_bytes,
          ...probe
        }))
      }
      return links
    }

    const actors = new Map<NodeId, PeerEntry>()

    const stopPeer = (id: NodeId) =>
      Effect.suspend(() => {
        const entry = actors.get(id)
        if (entry === undefined) return Effect.void
        actors.delete(id)
        inbound?.closeAll(id)
        grpc?.closePeer(id)
        return Scope.close(entry.scope, Exit.void)
      })

    const startPeer = (address: PeerAddress) =>
      Effect.gen(function*() {
        yield* stopPeer(address.id)
        table.set(address)
        const peerScope = yield* Scope.fork(scope)
        const router = yield* PeerRouter.make({
          peer: address.id,
          mode: config.mode,
          strategy: config.strategy.raft_transport,
          classRoutes: config.strategy.class_routes,
          fallbackToGrpc: config.strategy.fallback_to_grpc,
          events
        })
        const actor = yield* PeerActor.make({
          peer: address.id,
          queues: priorityClasses.map((cls) => queueConfigFor(config, cls)),
          maxBatch: config.batching.max_batch,
          maxBatchBytes: config.batching.max_batch_bytes,
          maxAgeMs: config.batching.max_age_ms,
          maxFrameBytes: config.max_frame_bytes,
          snapshotChunkBytes: config.batching.snapshot_chunk_bytes,
          snapshotBytesPerSec: {
            iroh: config.batching.iroh_snapshot_bytes_per_sec,
            grpc: config.batching.grpc_snapshot_bytes_per_sec
          },
          snapshotElectionBytesPerSec: {
            iroh: config.batching.iroh_snapshot_election_bytes_per_sec,
            grpc: config.batching.grpc_snapshot_election_bytes_per_sec
          },
          electionActivity,
          snapshotAttempts: 3,
          backoff: {
            initialMs: config.reconnect.initial_backoff_ms,
            maxMs: config.reconnect.max_backoff_ms,
            jitter: config.reconnect.jitter
          },
          links: linksFor(address.id),
          routes: router,
          events,
          onLinkState: (kind, up, cause) => router.linkState(kind, up, cause)
        }).pipe(Scope.provide(peerScope))
        if (config.mode === "dual") {
          yield* superviseDualPeer(actor, router, config.strategy.probe_interval_ms).pipe(Scope.provide(peerScope))
        }
        actors.set(address.id, { actor, scope: peerScope })
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

    const requireActor = (id: NodeId) =>
      Effect.suspend(() => {
        const entry = actors.get(id)
        return entry === undefined ? Effect.fail(new PeerUnknown({ peer: id })) : Effect.succeed(entry.actor)
      })

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
        const entry = actors.get(to)
        return entry === undefined ? Effect.fail(new PeerUnknown({ peer: to })) : entry.actor.send(message)
      },
      receive: mailbox.receive,
      receiveBatch: (max) => mailbox.receiveBatch(max),
      messages: Stream.fromEffectRepeat(mailbox.receiveBatch(256)).pipe(Stream.flattenIterable),
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
          yield* requireActor(id)
          // Out of the table first: a redial that lands while the peer's links close is refused.
          table.delete(id)
          yield* stopPeer(id)
          yield* PubSub.publish(events, { _tag: "PeerRemoved", peer: id })
          yield* Effect.logInfo(`peer ${id} removed`)
        }),
      peerStatus: (id) => Effect.map(requireActor(id), (actor) => actor.status()),
      peers: Effect.sync(() => [...actors.values()].map((e) => e.actor.status()))
    }
    yield* Effect.logInfo(`raft transport started: node ${self}, mode ${config.mode}`).pipe(
      Effect.annotateLogs({ endpoint: iroh?.endpointId ?? "-" })
    )
    return service
  }).pipe(Effect.annotateLogs({ node: String(config.node_id) }))
