/**
 * An in-memory network of fake `RaftTransportService`s for Raft tests: messages go straight into
 * the destination's inbox queue (no encoding), and the test controls partitions, per-link
 * blocks, message filters and which nodes are up. Like a real network, a message to an
 * unreachable node is lost silently; only an unknown peer id is an error.
 */
import { Effect, Queue, Stream } from "effect"
import type { NodeId, RaftMessage } from "../../src/message/types.ts"
import { PeerUnknown } from "../../src/domain/errors.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"

const notUsed = (what: string) => Effect.die(new Error(`fake transport: ${what} is not used by the Raft manager`))

export class RaftNetwork {
  private readonly inboxes = new Map<NodeId, Queue.Queue<RaftMessage>>()
  private readonly up = new Set<NodeId>()
  /** Directed links that drop everything: `${from}->${to}`. */
  private readonly blocked = new Set<string>()
  private filter: ((m: RaftMessage) => boolean) | undefined = undefined
  /** While set, deliverable messages wait here instead (see `hold` / `release`). */
  private held: Array<RaftMessage> | undefined = undefined
  private readonly observers: Array<(m: RaftMessage, delivered: boolean) => void> = []
  delivered = 0
  dropped = 0

  constructor(readonly ids: ReadonlyArray<NodeId>) {}

  /** A fresh transport endpoint for `id` (a restarted node gets a new, empty inbox). */
  transport(id: NodeId): Effect.Effect<RaftTransportService> {
    return Effect.gen({ self: this }, function*() {
      const inbox = yield* Queue.unbounded<RaftMessage>()
      this.inboxes.set(id, inbox)
      this.up.add(id)
      const service: RaftTransportService = {
        nodeId: id,
        localAddress: () => ({ nodeId: id }),
        send: (to, message) => this.send(id, to, message),
        receive: notUsed("receive"),
        receiveBatch: (max) => Queue.takeBetween(inbox, 1, max),
        messages: Stream.die(new Error("fake transport: messages is not used")),
        events: Stream.empty,
        addPeer: () => notUsed("addPeer"),
        removePeer: () => notUsed("removePeer"),
        peerStatus: () => notUsed("peerStatus"),
        peers: Effect.succeed([])
      }
      return service
    })
  }

  private send(from: NodeId, to: NodeId, message: RaftMessage): Effect.Effect<void, PeerUnknown> {
    return Effect.suspend(() => {
      if (!this.ids.includes(to) || to === from) return Effect.fail(new PeerUnknown({ peer: to }))
      const inbox = this.inboxes.get(to)
      const deliver = inbox !== undefined && this.up.has(from) && this.up.has(to) &&
        !this.blocked.has(`${from}->${to}`) && (this.filter === undefined || this.filter(message))
      for (const observe of this.observers) observe(message, deliver)
      if (!deliver) {
        this.dropped++
        return Effect.void
      }
      if (this.held !== undefined) {
        this.held.push(message)
        return Effect.void
      }
      this.delivered++
      Queue.offerUnsafe(inbox, message)
      return Effect.void
    })
  }

  /** The node is down: everything to or from it is lost until `markUp` / a new `transport`. */
  markDown(id: NodeId): void {
    this.up.delete(id)
  }

  markUp(id: NodeId): void {
    this.up.add(id)
  }

  /** Only nodes in the same group can talk; nodes in no group are cut off from everyone. */
  partition(...groups: ReadonlyArray<ReadonlyArray<NodeId>>): void {
    this.blocked.clear()
    const groupOf = new Map<NodeId, number>()
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)))
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a !== b && (groupOf.get(a) === undefined || groupOf.get(a) !== groupOf.get(b))) this.blocked.add(`${a}->${b}`)
      }
    }
  }

  /** Cuts one node off from all others, both directions. */
  isolate(id: NodeId): void {
    for (const other of this.ids) {
      if (other === id) continue
      this.blocked.add(`${id}->${other}`)
      this.blocked.add(`${other}->${id}`)
    }
  }

  heal(): void {
    this.blocked.clear()
    this.filter = undefined
  }

  /** Delivers only messages for which `keep` is true (until `heal`). */
  setFilter(keep: (m: RaftMessage) => boolean): void {
    this.filter = keep
  }

  /** Holds every message in flight until `release`: lets a test make messages cross. */
  hold(): void {
    this.held = []
  }

  /** Delivers all held messages at once (to nodes still up), in the order they were sent. */
  release(): void {
    const held = this.held ?? []
    this.held = undefined
    for (const m of held) {
      const inbox = this.inboxes.get(m.to)
      if (inbox === undefined || !this.up.has(m.to)) continue
      this.delivered++
      Queue.offerUnsafe(inbox, m)
    }
  }

  /** Sees every message sent, and whether it was delivered. */
  observe(f: (m: RaftMessage, delivered: boolean) => void): void {
    this.observers.push(f)
  }
}
