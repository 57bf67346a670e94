/**
 * The scheduling policy of the binding's Tokio threads (Linux).
 *
 * Every binding call that hands work to Tokio (`writeAll`, a read, a ping) wakes one of its
 * worker threads, and the kernel lets a freshly woken thread preempt the thread that woke it:
 * the event loop then waits, inside the call, while the worker sends the packet on the same
 * core. `SCHED_BATCH` keeps the workers' share of the CPU (same weight as any thread) and only
 * takes away that preemption, so a worker runs on the other core or once the event loop is
 * done with its turn (docs/design.md, "The binding's threads do not preempt the event loop").
 * It is set once per thread (the runtime starts its workers with the first endpoint; threads
 * they start later inherit it).
 */
import { Effect, Metric } from "effect"
import * as M from "../metrics/metrics.ts"
import { SCHED_BATCH, setSchedulingPolicy, type ThreadInfo, threadsOf } from "../os/threads.ts"

/** `"batch"`: the binding's threads run as `SCHED_BATCH`; `"inherit"`: as the process's. */
export type BindingThreadPolicy = "batch" | "inherit"

/** This process's threads that the binding's Tokio runtime started. */
export const bindingThreads = (): ReadonlyArray<ThreadInfo> => threadsOf().filter((t) => t.comm.startsWith("tokio"))

const batchThreads = Metric.withAttributes(M.irohBindingThreads, { policy: "batch" })
const otherThreads = Metric.withAttributes(M.irohBindingThreads, { policy: "other" })

/**
 * Applies `policy` to the binding's threads that do not have it yet, and sets the
 * `raft_transport_iroh_binding_threads` gauge from what they run as then. A thread that cannot
 * be changed (no `chrt`, not Linux) keeps its policy: logged once per call, at info, since the
 * transport works the same, only with the event loop preempted more often.
 */
export const applyBindingThreadPolicy = (policy: BindingThreadPolicy): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (policy === "batch" && process.platform === "linux") {
      const failures: Array<string> = []
      for (const thread of bindingThreads()) {
        if (thread.policy === SCHED_BATCH) continue
        const result = yield* Effect.result(setSchedulingPolicy("batch", thread.tid))
        if (result._tag === "Failure") failures.push(result.failure)
      }
      if (failures.length > 0) {
        yield* Effect.logInfo(
          `${failures.length} of the Iroh binding's threads keep their scheduling policy (chrt -b: ${failures[0]}); ` +
            `they may preempt the event loop on each call`
        )
      }
    }
    const threads = bindingThreads()
    const batch = threads.filter((t) => t.policy === SCHED_BATCH).length
    yield* Metric.update(batchThreads, batch)
    yield* Metric.update(otherThreads, threads.length - batch)
  })
