/**
 * The transport configuration as an Effect Schema.
 *
 * `TransportConfig` decodes the `[transport]` table of a TOML document (or an object of the
 * same shape built in code) into a fully populated value: every defaulted field is present,
 * dependent defaults are resolved (listener bind addresses, `home_relay`, the strategy's
 * default per mode) and the cross-field rules are checked. Field names are the TOML
 * snake_case names. See `docs/configuration.md` for the reference.
 *
 * Decode it through `decodeTransportConfig` / `parseConfigToml` (`./load.ts`), which pass
 * the parse options this schema expects (`errors: "all"`, `onExcessProperty: "error"`)
 * and turn failures into a `ConfigError`.
 */
import { isIPv4, isIPv6 } from "node:net"
import { Schema, SchemaTransformation, Struct } from "effect"
import { intAtLeast, intBetween, NonEmptyString, numberAtLeast, numberBetween, orDefault, orEmptyTable, table } from "./fields.ts"
import { parseEndpointTicket } from "./iroh-ticket.ts"

// -----------------------------------------------------------------------------
// Building blocks (shared with the [raft] and [http] tables: ./fields.ts)
// -----------------------------------------------------------------------------

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/** Splits `host:port` / `[v6]:port`; `undefined` when the shape is wrong. */
export const splitHostPort = (s: string): { readonly host: string; readonly port: number } | undefined => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const v6 = m[1]
  if (v6 !== undefined) return isIPv6(v6) ? { host: v6, port } : undefined
  const host = m[2] ?? ""
  if (!isIPv4(host) && !(HOSTNAME.test(host) && !/^[\d.]+$/.test(host))) return undefined
  return { host, port }
}

const hostPort = (options: { readonly ipOnly: boolean; readonly minPort: number; readonly expected: string }) =>
  Schema.String.check(
    Schema.makeFilter((s: string) => {
      const hp = splitHostPort(s)
      if (hp === undefined || hp.port < options.minPort) return false
      return !options.ipOnly || isIPv4(hp.host) || isIPv6(hp.host)
    }, { expected: options.expected })
  )

/** An address to listen on: `host:port`, port 0 = any free port. */
export const BindAddress = hostPort({
  ipOnly: false,
  minPort: 0,
  expected: "a bind address \"host:port\" (IPv4, hostname or [IPv6], port 0-65535)"
})
/** An address to dial: `host:port` with a port in 1-65535. */
export const DialAddress = hostPort({
  ipOnly: false,
  minPort: 1,
  expected: "an address \"host:port\" (IPv4, hostname or [IPv6], port 1-65535)"
})
/** A direct socket address for Iroh: `a.b.c.d:port` or `[v6]:port`. */
export const SocketAddress = hostPort({
  ipOnly: true,
  minPort: 1,
  expected: "a socket address \"ip:port\" (IPv4, or [IPv6]:port)"
})

export const RelayUrl = Schema.String.check(
  Schema.makeFilter((s: string) => {
    if (!URL.canParse(s)) return false
    const p = new URL(s).protocol
    return p === "https:" || p === "http:"
  }, { expected: "a relay URL (http:// or https://)" })
)

/** An Iroh endpoint id as Iroh prints it: 64 lowercase hex characters. */
export const EndpointIdString = Schema.String.check(
  Schema.makeFilter((s: string) => /^[0-9a-f]{64}$/.test(s), {
    expected: "an Iroh endpoint id (64 lowercase hex characters)"
  })
)

/** An Iroh endpoint ticket, checked against the ticket format (not only its prefix). */
export const EndpointTicketString = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const parsed = parseEndpointTicket(s)
    if (typeof parsed !== "string") return undefined
    const shown = s.length > 24 ? `${JSON.stringify(s.slice(0, 24))}...` : JSON.stringify(s)
    return `Expected an Iroh endpoint ticket (as \`raft-node keygen\` prints), got ${shown}: ${parsed}`
  })
)

/** gRPC metadata values must be printable ASCII. */
const ClusterId = Schema.String.check(
  Schema.makeFilter((s: string) => /^[\x20-\x7e]+$/.test(s), {
    expected: "a non-empty string of printable ASCII characters"
  })
)

