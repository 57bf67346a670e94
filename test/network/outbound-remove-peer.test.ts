import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import { messagesDropped } from "../../src/metrics/metrics.ts"
import type { Link } from "../../src/peer/link.ts"
import { append, nodeConfig, startNode, tempDir } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { actorOver, fakeSession } from "../support/fake-link.ts"
import { counter } from "../support/metrics.ts"

const snapshot = (from: number, to: number, bytes: number): RaftMessage => ({
  msgType: MessageType.Snapshot,
  from,
  to,
  term: 1,
  snapshot: { data: new Uint8Array(bytes), metadata: { index: 10, term: 1, confState: { voters: [1, 2] } } }
})

describe("removing an unreachable peer", () => {
  // Every message handed to `send` is written or dropped with a counted reason; the batch a
  // writer has already taken from its queue while it waits for a link is no exception.
  it.live("counts the messages its writer was holding as peer_removed, with the queued ones", () =>
    Effect.gen(function*() {
      const node = yield* startNode(yield* nodeConfig("grpc", 1, tempDir(), { batching: { max_batch: 3 } }))
      // Nothing listens there: every dial fails and the writer backs off, holding its batch.
      yield* node.addPeer({ id: 7, irohAddresses: [], grpcAddress: "127.0.0.1:9" })
      const removed = { peer: "7", class: "append", reason: "peer_removed" }
      const before = yield* counter(messagesDropped, removed)

      for (let i = 1; i <= 5; i++) yield* node.send(7, append(1, 7, i))
      // The writer takes a batch of `max_batch` (3) and waits for a link; 2 stay queued.
      yield* eventually("writer took a batch", Effect.map(node.peerStatus(7), (s) => s.queued[PriorityClass.Append]), (n) => n === 2)
      yield* node.removePeer(7)

      expect((yield* counter(messagesDropped, removed)) - before).toBe(5)
    }).pipe(Effect.scoped))
})

describe("closing a peer actor", () => {
  it.live("counts a batch whose write is in flight, and a snapshot mid-transfer, as peer_removed", () =>
    Effect.gen(function*() {
      const writesStarted: Array<PriorityClass> = []
      // A link that accepts the connection and never completes a write.
      const session = fakeSession("grpc", (cls) => Effect.andThen(Effect.sync(() => void writesStarted.push(cls)), Effect.never))
      const link: Link = { kind: "grpc", connect: Effect.succeed(session) }
      const scope = yield* Scope.make()
      const actor = yield* actorOver(8, link, { snapshotChunkBytes: 1024, backoff: { initialMs: 10, maxMs: 100, jitter: 0 } }).pipe(
        Scope.provide(scope)
      )
      const removed = (cls: string) => counter(messagesDropped, { peer: "8", class: cls, reason: "peer_removed" })
      const appendsBefore = yield* removed("append")
      const snapshotsBefore = yield* removed("snapshot")

      for (let i = 1; i <= 3; i++) yield* actor.send(append(1, 8, i))
      yield* actor.send(snapshot(1, 8, 5000))
      yield* actor.send(snapshot(1, 8, 5000))
      yield* eventually("both writes started", Effect.sync(() => writesStarted.length), (n) => n === 2)
      yield* Scope.close(scope, Exit.void)

      expect((yield* removed("append")) - appendsBefore).toBe(3)
      // One snapshot mid-transfer, one still held in the writer's batch.
      expect((yield* removed("snapshot")) - snapshotsBefore).toBe(2)
    }))
})
