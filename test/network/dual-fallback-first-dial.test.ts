import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import { join } from "node:path"
import { decodeTransportConfig } from "../../src/config/load.ts"
import { MessageType } from "../../src/message/types.ts"
import { append, nodeConfig, receiveN, startNode, tempDir, vote } from "../support/network-cluster.ts"

describe("dual mode, Iroh unreachable from the start", () => {
  // The supervisor's keeper dials Iroh as soon as the peer is added; a writer that asks for
  // the Iroh link while that first dial is in flight must get its outcome (failed, so fall
  // back) rather than wait behind the keeper's endless redial loop.
  it.live("messages sent during the first Iroh dial go out over gRPC once that dial fails", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* nodeConfig("dual", 1, dir, {
        iroh_config: { key_file: join(dir, "node1.key"), relay_mode: "disabled", connect_timeout_ms: 300 }
      }))
      const b = yield* startNode(yield* decodeTransportConfig({
        mode: "grpc",
        node_id: 2,
        grpc_config: { bind_address: "127.0.0.1:0" },
        peers: [{ id: 1, grpc_address: a.localAddress().grpc!.address }]
      }).pipe(Effect.orDie))
      // An Iroh identity nobody holds, at an address that answers nothing: every dial times out.
      yield* a.addPeer({
        id: 2,
        irohEndpointId: iroh.SecretKey.generate().public().toString(),
        irohAddresses: ["127.0.0.1:9"],
        grpcAddress: b.localAddress().grpc!.address
      })
      yield* a.send(2, vote(1, 2))
      for (let i = 1; i <= 5; i++) yield* a.send(2, append(1, 2, i))

      const got = yield* receiveN(b, 6).pipe(Effect.timeout("20 seconds"))
      expect(got.filter((m) => m.msgType === MessageType.RequestVote)).toHaveLength(1)
      expect(got.filter((m) => m.msgType === MessageType.Append).map((m) => m.index)).toEqual([1, 2, 3, 4, 5])
      expect((yield* a.peerStatus(2)).routes).toEqual(["grpc", "grpc", "grpc", "grpc"])
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
