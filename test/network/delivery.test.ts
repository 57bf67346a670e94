import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { MessageType } from "../../src/message/types.ts"
import { append, heartbeat, type Mode, receiveN, startCluster, vote } from "../support/network-cluster.ts"

const suite = (mode: Mode, extra: Record<string, unknown> = {}, label: string = mode) =>
describe(`delivery, order and priority over ${label}`, () => {
  it.live("delivers among three nodes in both directions", () =>
    Effect.gen(function*() {
      const nodes = yield* startCluster(3, extra, mode)
      for (const from of nodes) {
        for (const to of nodes) {
          if (from.nodeId !== to.nodeId) yield* from.send(to.nodeId, append(from.nodeId, to.nodeId, 1))
        }
      }
      for (const node of nodes) {
        const got = yield* receiveN(node, 2).pipe(Effect.timeout("20 seconds"))
        expect(got.map((m) => m.from).sort()).toEqual(nodes.filter((n) => n !== node).map((n) => n.nodeId).sort())
        for (const m of got) {
          expect(m.to).toBe(node.nodeId)
          expect(m.msgType).toBe(MessageType.Append)
          expect(m.entries?.[0]?.index).toBe(1)
        }
      }
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("keeps order within a class", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(2, extra, mode)
      const n = 2000
      for (let i = 1; i <= n; i++) yield* a!.send(2, append(1, 2, i, 16))
      const got = yield* receiveN(b!, n).pipe(Effect.timeout("30 seconds"))
      expect(got.map((m) => m.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a vote sent after 1,000 queued appends is received before most of them", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(2, extra, mode)
      // Warm the connection so the test measures priority, not the handshake.
      yield* a!.send(2, heartbeat(1, 2))
      yield* receiveN(b!, 1).pipe(Effect.timeout("20 seconds"))
      for (let i = 1; i <= 1000; i++) yield* a!.send(2, append(1, 2, i, 64))
      yield* a!.send(2, vote(1, 2))
      const got = yield* receiveN(b!, 1001).pipe(Effect.timeout("30 seconds"))
      const position = got.findIndex((m) => m.msgType === MessageType.RequestVote)
      expect(position).toBeGreaterThanOrEqual(0)
      expect(position).toBeLessThan(500)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})

suite("iroh")
suite("iroh", { iroh_config: { relay_mode: "disabled", worker_thread: true } }, "iroh with the binding in a worker thread")
suite("grpc")
suite("dual")
