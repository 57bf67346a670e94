import { Effect, Metric, PubSub, Scope } from "effect"
import type { ClassRoutes, RaftTransportStrategy, TransportMode } from "../config/schema.ts"
import { className, type PriorityClass, priorityClasses } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import type { TransportKind } from "../domain/errors.ts"
import type { TransportEvent } from "../domain/events.ts"
import { preferredTransport, type RttEstimates } from "./strategy.ts"

/** How often a recovery past its hold-down looks again whether the Iroh link is healthy. */
const RECOVERY_CHECK_MS = 10

export interface RouterOptions {
  readonly peer: NodeId
  readonly mode: TransportMode
  readonly strategy: RaftTransportStrategy
  readonly classRoutes: ClassRoutes
  readonly fallbackToGrpc: boolean
  readonly events: PubSub.PubSub<TransportEvent>
  /**
   * After a fallback, how long the Iroh link must stay up before traffic returns to it
   * (0 or absent: at once). A route then changes at most once per this interval and back.
   */
  readonly recoveryHoldDownMs?: number | undefined
}

/**
 * Which transport carries each class to one peer. Three inputs, in order: a per-class route
 * from config overrides the strategy; the strategy (fixed, or adaptive on smoothed RTTs with
 * hysteresis) picks the peer's transport; and while the Iroh link is down, `fallback_to_grpc`
 * moves Iroh-bound classes to gRPC until it recovers. The adaptive strategy never keeps a
 * peer on a gRPC link that went down: it returns to Iroh until gRPC is back and faster. Every
 * change is an event, a log line and a counter; writers read `route` before each batch, so a
 * change applies to the next write.
 *
 * Fallback is immediate, recovery held down: a link that comes back must stay up for
 * `recoveryHoldDownMs` before traffic returns to it. On a path flapping 2 s up / 2 s dark a
 * route that followed every "up" went back to Iroh and fell back again within the same cycle;
 * held down, it moves at most once per interval each way, and a path that keeps flapping
 * keeps the peer on gRPC.
 */
export class PeerRouter {
  private preferred: TransportKind
  private irohDown: string | undefined
  /** Bumped by every Iroh state change: a pending recovery runs only if it is still current. */
  private irohChanges = 0
  private readonly routes: Array<TransportKind>
  /** Asked when a hold-down ends: is the Iroh link up and heard from just now? */
  private irohHealthy: () => boolean = () => true

  private constructor(private readonly options: RouterOptions, private readonly scope: Scope.Scope) {
    this.preferred = options.mode === "grpc" || options.strategy._tag === "always_grpc" ? "grpc" : "iroh"
    this.routes = priorityClasses.map((cls) => this.compute(cls))
  }

  /** A router whose pending recoveries end with the scope (the peer's). */
  static make(options: RouterOptions): Effect.Effect<PeerRouter, never, Scope.Scope> {
    return Effect.flatMap(Effect.scope, (scope) => {
      const router = new PeerRouter(options, scope)
      return Effect.as(router.publishGauges(), router)
    })
  }

  route(cls: PriorityClass): TransportKind {
    return this.routes[cls]!
  }

  /**
   * What a recovery checks once its hold-down is over: the link can be up by its state while
   * its path went dark a moment ago, not yet detected (it carries only probes while the
   * traffic is on gRPC). Recovery waits until the check holds or the link goes down.
   */
  setRecoveryCheck(healthy: () => boolean): void {
    this.irohHealthy = healthy
  }

  /** True when a failed Iroh link would move this class to gRPC rather than wait for Iroh. */
  canFallBack(cls: PriorityClass): boolean {
    return this.options.mode === "dual" && this.options.fallbackToGrpc && this.intended(cls) === "iroh"
  }

