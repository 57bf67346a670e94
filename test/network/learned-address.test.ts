/**
 * The configured address of a peer stops working while the peer stays reachable elsewhere:
 * node 1 knows node 2 only by a UDP relay's address, and the live connection has also
 * opened a path to node 2's own bound address (Iroh announces it inside the connection).
 * The relay then goes away for good and node 2 restarts on its own address with its key:
 * the redial must use the address the live connection learned, not the dead one forever.
 * (The Iroh endpoint keeps what its connections learned; these tests hold it to that.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Queue, Scope, Stream } from "effect"
import { irohChildTable, spawnChildNode } from "../support/child-node.ts"
import { addressOf, append, nodeConfig, receiveN, startNode, tempDir } from "../support/network-cluster.ts"
import { makeUdpRelay } from "../support/udp-relay.ts"

describe("Iroh redial after the configured address went stale", () => {
  it.live("dials the addresses the lost connection had paths to", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* nodeConfig("iroh", 1, dir, { strategy: {} }))
      const self = a.localAddress()
      const table = (bind: string) => irohChildTable(2, bind, dir, self)
      const firstLife = yield* Scope.make()
      const b = yield* spawnChildNode(table("127.0.0.1:0")).pipe(Scope.provide(firstLife))
      const own = b.address.iroh!.addresses[0]!
      const relayScope = yield* Scope.make()
      const relay = yield* makeUdpRelay(own).pipe(Scope.provide(relayScope))
      yield* a.addPeer({ id: 2, irohEndpointId: b.address.iroh!.endpointId, irohAddresses: [relay.address] })

      yield* Effect.forEach([1, 2, 3], (i) => a.send(2, append(1, 2, i)), { discard: true })
      for (let i = 1; i <= 3; i++) expect((yield* Queue.take(b.received).pipe(Effect.timeout("20 seconds"))).index).toBe(i)
      expect((yield* relay.stats).forwarded).toBeGreaterThan(0)
      // The link reads the connection's paths every second.
      yield* Effect.sleep("2500 millis")

      // The configured address is gone for good; node 2 comes back on its own address.
      const lost = yield* a.events.pipe(
        Stream.filter((e) => e._tag === "Disconnected" && e.peer === 2),
        Stream.take(1),
        Stream.runDrain,
        Effect.forkScoped({ startImmediately: true })
      )
      yield* Scope.close(relayScope, Exit.void)
      yield* b.stop("SIGTERM")
      yield* Scope.close(firstLife, Exit.void)
      // Node 1 notices the lost connection on its own (its next ping goes unanswered, within
      // 5 s on a quiet link to a peer reached over one transport) before it sends more: what
      // is written to a connection that died unnoticed is counted lost, which is not what
      // this test is about.
      yield* Fiber.join(lost).pipe(Effect.timeout("20 seconds"))
      const again = yield* spawnChildNode(table(own))
      yield* Effect.forEach([4, 5, 6], (i) => a.send(2, append(1, 2, i)), { discard: true })
      const got: Array<number> = []
      while (got.length < 3) got.push((yield* Queue.take(again.received).pipe(Effect.timeout("20 seconds"))).index)
      expect(got).toEqual([4, 5, 6])
    }).pipe(Effect.scoped), { timeout: 90_000 })
})

describe("Iroh redial after the peer moved to another address", () => {
  it.live("a peer that comes back elsewhere and connects to this node is dialled where it is now", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* nodeConfig("iroh", 1, dir, { strategy: {} }))
      const firstLife = yield* Scope.make()
      const b1 = yield* startNode(yield* nodeConfig("iroh", 2, dir)).pipe(Scope.provide(firstLife))
      yield* b1.addPeer(addressOf(a))
      yield* a.addPeer(addressOf(b1))
      yield* a.send(2, append(1, 2, 1))
      expect((yield* receiveN(b1, 1).pipe(Effect.timeout("20 seconds")))[0]!.index).toBe(1)

      // Node 2 comes back with its key on another port; node 1's table still has the old one.
      yield* Scope.close(firstLife, Exit.void)
      const b2 = yield* startNode(yield* nodeConfig("iroh", 2, dir))
      expect(b2.localAddress().iroh!.addresses).not.toEqual(b1.localAddress().iroh!.addresses)
      yield* b2.addPeer(addressOf(a))
      yield* b2.send(1, append(2, 1, 1))
      expect((yield* receiveN(a, 1).pipe(Effect.timeout("20 seconds")))[0]!.from).toBe(2)
      yield* Effect.forEach([2, 3], (i) => a.send(2, append(1, 2, i)), { discard: true })
      const got = yield* receiveN(b2, 2).pipe(Effect.timeout("20 seconds"))
      expect(got.map((m) => m.index)).toEqual([2, 3])
    }).pipe(Effect.scoped), { timeout: 90_000 })
})
