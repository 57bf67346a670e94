/**
 * Leader failover in a 3-node gRPC cluster whose nodes keep being killed and restarted, with
 * the shipped reconnect backoff (50 ms doubling to 5 s). While a node is down the others'
 * backoff towards it grows; once it is back, its own connections wake their links to it, so
 * an election that needs it does not wait out a backoff set while it was down.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { measureFailover } from "../../src/node/workload.ts"
import { startCluster, statusOf } from "../support/process-cluster.ts"
import { eventually } from "../support/eventually.ts"

const ROUNDS = 4
/** Long enough for the survivors' backoff to a dead node to reach seconds. */
const DOWN_MS = 4000
const shippedReconnect = { reconnect: { initial_backoff_ms: 50, max_backoff_ms: 5000 } }

describe("gRPC cluster: leader killed and restarted, again and again", () => {
  it.live("a new leader takes writes within 1 s at the median, with the shipped backoff", () =>
    Effect.gen(function*() {
      const cluster = yield* startCluster("grpc", 3, {}, shippedReconnect)
      let leader = (yield* cluster.waitForLeader()).id
      const failovers: Array<number> = []
      for (let round = 0; round < ROUNDS; round++) {
        const victim = leader
        const { failoverMs } = yield* measureFailover(cluster, victim, { everyMs: 20, attemptMs: 2000 })
        failovers.push(Math.round(failoverMs))
        const second = yield* cluster.waitForLeader({ among: cluster.running() })
        leader = second.id
        yield* Effect.sleep(DOWN_MS)
        yield* cluster.start(victim)
        yield* eventually("the restarted node caught up", statusOf(cluster, victim), (s) =>
          s.role === "follower" && s.appliedIndex >= second.commitIndex)
      }
      const sorted = [...failovers].sort((a, b) => a - b)
      const median = (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2
      console.log("gRPC leader failover (kill -> first acknowledged write), ms:", { failovers, median })
      expect(median).toBeLessThanOrEqual(1000)
    }).pipe(Effect.scoped), { timeout: 180_000 })
})