const fixed = <const Tag extends string, const Out extends { readonly _tag: string }>(
  literal: Tag,
  target: Schema.Codec<Out, Out>,
  value: Out
) =>
  Schema.Literal(literal).pipe(
    Schema.decodeTo(
      target,
      SchemaTransformation.transform<Out, Tag>({ decode: () => value, encode: () => literal })
    )
  )

// -----------------------------------------------------------------------------
// Enumerations
// -----------------------------------------------------------------------------

export const TransportMode = Schema.Literals(["grpc", "iroh", "dual"])
export type TransportMode = typeof TransportMode.Type

export const Route = Schema.Literals(["iroh", "grpc"])
export type Route = typeof Route.Type

export const OverflowPolicy = Schema.Literals(["drop_oldest", "drop_newest"])
export type OverflowPolicy = typeof OverflowPolicy.Type

// -----------------------------------------------------------------------------
// relay_mode: "disabled" | "default" | { custom = [urls] }
// -----------------------------------------------------------------------------

const RelayDisabled = Schema.TaggedStruct("disabled", {})
const RelayDefault = Schema.TaggedStruct("default", {})
const RelayCustom = Schema.TaggedStruct("custom", { urls: Schema.NonEmptyArray(RelayUrl) })

export const RelayMode = Schema.Union([
  fixed("disabled", RelayDisabled, { _tag: "disabled" }),
  fixed("default", RelayDefault, { _tag: "default" }),
  table({
    custom: Schema.Array(RelayUrl).check(
      Schema.makeFilter((a: ReadonlyArray<string>) => a.length > 0, { expected: "at least one relay URL" })
    )
  }).pipe(
    Schema.decodeTo(
      RelayCustom,
      SchemaTransformation.transform({
        decode: (t) => ({ _tag: "custom" as const, urls: t.custom as readonly [string, ...Array<string>] }),
        encode: (r) => ({ custom: r.urls })
      })
    )
  )
]).annotate({ expected: "\"disabled\", \"default\" or { custom = [\"https://...\"] }" })
/** `{ _tag: "disabled" } | { _tag: "default" } | { _tag: "custom", urls: [url, ...url[]] }` */
export type RelayMode = typeof RelayMode.Type

// -----------------------------------------------------------------------------
// strategy.raft_transport: "always_iroh" | "always_grpc" | { adaptive = { ... } }
// -----------------------------------------------------------------------------

export const DEFAULT_LATENCY_THRESHOLD_MS = 50
export const DEFAULT_HYSTERESIS = 0.2

const AlwaysIroh = Schema.TaggedStruct("always_iroh", {})
const AlwaysGrpc = Schema.TaggedStruct("always_grpc", {})
const Adaptive = Schema.TaggedStruct("adaptive", {
  latency_threshold_ms: numberAtLeast(0),
  hysteresis: numberBetween(0, 1)
})

export const AdaptiveParams = table({
  latency_threshold_ms: orDefault(numberAtLeast(0), DEFAULT_LATENCY_THRESHOLD_MS),
  hysteresis: orDefault(numberBetween(0, 1), DEFAULT_HYSTERESIS)
})

const adaptiveDefaults = {
  _tag: "adaptive",
  latency_threshold_ms: DEFAULT_LATENCY_THRESHOLD_MS,
  hysteresis: DEFAULT_HYSTERESIS
} as const

export const RaftTransportStrategy = Schema.Union([
  fixed("always_iroh", AlwaysIroh, { _tag: "always_iroh" }),
  fixed("always_grpc", AlwaysGrpc, { _tag: "always_grpc" }),
  // The table form comes before the bare "adaptive" shorthand so that encoding keeps the parameters.
  table({ adaptive: orEmptyTable(AdaptiveParams) }).pipe(
    Schema.decodeTo(
      Adaptive,
      SchemaTransformation.transform({
        decode: (t) => ({ _tag: "adaptive" as const, ...t.adaptive }),
        encode: ({ _tag, ...adaptive }) => ({ adaptive })
      })
    )
  ),
  fixed("adaptive", Adaptive, adaptiveDefaults)
]).annotate({
  expected: "\"always_iroh\", \"always_grpc\" or { adaptive = { latency_threshold_ms = ..., hysteresis = ... } }"
})
/**
 * `{ _tag: "always_iroh" } | { _tag: "always_grpc" }
 *  | { _tag: "adaptive", latency_threshold_ms: number, hysteresis: number }`
 */
