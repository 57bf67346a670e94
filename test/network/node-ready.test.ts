/**
 * What an operator sees of a node: `/ready` (a leader known and a quorum reachable) next to
 * `/health`, role and leader changes logged at INFO, and `raft_transport_link_up` per peer
 * and transport. Three key-value nodes on the in-memory network, each with its real HTTP API.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Metric, References } from "effect"
import { maxCommandBytes, serveHttpApi, trackEvents } from "../../src/node/http-api.ts"
import { decodeRaftConfig } from "../../src/raft/config.ts"
import { KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { makeRaftManager } from "../../src/raft/manager.ts"
import { MemoryStorage } from "../../src/raft/memory-storage.ts"
import { RaftTransport } from "../../src/domain/raft-transport.ts"
import { makeConfig } from "../../src/config/load.ts"
import * as M from "../../src/metrics/metrics.ts"
import { MemoryNetwork } from "../../src/testing/index.ts"
import { eventually } from "../support/eventually.ts"

const ids = [1, 2, 3]

const getReady = (address: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://${address}/ready`)
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const linkUp = (self: number, peer: number) =>
  Effect.map(
    Metric.value(Metric.withAttributes(M.linkUp, { peer: String(peer), transport: "memory" })),
    (state) => ({ self, value: Number(state.value) })
  )

describe("node readiness and operator logs", () => {
  it.live("/ready follows leader and quorum; role changes are logged at INFO", () => {
    const infoLines: Array<string> = []
    const capture = Logger.make((options) => {
      if (options.logLevel === "Info") infoLines.push(String(options.message))
    })
    return Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const raftConfig = yield* decodeRaftConfig({ voters: ids })
      const transportConfig = yield* makeConfig({ node_id: 1 })
      const nodes = yield* Effect.forEach(ids, (id) =>
        Effect.gen(function*() {
          const transport = yield* network.transport({ nodeId: id, peers: ids })
          const manager = yield* makeRaftManager(raftConfig, new KvStateMachine(), new MemoryStorage()).pipe(
            Effect.provideService(RaftTransport, transport)
          )
          const http = yield* serveHttpApi(
            { bindAddress: "127.0.0.1:0", requestTimeoutMs: 5000, maxCommandBytes: maxCommandBytes(transportConfig) },
            manager,
            transport,
            yield* trackEvents(manager)
          )
          return { id, manager, address: http.address }
        }))

      // Every node becomes ready once a leader is elected and its links are up.
      const all = yield* eventually(
        "all nodes ready",
        Effect.forEach(nodes, (n) => getReady(n.address)),
        (replies) => replies.every((r) => r.status === 200)
      )
      const leader = all[0]!.body["leader"] as number
      expect(all.map((r) => r.body)).toEqual(all.map(() => expect.objectContaining({ ready: true, leader, voters: 3 })))
      expect(infoLines.some((line) => line === `role leader (term ${all[0]!.body["term"]})`)).toBe(true)
      expect(infoLines.some((line) => line.startsWith(`leader ${leader} (term`))).toBe(true)

      // Cut off a follower: it loses its leader link (and soon the leader), and is not ready.
      const follower = nodes.find((n) => n.id !== leader)!
      yield* network.isolate(follower.id)
      const cut = yield* eventually("isolated follower not ready", getReady(follower.address), (r) => r.status === 503)
      expect(cut.body).toMatchObject({ ready: false })
      expect(["no_leader", "no_quorum"]).toContain(cut.body["reason"])
      const down = yield* linkUp(leader, follower.id)
      expect(down.value).toBe(0)

      // The leader keeps its quorum with the other follower and stays ready.
      const leaderNode = nodes.find((n) => n.id === leader)!
      expect((yield* getReady(leaderNode.address)).status).toBe(200)

      // Cut the other follower too: the leader steps down (check quorum) and reports it.
      const other = nodes.find((n) => n.id !== leader && n.id !== follower.id)!
      yield* network.isolate(other.id)
      const alone = yield* eventually("leader alone not ready", getReady(leaderNode.address), (r) => r.status === 503)
      expect(alone.body).toMatchObject({ ready: false })

      yield* network.heal
      yield* eventually(
        "ready again after healing",
        Effect.forEach(nodes, (n) => getReady(n.address)),
        (replies) => replies.every((r) => r.status === 200)
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(Logger.layer([capture])),
      Effect.provideService(References.MinimumLogLevel, "Info")
    )
  })
})
