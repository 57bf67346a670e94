import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, PubSub, Queue, Scope, Stream } from "effect"
import { join } from "node:path"
import { decodeTransportConfig } from "../../src/config/load.ts"
import type { TransportEvent } from "../../src/domain/events.ts"
import { PeerRouter } from "../../src/routing/router.ts"
import { makeTestRouter } from "../support/router.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { append, nodeConfig, receiveN, startNode, tempDir } from "../support/network-cluster.ts"
import { awaitEvent } from "../support/events.ts"
import { type ChildNode, spawnChildNode } from "../support/child-node.ts"

const sendAppends = (a: RaftTransportService, from: number, count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => from + i), (i) => a.send(2, append(1, 2, i)), { discard: true })

const childReceives = (child: ChildNode, from: number, count: number) =>
  Effect.gen(function*() {
    const got: Array<number> = []
    while (got.length < count) got.push((yield* Queue.take(child.received)).index)
    expect(got).toEqual(Array.from({ length: count }, (_, i) => from + i))
  }).pipe(Effect.timeout("20 seconds"))

describe("dual mode", () => {
  it.live("closing a peer's Iroh endpoint moves its traffic to gRPC, and bringing Iroh back moves it back", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* nodeConfig("dual", 1, dir))
      const self = a.localAddress()
      // Peer 2 is two halves: its Iroh side in a child process (so it can really close and come
      // back on the same port with the same key), its gRPC side here.
      const bGrpc = yield* startNode(yield* decodeTransportConfig({
        mode: "grpc",
        node_id: 2,
        grpc_config: { bind_address: "127.0.0.1:0" },
        peers: [{ id: 1, grpc_address: self.grpc!.address }]
      }).pipe(Effect.orDie))
      const irohTable = (bind: string) => ({
        mode: "iroh",
        node_id: 2,
        bind_address: bind,
        iroh_config: { key_file: join(dir, "node2.key"), relay_mode: "disabled" },
        peers: [{ id: 1, iroh_endpoint_id: self.iroh!.endpointId, iroh_addresses: self.iroh!.addresses }]
      })
      const firstLife = yield* Scope.make()
      const bIroh = yield* spawnChildNode(irohTable("127.0.0.1:0")).pipe(Scope.provide(firstLife))
      const { endpointId, addresses } = bIroh.address.iroh!

      const events = yield* Queue.unbounded<TransportEvent>()
      yield* Effect.forkScoped(Stream.runForEach(a.events, (e) => Queue.offer(events, e)), { startImmediately: true })
      yield* a.addPeer({ id: 2, irohEndpointId: endpointId, irohAddresses: addresses, grpcAddress: bGrpc.localAddress().grpc!.address })

      yield* sendAppends(a, 1, 10)
      yield* childReceives(bIroh, 1, 10)
      expect((yield* a.peerStatus(2)).routes).toEqual(["iroh", "iroh", "iroh", "iroh"])

      yield* bIroh.stop("SIGTERM")
      yield* Scope.close(firstLife, Exit.void)
      expect(yield* awaitEvent(events, "FellBack")).toMatchObject({ _tag: "FellBack", peer: 2 })
      expect((yield* a.peerStatus(2)).routes).toEqual(["grpc", "grpc", "grpc", "grpc"])
      // Every message sent after the failure is delivered, over gRPC.
      yield* sendAppends(a, 100, 200)
      const got = yield* receiveN(bGrpc, 200).pipe(Effect.timeout("20 seconds"))
      expect(got.map((m) => m.index)).toEqual(Array.from({ length: 200 }, (_, i) => 100 + i))

      const bIroh2 = yield* spawnChildNode(irohTable(addresses[0]!))
      yield* awaitEvent(events, "Recovered")
      expect((yield* a.peerStatus(2)).routes).toEqual(["iroh", "iroh", "iroh", "iroh"])
      yield* sendAppends(a, 1000, 50)
      yield* childReceives(bIroh2, 1000, 50)
    }).pipe(Effect.scoped), { timeout: 90_000 })

  it.live("per-class routes: snapshots over gRPC while votes stay on Iroh", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const extra = { strategy: { class_routes: { snapshot: "grpc" } } }
      const a = yield* startNode(yield* nodeConfig("dual", 1, dir, extra))
      const b = yield* startNode(yield* nodeConfig("dual", 2, dir, extra))
      const local = b.localAddress()
      yield* a.addPeer({ id: 2, irohEndpointId: local.iroh!.endpointId, irohAddresses: local.iroh!.addresses, grpcAddress: local.grpc!.address })
      expect((yield* a.peerStatus(2)).routes).toEqual(["iroh", "iroh", "iroh", "grpc"])
    }).pipe(Effect.scoped))
})

