/**
 * `[process] scheduling`: the node's threads as Linux's `SCHED_BATCH`.
 *
 * A node's work arrives as wake-ups: a packet from a peer, a client's request, a log write
 * finished on libuv's pool, the Iroh binding's threads. By default Linux lets a thread that
 * was asleep preempt the one running on its core, so each wake-up may cut into the turn of
 * another thread of the same process, or of another node on the same machine, and the work
 * interleaves in small slices. `SCHED_BATCH` keeps every thread's share of the CPU and only
 * gives up that preemption: a woken thread waits for the other core or for the running one to
 * finish its turn (docs/node.md, "Scheduling"). Threads started later inherit the policy.
 */
import { Effect, Metric } from "effect"
import { setSchedulingPolicy } from "../os/threads.ts"
import type { ProcessConfig } from "./node-config.ts"

const batchGauge = Metric.gauge("raft_node_scheduling_batch", {
  description: "1 while the node's process runs as SCHED_BATCH ([process] scheduling), else 0"
})

/**
 * Applies `scheduling` to every thread of this process. Where it cannot (not Linux, no `chrt`)
 * the node runs as it was started: logged at info, and the gauge says 0.
 */
export const applyProcessScheduling = (scheduling: ProcessConfig["scheduling"]): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (scheduling === "inherit") return yield* Metric.update(batchGauge, 0)
    if (process.platform !== "linux") {
      yield* Effect.logInfo(`[process] scheduling = "batch" is for Linux; this node runs on ${process.platform} as it was started`)
      return yield* Metric.update(batchGauge, 0)
    }
    const result = yield* Effect.result(setSchedulingPolicy("batch", process.pid, true))
    if (result._tag === "Failure") {
      yield* Effect.logInfo(`the node's threads keep their scheduling policy (chrt -a -b: ${result.failure})`)
      return yield* Metric.update(batchGauge, 0)
    }
    yield* Metric.update(batchGauge, 1)
  })
