/**
 * A proposal a follower forwards to a node that is no longer the leader. That node refuses it
 * (nothing was appended there), so the follower fails it at once with NotLeader, or sends it on
 * to the leader it now knows, instead of waiting out the whole proposal timeout for NoQuorum.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MessageType, type NodeId } from "../../src/message/types.ts"
import { RaftCluster } from "../support/raft-cluster.ts"

/**
 * Three nodes; the leader hands over to `next` while `follower` never hears from `next`, so
 * the follower still believes in the `first` leader. Every Propose message is logged.
 */
const formerLeaderBelievedIn = Effect.gen(function*() {
  const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
  const first = yield* cluster.awaitLeader()
  yield* cluster.node(first.id).put("k", "v")
  const [next, follower] = cluster.ids.filter((id) => id !== first.id) as [NodeId, NodeId]
  yield* cluster.awaitApplied((yield* cluster.status(first.id)).commitIndex)
  const proposes: Array<string> = []
  cluster.net.observe((m) => {
    if (m.msgType === MessageType.Propose) proposes.push(`${m.from}->${m.to}${m.reject === true ? " refused" : ""}`)
  })
  cluster.net.setFilter((m) => !(m.from === next && m.to === follower))
  yield* cluster.node(first.id).transferLeadership(next)
  yield* cluster.waitFor(Effect.map(cluster.status(first.id), (s) => s.role === "follower" && s.leader === next), 200, "the transfer", 1)
  expect((yield* cluster.status(follower)).leader).toBe(first.id)
  return { cluster, first: first.id, next, follower, proposes }
})

describe("raft proposals forwarded to a former leader", () => {
  it.effect("are refused, and the follower that forwarded one fails it with NotLeader before its timeout", () =>
    Effect.gen(function*() {
      const { cluster, first, follower, proposes } = yield* formerLeaderBelievedIn
      const put = yield* Effect.forkChild(Effect.flip(cluster.node(follower).put("k", "w", { timeoutMs: 10_000 })), { startImmediately: true })
      const done = yield* cluster.waitFor(Effect.sync(() => put.pollUnsafe()), 1_000, "the proposal to fail", 1)
      expect(done._tag).toBe("Success")
      expect(proposes).toEqual([`${follower}->${first}`, `${first}->${follower} refused`])
      expect((yield* Fiber.join(put))._tag).toBe("NotLeader")
    }))

  it.effect("a refused proposal is sent on to the leader the follower has learned of meanwhile, and commits", () =>
    Effect.gen(function*() {
      const { cluster, first, next, follower, proposes } = yield* formerLeaderBelievedIn
      // The forward to the former leader and the new leader's heartbeats cross: by the time
      // the refusal arrives, the follower knows the new leader.
      cluster.net.hold()
      cluster.net.heal()
      const put = yield* Effect.forkChild(cluster.node(follower).put("k", "w", { timeoutMs: 10_000 }), { startImmediately: true })
      yield* cluster.waitFor(Effect.sync(() => proposes.length > 0), 100, "the forward", 1)
      // The new leader's heartbeats (a round at least), held with the forward.
      yield* TestClock.adjust(2 * cluster.config.heartbeat_interval_ms)
      cluster.net.release()

      yield* cluster.waitFor(Effect.sync(() => put.pollUnsafe()), 1_000, "the proposal to commit", 1)
      yield* Fiber.join(put)
      expect(proposes).toEqual([`${follower}->${first}`, `${first}->${follower} refused`, `${follower}->${next}`])
      yield* cluster.awaitApplied((yield* cluster.status(next)).commitIndex)
      expect(cluster.sm(follower).get("k")).toBe("w")
    }))
})
