/**
 * `[process] scheduling`: a node process runs every thread as SCHED_BATCH by default, and as
 * it was started with `"inherit"`; `raft_node_scheduling_batch` says which.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync, rmSync } from "node:fs"
import { getMetrics, LocalCluster } from "../../src/node/local-cluster.ts"
import { parseTaskStat } from "../../src/iroh/thread-policy.ts"
import { tempDir } from "../support/network-cluster.ts"

/** The scheduling policy of each thread of process `pid` (0 normal, 3 batch). */
const policiesOf = (pid: number): ReadonlyArray<number> =>
  readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const parsed = parseTaskStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"))
      return parsed === undefined ? [] : [parsed.policy]
    } catch {
      return [] // the thread ended between the listing and the read
    }
  })

const startOne = (process: Record<string, unknown> | undefined) =>
  Effect.gen(function*() {
    const dir = tempDir("raft-scheduling-")
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const cluster = yield* LocalCluster.make({ dir, nodes: 1, transport: "iroh", logLevel: "warn", ...(process === undefined ? {} : { process }) })
    yield* cluster.startAll()
    const pid = cluster.process(1)?.pid ?? -1
    const metrics = yield* getMetrics(cluster.spec(1))
    return { policies: policiesOf(pid), gauge: metrics.find((s) => s.name === "raft_node_scheduling_batch")?.value }
  })

describe.skipIf(process.platform !== "linux")("a node process's scheduling", () => {
  it.live("is SCHED_BATCH for every thread by default, the binding's included", () =>
    Effect.gen(function*() {
      const { policies, gauge } = yield* startOne(undefined)
      expect(policies.length).toBeGreaterThan(4)
      expect(new Set(policies)).toEqual(new Set([3]))
      expect(gauge).toBe(1)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("is left as the process was started with scheduling = \"inherit\"", () =>
    Effect.gen(function*() {
      const { policies, gauge } = yield* startOne({ scheduling: "inherit" })
      // The binding's threads are the transport's own affair (iroh_config.binding_thread_policy).
      expect(policies.filter((p) => p !== 3).length).toBeGreaterThan(2)
      expect(policies.every((p) => p === 0 || p === 3)).toBe(true)
      expect(gauge).toBe(0)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
