import { Effect, Layer, Metric, PubSub, Scope, Stream } from "effect"
import { ConfigError } from "../config/errors.ts"
import { makeConfig } from "../config/load.ts"
import type { TransportConfigEncoded } from "../config/schema.ts"
import { PeerUnknown } from "../domain/errors.ts"
import { ElectionActivity } from "../domain/election-activity.ts"
import type { TransportEvent } from "../domain/events.ts"
import type { PeerAddress } from "../domain/peer-table.ts"
import { RaftTransport, type RaftTransportService } from "../domain/raft-transport.ts"
import { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import type { NodeId } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { fixedRoute, PeerActor } from "../peer/actor.ts"
import { PeerActors } from "../peer/peer-actors.ts"
import { actorOptions } from "../transport/options.ts"
import { makeMemoryLink, type MemoryEndpoint, type MemoryFabric, type MemorySession } from "./memory-link.ts"

/** One node of an in-memory network. */
export interface MemoryTransportOptions {
  readonly nodeId: NodeId
  /** The nodes this one talks to (its peer table); `addPeer` adds more. */
  readonly peers?: ReadonlyArray<NodeId>
  /**
   * Queue, batching and reconnect settings as in the `[transport]` table (same keys and
   * defaults). The network keys (`mode`, addresses, Iroh and gRPC tables) have no effect.
   */
  readonly config?: Omit<TransportConfigEncoded, "node_id" | "peers">
}

interface Member {
  readonly endpoint: MemoryEndpoint
  /** Ids this node accepts connections from: its peer table, as on a real transport. */
  readonly known: Set<NodeId>
}

const pairKey = (a: NodeId, b: NodeId): string => (a < b ? `${a}:${b}` : `${b}:${a}`)

const refused = Metric.withAttributes(M.inboundRefused, { transport: "memory", reason: "unknown_endpoint" })

/**
 * An in-process network of `RaftTransport`s, for unit tests of code that runs on the
 * transport (a Raft implementation, a state machine, a client) without sockets.
 *
 * Each node is a full transport minus the wire: the same peer actors, per-class queues and
 * overflow policies, batching, snapshot chunking and reassembly, connectors with reconnect
 * backoff, inbound checks, priority-ordered mailbox, events and metrics as on Iroh and gRPC
 * (the transport label is `memory`). Only the link differs: a session hands the encoded batch
 * to the receiver's inbound side in the same process. A node accepts connections only from
 * nodes in its peer table, as the real transports do.
 *
 * Faults are injected per pair of nodes: `disconnect` cuts the link both ways (live sessions
 * close, `Disconnected` events fire, dials fail and back off) until `reconnect` or `heal`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MessageType } from "raft-transport"
 * import { MemoryNetwork } from "raft-transport/testing"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const network = yield* MemoryNetwork.make
 *   const one = yield* network.transport({ nodeId: 1, peers: [2] })
 *   const two = yield* network.transport({ nodeId: 2, peers: [1] })
 *   yield* one.send(2, { msgType: MessageType.Heartbeat, from: 1, to: 2, term: 1 })
 *   return yield* two.receive
 * }))
 * ```
 */
export class MemoryNetwork {
  private readonly members = new Map<NodeId, Member>()
  private readonly cuts = new Set<string>()
  private readonly sessions = new Set<MemorySession>()

  private constructor() {}

  /** A new, empty network. */
  static readonly make: Effect.Effect<MemoryNetwork> = Effect.sync(() => new MemoryNetwork())

  /** The nodes currently on the network. */
  get nodes(): ReadonlyArray<NodeId> {
    return [...this.members.keys()]
  }

  /**
   * Joins node `options.nodeId` to the network for the life of the scope and returns its
   * transport. Fails with a `ConfigError` for a bad `config` or an id already on the network.
   */
  transport(options: MemoryTransportOptions): Effect.Effect<RaftTransportService, ConfigError, Scope.Scope> {
    const network = this
    const self = options.nodeId
    return Effect.gen(function*() {
      const config = yield* makeConfig({ ...options.config, node_id: self })
      if (network.members.has(self)) {
        return yield* ConfigError.single("transport.node_id", `node ${self} is already on this network`)
      }
      const scope = yield* Effect.scope
      const electionActivity = new ElectionActivity(config.batching.election_window_ms)
      const mailbox = yield* InboundMailbox.make(config.queues.inbound_capacity, electionActivity)
      const events = yield* PubSub.sliding<TransportEvent>(1024)
      const known = new Set<NodeId>()
      network.members.set(self, {
        endpoint: { self, mailbox, maxSnapshotBytes: config.batching.max_snapshot_bytes },
        known
      })
      // Leaving the network ends every session to and from this node, as a process exit would.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          network.members.delete(self)
          return network.closeWhere((s) => s.from === self || s.to === self, `node ${self} stopped`)
        })
      )

      const fabric: MemoryFabric = {
        reach: (from, to) => network.reach(from, to),
        track: (session) => network.track(session)
      }
      const actors = new PeerActors()

      const stopPeer = (id: NodeId) =>
        Effect.suspend(() => {
          if (!actors.has(id)) return Effect.void
          return Effect.andThen(
            network.closeWhere((s) => s.from === id && s.to === self, `peer ${id} removed by node ${self}`),
            actors.stop(id)
          )
        })

      const startPeer = (id: NodeId) =>
        Effect.gen(function*() {
          yield* stopPeer(id)
          known.add(id)
          const peerScope = yield* Scope.fork(scope)
          const actor = yield* PeerActor.make({
            ...actorOptions(config, electionActivity),
            peer: id,
            links: [makeMemoryLink(fabric, self, id, config.max_frame_bytes)],
            routes: fixedRoute("memory"),
            events
          }).pipe(Scope.provide(peerScope))
          actors.add(id, actor, peerScope)
        })

      for (const id of options.peers ?? []) if (id !== self) yield* startPeer(id)

      const service: RaftTransportService = {
        nodeId: self,
        localAddress: () => ({ nodeId: self }),
        send: (to, message) => {
          const actor = actors.get(to)
          return actor === undefined ? Effect.fail(new PeerUnknown({ peer: to })) : actor.send(message)
        },
        receive: mailbox.receive,
        receiveBatch: (max) => mailbox.receiveBatch(max),
        messages: mailbox.messages,
        events: Stream.fromPubSub(events),
        addPeer: (peer: PeerAddress) =>
          Effect.gen(function*() {
            if (peer.id === self) return
            yield* startPeer(peer.id)
            yield* PubSub.publish(events, { _tag: "PeerAdded", peer: peer.id })
            yield* Effect.logInfo(`peer ${peer.id} added`)
          }),
        removePeer: (id) =>
          Effect.gen(function*() {
            yield* actors.require(id)
            known.delete(id)
            yield* stopPeer(id)
            yield* PubSub.publish(events, { _tag: "PeerRemoved", peer: id })
            yield* Effect.logInfo(`peer ${id} removed`)
          }),
        peerStatus: (id) => Effect.map(actors.require(id), (actor) => actor.status()),
        peers: Effect.sync(() => actors.statuses())
      }
      yield* Effect.logInfo(`memory transport started: node ${self}`)
      return service
    }).pipe(Effect.annotateLogs({ node: String(self) }))
  }

  /** `transport(options)` as a layer providing `RaftTransport`. */
  layer(options: MemoryTransportOptions): Layer.Layer<RaftTransport, ConfigError> {
    return Layer.effect(RaftTransport, this.transport(options))
  }

  /** Cuts the link between `a` and `b` both ways: live sessions close, new dials fail. */
  disconnect(a: NodeId, b: NodeId): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.cuts.add(pairKey(a, b))
      return this.closeWhere((s) => pairKey(s.from, s.to) === pairKey(a, b), `link ${a}-${b} cut`)
    })
  }

  /** Restores the link between `a` and `b`; the connectors redial on their backoff. */
  reconnect(a: NodeId, b: NodeId): Effect.Effect<void> {
    return Effect.sync(() => void this.cuts.delete(pairKey(a, b)))
  }

  /** Cuts `id` off from every other node on the network now. */
  isolate(id: NodeId): Effect.Effect<void> {
    return Effect.forEach(this.nodes.filter((other) => other !== id), (other) => this.disconnect(id, other), {
      discard: true
    })
  }

  /** Restores every cut link. */
  readonly heal: Effect.Effect<void> = Effect.sync(() => this.cuts.clear())

  private reach(from: NodeId, to: NodeId): Effect.Effect<MemoryEndpoint | string> {
    return Effect.suspend((): Effect.Effect<MemoryEndpoint | string> => {
      const member = this.members.get(to)
      if (member === undefined) return Effect.succeed(`node ${to} is not on the network`)
      if (this.cuts.has(pairKey(from, to))) return Effect.succeed(`link ${from}-${to} is cut`)
      if (!member.known.has(from)) {
        return Effect.as(Metric.update(refused, 1), `node ${to} does not know node ${from}`)
      }
      return Effect.succeed(member.endpoint)
    })
  }

  private track(session: MemorySession): Effect.Effect<void, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.sync(() => void this.sessions.add(session)),
      () => Effect.sync(() => void this.sessions.delete(session))
    )
  }

  private closeWhere(matches: (session: MemorySession) => boolean, reason: string): Effect.Effect<void> {
    return Effect.suspend(() =>
      Effect.forEach([...this.sessions].filter(matches), (s) => s.close(reason), { discard: true })
    )
  }
}