export type RaftTransportStrategy = typeof RaftTransportStrategy.Type

// -----------------------------------------------------------------------------
// [transport.iroh_config]
// -----------------------------------------------------------------------------

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000

export const BindingThreadPolicy = Schema.Literals(["batch", "inherit"])

const irohConfigFields = {
  enabled: orDefault(Schema.Boolean, true),
  /** Absent: `transport.bind_address`. */
  bind_address: Schema.optionalKey(BindAddress),
  /** Absent: ephemeral identity. */
  key_file: Schema.optionalKey(NonEmptyString),
  /** Absent: `{ custom = [home_relay] }` when `transport.home_relay` is set, else `"disabled"`. */
  relay_mode: Schema.optionalKey(RelayMode),
  connect_timeout_ms: orDefault(intAtLeast(1), DEFAULT_CONNECT_TIMEOUT_MS),
  /**
   * Run the Iroh binding in a worker thread, so its per-byte copies do not hold the event loop
   * that runs Raft and the writers (docs/design.md, "Iroh in a worker thread is built, and off by default").
   */
  worker_thread: orDefault(Schema.Boolean, false),
  /**
   * What the binding's Tokio threads run as on Linux: `"batch"` (SCHED_BATCH, so a woken worker
   * does not preempt the event loop that woke it) or `"inherit"` (docs/design.md, "The binding's
   * threads do not preempt the event loop").
   */
  binding_thread_policy: orDefault(BindingThreadPolicy, "batch")
}
/** The `[transport.iroh_config]` table as written (dependent fields not yet resolved). */
export const IrohConfigInput = table(irohConfigFields)
/** The decoded, resolved `iroh_config`: `bind_address` and `relay_mode` are always present. */
export const IrohConfig = Schema.toType(
  Schema.Struct(Struct.assign(irohConfigFields, { bind_address: BindAddress, relay_mode: RelayMode }))
)
export type IrohConfig = typeof IrohConfig.Type

// -----------------------------------------------------------------------------
// [transport.grpc_config] and [transport.grpc_config.tls]
// -----------------------------------------------------------------------------

export const GrpcTlsConfig = table({
  cert_file: NonEmptyString,
  key_file: NonEmptyString,
  ca_file: Schema.optionalKey(NonEmptyString),
  require_client_cert: orDefault(Schema.Boolean, false),
  /** Accept a call only when the client certificate names the sender (`raft://<cluster_id>/<id>` URI SAN). */
  bind_identity: orDefault(Schema.Boolean, false)
})
export type GrpcTlsConfig = typeof GrpcTlsConfig.Type

export const DEFAULT_GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/** The shared cluster token, kept out of logs. */
export const GrpcToken = Schema.RedactedFromValue(
  // A fixed message, so a mistyped token is never echoed into the error.
  Schema.String.annotate({ message: "Expected a non-empty string (value not shown)" }).check(
    Schema.makeFilter((s: string) => s.length > 0, { message: "Expected a non-empty string (value not shown)" })
  ),
  { label: "grpc_config.token" }
)

const grpcConfigFields = {
  enabled: orDefault(Schema.Boolean, true),
  /** Absent: `transport.bind_address`. */
  bind_address: Schema.optionalKey(BindAddress),
  max_message_bytes: orDefault(intAtLeast(1024), DEFAULT_GRPC_MAX_MESSAGE_BYTES),
  token: Schema.optionalKey(GrpcToken),
  connect_timeout_ms: orDefault(intAtLeast(1), DEFAULT_CONNECT_TIMEOUT_MS),
  tls: Schema.optionalKey(GrpcTlsConfig)
}
/** The `[transport.grpc_config]` table as written (dependent fields not yet resolved). */
export const GrpcConfigInput = table(grpcConfigFields)
/** The decoded, resolved `grpc_config`: `bind_address` is always present. */
export const GrpcConfig = Schema.toType(
  Schema.Struct(Struct.assign(grpcConfigFields, { bind_address: BindAddress }))
)
export type GrpcConfig = typeof GrpcConfig.Type

