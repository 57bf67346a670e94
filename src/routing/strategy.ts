import type { RaftTransportStrategy } from "../config/schema.ts"
import type { TransportKind } from "../domain/errors.ts"

export interface RttEstimates {
  readonly iroh: number | undefined
  readonly grpc: number | undefined
}

export interface Choice {
  readonly transport: TransportKind
  readonly reason: string
}

/**
 * The transport a strategy prefers for a peer, given smoothed round-trip times. Adaptive:
 * Iroh while its RTT is under the threshold, otherwise the faster of the two. Hysteresis keeps
 * a route from flapping: leaving the current transport needs the threshold crossed by the
 * hysteresis margin, or the other transport faster by that margin.
 */
export const preferredTransport = (
  strategy: RaftTransportStrategy,
  current: TransportKind,
  rtt: RttEstimates
): Choice => {
  switch (strategy._tag) {
    case "always_iroh":
      return { transport: "iroh", reason: "strategy always_iroh" }
    case "always_grpc":
      return { transport: "grpc", reason: "strategy always_grpc" }
    case "adaptive": {
      const { latency_threshold_ms: threshold, hysteresis: h } = strategy
      const { iroh, grpc } = rtt
      if (iroh === undefined) return { transport: current, reason: "no iroh rtt yet" }
      if (current === "iroh") {
        if (iroh <= threshold * (1 + h)) return { transport: "iroh", reason: `iroh rtt ${fmt(iroh)} ms within threshold` }
        if (grpc !== undefined && grpc * (1 + h) < iroh) {
          return { transport: "grpc", reason: `iroh rtt ${fmt(iroh)} ms over ${threshold} ms and grpc faster (${fmt(grpc)} ms)` }
        }
        return { transport: "iroh", reason: `iroh rtt ${fmt(iroh)} ms over threshold but grpc not faster` }
      }
      if (iroh <= threshold * (1 - h)) return { transport: "iroh", reason: `iroh rtt ${fmt(iroh)} ms back under ${threshold} ms` }
      if (grpc !== undefined && iroh * (1 + h) < grpc) {
        return { transport: "iroh", reason: `iroh faster (${fmt(iroh)} ms vs ${fmt(grpc)} ms)` }
      }
      return { transport: "grpc", reason: `iroh rtt ${fmt(iroh)} ms still over threshold` }
    }
  }
}

const fmt = (ms: number): string => ms.toFixed(1)
