import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Queue, Scope } from "effect"
import { join } from "node:path"
import { heartbeat, irohNodeConfig, startNode, tempDir } from "./support/cluster.ts"
import { spawnChildNode } from "./support/child-node.ts"

const childTable = (dir: string, bind: string, peer: { id: number; endpointId: string; addresses: ReadonlyArray<string> }) => ({
  mode: "iroh",
  node_id: 2,
  bind_address: bind,
  iroh_config: { key_file: join(dir, "node2.key"), relay_mode: "disabled" },
  peers: [{ id: peer.id, iroh_endpoint_id: peer.endpointId, iroh_addresses: peer.addresses }]
})

describe("iroh reconnect", () => {
  it.live("a peer process that restarts with the same key file is reached again", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* irohNodeConfig(1, dir))
      const self = { id: 1, ...a.localAddress().iroh! }

      const firstLife = yield* Scope.make()
      const b1 = yield* spawnChildNode(childTable(dir, "127.0.0.1:0", self)).pipe(Scope.provide(firstLife))
      const b = b1.address.iroh!
      yield* a.addPeer({ id: 2, irohEndpointId: b.endpointId, irohAddresses: b.addresses })
      yield* a.send(2, heartbeat(1, 2, 1))
      expect((yield* Queue.take(b1.received).pipe(Effect.timeout("20 seconds"))).commit).toBe(1)

      yield* b1.stop("SIGTERM")
      yield* Scope.close(firstLife, Exit.void)
      const b2 = yield* spawnChildNode(childTable(dir, b.addresses[0]!, self))
      expect(b2.address.iroh!.endpointId).toBe(b.endpointId)

      // Nothing is told to node 1: its peer table still holds the same id and address. Messages
      // written into the old connection before its loss is noticed are lost (and counted).
      let delivered = false
      for (let i = 2; i < 300 && !delivered; i++) {
        yield* a.send(2, heartbeat(1, 2, i))
        delivered = (yield* Queue.take(b2.received).pipe(Effect.timeoutOption("100 millis")))._tag === "Some"
      }
      expect(delivered).toBe(true)
      expect((yield* a.peerStatus(2)).links[0]!.state).toBe("connected")
    }).pipe(Effect.scoped), { timeout: 90_000 })
})
