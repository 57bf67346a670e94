/**
 * A linearizable read asked on a follower (§6.4: the follower asks its leader for a read index)
 * while that leader fails. The request to the dead leader is lost; once a new leader is known the
 * follower must ask it instead, so the read succeeds within its budget like a write retried by
 * the caller would, rather than failing with `NoQuorum` at its deadline while a healthy leader
 * has been serving for most of it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { MessageType, type NodeId } from "../../src/message/types.ts"
import { RaftCluster } from "../support/raft-cluster.ts"

describe("raft read index across a leader change", () => {
  it.effect("a read forwarded to a leader that then died is asked again of the new leader", () =>
    Effect.gen(function*() {
      const cluster = yield* RaftCluster.make({ ids: [1, 2, 3] })
      const first = yield* cluster.awaitLeader()
      yield* cluster.node(first.id).put("k", "v")
      const follower = cluster.ids.find((id) => id !== first.id)!
      yield* cluster.awaitApplied((yield* cluster.status(first.id)).commitIndex)
      const askedOf: Array<NodeId> = []
      cluster.net.observe((m) => {
        if (m.msgType === MessageType.ReadIndex && m.from === follower) askedOf.push(m.to)
      })

      // The leader crashes; the follower does not know yet and forwards the read to it.
      yield* cluster.stop(first.id)
      const read = yield* Effect.forkChild(cluster.node(follower).read("k", { timeoutMs: 10_000 }), { startImmediately: true })
      const survivors = cluster.ids.filter((id) => id !== first.id)
      const second = yield* cluster.awaitLeader(survivors)
      expect(second.id).not.toBe(first.id)

      const exit = yield* cluster.waitFor(Effect.sync(() => read.pollUnsafe()), 10_000, "the read to finish")
      expect(exit).toEqual(Exit.succeed("v"))
      // Asked of the dead leader first, then of the new one (or answered locally if it is the new leader).
      expect(askedOf[0]).toBe(first.id)
      if (second.id !== follower) expect(askedOf.slice(1)).toContain(second.id)
    }))
})