// -----------------------------------------------------------------------------
// [transport.strategy] and [transport.strategy.class_routes]
// -----------------------------------------------------------------------------

export const ClassRoutes = table({
  election: Schema.optionalKey(Route),
  heartbeat: Schema.optionalKey(Route),
  append: Schema.optionalKey(Route),
  snapshot: Schema.optionalKey(Route)
})
/** Only the classes that are given: `{ election?: Route, heartbeat?: ..., append?: ..., snapshot?: ... }`. */
export type ClassRoutes = typeof ClassRoutes.Type

const strategyFields = {
  /** Absent: `always_grpc` when mode is `"grpc"`, `always_iroh` otherwise. */
  raft_transport: Schema.optionalKey(RaftTransportStrategy),
  fallback_to_grpc: orDefault(Schema.Boolean, true),
  probe_interval_ms: orDefault(intAtLeast(1), 250),
  probe_timeout_ms: orDefault(intAtLeast(1), 1000),
  probe_failures: orDefault(intAtLeast(1), 3),
  /** Iroh: silence after an unanswered send that declares the path dark (0: pings only). */
  dark_after_ms: orDefault(intAtLeast(0), 200),
  /** Dual mode: how long Iroh must stay up after a fallback before traffic returns to it. */
  recovery_hold_down_ms: orDefault(intAtLeast(0), 1000),
  class_routes: orEmptyTable(ClassRoutes)
}
/** The `[transport.strategy]` table as written (`raft_transport` not yet resolved). */
export const StrategyConfigInput = table(strategyFields)
/** The decoded `strategy`: `raft_transport` is always present. */
export const StrategyConfig = Schema.toType(
  Schema.Struct(Struct.assign(strategyFields, { raft_transport: RaftTransportStrategy }))
)
export type StrategyConfig = typeof StrategyConfig.Type

// -----------------------------------------------------------------------------
// [transport.batching]
// -----------------------------------------------------------------------------

/** Messages, and framed bytes, one write carries at most by default. */
export const DEFAULT_MAX_BATCH = 400
export const DEFAULT_MAX_BATCH_BYTES = 65536

export const BatchingConfig = table({
  max_batch: orDefault(intAtLeast(1), DEFAULT_MAX_BATCH),
  max_batch_bytes: orDefault(intAtLeast(1024), DEFAULT_MAX_BATCH_BYTES),
  max_linger_ms: orDefault(numberAtLeast(0), 10),
  max_age_ms: orDefault(numberAtLeast(1), 30000),
  snapshot_chunk_bytes: orDefault(intBetween(1024, 1048576), 4096),
  max_snapshot_bytes: orDefault(intAtLeast(1), 1024 * 1024 * 1024),
  iroh_snapshot_bytes_per_sec: orDefault(intAtLeast(0), 5_000_000),
  grpc_snapshot_bytes_per_sec: orDefault(intAtLeast(0), 0),
  /** A cap on the pace while an election is under way (see `election_window_ms`); 0 is no cap. */
  iroh_snapshot_election_bytes_per_sec: orDefault(intAtLeast(0), 2_000_000),
  grpc_snapshot_election_bytes_per_sec: orDefault(intAtLeast(0), 2_000_000),
  /** How long after the last election message sent or received an election counts as under way. */
  election_window_ms: orDefault(intAtLeast(0), 1000)
})
export type BatchingConfig = typeof BatchingConfig.Type

// -----------------------------------------------------------------------------
// [transport.compression]
// -----------------------------------------------------------------------------

export const CompressionAlgorithm = Schema.Literals(["zstd", "none"])
export type CompressionAlgorithm = typeof CompressionAlgorithm.Type
/** Votes and heartbeats are never compressed: latency first. */
export const CompressibleClass = Schema.Literals(["append", "snapshot"])
export type CompressibleClass = typeof CompressibleClass.Type

