/**
 * Helpers for tests that run real node processes (`src/node/main.ts`) on loopback: a cluster in
 * a temp dir removed afterwards, polling until a condition holds, and bulk writes / reads
 * through the HTTP API.
 */
import { Clock, Effect, type Scope } from "effect"
import { rmSync } from "node:fs"
import { type ClusterTransport, LocalCluster, type NodeStatus } from "../../src/node/local-cluster.ts"
import { tempDir } from "./network-cluster.ts"

export { LocalCluster, type NodeStatus } from "../../src/node/local-cluster.ts"

/** Fast timings for tests: elections in a few hundred ms, small snapshots, short request timeouts. */
export const testRaft = {
  election_timeout_min_ms: 200,
  election_timeout_max_ms: 400,
  heartbeat_interval_ms: 40,
  snapshot_threshold: 50,
  proposal_timeout_ms: 2000
}

/** Starts `nodes` node processes; they are killed and the directory removed when the scope closes. */
export const startCluster = (
  transport: ClusterTransport,
  nodes: number,
  raft: Record<string, unknown> = {},
  transportOverrides: Record<string, unknown> = {}
): Effect.Effect<LocalCluster, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = tempDir("raft-cluster-test-")
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const cluster = yield* LocalCluster.make({ dir, nodes, transport, raft: { ...testRaft, ...raft }, transportOverrides })
    yield* cluster.startAll()
    return cluster
  })

/** The status of node `id` (fails when it does not answer). */
export const statusOf = (cluster: LocalCluster, id: number) =>
  Effect.flatMap(cluster.statuses(2000, [id]), (all) => {
    const s = all.find((x) => x.id === id)
    return s === undefined ? Effect.fail(new Error(`node ${id} did not answer /status`)) : Effect.succeed(s)
  })

/** Nodes that say they lead, by term. */
export const leadersByTerm = (statuses: ReadonlyArray<NodeStatus>): Map<number, Array<number>> => {
  const out = new Map<number, Array<number>>()
  for (const s of statuses) if (s.role === "leader") out.set(s.term, [...(out.get(s.term) ?? []), s.id])
  return out
}

/** PUTs `keys` to node `id`, `concurrency` at a time; fails unless every one is acknowledged (200). */
export const putAll = (cluster: LocalCluster, id: number, keys: ReadonlyArray<string>, valueOf: (key: string) => string) =>
  Effect.forEach(keys, (key) =>
    Effect.flatMap(cluster.put(id, key, valueOf(key)), (reply) =>
      reply.status === 200
        ? Effect.void
        : Effect.fail(new Error(`PUT ${key} to node ${id}: ${reply.status} ${JSON.stringify(reply.body)}`))), {
    concurrency: 8,
    discard: true
  })

/** GETs `keys` from node `id`; the values found (undefined for a 404), failing on any other status. */
export const getAll = (cluster: LocalCluster, id: number, keys: ReadonlyArray<string>) =>
  Effect.forEach(keys, (key) =>
    Effect.flatMap(cluster.get(id, key), (reply) => {
      if (reply.status === 404) return Effect.succeed(undefined)
      const body = reply.body
      if (reply.status === 200 && typeof body === "object" && body !== null && "value" in body && typeof body.value === "string") {
        return Effect.succeed(body.value)
      }
      return Effect.fail(new Error(`GET ${key} from node ${id}: ${reply.status} ${JSON.stringify(body)}`))
    }), { concurrency: 8 })

/** PUT through any of `nodes` until one acknowledges it (an election may be running). */
export const putEventually = (cluster: LocalCluster, nodes: ReadonlyArray<number>, key: string, value: string, timeoutMs = 20_000) =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
    for (let i = 0;; i++) {
      const node = nodes[i % nodes.length]!
      const reply = yield* Effect.result(cluster.put(node, key, value, 1000))
      if (reply._tag === "Success" && reply.success.status === 200) return node
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* Effect.fail(
          new Error(`PUT ${key} not acknowledged within ${timeoutMs} ms: ${JSON.stringify(reply._tag === "Success" ? reply.success : reply.failure.message)}`)
        )
      }
      yield* Effect.sleep(50)
    }
  })

export const keyRange = (prefix: string, from: number, to: number): Array<string> =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)
