import { Metric } from "effect"

/**
 * Every metric the transport keeps. Names follow Prometheus conventions; docs/metrics.md documents
 * each. Labelled series are built once per (peer, class) by the
 * actors that own them (`series`), so the hot path only calls `update`.
 */

export type Labels = Record<string, string>

/** Where a labelled metric keeps how to make one of its series. */
const SERIES: unique symbol = Symbol("raft-transport/metric-series")

/** A metric that can make its series with their labels built in (`series`). */
export type Labelled<M> = M & { readonly [SERIES]: (attributes: Labels) => M }

/** The metric `make()` makes, with `make` kept to make its series. */
const labelled = <M extends object>(make: (attributes?: Labels) => M): Labelled<M> => Object.assign(make(), { [SERIES]: make })

/** A labelled counter. */
const labelledCounter = (name: string, description: string) =>
  labelled((attributes) => Metric.counter(name, { description, attributes }))

/**
 * One series of `metric`, its labels built in: its registry key is made once, when the series
 * is. `Metric.withAttributes` merges the labels into the context on every update instead, and
 * series of one metric updated in turn (a peer's, then another's) remake the key, the JSON of
 * the sorted labels, each time (`npx tsx bench/tools/metric-series.ts`).
 */
export const series = <M>(metric: Labelled<M>, attributes: Labels): M => metric[SERIES](attributes)

export const messagesSent = labelledCounter(
  "raft_transport_messages_sent_total",
  "Messages written to a link, by peer, class and transport"
)
/** `raft_transport_bytes_sent_total` (counter): framed bytes written to a link, by peer, class and transport. */
export const bytesSent = labelledCounter(
  "raft_transport_bytes_sent_total",
  "Framed bytes written to a link, by peer, class and transport"
)
/** `raft_transport_messages_received_total` (counter): messages delivered to the inbound queues, by peer, class and transport. */
export const messagesReceived = labelledCounter(
  "raft_transport_messages_received_total",
  "Messages delivered to the inbound queues, by peer, class and transport"
)
/** `raft_transport_bytes_received_total` (counter): bytes read from inbound streams, by class and transport. */
export const bytesReceived = labelledCounter(
  "raft_transport_bytes_received_total",
  "Bytes read from inbound streams, by class and transport"
)
/** `raft_transport_messages_dropped_total` (counter): messages not delivered, by peer, class and reason (a `DropReason`). */
export const messagesDropped = Metric.counter("raft_transport_messages_dropped_total", {
  description:
    "Messages dropped, by peer, class and reason (queue_full, expired, link_failed, forged_from, misaddressed, wrong_class, peer_removed, snapshot_failed, snapshot_replaced, snapshot_stalled, snapshot_memory, too_large, transport_disabled)"
})
/** `raft_transport_batch_messages` (histogram): messages per link write, by class. */
export const batchSize = labelled((attributes) =>
  Metric.histogram("raft_transport_batch_messages", {
    description: "Messages per link write, by class",
    boundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    attributes
  })
)
/** `raft_transport_queue_depth` (gauge): messages waiting in an outbound queue, by peer and class (sampled at each write). */
export const queueDepth = labelled((attributes) =>
  Metric.gauge("raft_transport_queue_depth", {
    description: "Messages waiting in an outbound queue, by peer and class (sampled at each write)",
    attributes
  })
)
/** `raft_transport_connection_attempts_total` (counter): outbound connection attempts, by peer and transport. */
export const connectionAttempts = Metric.counter("raft_transport_connection_attempts_total", {
  description: "Outbound connection attempts, by peer and transport"
})
/** `raft_transport_connection_failures_total` (counter): outbound connection attempts that failed or connections lost, by peer, transport and kind. */
export const connectionFailures = Metric.counter("raft_transport_connection_failures_total", {
  description: "Outbound connection attempts that failed or connections lost, by peer, transport and kind"
})
/** `raft_transport_inbound_refused_total` (counter): inbound connections, streams and calls refused, by transport and reason. */
export const inboundRefused = Metric.counter("raft_transport_inbound_refused_total", {
  description:
    "Inbound connections, streams and calls refused, by transport and reason (Iroh unknown_endpoint, bad_alpn, handshake; gRPC wrong_cluster, bad_token, bad_metadata, unknown_peer, cert_mismatch, call_replaced; both too_many_connections, connection_replaced, handshake_timeout; Iroh too_many_streams)"
})
/** `raft_transport_inbound_errors_total` (counter): inbound streams and calls closed for bad input, by transport and kind. */
export const inboundErrors = Metric.counter("raft_transport_inbound_errors_total", {
  description:
    "Inbound streams and calls closed for bad input, by transport and kind (bad_preamble, frame_too_large, message_too_large, decode_failed, too_many_messages, too_many_entries, handshake_timeout, idle_timeout, truncated_frame, truncated_snapshot, delivery_failed)"
})
/** `raft_transport_snapshot_receive_bytes` (gauge): memory held by snapshot transfers under way, node-wide. */
export const snapshotReceiveBytes = Metric.gauge("raft_transport_snapshot_receive_bytes", {
  description: "Memory held by snapshot transfers under way, node-wide (bounded by max_snapshot_receive_bytes)"
})
/** `raft_transport_compression_framed_bytes_total` (counter): framed bytes of Iroh wire version 2 writes before compression, by class and transport. */
export const compressionFramedBytes = labelledCounter(
  "raft_transport_compression_framed_bytes_total",
  "Framed bytes of the writes on links that can compress (wire version 2), before compression, by class and transport"
)
/** `raft_transport_compression_wire_bytes_total` (counter): the bytes those writes put on the wire, by class and transport. */
export const compressionWireBytes = labelledCounter(
  "raft_transport_compression_wire_bytes_total",
  "Bytes the same writes put on the wire, block headers included, by class and transport"
)
/** `raft_transport_batches_uncompressed_total` (counter): writes of a compressed class sent as they are, by class, transport and reason. */
export const batchesUncompressed = labelledCounter(
  "raft_transport_batches_uncompressed_total",
  "Writes of a compressed class sent as they are, by class, transport and reason (did_not_shrink: tried; backing_off: skipped after writes that did not shrink)"
)
/** `raft_transport_snapshots_sent_total` (counter): whole snapshots written, by peer and transport. */
export const snapshotsSent = labelledCounter(
  "raft_transport_snapshots_sent_total",
  "Whole snapshots written, by peer and transport"
)
/** `raft_transport_snapshots_received_total` (counter): whole snapshots reassembled and delivered, by peer and transport. */
export const snapshotsReceived = labelledCounter(
  "raft_transport_snapshots_received_total",
  "Whole snapshots reassembled and delivered, by peer and transport"
)

