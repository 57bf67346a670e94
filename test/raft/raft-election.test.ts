/**
 * Leader election (§5.2), pre-vote (thesis §9.6), leader lease / check quorum (thesis §4.2.3,
 * §6.2) on an in-memory network under the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { MessageType } from "../../src/message/types.ts"
import { advance, leadersByTerm, RaftCluster } from "../support/raft-cluster.ts"

describe("raft election", () => {
  it.effect("3 nodes elect exactly one leader, and at most one per term across re-elections", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const first = yield* cluster.awaitLeader()
      expect(first.term).toBeGreaterThan(0)
      expect(yield* cluster.leaders()).toHaveLength(1)

      // Force a few re-elections by cutting the current leader off, then healing.
      for (let round = 0; round < 3; round++) {
        const leader = (yield* cluster.awaitLeader()).id
        cluster.net.isolate(leader)
        const others = cluster.ids.filter((id) => id !== leader)
        const next = yield* cluster.awaitLeader(others)
        expect(next.id).not.toBe(leader)
        cluster.net.heal()
        yield* cluster.awaitLeader()
      }

      const byTerm = leadersByTerm(cluster.events)
      expect(byTerm.size).toBeGreaterThanOrEqual(4)
      for (const [term, leaders] of byTerm) expect([term, [...leaders]]).toEqual([term, [...leaders].slice(0, 1)])
      const final = yield* cluster.statuses()
      expect(new Set(final.map((s) => s.term)).size).toBe(1)
      expect(final.filter((s) => s.role === "leader")).toHaveLength(1)
    }))

  it.effect("a leader cut off from the majority steps down (check quorum) and the majority elects a new one", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const old = yield* cluster.awaitLeader()
      cluster.net.isolate(old.id)
      const others = cluster.ids.filter((id) => id !== old.id)
      const next = yield* cluster.awaitLeader(others)
      expect(next.term).toBeGreaterThan(old.term)
      // Within an election timeout the isolated leader notices it has no quorum.
      yield* cluster.waitFor(Effect.map(cluster.status(old.id), (s) => s.role !== "leader"), 2_000, "old leader to step down")
      const isolated = yield* cluster.status(old.id)
      expect(isolated.leader).toBeUndefined()
      // Healing: the old leader learns the new term (§5.1) and follows.
      cluster.net.heal()
      const agreed = yield* cluster.awaitLeader()
      expect(agreed.id).toBe(next.id)
      expect(agreed.term).toBe(next.term)
    }))

  it.effect("split votes resolve: simultaneous candidacies end with one leader", () =>
    Effect.gen(function*() {
      // Without pre-vote every cut-off node becomes a candidate and votes for itself.
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3], raft: { pre_vote: false } })
      cluster.net.partition()
      yield* advance(1_500)
      const split = yield* cluster.statuses()
      expect(split.every((s) => s.role === "candidate" && s.vote === s.id)).toBe(true)
      cluster.net.heal()
      const leader = yield* cluster.awaitLeader()
      expect(leader.term).toBeGreaterThanOrEqual(Math.max(...split.map((s) => s.term)))
      expect(yield* cluster.leaders()).toHaveLength(1)
      const byTerm = leadersByTerm(cluster.events)
      for (const leaders of byTerm.values()) expect(leaders.size).toBe(1)
    }))

  it.effect("split votes resolve when candidacies really collide (vote requests cross in flight)", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3, 4], raft: { pre_vote: false } })
      // Hold all traffic until every node is a candidate in the same term: each has voted for
      // itself, so when the requests are delivered together every one of them is rejected.
      cluster.net.hold()
      const split = yield* cluster.waitFor(
        Effect.map(cluster.statuses(), (all) =>
          all.every((s) => s.role === "candidate" && s.term === all[0]!.term) ? all[0]!.term : undefined),
        20_000,
        "all nodes candidates in one term",
        1
      )
      cluster.net.release()
      yield* advance(1)
      expect(leadersByTerm(cluster.events).get(split)).toBeUndefined()
      const leader = yield* cluster.awaitLeader()
      expect(leader.term).toBeGreaterThan(split)
      expect(yield* cluster.leaders()).toHaveLength(1)
    }))

  it.effect("pre-vote: a partitioned node does not inflate its term and does not disrupt the leader when it rejoins", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      const follower = cluster.ids.find((id) => id !== leader.id)!
      let realVotes = 0
      cluster.net.observe((m) => {
        if (m.msgType === MessageType.RequestVote) realVotes++
      })
      cluster.net.isolate(follower)
      yield* advance(5_000)
      const away = yield* cluster.status(follower)
      // §9.6: pre-vote rounds never reach a majority, so the term never moves.
      expect(away.term).toBe(leader.term)
      expect(away.role).toBe("pre-candidate")
      expect(realVotes).toBe(0)

      cluster.net.heal()
      yield* advance(3_000)
      const after = yield* cluster.awaitLeader()
      expect(after.id).toBe(leader.id)
      expect(after.term).toBe(leader.term)
      expect(realVotes).toBe(0)
      expect((yield* cluster.status(follower)).leader).toBe(leader.id)
    }))

  it.effect("without pre-vote the same rejoin forces a new term (what pre-vote prevents)", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3], raft: { pre_vote: false } })
      const leader = yield* cluster.awaitLeader()
      const follower = cluster.ids.find((id) => id !== leader.id)!
      cluster.net.isolate(follower)
      yield* advance(5_000)
      const away = yield* cluster.status(follower)
      expect(away.term).toBeGreaterThan(leader.term)
      cluster.net.heal()
      const after = yield* cluster.awaitLeader()
      expect(after.term).toBeGreaterThan(leader.term)
    }))

  it.effect("a node that is not the leader and knows none answers NotLeader", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      cluster.net.partition()
      yield* advance(100)
      const error = yield* Effect.flip(cluster.node(1).put("k", "v"))
      expect(error._tag).toBe("NotLeader")
      const readError = yield* Effect.flip(cluster.node(2).read("k"))
      expect(readError._tag).toBe("NotLeader")
    }))

  it.effect("leadership transfer hands over to an up-to-date follower without waiting for a timeout", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const leader = yield* cluster.awaitLeader()
      yield* cluster.node(leader.id).put("a", "1")
      const target = cluster.ids.find((id) => id !== leader.id)!
      yield* cluster.node(leader.id).transferLeadership(target)
      // Well within an election timeout (300 ms): nobody waited for one.
      yield* cluster.waitFor(Effect.map(cluster.status(target), (s) => s.role === "leader"), 100, "the transfer", 1)
      const next = yield* cluster.awaitLeader(cluster.ids, 100)
      expect(next.id).toBe(target)
      expect(next.term).toBe(leader.term + 1)
      expect(yield* cluster.node(target).read("a")).toBe("1")
    }))
})