/** Per-write compression on Iroh wire version 2 (docs/configuration.md; defaults from bench/compression.ts). */
export const CompressionConfig = table({
  algorithm: orDefault(CompressionAlgorithm, "zstd"),
  level: orDefault(intBetween(1, 19), 1),
  min_batch_bytes: orDefault(intAtLeast(0), 4096),
  min_saving: orDefault(numberBetween(0, 0.9), 0.35),
  classes: orDefault(Schema.Array(CompressibleClass), ["append", "snapshot"]),
  /** Snapshot chunk size while snapshot chunks are shrinking: about the wire bytes of an uncompressed default chunk. */
  snapshot_chunk_bytes: orDefault(intBetween(1024, 1048576), 16384)
})
export type CompressionConfig = typeof CompressionConfig.Type

// -----------------------------------------------------------------------------
// [transport.queues]
// -----------------------------------------------------------------------------

const classQueue = (capacity: number, overflow: OverflowPolicy) =>
  orEmptyTable(
    table({
      capacity: orDefault(intAtLeast(1), capacity),
      overflow: orDefault(OverflowPolicy, overflow),
      /** Absent: the class's default age limit (see `maxAgeFor`). */
      max_age_ms: Schema.optionalKey(numberAtLeast(1))
    })
  )

export const QueuesConfig = table({
  election: classQueue(256, "drop_oldest"),
  heartbeat: classQueue(1024, "drop_oldest"),
  append: classQueue(8192, "drop_newest"),
  snapshot: classQueue(64, "drop_newest"),
  inbound_capacity: orDefault(intAtLeast(1), 8192)
})
export type QueuesConfig = typeof QueuesConfig.Type

/** One class's outbound queue: its capacity and what to do when it is full. */
export type ClassQueueConfig = {
  readonly capacity: number
  /** `drop_oldest`: make room by dropping the oldest (keep the newest); `drop_newest`: reject the new one. */
  readonly overflow: OverflowPolicy
  /** Messages older than this are dropped at dequeue; absent: the class default (`maxAgeFor`). */
  readonly max_age_ms?: number
}

/**
 * Default age limit of election and heartbeat messages: the reference Raft's longest election
 * timeout. A vote or heartbeat older than an election timeout only disturbs its receiver (a
 * restarted node got a term-10 vote 7 s old); appends and snapshots keep `batching.max_age_ms`.
 */
export const DEFAULT_ELECTION_MAX_AGE_MS = 600

// -----------------------------------------------------------------------------
// [transport.reconnect]
// -----------------------------------------------------------------------------

export const ReconnectConfig = table({
  initial_backoff_ms: orDefault(intAtLeast(1), 50),
  max_backoff_ms: orDefault(intAtLeast(1), 5000),
  jitter: orDefault(numberBetween(0, 1), 0.2)
})
export type ReconnectConfig = typeof ReconnectConfig.Type

// -----------------------------------------------------------------------------
// [transport.limits]
// -----------------------------------------------------------------------------

/**
 * What a remote can make this node hold, each bounded (docs/design.md, "Security and limits").
 * The defaults fit what Raft traffic needs with room to spare: a peer's link uses one Iroh
 * connection (two gRPC ones: snapshots have their own) with the four class streams and a probe.
 */
export const LimitsConfig = table({
  /** Inbound connections (open or in their handshake) per transport. */
  max_connections: orDefault(intAtLeast(1), 256),
  /** Inbound connections of one peer per transport; one more replaces the oldest. */
  max_connections_per_peer: orDefault(intAtLeast(1), 2),
  /** Streams held open per connection (four class streams and the probe). */
  max_streams_per_connection: orDefault(intAtLeast(5), 5),
  /** Time for a connection's handshake (gRPC: up to its first admitted call) and a stream's preamble. */
  handshake_timeout_ms: orDefault(intAtLeast(1), 5000),
  /** A gRPC connection without calls, an Iroh stream stuck inside a frame, a stalled snapshot transfer. */
  idle_timeout_ms: orDefault(intAtLeast(1), 60_000),
  /** gRPC connections are closed (after a grace of `handshake_timeout_ms`) at this age; 0 never. */
  grpc_max_connection_age_ms: orDefault(intAtLeast(0), 0),
  /** Messages in one gRPC `MessageBatch`. */
  max_batch_messages: orDefault(intAtLeast(1), 1024),
  /** Entries in one message. */
  max_message_entries: orDefault(intAtLeast(1), 4096),
  /** Entries in one gRPC `MessageBatch`, over all its messages. */
  max_batch_entries: orDefault(intAtLeast(1), 65_536),
  /** Snapshot bytes held by all transfers under way, node-wide (one transfer per peer). */
  max_snapshot_receive_bytes: orDefault(intAtLeast(1), 1024 * 1024 * 1024),
  /** Refusals are logged once per reason per interval, with their count. */
  refusal_log_interval_ms: orDefault(intAtLeast(1), 10_000)
})
export type LimitsConfig = typeof LimitsConfig.Type

