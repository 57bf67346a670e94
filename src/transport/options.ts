/**
 * The decoded `[transport]` config mapped onto each part's own options, so that the service
 * wires parts together and this file alone knows which config key feeds which option.
 */
import type { PubSub } from "effect"
import { maxAgeFor, queueConfigFor, type TransportConfig } from "../config/schema.ts"
import type { ElectionActivity } from "../domain/election-activity.ts"
import type { TransportEvent } from "../domain/events.ts"
import type { PeerAddress } from "../domain/peer-table.ts"
import type { GrpcLinkOptions } from "../grpc/link.ts"
import type { GrpcServerOptions } from "../grpc/server.ts"
import type { InboundLimits, InboundShared } from "../inbound/inbound-limits.ts"
import type { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import type { IrohEndpointOptions } from "../iroh/endpoint.ts"
import type { CompressionOptions } from "../iroh/block-encoder.ts"
import type { IrohLinkOptions } from "../iroh/link.ts"
import { PriorityClass, priorityClasses } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import type { PeerActorOptions } from "../peer/actor.ts"
import { RTT_REFRESH_MS, SINGLE_TRANSPORT_RTT_REFRESH_MS } from "../peer/probe.ts"
import type { PeerTable } from "../domain/peer-table.ts"
import type { RouterOptions } from "../routing/router.ts"

export const peerAddressOf = (peer: TransportConfig["peers"][number]): PeerAddress => ({
  id: peer.id,
  irohEndpointId: peer.iroh_endpoint_id,
  irohAddresses: peer.iroh_addresses,
  irohTicket: peer.iroh_ticket,
  grpcAddress: peer.grpc_address
})

export const inboundLimits = (config: TransportConfig): InboundLimits => {
  const l = config.limits
  return {
    maxConnections: l.max_connections,
    maxConnectionsPerPeer: l.max_connections_per_peer,
    maxStreamsPerConnection: l.max_streams_per_connection,
    handshakeTimeoutMs: l.handshake_timeout_ms,
    idleTimeoutMs: l.idle_timeout_ms,
    grpcMaxConnectionAgeMs: l.grpc_max_connection_age_ms,
    decode: {
      maxBatchMessages: l.max_batch_messages,
      maxMessageEntries: l.max_message_entries,
      maxBatchEntries: l.max_batch_entries
    },
    maxSnapshotReceiveBytes: l.max_snapshot_receive_bytes,
    refusalLogIntervalMs: l.refusal_log_interval_ms
  }
}

export const irohEndpointOptions = (config: TransportConfig): IrohEndpointOptions => ({
  bindAddress: config.iroh_config.bind_address,
  keyFile: config.iroh_config.key_file,
  relayMode: config.iroh_config.relay_mode,
  workerThread: config.iroh_config.worker_thread,
  bindingThreadPolicy: config.iroh_config.binding_thread_policy
})

export const grpcServerOptions = (
  config: TransportConfig,
  token: string | undefined,
  peers: PeerTable,
  mailbox: InboundMailbox,
  inbound: InboundShared
): GrpcServerOptions => {
  const tls = config.grpc_config.tls
  return {
    bindAddress: config.grpc_config.bind_address,
    self: config.node_id,
    clusterId: config.cluster_id,
    token,
    tls: tls === undefined ? undefined : {
      certFile: tls.cert_file,
      keyFile: tls.key_file,
      caFile: tls.ca_file,
      requireClientCert: tls.require_client_cert,
      bindIdentity: tls.bind_identity
    },
    peers,
    mailbox,
    maxMessageBytes: config.grpc_config.max_message_bytes,
    maxSnapshotBytes: config.batching.max_snapshot_bytes,
    inbound
  }
}

const probeOptions = (config: TransportConfig) => ({
  probeIntervalMs: config.strategy.probe_interval_ms,
  probeTimeoutMs: config.strategy.probe_timeout_ms,
  probeFailuresBeforeClose: config.strategy.probe_failures,
  // The adaptive strategy compares both links' ping RTTs every interval: keep them fresh.
  skipPingsWhileConfirmed: config.strategy.raft_transport._tag !== "adaptive",
  // Fallback and recovery read a dual-mode link's liveness while it carries nothing.
  skipPingsWhileQuiet: config.mode !== "dual",
  pingRefreshMs: config.mode === "dual" ? RTT_REFRESH_MS : SINGLE_TRANSPORT_RTT_REFRESH_MS
})

/** `[transport.compression]` as the Iroh links take it. */
export const compressionOptions = (config: TransportConfig): CompressionOptions => ({
  algorithm: config.compression.algorithm,
  level: config.compression.level,
  minBatchBytes: config.compression.min_batch_bytes,
  minSaving: config.compression.min_saving,
  classes: config.compression.classes.map((name) => name === "append" ? PriorityClass.Append : PriorityClass.Snapshot),
  snapshotChunkBytes: config.compression.snapshot_chunk_bytes
})

export const irohLinkOptions = (
  config: TransportConfig
): Omit<IrohLinkOptions, "endpoint" | "peer" | "address"> => ({
  connectTimeoutMs: config.iroh_config.connect_timeout_ms,
  compression: compressionOptions(config),
  maxFrameBytes: config.max_frame_bytes,
  darkAfterMs: config.strategy.dark_after_ms,
  ...probeOptions(config)
})

export const grpcLinkOptions = (
  config: TransportConfig,
  peer: NodeId,
  token: string | undefined,
  address: () => string | undefined
): GrpcLinkOptions => {
  const tls = config.grpc_config.tls
  return {
    self: config.node_id,
    peer,
    address,
    clusterId: config.cluster_id,
    token,
    tls: tls === undefined ? undefined : { caFile: tls.ca_file, certFile: tls.cert_file, keyFile: tls.key_file },
    connectTimeoutMs: config.grpc_config.connect_timeout_ms,
    maxMessageBytes: config.grpc_config.max_message_bytes,
    ...probeOptions(config)
  }
}

export const routerOptions = (
  config: TransportConfig,
  peer: NodeId,
  events: PubSub.PubSub<TransportEvent>
): RouterOptions => ({
  peer,
  mode: config.mode,
  strategy: config.strategy.raft_transport,
  classRoutes: config.strategy.class_routes,
  fallbackToGrpc: config.strategy.fallback_to_grpc,
  recoveryHoldDownMs: config.strategy.recovery_hold_down_ms,
  events
})

export const actorOptions = (
  config: TransportConfig,
  electionActivity: ElectionActivity
): Omit<PeerActorOptions, "peer" | "links" | "routes" | "events" | "onLinkState"> => ({
  queues: priorityClasses.map((cls) => ({ ...queueConfigFor(config, cls), maxAgeMs: maxAgeFor(config, cls) })),
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
  }
})