describe("adaptive routing", () => {
  /** An adaptive router for peer 2 (snapshots pinned to gRPC), and a subscription to its events. */
  const makeRouter = makeTestRouter({
    strategy: { _tag: "adaptive", latency_threshold_ms: 50, hysteresis: 0.2 },
    classRoutes: { snapshot: "grpc" }
  })

  it.effect("switches when Iroh's RTT crosses the threshold, with hysteresis, and back", () =>
    Effect.gen(function*() {
      const { sub, router } = yield* makeRouter
      yield* router.observe({ iroh: 5, grpc: 2 })
      expect(router.route(0)).toBe("iroh")
      yield* router.observe({ iroh: 58, grpc: 2 }) // over 50 but within the 20% margin: stay
      expect(router.route(0)).toBe("iroh")
      yield* router.observe({ iroh: 120, grpc: 2 })
      expect([0, 1, 2, 3].map((c) => router.route(c as 0))).toEqual(["grpc", "grpc", "grpc", "grpc"])
      const changed = yield* PubSub.takeAll(sub)
      expect(changed.filter((e) => e._tag === "RouteChanged")).toHaveLength(3) // snapshot was pinned to grpc
      yield* router.observe({ iroh: 45, grpc: 2 }) // under 50 but not under 40: stay on grpc
      expect(router.route(0)).toBe("grpc")
      yield* router.observe({ iroh: 30, grpc: 2 })
      expect(router.route(0)).toBe("iroh")
      expect(router.route(3)).toBe("grpc")
    }).pipe(Effect.scoped))

  it.effect("leaves a gRPC link that went down for Iroh, and returns once gRPC is back and faster", () =>
    Effect.gen(function*() {
      const { sub, router } = yield* makeRouter
      yield* router.observe({ iroh: 120, grpc: 2 })
      expect(router.route(0)).toBe("grpc")
      yield* PubSub.takeAll(sub)
      yield* router.linkState("grpc", false, "connection lost")
      expect([0, 1, 2, 3].map((c) => router.route(c as 0))).toEqual(["iroh", "iroh", "iroh", "grpc"])
      yield* router.linkState("grpc", false, "dial failed") // already left: no second change
      yield* router.observe({ iroh: 120, grpc: undefined }) // slow Iroh, but gRPC has no RTT: stay
      expect(router.route(0)).toBe("iroh")
      const left = (yield* PubSub.takeAll(sub)).filter((e) => e._tag === "RouteChanged")
      expect(left).toHaveLength(3)
      for (const e of left) expect(e).toMatchObject({ from: "grpc", to: "iroh", reason: "adaptive: grpc down: connection lost" })
      expect(yield* PubSub.takeUpTo(sub, 100)).toEqual([])
      yield* router.linkState("grpc", true, "connected")
      yield* router.observe({ iroh: 120, grpc: 2 })
      expect(router.route(0)).toBe("grpc")
    }).pipe(Effect.scoped))

  it.effect("a gRPC link going down moves nothing the adaptive strategy did not move there", () =>
    Effect.gen(function*() {
      const { events, sub, router } = yield* makeRouter
      yield* router.observe({ iroh: 5, grpc: 2 })
      yield* router.linkState("grpc", false, "connection lost")
      expect([0, 1, 2, 3].map((c) => router.route(c as 0))).toEqual(["iroh", "iroh", "iroh", "grpc"])
      const fixed = yield* PeerRouter.make({
        peer: 3,
        mode: "dual",
        strategy: { _tag: "always_grpc" },
        classRoutes: {},
        fallbackToGrpc: true,
        events
      })
      yield* fixed.linkState("grpc", false, "connection lost")
      expect(fixed.route(0)).toBe("grpc")
      expect((yield* PubSub.takeUpTo(sub, 100)).filter((e) => e._tag === "RouteChanged")).toEqual([])
    }).pipe(Effect.scoped))

  it.effect("falls back while Iroh is down and recovers when it is back", () =>
    Effect.gen(function*() {
      const { sub, router } = yield* makeRouter
      yield* router.linkState("iroh", false, "connection lost")
      expect(router.route(0)).toBe("grpc")
      yield* router.linkState("iroh", false, "still down") // no second FellBack
      yield* router.linkState("iroh", true, "connected")
      expect(router.route(0)).toBe("iroh")
      const tags = (yield* PubSub.takeAll(sub)).map((e) => e._tag)
      expect(tags.filter((t) => t === "FellBack")).toHaveLength(1)
      expect(tags.filter((t) => t === "Recovered")).toHaveLength(1)
    }).pipe(Effect.scoped))
})
