/**
 * Real node processes (`src/node/main.ts run`) on loopback, over Iroh and over gRPC: leader
 * election, durability of acknowledged writes across a leader's death, catch-up of a restarted
 * follower by snapshot, quorum loss, and split votes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { agreedLeader } from "../../src/node/local-cluster.ts"
import {
  getAll,
  keyRange,
  leadersByTerm,
  type NodeStatus,
  putAll,
  putEventually,
  startCluster,
  statusOf
} from "../support/process-cluster.ts"
import { eventually } from "../support/eventually.ts"

const valueOf = (key: string) => `value-of-${key}`

for (const transport of ["iroh", "grpc"] as const) {
  describe(`cluster of node processes over ${transport}`, () => {
    it.live("elects one leader; acknowledged writes survive its death; a restarted follower catches up by snapshot", () =>
      Effect.gen(function*() {
        const cluster = yield* startCluster(transport, 3)
        const leader = yield* cluster.waitForLeader()
        const statuses = yield* cluster.statuses()
        expect(statuses.map((s) => s.leader)).toEqual([leader.id, leader.id, leader.id])
        expect(statuses.filter((s) => s.role === "leader").map((s) => s.id)).toEqual([leader.id])

        // Acknowledged by the leader, then the leader dies.
        const first = keyRange("a", 0, 60)
        yield* putAll(cluster, leader.id, first, valueOf)
        yield* cluster.kill(leader.id, "SIGKILL")
        const survivors = cluster.ids.filter((id) => id !== leader.id)
        const second = yield* cluster.waitForLeader({ among: survivors })
        expect(second.id).not.toBe(leader.id)
        expect(second.term).toBeGreaterThan(leader.term)
        expect(yield* getAll(cluster, second.id, first)).toEqual(first.map(valueOf))

        // The old leader comes back and catches up. Leadership may move meanwhile: on a loaded
        // 2-core machine a node's event loop stalls for hundreds of ms, longer than the
        // election timeout, and the leader steps down (check-quorum) or a follower campaigns.
        // Those are correct elections; what must hold is that everyone agrees on a leader
        // and the old leader has applied everything committed before it came back.
        yield* cluster.start(leader.id)
        yield* eventually("old leader caught up, all three agreeing on a leader", cluster.statuses(1000), (all) =>
          agreedLeader(all, 3) !== undefined &&
          (all.find((s) => s.id === leader.id)?.appliedIndex ?? -1) >= second.commitIndex)

        // A follower goes down; compaction passes the end of its log while it is away.
        const current = yield* cluster.waitForLeader()
        const follower = cluster.ids.find((id) => id !== current.id)!
        const before = yield* statusOf(cluster, follower)
        yield* cluster.kill(follower, "SIGKILL")
        const up = cluster.ids.filter((id) => id !== follower)
        const third = keyRange("b", 0, 150)
        // Written through whichever survivor leads (a follower forwards to it).
        yield* putAll(cluster, current.id, third, valueOf)
        const leaderNow = yield* cluster.waitForLeader({ among: up })
        expect(leaderNow.snapshotIndex).toBeGreaterThan(before.lastLogIndex)
        yield* cluster.start(follower)
        const caughtUp = yield* eventually("restarted follower caught up", statusOf(cluster, follower), (s) =>
          s.appliedIndex >= leaderNow.commitIndex)
        expect(caughtUp.events.snapshotsInstalled).toBeGreaterThanOrEqual(1)
        expect(up).toContain(caughtUp.events.lastSnapshotInstalled?.from)
        expect(caughtUp.snapshotIndex).toBeGreaterThanOrEqual(leaderNow.snapshotIndex)
        // Reads through the restarted follower (forwarded to the leader) see everything.
        expect(yield* getAll(cluster, follower, [...first.slice(0, 10), ...third.slice(-10)])).toEqual(
          [...first.slice(0, 10), ...third.slice(-10)].map(valueOf)
        )
      }).pipe(Effect.scoped), { timeout: 120_000 })

    it.live("five nodes: commits with two down, refuses writes with no_quorum (without hanging) with three down", () =>
      Effect.gen(function*() {
        const cluster = yield* startCluster(transport, 5)
        const leader = yield* cluster.waitForLeader()
        const keys = keyRange("k", 0, 20)
        yield* putAll(cluster, leader.id, keys, valueOf)

        // Two down, the leader among them.
        const follower = cluster.ids.find((id) => id !== leader.id)!
        yield* cluster.kill(leader.id, "SIGKILL")
        yield* cluster.kill(follower, "SIGKILL")
        const survivors = cluster.running()
        expect(survivors).toHaveLength(3)
        yield* putEventually(cluster, survivors, "after-two-down", "yes")
        const second = yield* cluster.waitForLeader({ among: survivors })
        expect(yield* getAll(cluster, second.id, [...keys, "after-two-down"])).toEqual([...keys.map(valueOf), "yes"])

        // Three down: two voters of five cannot commit.
        yield* cluster.kill(second.id, "SIGKILL")
        const last = cluster.running()
        expect(last).toHaveLength(2)
        for (const id of last) {
          const start = yield* Clock.currentTimeMillis
          const reply = yield* cluster.put(id, "after-three-down", "no")
          const elapsed = (yield* Clock.currentTimeMillis) - start
          expect(reply.status).toBe(503)
          expect(reply.body).toMatchObject({ error: "no_quorum" })
          expect(String((reply.body as { message: unknown }).message)).toMatch(/of 5 voters/)
          // Bounded by the request timeout (raft.proposal_timeout_ms = 2000), not hanging.
          expect(elapsed).toBeLessThan(6000)
        }
        const read = yield* cluster.get(last[0]!, "k0")
        expect(read.status).toBe(503)
        expect(read.body).toMatchObject({ error: "no_quorum" })
      }).pipe(Effect.scoped), { timeout: 120_000 })

    it.live("split votes resolve: a frozen leader with near-equal election timeouts, then all nodes restarted at once", () =>
      Effect.gen(function*() {
        // Nearly equal timeouts: when the leader goes quiet, the followers time out together and
        // often split the vote (4 voters: a candidate needs all 3 survivors).
        const cluster = yield* startCluster(transport, 4, {
          election_timeout_min_ms: 150,
          election_timeout_max_ms: 152,
          heartbeat_interval_ms: 10
        })
        const claims = new Map<number, Set<number>>()
        const record = (statuses: ReadonlyArray<NodeStatus>) => {
          for (const [term, ids] of leadersByTerm(statuses)) {
            const set = claims.get(term) ?? new Set<number>()
            for (const id of ids) set.add(id)
            claims.set(term, set)
          }
        }
        const first = yield* cluster.waitForLeader()
        yield* putAll(cluster, first.id, ["x"], valueOf)

        let splitRounds = 0
        for (let round = 0; round < 6; round++) {
          const before = yield* cluster.waitForLeader()
          record([before])
          yield* cluster.pause(before.id) // SIGSTOP: sockets open, no heartbeats
          const others = cluster.ids.filter((id) => id !== before.id)
          const after = yield* eventually(
            `a new leader among ${others.join(",")}`,
            Effect.tap(cluster.statuses(1000, others), (all) => Effect.sync(() => record(all))),
            (statuses) => agreedLeader(statuses, others.length) !== undefined
          )
          const leader = agreedLeader(after, others.length)!
          expect(leader.id).not.toBe(before.id)
          if (leader.term > before.term + 1) splitRounds++
          yield* cluster.resume(before.id)
        }
        // Whether a round splits is up to timing (about 1 in 3 on loopback); that every round ends
        // with one leader is not.
        yield* Effect.logInfo(`${splitRounds} of 6 rounds needed more than one term`)

        // Everyone at once: persisted terms and votes, simultaneous start.
        const beforeRestart = yield* cluster.waitForLeader()
        yield* Effect.forEach(cluster.ids, (id) => cluster.kill(id, "SIGKILL"), { concurrency: "unbounded", discard: true })
        yield* cluster.startAll()
        const restarted = yield* eventually(
          "a leader after restarting every node",
          Effect.tap(cluster.statuses(1000), (all) => Effect.sync(() => record(all))),
          (statuses) => agreedLeader(statuses, cluster.ids.length) !== undefined,
          30_000
        )
        expect(agreedLeader(restarted, cluster.ids.length)!.term).toBeGreaterThan(beforeRestart.term)
        // Election safety (§5.2): never two leaders in one term, over everything observed.
        for (const [term, ids] of claims) expect([term, [...ids]]).toEqual([term, [...ids].slice(0, 1)])
        const settled = yield* cluster.waitForLeader()
        yield* putEventually(cluster, [settled.id], "after-restart", "ok")
        expect(yield* getAll(cluster, settled.id, ["x", "after-restart"])).toEqual([valueOf("x"), "ok"])
      }).pipe(Effect.scoped), { timeout: 120_000 })
  })
}
