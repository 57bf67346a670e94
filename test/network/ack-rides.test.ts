/**
 * Acknowledgements riding on the reverse direction's blocks (Iroh wire version 3), between real
 * transports on loopback: a receiver's counts go in the header of its own answers, the dialler's
 * ledger takes them by session id, and what nothing carries is still written on its own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import * as M from "../../src/metrics/metrics.ts"
import { makeRaftTransport, type TransportInternals } from "../../src/transport/service.ts"
import { addressOf, append, heartbeat, irohNodeConfig, receiveN, tempDir } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"

const pair = (internalsA: TransportInternals, internalsB: TransportInternals) =>
  Effect.gen(function*() {
    const dir = tempDir()
    const a = yield* makeRaftTransport(yield* irohNodeConfig(1, dir), internalsA).pipe(Effect.orDie)
    const b = yield* makeRaftTransport(yield* irohNodeConfig(2, dir), internalsB).pipe(Effect.orDie)
    yield* a.addPeer(addressOf(b))
    yield* b.addPeer(addressOf(a))
    // Both directions connected: each node then has a session the other's counts can ride on.
    yield* a.send(2, heartbeat(1, 2))
    yield* receiveN(b, 1)
    yield* b.send(1, heartbeat(2, 1))
    yield* receiveN(a, 1)
    return { a, b }
  })

/** Acknowledgements sent by both nodes (the counters are the process's). */
const sent = Effect.all({
  written: counter(M.acknowledgements, { transport: "iroh", how: "written" }),
  carried: counter(M.acknowledgements, { transport: "iroh", how: "carried" })
})

/** Messages `node` wrote to `peer` that the peer has not confirmed. */
const unconfirmed = (node: RaftTransportService, peer: number) => Effect.map(node.peerStatus(peer), (s) => s.links[0]!.unconfirmed)

/** `a` sends `n` appends to `b`, one at a time, and `b` answers each before the next. */
const pingPong = (a: RaftTransportService, b: RaftTransportService, n: number) =>
  Effect.gen(function*() {
    for (let i = 1; i <= n; i++) {
      yield* a.send(2, append(1, 2, i))
      expect((yield* receiveN(b, 1))[0]!.index).toBe(i)
      yield* b.send(1, append(2, 1, i))
      expect((yield* receiveN(a, 1))[0]!.index).toBe(i)
    }
  })

describe("Iroh acknowledgements riding on blocks", () => {
  it.live("each side's acknowledgement rides on its next write to the other; none is written on its own", () =>
    Effect.scoped(Effect.gen(function*() {
      // A wait no test outlasts: an acknowledgement is written on its own only if nothing carried it.
      const { a, b } = yield* pair({ ackRideWaitMs: 600_000 }, { ackRideWaitMs: 600_000 })
      // B's count of the warm-up heartbeat went out (carried or written) before A heard it.
      yield* eventually("A's warm-up heartbeat confirmed", unconfirmed(a, 2), (u) => u === 0)
      const before = yield* sent
      const n = 50
      yield* pingPong(a, b, n)
      // B's answers carried its counts of A's appends; A's appends carried its counts of B's
      // answers, the first one its count of B's heartbeat.
      yield* eventually("A's appends all confirmed", unconfirmed(a, 2), (u) => u === 0)
      const after = yield* sent
      expect(after.written - before.written).toBe(0)
      expect(after.carried - before.carried).toBe(2 * n)
      // B's last answer: A took it, and A has written nothing to B since to carry its count.
      expect(yield* unconfirmed(b, 1)).toBe(1)
      yield* a.send(2, heartbeat(1, 2, 1))
      yield* receiveN(b, 1)
      yield* eventually("B's last answer confirmed by the heartbeat that carried it", unconfirmed(b, 1), (u) => u === 0)
    })))

  it.live("with nothing written back, acknowledgements go on their own stream within the wait", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair({}, {})
      yield* eventually("the warm-up confirmed", Effect.all([unconfirmed(a, 2), unconfirmed(b, 1)]), ([x, y]) => x === 0 && y === 0)
      const before = yield* sent
      for (let i = 1; i <= 20; i++) yield* a.send(2, heartbeat(1, 2, i))
      yield* receiveN(b, 20)
      yield* eventually("A's heartbeats confirmed", unconfirmed(a, 2), (u) => u === 0)
      const after = yield* sent
      expect(after.written - before.written).toBeGreaterThanOrEqual(1)
      expect(after.carried - before.carried).toBe(0)
    })))

  it.live("a node of version 3 and one of version 2 confirm everything on acknowledgement streams", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair({}, { irohWireVersions: [2] })
      const before = yield* sent
      yield* pingPong(a, b, 20)
      yield* eventually("both sides' messages confirmed", Effect.all([unconfirmed(a, 2), unconfirmed(b, 1)]), ([x, y]) => x === 0 && y === 0)
      expect((yield* sent).carried - before.carried).toBe(0)
    })))
})
