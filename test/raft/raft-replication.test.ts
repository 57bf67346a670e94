/**
 * Log replication (§5.3), commitment (§5.4), proposals and linearizable reads (§6.4), failures
 * and quorum loss, on an in-memory network under the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { MessageType } from "../../src/message/types.ts"
import { encodeKvCommand } from "../../src/raft/kv-state-machine.ts"
import { advance, RaftCluster } from "../support/raft-cluster.ts"

describe("raft replication", () => {
  it.effect("writes committed by the leader are applied on every node, in order", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      const results = []
      for (let i = 0; i < 20; i++) results.push(yield* cluster.node(leader.id).put(`k${i}`, `v${i}`))
      expect(results.every((r) => r.ok)).toBe(true)
      yield* cluster.node(leader.id).put("k0", "again")
      const last = (yield* cluster.status(leader.id)).commitIndex
      yield* cluster.awaitApplied(last)
      for (const id of cluster.ids) {
        expect(cluster.sm(id).get("k0")).toBe("again")
        expect(cluster.sm(id).get("k19")).toBe("v19")
        expect(cluster.sm(id).size).toBe(20)
      }
      const statuses = yield* cluster.statuses()
      expect(new Set(statuses.map((s) => s.lastLogIndex)).size).toBe(1)
    }))

  it.effect("a single-node cluster elects itself and commits on its own", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [7] })
      const leader = yield* cluster.awaitLeader()
      expect(leader.id).toBe(7)
      expect(yield* cluster.node(7).put("solo", "1")).toMatchObject({ ok: true })
      expect(yield* cluster.node(7).read("solo")).toBe("1")
    }))

  it.effect("propose returns the state machine's result; a malformed command commits as an error result", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      const node = cluster.node(leader.id)
      expect(yield* node.put("x", "1")).toEqual({ ok: true, op: "put", key: "x", previous: undefined })
      expect(yield* node.put("x", "2")).toEqual({ ok: true, op: "put", key: "x", previous: "1" })
      expect(yield* node.delete("x")).toEqual({ ok: true, op: "delete", key: "x", previous: "2" })
      const bad = yield* node.propose(new TextEncoder().encode("not json"))
      expect(bad.ok).toBe(false)
      expect(yield* node.propose(encodeKvCommand({ op: "put", key: "y", value: "3" }))).toMatchObject({ ok: true })
    }))

  it.effect("a follower's proposal is forwarded to the leader, and completes when applied on the follower", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      const follower = cluster.ids.find((id) => id !== leader.id)!
      let forwarded = 0
      cluster.net.observe((m) => {
        if (m.msgType === MessageType.Propose) forwarded++
      })
      const result = yield* cluster.node(follower).put("from-follower", "yes")
      expect(result).toMatchObject({ ok: true, key: "from-follower" })
      expect(forwarded).toBe(1)
      // Completion means applied on the follower itself.
      expect(cluster.sm(follower).get("from-follower")).toBe("yes")
      expect(yield* cluster.node(leader.id).read("from-follower")).toBe("yes")
    }))

  it.effect("linearizable reads: on the leader, and on followers through the leader's read index", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      let readIndexRequests = 0
      let heartbeatsWithContext = 0
      cluster.net.observe((m) => {
        if (m.msgType === MessageType.ReadIndex) readIndexRequests++
        if (m.msgType === MessageType.Heartbeat && m.context !== undefined) heartbeatsWithContext++
      })
      yield* cluster.node(leader.id).put("k", "v1")
      expect(yield* cluster.node(leader.id).read("k")).toBe("v1")
      expect(heartbeatsWithContext).toBeGreaterThan(0)
      for (const id of cluster.ids.filter((i) => i !== leader.id)) {
        // A read right after a write through another node sees the write (no stale follower read).
        yield* cluster.node(leader.id).put("k", `v-${id}`)
        expect(yield* cluster.node(id).read("k")).toBe(`v-${id}`)
      }
      expect(readIndexRequests).toBe(2)
      expect(yield* cluster.node(leader.id).read("missing")).toBeUndefined()
    }))

  it.effect("a write acknowledged by the leader survives the leader's death and is read from the new leader", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      yield* cluster.node(leader.id).put("durable", "yes")
      yield* cluster.stop(leader.id)
      const survivors = cluster.ids.filter((id) => id !== leader.id)
      const next = yield* cluster.awaitLeader(survivors)
      expect(next.id).not.toBe(leader.id)
      expect(next.term).toBeGreaterThan(leader.term)
      expect(yield* cluster.node(next.id).read("durable")).toBe("yes")
      // And the new leader keeps committing with 2 of 3.
      yield* cluster.node(next.id).put("after", "1")
      expect(yield* cluster.node(survivors.find((id) => id !== next.id)!).read("after")).toBe("1")
    }))

  it.effect("5 nodes with 2 down still commit", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3, 4, 5] })
      const leader = yield* cluster.awaitLeader()
      const down = cluster.ids.filter((id) => id !== leader.id).slice(0, 2)
      for (const id of down) yield* cluster.stop(id)
      for (let i = 0; i < 10; i++) yield* cluster.node(leader.id).put(`k${i}`, `${i}`)
      const up = cluster.runningIds()
      expect(up).toHaveLength(3)
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, up)
      for (const id of up) expect(cluster.sm(id).get("k9")).toBe("9")
      // The two come back and catch up.
      for (const id of down) yield* cluster.start(id)
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, cluster.ids)
      for (const id of down) expect(cluster.sm(id).get("k9")).toBe("9")
    }))

  it.effect("with 3 of 5 down a proposal fails with NoQuorum after its timeout instead of hanging", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3, 4, 5] })
      const leader = yield* cluster.awaitLeader()
      yield* cluster.node(leader.id).put("before", "1")
      for (const id of cluster.ids.filter((i) => i !== leader.id).slice(0, 3)) yield* cluster.stop(id)
      const fiber = yield* Effect.forkChild(cluster.node(leader.id).put("lost", "x"), { startImmediately: true })
      yield* advance(4_000)
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* advance(1_100)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("NoQuorum")
      expect(error.message).toBe("no quorum: could not commit within 5000 ms; 2 of 5 voters reachable")
      // By now the leader has stepped down (check quorum): new requests fail fast.
      const now = yield* Effect.flip(cluster.node(leader.id).put("later", "y", { timeoutMs: 500 }))
      expect(["NotLeader", "NoQuorum"]).toContain(now._tag)
      const read = yield* Effect.flip(cluster.node(leader.id).read("before", { timeoutMs: 500 }).pipe(Effect.forkChild, Effect.flatMap((f) => advance(600).pipe(Effect.andThen(Fiber.join(f))))))
      expect(["NotLeader", "NoQuorum"]).toContain(read._tag)
    }))

  it.effect("a per-call timeout bounds a follower's forwarded proposal when the leader is unreachable", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      const follower = cluster.ids.find((id) => id !== leader.id)!
      // Proposals are lost on the way; everything else flows, so the follower keeps its leader.
      cluster.net.setFilter((m) => m.msgType !== MessageType.Propose)
      const fiber = yield* Effect.forkChild(cluster.node(follower).put("k", "v", { timeoutMs: 300 }), { startImmediately: true })
      yield* advance(400)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("NoQuorum")
      // A follower only hears from the leader, so it counts itself and the leader as reachable.
      expect(error.message).toBe("no quorum: could not commit within 300 ms; 2 of 3 voters reachable")
    }))

  it.effect("replication survives lost appends: the pipeline stalls, probes, and catches up", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3], raft: { max_inflight_appends: 2, max_entries_per_append: 3 } })
      const leader = yield* cluster.awaitLeader()
      const [a, b] = cluster.ids.filter((id) => id !== leader.id) as [number, number]
      // Drop every other append to `a`.
      let n = 0
      cluster.net.setFilter((m) => !(m.msgType === MessageType.Append && m.to === a && n++ % 2 === 0))
      const fibers = []
      for (let i = 0; i < 30; i++) {
        fibers.push(yield* Effect.forkChild(cluster.node(leader.id).put(`k${i}`, `${i}`), { startImmediately: true }))
      }
      for (const f of fibers) expect((yield* Fiber.join(f)).ok).toBe(true)
      cluster.net.heal()
      const commit = (yield* cluster.status(leader.id)).commitIndex
      yield* cluster.awaitApplied(commit, [a, b])
      expect(cluster.sm(a).get("k29")).toBe("29")
      const status = yield* cluster.status(leader.id)
      for (const p of status.peers) expect(p.inflight).toBeLessThanOrEqual(2)
    }))

  it.effect("pipelining: at most max_inflight_appends unacknowledged appends per follower", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3], raft: { max_inflight_appends: 3, max_entries_per_append: 1 } })
      const leader = yield* cluster.awaitLeader()
      const [a] = cluster.ids.filter((id) => id !== leader.id) as [number]
      yield* cluster.node(leader.id).put("warm", "up")
      let appendsToA = 0
      cluster.net.observe((m) => {
        if (m.msgType === MessageType.Append && m.to === a && (m.entries?.length ?? 0) > 0) appendsToA++
      })
      // `a` receives appends but its acknowledgements are lost; the other follower makes quorum.
      cluster.net.setFilter((m) => !(m.msgType === MessageType.AppendResponse && m.from === a))
      for (let i = 0; i < 10; i++) yield* cluster.node(leader.id).put(`k${i}`, `${i}`)
      expect(appendsToA).toBe(3)
      const peer = (yield* cluster.status(leader.id)).peers.find((p) => p.id === a)!
      expect(peer).toMatchObject({ state: "replicate", inflight: 3 })
      cluster.net.heal()
      // The stalled pipeline falls back to probing and catches up.
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, [a])
      expect(cluster.sm(a).get("k9")).toBe("9")
    }))

  it.effect("a diverged follower's uncommitted suffix is replaced by the leader's log (§5.3)", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const old = yield* cluster.awaitLeader()
      yield* cluster.node(old.id).put("base", "1")
      yield* cluster.awaitApplied((yield* cluster.status(old.id)).commitIndex)
      // The old leader appends entries nobody else receives, then loses leadership.
      cluster.net.isolate(old.id)
      const orphans = []
      for (let i = 0; i < 5; i++) {
        orphans.push(yield* Effect.forkChild(cluster.node(old.id).put(`orphan${i}`, "x", { timeoutMs: 2_000 }), { startImmediately: true }))
      }
      const others = cluster.ids.filter((id) => id !== old.id)
      const next = yield* cluster.awaitLeader(others)
      for (let i = 0; i < 3; i++) yield* cluster.node(next.id).put(`new${i}`, "y")
      cluster.net.heal()
      yield* cluster.awaitLeader()
      const commit = (yield* cluster.status(next.id)).commitIndex
      yield* cluster.awaitApplied(commit)
      // Orphans whose index now holds another entry fail as dropped at once; the one past the
      // end of the new log can only time out (it might yet be committed by some other leader).
      yield* advance(2_000)
      const outcomes = []
      for (const f of orphans) outcomes.push((yield* Effect.flip(Fiber.join(f)))._tag)
      // New log after `base`: the new leader's no-op and new0..2 take the orphans' first 4 slots.
      expect(outcomes).toEqual(["ProposalDropped", "ProposalDropped", "ProposalDropped", "ProposalDropped", "NoQuorum"])
      expect(cluster.sm(old.id).get("orphan0")).toBeUndefined()
      expect(cluster.sm(old.id).get("new2")).toBe("y")
      const logs = yield* cluster.statuses()
      expect(new Set(logs.map((s) => s.lastLogIndex)).size).toBe(1)
    }))
})
