/**
 * A message under `max_frame_bytes` but over the gRPC peer's message limit: the actor drops it
 * as `too_large` before writing (once, not also as sent), and the messages around it arrive.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { maxPayloadInBatch, messageBatchLength } from "../../src/grpc/batch-encoding.ts"
import * as M from "../../src/metrics/metrics.ts"
import { addressOf, append, nodeConfig, receiveN, startNode, tempDir } from "../support/network-cluster.ts"
import { counter } from "../support/metrics.ts"

const LIMIT = 4096

describe("oversize messages over gRPC", () => {
  it("the largest payload that fits a batch of its own", () => {
    for (const limit of [1024, 4096, 16_384, 16_385, 4 * 1024 * 1024]) {
      const p = maxPayloadInBatch(limit)
      expect(messageBatchLength([new Uint8Array(p)])).toBeLessThanOrEqual(limit)
      expect(messageBatchLength([new Uint8Array(p + 1)])).toBeGreaterThan(limit)
    }
  })

  it.live("are dropped once as too_large, and never counted as sent", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const grpc = { grpc_config: { bind_address: "127.0.0.1:0", max_message_bytes: LIMIT } }
      const a = yield* startNode(yield* nodeConfig("grpc", 1, dir, grpc))
      const b = yield* startNode(yield* nodeConfig("grpc", 2, dir, grpc))
      yield* a.addPeer(addressOf(b))
      yield* b.addPeer(addressOf(a))
      const labels = { peer: "2", class: "append" }
      const sentBefore = yield* counter(M.messagesSent, { ...labels, transport: "grpc" })

      yield* a.send(2, append(1, 2, 1, 100))
      yield* a.send(2, append(1, 2, 2, 2 * LIMIT)) // over the peer's limit, far under max_frame_bytes
      yield* a.send(2, append(1, 2, 3, 100))
      const got = yield* receiveN(b, 2).pipe(Effect.timeout("20 seconds"))
      expect(got.map((m) => m.index)).toEqual([1, 3])
      expect(yield* counter(M.messagesDropped, { ...labels, reason: "too_large" })).toBe(1)
      expect((yield* counter(M.messagesSent, { ...labels, transport: "grpc" })) - sentBefore).toBe(2)
    }).pipe(Effect.scoped))
})