// -----------------------------------------------------------------------------
// [[transport.peers]]
// -----------------------------------------------------------------------------

export const PeerConfig = table({
  id: intAtLeast(1),
  iroh_endpoint_id: Schema.optionalKey(EndpointIdString),
  iroh_addresses: orDefault(Schema.Array(SocketAddress), []),
  iroh_ticket: Schema.optionalKey(EndpointTicketString),
  grpc_address: Schema.optionalKey(DialAddress)
})
export type PeerConfig = typeof PeerConfig.Type

// -----------------------------------------------------------------------------
// [transport]
// -----------------------------------------------------------------------------

/**
 * Raft's largest message is an append of `max_append_bytes` (1 MiB by default) plus one entry
 * over it; snapshots travel in chunks. 4 MiB also matches gRPC's `max_message_bytes`.
 */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Frames carry a u32 length prefix. */
export const MAX_FRAME_BYTES_LIMIT = 0xffff_ffff

const transportFields = {
  mode: orDefault(TransportMode, "iroh"),
  node_id: intAtLeast(1).pipe(Schema.annotateKey({ messageMissingKey: "Missing required key (this node's raft id)" })),
  cluster_id: orDefault(ClusterId, "default"),
  enabled: orDefault(Schema.Boolean, true),
  bind_address: orDefault(BindAddress, "0.0.0.0:0"),
  home_relay: Schema.optionalKey(RelayUrl),
  max_frame_bytes: orDefault(intBetween(1024, MAX_FRAME_BYTES_LIMIT), DEFAULT_MAX_FRAME_BYTES),
  metrics_address: Schema.optionalKey(BindAddress),
  iroh_config: orEmptyTable(IrohConfigInput),
  grpc_config: orEmptyTable(GrpcConfigInput),
  strategy: orEmptyTable(StrategyConfigInput),
  batching: orEmptyTable(BatchingConfig),
  compression: orEmptyTable(CompressionConfig),
  queues: orEmptyTable(QueuesConfig),
  reconnect: orEmptyTable(ReconnectConfig),
  limits: orEmptyTable(LimitsConfig),
  peers: orDefault(Schema.Array(PeerConfig), [])
}

/**
 * The `[transport]` table as written: defaults applied, dependent fields (listener
 * `bind_address`, `relay_mode`, `raft_transport`) still optional.
 */
export const TransportConfigInput = table(transportFields).check(
  Schema.makeFilter((c) =>
    c.home_relay !== undefined && c.iroh_config.relay_mode !== undefined
      ? {
        path: ["home_relay"],
        issue: "home_relay is shorthand for iroh_config.relay_mode = { custom = [url] }; set only one of them"
      }
      : undefined
  )
)
export type TransportConfigInput = typeof TransportConfigInput.Type

/** The shape of a decoded config, without the rules (see {@link TransportConfig}). */
export const TransportConfigResolved = Schema.toType(
  Schema.Struct(
    Struct.assign(transportFields, {
      iroh_config: IrohConfig,
      grpc_config: GrpcConfig,
      strategy: StrategyConfig,
      batching: Schema.toType(BatchingConfig),
      compression: Schema.toType(CompressionConfig),
      queues: Schema.toType(QueuesConfig),
      reconnect: Schema.toType(ReconnectConfig),
      limits: Schema.toType(LimitsConfig),
      peers: Schema.Array(Schema.toType(PeerConfig))
    })
  )
)

