/**
 * The Raft manager over the real transports on loopback (real clock): messages go through the
 * protobuf codec (defaults on decoded messages, chunked snapshots) rather than the in-memory
 * network of the other Raft tests.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Stream } from "effect"
import { decodeRaftConfig } from "../../src/raft/config.ts"
import type { RaftEvent, RaftStatus } from "../../src/raft/events.ts"
import { KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { RaftManager, type RaftManagerService } from "../../src/raft/manager.ts"
import { MemoryStorage } from "../../src/raft/memory-storage.ts"
import { RaftTransport, type RaftTransportService } from "../../src/domain/raft-transport.ts"
import { addressOf, type Mode, startCluster } from "../support/network-cluster.ts"
import { eventually, eventuallyDefined } from "../support/eventually.ts"

const startManager = (transport: RaftTransportService, sm: KvStateMachine, events: Array<RaftEvent>) =>
  Effect.gen(function*() {
    const config = yield* decodeRaftConfig({ voters: [1, 2, 3], snapshot_threshold: 20 }).pipe(Effect.orDie)
    const layer = RaftManager.layerWithStorage(config, sm, new MemoryStorage()).pipe(
      Layer.provide(Layer.succeed(RaftTransport, transport))
    )
    const manager = Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RaftManager)
    yield* Effect.forkScoped(Stream.runForEach(manager.events, (e) => Effect.sync(() => events.push(e))), {
      startImmediately: true
    })
    return manager
  })

/** Polls `check` every 20 ms (real time) until it yields a value. */


const leaderAmong = (managers: ReadonlyArray<RaftManagerService>) =>
  Effect.map(Effect.forEach(managers, (m) => m.status), (all): RaftStatus | undefined => {
    const leader = all.find((s) => s.role === "leader")
    return leader !== undefined && all.every((s) => s.leader === leader.id && s.term === leader.term) ? leader : undefined
  })

const suite = (mode: Mode) =>
  describe(`raft manager over ${mode}`, () => {
    it.live("elects, replicates, forwards, reads, and brings a late node up by snapshot", () =>
      Effect.gen(function*() {
        const transports = yield* startCluster(3, {}, mode)
        const events: Array<RaftEvent> = []
        const sms = [new KvStateMachine(), new KvStateMachine(), new KvStateMachine()] as const
        // Node 3's transport runs, but its Raft node starts only after the others compacted.
        // Until then the others do not know it: appends sent to it early would wait in its
        // inbound queue and let it catch up from the log instead of by snapshot.
        for (const t of transports.slice(0, 2)) yield* t.removePeer(3)
        const first = [
          yield* startManager(transports[0]!, sms[0], events),
          yield* startManager(transports[1]!, sms[1], events)
        ]
        const leader = yield* eventuallyDefined("a leader", leaderAmong(first), 15_000)
        const follower = first.find((m) => m.id !== leader.id)!
        for (let i = 0; i < 30; i++) yield* follower.put(`k${i}`, `${i}`)
        expect(yield* follower.read("k29")).toBe("29")
        const leaderManager = first.find((m) => m.id === leader.id)!
        expect((yield* leaderManager.status).snapshotIndex).toBeGreaterThan(0)

        for (const t of transports.slice(0, 2)) yield* t.addPeer(addressOf(transports[2]!))
        const late = yield* startManager(transports[2]!, sms[2], events)
        yield* eventually("the late node to install a snapshot", late.status, (s) => s.snapshotIndex > 0 && s.leader === leader.id, 15_000)
        yield* eventuallyDefined(
          "the SnapshotInstalled event",
          Effect.sync(() => events.find((e) => e._tag === "SnapshotInstalled" && e.node === 3)),
          15_000
        )
        expect(yield* late.read("k0")).toBe("0")
        yield* late.put("from-late", "yes")
        expect(yield* leaderManager.read("from-late")).toBe("yes")
        expect(sms[2].get("k29")).toBe("29")
      }).pipe(Effect.scoped), { timeout: 60_000 })
  })

suite("grpc")
suite("iroh")
