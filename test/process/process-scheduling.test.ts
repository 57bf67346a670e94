/**
 * `[process] scheduling`: a node process runs every thread as SCHED_BATCH by default, and as
 * it was started with `"inherit"`; `raft_node_scheduling_batch` says which.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { rmSync } from "node:fs"
import { getMetrics, LocalCluster } from "../../src/node/local-cluster.ts"
import { SCHED_BATCH, SCHED_OTHER, threadsOf } from "../../src/os/threads.ts"
import { tempDir } from "../support/network-cluster.ts"

const startOne = (table: Record<string, unknown> | undefined) =>
  Effect.gen(function*() {
    const dir = tempDir("raft-scheduling-")
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const cluster = yield* LocalCluster.make({ dir, nodes: 1, transport: "iroh", logLevel: "warn", ...(table === undefined ? {} : { process: table }) })
    yield* cluster.startAll()
    const pid = cluster.process(1)?.pid ?? -1
    const metrics = yield* getMetrics(cluster.spec(1))
    return { policies: threadsOf(pid).map((t) => t.policy), gauge: metrics.find((s) => s.name === "raft_node_scheduling_batch")?.value }
  })

describe.skipIf(process.platform !== "linux")("a node process's scheduling", () => {
  it.live("is SCHED_BATCH for every thread by default, the binding's included", () =>
    Effect.gen(function*() {
      const { policies, gauge } = yield* startOne(undefined)
      expect(policies.length).toBeGreaterThan(4)
      expect(new Set(policies)).toEqual(new Set([SCHED_BATCH]))
      expect(gauge).toBe(1)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("is left as the process was started with scheduling = \"inherit\"", () =>
    Effect.gen(function*() {
      const { policies, gauge } = yield* startOne({ scheduling: "inherit" })
      // The binding's threads are the transport's own affair (iroh_config.binding_thread_policy).
      expect(policies.filter((p) => p !== SCHED_BATCH).length).toBeGreaterThan(2)
      expect(policies.every((p) => p === SCHED_OTHER || p === SCHED_BATCH)).toBe(true)
      expect(gauge).toBe(0)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