type Resolved = typeof TransportConfigResolved.Type

const resolve = (c: TransportConfigInput): Resolved => {
  const { relay_mode, bind_address: irohBind, ...iroh } = c.iroh_config
  const { bind_address: grpcBind, ...grpc } = c.grpc_config
  const { raft_transport, ...strategy } = c.strategy
  return {
    ...c,
    iroh_config: {
      ...iroh,
      bind_address: irohBind ?? c.bind_address,
      relay_mode: relay_mode ??
        (c.home_relay !== undefined ? { _tag: "custom", urls: [c.home_relay] } : { _tag: "disabled" })
    },
    grpc_config: { ...grpc, bind_address: grpcBind ?? c.bind_address },
    strategy: {
      ...strategy,
      raft_transport: raft_transport ?? (c.mode === "grpc" ? { _tag: "always_grpc" } : { _tag: "always_iroh" })
    }
  }
}

/** Routes a class may take in each mode. */
const allowedRoutes: Record<TransportMode, ReadonlyArray<Route>> = {
  iroh: ["iroh"],
  grpc: ["grpc"],
  dual: ["iroh", "grpc"]
}

const rules = (c: Resolved): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  const usesIroh = c.mode !== "grpc"
  const usesGrpc = c.mode !== "iroh"
  const allowed = allowedRoutes[c.mode]

  if (c.mode === "iroh" && !c.iroh_config.enabled) {
    issues.push({ path: ["iroh_config", "enabled"], issue: "Must be true when mode is \"iroh\"" })
  }
  if (c.mode === "grpc" && !c.grpc_config.enabled) {
    issues.push({ path: ["grpc_config", "enabled"], issue: "Must be true when mode is \"grpc\"" })
  }

  const tls = c.grpc_config.tls
  if (tls !== undefined && tls.bind_identity && !tls.require_client_cert) {
    issues.push({ path: ["grpc_config", "tls", "bind_identity"], issue: "Needs require_client_cert = true (the identity comes from the client certificate)" })
  }

  const rt = c.strategy.raft_transport
  if (rt._tag === "always_iroh" && !allowed.includes("iroh")) {
    issues.push({
      path: ["strategy", "raft_transport"],
      issue: `"always_iroh" needs mode "iroh" or "dual", but mode is "${c.mode}"`
    })
  } else if (rt._tag === "always_grpc" && !allowed.includes("grpc")) {
    issues.push({
      path: ["strategy", "raft_transport"],
      issue: `"always_grpc" needs mode "grpc" or "dual", but mode is "${c.mode}"`
    })
  } else if (rt._tag === "adaptive" && c.mode !== "dual") {
    issues.push({
      path: ["strategy", "raft_transport"],
      issue: `adaptive chooses between Iroh and gRPC and needs mode "dual", but mode is "${c.mode}"`
    })
  }
  for (const [cls, route] of Object.entries(c.strategy.class_routes)) {
    if (route !== undefined && !allowed.includes(route)) {
      issues.push({
        path: ["strategy", "class_routes", cls],
        issue: `Route "${route}" is not available in mode "${c.mode}"`
      })
    }
  }

  if (c.reconnect.max_backoff_ms < c.reconnect.initial_backoff_ms) {
    issues.push({
      path: ["reconnect", "max_backoff_ms"],
      issue:
        `Expected a value greater than or equal to initial_backoff_ms (${c.reconnect.initial_backoff_ms}), got ${c.reconnect.max_backoff_ms}`
    })
  }
  if (c.batching.snapshot_chunk_bytes >= c.max_frame_bytes) {
    issues.push({
      path: ["batching", "snapshot_chunk_bytes"],
      issue:
        `Expected a value less than max_frame_bytes (${c.max_frame_bytes}), got ${c.batching.snapshot_chunk_bytes}`
    })
  }
  if (c.compression.snapshot_chunk_bytes >= c.max_frame_bytes) {
    issues.push({
      path: ["compression", "snapshot_chunk_bytes"],
      issue:
        `Expected a value less than max_frame_bytes (${c.max_frame_bytes}), got ${c.compression.snapshot_chunk_bytes}`
    })
  }
  if (c.batching.max_snapshot_bytes < c.batching.snapshot_chunk_bytes) {
    issues.push({
      path: ["batching", "max_snapshot_bytes"],
      issue:
        `Expected a value greater than or equal to snapshot_chunk_bytes (${c.batching.snapshot_chunk_bytes}), got ${c.batching.max_snapshot_bytes}`
    })
  }

  if (c.batching.max_batch > c.limits.max_batch_messages) {
    issues.push({
      path: ["batching", "max_batch"],
      issue: `Expected a value at most limits.max_batch_messages (${c.limits.max_batch_messages}), got ${c.batching.max_batch}`
    })
  }

  const seen = new Map<number, number>()
  c.peers.forEach((peer, i) => {
    const first = seen.get(peer.id)
    if (first !== undefined) {
      issues.push({ path: ["peers", i, "id"], issue: `Duplicate peer id ${peer.id} (also used by peers[${first}])` })
    } else {
      seen.set(peer.id, i)
    }
    if (peer.iroh_ticket !== undefined && (peer.iroh_endpoint_id !== undefined || peer.iroh_addresses.length > 0)) {
      issues.push({
        path: ["peers", i, "iroh_ticket"],
        issue: "A ticket already holds the endpoint id and addresses; give iroh_ticket or iroh_endpoint_id/iroh_addresses, not both"
      })
    }
    if (peer.id === c.node_id) return // this node's own entry: nodes may share one peer table
    if (usesIroh && peer.iroh_endpoint_id === undefined && peer.iroh_ticket === undefined) {
      issues.push({
        path: ["peers", i],
        issue: `Peer ${peer.id} needs iroh_endpoint_id or iroh_ticket when mode is "${c.mode}"`
      })
    }
    if (usesGrpc && peer.grpc_address === undefined) {
      issues.push({
        path: ["peers", i],
        issue: `Peer ${peer.id} needs grpc_address when mode is "${c.mode}"`
      })
    }
  })
  return issues
}

