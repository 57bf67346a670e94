/**
 * The in-memory transport of `raft-transport/testing`: the same actors, queues, inbound checks,
 * events and metrics as a real transport, over an in-process link.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { MemoryNetwork } from "../../src/testing/index.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"

const heartbeat = (from: number, to: number, term: number): RaftMessage => ({
  msgType: MessageType.Heartbeat,
  from,
  to,
  term,
  commit: 7
})
const append = (from: number, to: number, index: number): RaftMessage => ({
  msgType: MessageType.Append,
  from,
  to,
  term: 2,
  index,
  logTerm: 2,
  entries: [{ term: 2, index: index + 1, data: new Uint8Array([index & 0xff, 1, 2]) }]
})
const vote = (from: number, to: number): RaftMessage => ({ msgType: MessageType.RequestVote, from, to, term: 3 })

describe("MemoryNetwork", () => {
  it.live("two peers exchange messages through the codec, with Connected events", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const one = yield* network.transport({ nodeId: 1, peers: [2] })
      const two = yield* network.transport({ nodeId: 2, peers: [1] })
      const connected = yield* Effect.forkScoped(Stream.runHead(Stream.filter(one.events, (e) => e._tag === "Connected")))
      yield* Effect.yieldNow
      yield* one.send(2, append(1, 2, 41))
      const got = yield* two.receive
      expect(got).toMatchObject({ msgType: MessageType.Append, from: 1, to: 2, index: 41 })
      expect([...(got.entries?.[0]?.data ?? [])]).toEqual([41, 1, 2])
      yield* two.send(1, heartbeat(2, 1, 5))
      expect(yield* one.receive).toMatchObject({ msgType: MessageType.Heartbeat, from: 2, term: 5, commit: 7 })
      const event = yield* Fiber.join(connected)
      expect(event._tag === "Some" ? event.value : undefined).toEqual({ _tag: "Connected", peer: 2, transport: "memory" })
      const status = yield* one.peerStatus(2)
      expect(status.links).toMatchObject([{ transport: "memory", state: "connected" }])
    }).pipe(Effect.scoped))

  it.live("the receiver takes the election class before appends queued earlier", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const one = yield* network.transport({ nodeId: 1, peers: [2] })
      const two = yield* network.transport({ nodeId: 2, peers: [1] })
      const received = () => counter(M.messagesReceived, { peer: "1", class: "append", transport: "memory" })
      const before = yield* received()
      for (let i = 0; i < 50; i++) yield* one.send(2, append(1, 2, i))
      yield* one.send(2, vote(1, 2))
      // Wait until everything sits in node 2's mailbox, unread.
      yield* eventually("appends delivered", received(), (n) => n - before === 50)
      yield* eventually(
        "vote delivered",
        counter(M.messagesReceived, { peer: "1", class: "election", transport: "memory" }),
        (n) => n >= 1
      )
      const batch = yield* two.receiveBatch(100)
      expect(batch[0]?.msgType).toBe(MessageType.RequestVote)
      expect(batch.slice(1).map((m) => m.index)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    }).pipe(Effect.scoped))

  it.live("a cut link drops to the queue policy, reports Disconnected, and delivers after reconnect", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const config = { queues: { append: { capacity: 4, overflow: "drop_newest" as const } } }
      const one = yield* network.transport({ nodeId: 1, peers: [2], config })
      const two = yield* network.transport({ nodeId: 2, peers: [1] })
      const disconnected = yield* Effect.forkScoped(
        Stream.runHead(Stream.filter(one.events, (e) => e._tag === "Disconnected"))
      )
      yield* Effect.yieldNow
      yield* one.send(2, append(1, 2, 0))
      expect((yield* two.receive).index).toBe(0)

      yield* network.disconnect(1, 2)
      const event = yield* Fiber.join(disconnected)
      expect(event._tag === "Some" ? event.value : undefined).toMatchObject({ _tag: "Disconnected", peer: 2, transport: "memory" })

      const drops = () => counter(M.messagesDropped, { peer: "2", class: "append", reason: "queue_full" })
      const dropsBefore = yield* drops()
      // The writer holds one batch while it redials; the queue holds four more; the rest are refused.
      const outcomes: Array<string> = []
      for (let i = 1; i <= 8; i++) {
        outcomes.push(yield* one.send(2, append(1, 2, i)).pipe(Effect.as("queued"), Effect.catchTag("MessageDropped", (e) => Effect.succeed(e.reason))))
        yield* Effect.sleep(5)
      }
      const refused = outcomes.filter((o) => o === "queue_full").length
      expect(refused).toBeGreaterThan(0)
      expect((yield* drops()) - dropsBefore).toBe(refused)

      yield* network.reconnect(1, 2)
      const delivered = yield* two.receiveBatch(100).pipe(
        Effect.repeat({ until: (batch) => batch.some((m) => m.index === 8) || outcomes.at(-1) !== "queued" })
      )
      expect(delivered.length).toBeGreaterThan(0)
      const queuedCount = outcomes.filter((o) => o === "queued").length
      const got: Array<number> = delivered.map((m) => m.index ?? -1)
      while (got.length < queuedCount) got.push(...(yield* two.receiveBatch(100)).map((m) => m.index ?? -1))
      expect(got).toHaveLength(queuedCount)
      expect(got).toEqual([...got].sort((a, b) => a - b))
    }).pipe(Effect.scoped))

  it.live("a node refuses connections from nodes outside its peer table (counted)", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const one = yield* network.transport({ nodeId: 1, peers: [2] })
      yield* network.transport({ nodeId: 2, peers: [3] })
      const before = yield* counter(M.inboundRefused, { transport: "memory", reason: "unknown_endpoint" })
      yield* one.send(2, heartbeat(1, 2, 1))
      yield* eventually("refusal counted", counter(M.inboundRefused, { transport: "memory", reason: "unknown_endpoint" }), (n) => n > before)
      const status = yield* one.peerStatus(2)
      expect(status.links[0]?.lastFailure).toContain("does not know node 1")
      expect(yield* Effect.flip(one.send(9, heartbeat(1, 9, 1)))).toMatchObject({ _tag: "PeerUnknown", peer: 9 })
    }).pipe(Effect.scoped))

  it.live("a second node with the same id is a ConfigError", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      yield* network.transport({ nodeId: 1 })
      const error = yield* Effect.flip(network.transport({ nodeId: 1 }))
      expect(error).toMatchObject({ _tag: "ConfigError", path: "transport.node_id" })
    }).pipe(Effect.scoped))
})