/** `raft_transport_route` (gauge): 1 for the transport that currently carries a class to a peer, 0 for the other (by peer, class, transport). */
export const routeActive = Metric.gauge("raft_transport_route", {
  description: "1 for the transport that currently carries a class to a peer, 0 for the other (by peer, class, transport)"
})
/** `raft_transport_fallbacks_total` (counter): times a peer's traffic fell back from Iroh to gRPC, by peer. */
export const fallbacks = Metric.counter("raft_transport_fallbacks_total", {
  description: "Times a peer's traffic fell back from Iroh to gRPC, by peer"
})
/** `raft_transport_recoveries_total` (counter): times a peer's traffic returned to Iroh after a fallback, by peer. */
export const recoveries = Metric.counter("raft_transport_recoveries_total", {
  description: "Times a peer's traffic returned to Iroh after a fallback, by peer"
})
/** `raft_transport_route_changes_total` (counter): route changes of a class to a peer, by peer, class and reason (fallback, recovery, adaptive). */
export const routeChanges = Metric.counter("raft_transport_route_changes_total", {
  description: "Route changes of a class to a peer, by peer, class and reason (fallback, recovery, adaptive)"
})
/** `raft_transport_reconnects_total` (counter): sessions established after an earlier one was lost, by peer and transport. */
export const reconnects = Metric.counter("raft_transport_reconnects_total", {
  description: "Sessions established after an earlier one was lost, by peer and transport"
})
export const reconnectWakeups = Metric.counter("raft_transport_reconnect_wakeups_total", {
  description: "Backoffs ended early because the peer connected to this node or a send came after a quiet spell, by peer and transport"
})
/**
 * `raft_transport_acknowledgements_sent_total` (counter): delivery acknowledgements sent to
 * peers over Iroh, by transport and how: `written` (a write of their own on the acknowledgement
 * stream) or `carried` (in the header of a block written to the peer anyway, wire version 3).
 * gRPC's go in its call's own messages and are not counted here.
 */
export const acknowledgements = labelledCounter(
  "raft_transport_acknowledgements_sent_total",
  "Delivery acknowledgements sent to peers over Iroh, by transport and how (written: a write of their own; carried: in a block written to the peer anyway)"
)
export const darkPaths = Metric.counter("raft_transport_dark_paths_total", {
  description: "Iroh connections declared dark (nothing received from the peer within dark_after_ms of an unanswered packet), by peer"
})
/** `raft_transport_link_up` (gauge): 1 while a peer's link on a transport has a live session, else 0, by peer and transport. */
export const linkUp = Metric.gauge("raft_transport_link_up", {
  description: "1 while a peer's link on a transport has a live session, else 0, by peer and transport"
})
/** `raft_transport_rtt_ms` (gauge): smoothed round-trip time of a peer's link in ms, by peer and transport (from probes). */
export const rttMs = Metric.gauge("raft_transport_rtt_ms", {
  description: "Smoothed round-trip time of a peer's link in ms, by peer and transport (from probes)"
})
/** `raft_transport_iroh_binding_threads` (gauge): the Iroh binding's Tokio threads by scheduling policy (batch, other). */
export const irohBindingThreads = Metric.gauge("raft_transport_iroh_binding_threads", {
  description: "The Iroh binding's Tokio threads by scheduling policy (batch: SCHED_BATCH; other), read when an endpoint binds"
})