/**
 * The `[transport]` table, decoded: every defaulted field present, dependent defaults
 * resolved, cross-field rules checked. Decode with `{ errors: "all", onExcessProperty: "error" }`
 * (as `decodeTransportConfig` does) to reject unknown keys.
 */
export const TransportConfig = TransportConfigInput.pipe(
  Schema.decodeTo(
    TransportConfigResolved,
    SchemaTransformation.transform<Resolved, TransportConfigInput>({ decode: resolve, encode: (c) => c })
  )
).check(Schema.makeFilter(rules))
export type TransportConfig = typeof TransportConfig.Type
/** What `decodeTransportConfig` accepts: the `[transport]` table's shape. */
export type TransportConfigEncoded = typeof TransportConfig.Encoded

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** Class names in priority-class order (0 election, 1 heartbeat, 2 append, 3 snapshot). */
export const queueClassNames = ["election", "heartbeat", "append", "snapshot"] as const

/** The outbound queue settings of a priority class (0 election, 1 heartbeat, 2 append, 3 snapshot). */
export const queueConfigFor = (
  config: { readonly queues: QueuesConfig },
  cls: 0 | 1 | 2 | 3
): ClassQueueConfig => config.queues[queueClassNames[cls]]

/** The age limit of a class: its own `max_age_ms`, else 600 ms for election and heartbeat, else `batching.max_age_ms`. */
export const maxAgeFor = (
  config: { readonly queues: QueuesConfig; readonly batching: { readonly max_age_ms: number } },
  cls: 0 | 1 | 2 | 3
): number => queueConfigFor(config, cls).max_age_ms ?? (cls <= 1 ? DEFAULT_ELECTION_MAX_AGE_MS : config.batching.max_age_ms)

/** The route a class takes when `class_routes` pins it, else `undefined` (the strategy decides). */
export const classRouteFor = (config: TransportConfig, cls: 0 | 1 | 2 | 3): Route | undefined =>
  config.strategy.class_routes[queueClassNames[cls]]
