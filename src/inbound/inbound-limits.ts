import { Effect } from "effect"
import type { DecodeLimits } from "../message/decode-limits.ts"
import { SnapshotBudget } from "./snapshot-budget.ts"

/**
 * Everything a remote can make one transport hold, bounded (`[transport.limits]`,
 * docs/design.md "Security and limits"). Shared by the Iroh acceptor and the gRPC server.
 */
export interface InboundLimits {
  /** Inbound connections, open or in their handshake. */
  readonly maxConnections: number
  /** Inbound connections of one peer; one more replaces the oldest. */
  readonly maxConnectionsPerPeer: number
  /** Streams held open per connection (the four class streams and the probe). */
  readonly maxStreamsPerConnection: number
  readonly handshakeTimeoutMs: number
  readonly idleTimeoutMs: number
  /** gRPC connections are closed at this age; 0 never. */
  readonly grpcMaxConnectionAgeMs: number
  readonly decode: DecodeLimits
  readonly maxSnapshotReceiveBytes: number
  /** Refusals are logged once per reason per interval (`metrics/refusal-log.ts`). */
  readonly refusalLogIntervalMs: number
}

/** The `[transport.limits]` defaults. */
export const defaultInboundLimits: InboundLimits = {
  maxConnections: 256,
  maxConnectionsPerPeer: 2,
  maxStreamsPerConnection: 5,
  handshakeTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  grpcMaxConnectionAgeMs: 0,
  decode: { maxBatchMessages: 1024, maxMessageEntries: 4096, maxBatchEntries: 65_536 },
  maxSnapshotReceiveBytes: 1024 * 1024 * 1024,
  refusalLogIntervalMs: 10_000
}

/** What the inbound side of every transport of one node shares. */
export interface InboundShared {
  readonly limits: InboundLimits
  /** One per node: snapshot memory is bounded across transports. */
  readonly snapshotBudget: SnapshotBudget
}

export const makeInboundShared = (limits: InboundLimits): Effect.Effect<InboundShared> =>
  Effect.clockWith((clock) => Effect.succeed({
    limits,
    snapshotBudget: new SnapshotBudget(limits.maxSnapshotReceiveBytes, limits.idleTimeoutMs, () => clock.currentTimeMillisUnsafe())
  }))