  /**
   * A link went down (`up = false`) or came up. Iroh's state drives the fallback; gRPC going
   * down matters only when the adaptive strategy had moved the peer to it.
   */
  linkState(kind: TransportKind, up: boolean, cause: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (kind === "grpc") return up ? Effect.void : this.grpcDown(cause)
      if (this.options.mode !== "dual" || !this.options.fallbackToGrpc) return Effect.void
      const peer = this.options.peer
      const labels = { peer: String(peer) }
      this.irohChanges++
      if (!up && this.irohDown === undefined) {
        this.irohDown = cause
        return Effect.all([
          Metric.update(Metric.withAttributes(M.fallbacks, labels), 1),
          Effect.logWarning(`peer ${peer}: iroh down, falling back to grpc: ${cause}`),
          PubSub.publish(this.options.events, { _tag: "FellBack", peer, cause }),
          this.recompute("fallback")
        ], { discard: true })
      }
      if (up && this.irohDown !== undefined) {
        const holdDown = this.options.recoveryHoldDownMs ?? 0
        if (holdDown === 0) return this.recover()
        const change = this.irohChanges
        return Effect.andThen(
          Effect.logInfo(`peer ${peer}: iroh is back; traffic returns to it if it stays up for ${holdDown} ms`),
          Effect.forkIn(Effect.andThen(Effect.sleep(holdDown), this.recoverWhenHealthy(change)), this.scope, { startImmediately: true })
        )
      }
      return Effect.void
    })
  }

  /** Recovers once `irohHealthy` holds, unless Iroh's state changed since `change`. */
  private recoverWhenHealthy(change: number): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      while (change === self.irohChanges && self.irohDown !== undefined) {
        if (self.irohHealthy()) return yield* self.recover()
        yield* Effect.sleep(RECOVERY_CHECK_MS)
      }
    })
  }

  private recover(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const peer = this.options.peer
      this.irohDown = undefined
      return Effect.all([
        Metric.update(Metric.withAttributes(M.recoveries, { peer: String(peer) }), 1),
        Effect.logInfo(`peer ${peer}: iroh recovered, traffic returns to it`),
        PubSub.publish(this.options.events, { _tag: "Recovered", peer }),
        this.recompute("recovery")
      ], { discard: true })
    })
  }

  /** Feeds smoothed RTTs to the adaptive strategy. */
  observe(rtt: RttEstimates): Effect.Effect<void> {
    return Effect.suspend(() => {
      const peer = String(this.options.peer)
      const gauges = Effect.all([
        rtt.iroh === undefined ? Effect.void : Metric.update(Metric.withAttributes(M.rttMs, { peer, transport: "iroh" }), rtt.iroh),
        rtt.grpc === undefined ? Effect.void : Metric.update(Metric.withAttributes(M.rttMs, { peer, transport: "grpc" }), rtt.grpc)
      ], { discard: true })
      if (this.options.strategy._tag !== "adaptive" || this.options.mode !== "dual") return gauges
      // While Iroh is down or held down after a fallback, its samples come from a dying or an
      // untrusted new session (a loaded machine showed 50 ms pings right after a reconnect on
      // a 25 ms path): the choice made before the fallback stands until Iroh has recovered.
      if (this.irohDown !== undefined) return gauges
      const choice = preferredTransport(this.options.strategy, this.preferred, rtt)
      if (choice.transport === this.preferred) return gauges
      this.preferred = choice.transport
      return Effect.andThen(gauges, this.recompute("adaptive", choice.reason))
    })
  }

  /**
   * The adaptive strategy prefers gRPC only while it is faster; a gRPC link that is down has
   * no RTT, so `observe` would never leave it and the peer's traffic would wait for gRPC
   * while Iroh is up. Back to Iroh; `observe` moves the peer to gRPC again once it is back
   * with a measured, faster RTT.
   */
  private grpcDown(cause: string): Effect.Effect<void> {
    if (this.options.mode !== "dual" || this.options.strategy._tag !== "adaptive" || this.preferred !== "grpc") {
      return Effect.void
    }
    this.preferred = "iroh"
    return Effect.andThen(
      Effect.logWarning(`peer ${this.options.peer}: grpc down, adaptive routing returns to iroh: ${cause}`),
      this.recompute("adaptive", `grpc down: ${cause}`)
    )
  }

  private intended(cls: PriorityClass): TransportKind {
    return this.options.classRoutes[className(cls)] ?? this.preferred
  }

  private compute(cls: PriorityClass): TransportKind {
    const intended = this.intended(cls)
    return intended === "iroh" && this.irohDown !== undefined && this.canFallBack(cls) ? "grpc" : intended
  }

  /** `kind` labels the counter; the event and the log say `kind: detail`. */
  private recompute(kind: "fallback" | "recovery" | "adaptive", detail?: string): Effect.Effect<void> {
    const reason = detail === undefined ? kind : `${kind}: ${detail}`
    const peer = this.options.peer
    const changes: Array<Effect.Effect<void>> = []
    for (const cls of priorityClasses) {
      const from = this.routes[cls]!
      const to = this.compute(cls)
      if (from === to) continue
      this.routes[cls] = to
      const labels = { peer: String(peer), class: className(cls), reason: kind }
      changes.push(
        Metric.update(Metric.withAttributes(M.routeChanges, labels), 1),
        Effect.logInfo(`peer ${peer}: ${className(cls)} route ${from} -> ${to} (${reason})`),
        PubSub.publish(this.options.events, { _tag: "RouteChanged", peer, class: className(cls), from, to, reason })
      )
    }
    return changes.length === 0 ? Effect.void : Effect.andThen(Effect.all(changes, { discard: true }), this.publishGauges())
  }

  private publishGauges(): Effect.Effect<void> {
    const peer = String(this.options.peer)
    return Effect.all(
      priorityClasses.flatMap((cls) =>
        (["iroh", "grpc"] as const).map((transport) =>
          Metric.update(
            Metric.withAttributes(M.routeActive, { peer, class: className(cls), transport }),
            this.routes[cls] === transport ? 1 : 0
          )
        )
      ),
      { discard: true }
    )
  }
}
